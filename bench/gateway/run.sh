#!/usr/bin/env bash
# Gateway overhead on loopback: wrk drives signed Standard Webhooks POSTs at a minimal upstream
# directly, then through the verifying gateway, and compares requests/s, latency and CPU time.
#   bash bench/gateway/run.sh
#
# What it measures: verification (header parsing, timestamp check, HMAC-SHA256 of a ~130-byte
# body) plus forwarding (a second HTTP hop over pooled keep-alive upstream connections). The
# replay store is OFF (--no-replay): wrk sends the same precomputed delivery over and over, which
# the store would refuse after the first; the signature is computed once at start-up and the
# tolerance raised to an hour so that its timestamp stays valid for the whole run.
#
# The machine has 2 cores shared by wrk, the upstream and the gateway, so processes are pinned
# with taskset and each server runs a single tokio worker (TOKIO_WORKER_THREADS=1). Layouts:
#   own-core:    wrk + upstream on CPU 0; the gateway (when present) on CPU 1
#   shared-core: wrk on CPU 0; upstream and gateway (when present) share CPU 1
# In each layout the direct run and the gateway run place wrk and the upstream identically, so
# the only difference is the gateway. Load modes, each with CONNECTIONS connections:
#   saturating:  every connection sends its next request as soon as the answer arrives, so
#                requests/s is the throughput of the slowest part and latency includes queueing
#   paced:       every connection waits PACE_MS between an answer and its next request (wrk's
#                delay()), a bounded load of at most CONNECTIONS * 1000 / PACE_MS requests/s;
#                latency is then the per-request cost without queueing
# Every server's CPU time during each measured run is read from /proc and divided by the
# requests served, which other load on the machine barely changes.
#
# Knobs (env): DURATION (10s), CONNECTIONS (16), THREADS (1), WARMUP (2s), PACE_MS (1),
# LAYOUTS ("own-core shared-core"), MODES ("saturating paced"), UPSTREAM_PORT (18080),
# GATEWAY_PORT (18081), STATS_PORT (18082), CARGO_TARGET_DIR (/tmp/target-gateway).
# Results: bench/work/gateway/<layout>-<mode>-{direct,gateway}.txt (wrk output; .cpu: CPU
# ticks), <layout>-gateway-stats.json (the gateway's counters) and summary.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/bench/work/gateway"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"
PACE_MS="${PACE_MS:-1}"
LAYOUTS="${LAYOUTS:-own-core shared-core}"
MODES="${MODES:-saturating paced}"
UPSTREAM_PORT="${UPSTREAM_PORT:-18080}"
GATEWAY_PORT="${GATEWAY_PORT:-18081}"
STATS_PORT="${STATS_PORT:-18082}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-gateway}"
examples="$CARGO_TARGET_DIR/release/examples"

for tool in wrk taskset python3 curl cargo; do
    command -v "$tool" >/dev/null || { echo "missing $tool (wrk: apt-get install wrk)" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "needs at least 2 CPUs for the pinned layouts" >&2; exit 2; }
mkdir -p "$work"

(cd "$root" && cargo build --release -p hogguard-gateway --example echo_upstream --example gateway)

# The Standard Webhooks specification's public example secret: nothing real is at stake.
export BENCH_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" # hogguard:allow (the Standard Webhooks spec's public example secret)
timestamp="$(date +%s)"
message_id="msg_bench_fixed"
body='{"event":"$pageview","distinct_id":"user-42","properties":{"$current_url":"https://example.com/pricing","$browser":"Firefox"}}'
signature="$(python3 - "$BENCH_WEBHOOK_SECRET" "$message_id" "$timestamp" "$body" <<'EOF'
import base64, hashlib, hmac, sys
secret, message_id, timestamp, body = sys.argv[1:]
key = base64.b64decode(secret.removeprefix("whsec_"))
mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
print("v1," + base64.b64encode(mac).decode())
EOF
)"
# One Lua script per mode; both send the same signed delivery as is on every request.
for mode in saturating paced; do
    {
        echo 'wrk.method = "POST"'
        echo "wrk.body = [==[$body]==]"
        echo 'wrk.headers["Content-Type"] = "application/json"'
        echo "wrk.headers[\"webhook-id\"] = \"$message_id\""
        echo "wrk.headers[\"webhook-timestamp\"] = \"$timestamp\""
        echo "wrk.headers[\"webhook-signature\"] = \"$signature\""
        if [ "$mode" = paced ]; then echo "function delay() return $PACE_MS end"; fi
    } >"$work/$mode.lua"
done

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap cleanup EXIT

wait_for_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

# start_upstream CPU / start_gateway CPU: start a server pinned to CPU, set its *_pid.
start_upstream() {
    TOKIO_WORKER_THREADS=1 taskset -c "$1" "$examples/echo_upstream" "127.0.0.1:$UPSTREAM_PORT" \
        2>"$work/upstream.log" &
    upstream_pid=$!
    pids+=("$upstream_pid")
    wait_for_port "$UPSTREAM_PORT"
}
start_gateway() {
    TOKIO_WORKER_THREADS=1 taskset -c "$1" "$examples/gateway" \
        --listen "127.0.0.1:$GATEWAY_PORT" --forward "http://127.0.0.1:$UPSTREAM_PORT" \
        --secret-env BENCH_WEBHOOK_SECRET --no-replay --tolerance 3600 \
        --stats-listen "127.0.0.1:$STATS_PORT" 2>"$work/gateway.log" &
    gateway_pid=$!
    pids+=("$gateway_pid")
    wait_for_port "$GATEWAY_PORT"
}

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# load CPU PORT MODE OUT NAME=PID...: a warm-up, then the measured run; OUT.cpu gets the CPU
# ticks each named server used during the measured run.
load() {
    local cpu="$1" port="$2" mode="$3" out="$4"
    shift 4
    local url="http://127.0.0.1:$port/hooks/posthog"
    taskset -c "$cpu" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/$mode.lua" "$url" \
        >/dev/null
    local server before=()
    for server in "$@"; do before+=("$(cpu_ticks "${server#*=}")"); done
    taskset -c "$cpu" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$work/$mode.lua" "$url" >"$out"
    : >"$out.cpu"
    local i=0
    for server in "$@"; do
        echo "${server%%=*} $(( $(cpu_ticks "${server#*=}") - before[i] ))" >>"$out.cpu"
        i=$((i + 1))
    done
    if grep -q "Non-2xx" "$out"; then
        echo "non-2xx answers in $out: the benchmark did not measure verified deliveries" >&2
        cat "$out" >&2
        exit 1
    fi
}

for layout in $LAYOUTS; do
    case "$layout" in
        own-core) wrk_cpu=0; upstream_cpu=0; gateway_cpu=1 ;;
        shared-core) wrk_cpu=0; upstream_cpu=1; gateway_cpu=1 ;;
        *) echo "unknown layout $layout" >&2; exit 2 ;;
    esac
    start_upstream "$upstream_cpu"
    for mode in $MODES; do
        echo "== $layout, $mode: direct" >&2
        load "$wrk_cpu" "$UPSTREAM_PORT" "$mode" "$work/$layout-$mode-direct.txt" \
            "upstream=$upstream_pid"
    done
    start_gateway "$gateway_cpu"
    # The delivery must verify, or the runs would measure rejections.
    status="$(curl -s -o /dev/null -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' -H "webhook-id: $message_id" \
        -H "webhook-timestamp: $timestamp" -H "webhook-signature: $signature" \
        --data-binary "$body" "http://127.0.0.1:$GATEWAY_PORT/hooks/posthog")"
    [ "$status" = 200 ] || { echo "the gateway answered $status, not 200" >&2; exit 1; }
    for mode in $MODES; do
        echo "== $layout, $mode: through the gateway" >&2
        load "$wrk_cpu" "$GATEWAY_PORT" "$mode" "$work/$layout-$mode-gateway.txt" \
            "upstream=$upstream_pid" "gateway=$gateway_pid"
    done
    curl -s "http://127.0.0.1:$STATS_PORT/" >"$work/$layout-gateway-stats.json"
    cleanup
done

python3 - "$work" "$(getconf CLK_TCK)" "$LAYOUTS" "$MODES" <<'EOF' | tee "$work/summary.md"
import json, re, sys
work, ticks_per_second = sys.argv[1], int(sys.argv[2])
layouts, modes = sys.argv[3].split(), sys.argv[4].split()

def micros(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

def parse(path):
    text = open(path).read()
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
    }
    for pct in ("50", "75", "90", "99"):
        result[pct] = micros(re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M).group(1))
    for line in open(path + ".cpu"):
        name, ticks = line.split()
        result[name] = int(ticks) * 1e6 / ticks_per_second / result["requests"]
    return result

def cpu(r, name):
    return f"{r[name]:.1f} us" if name in r else "-"

runs = [(layout, mode) for layout in layouts for mode in modes]
print("| layout | load | run | requests/s | p50 | p75 | p90 | p99 | upstream CPU/req | gateway CPU/req |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
rows = []
for layout, mode in runs:
    direct = parse(f"{work}/{layout}-{mode}-direct.txt")
    gateway = parse(f"{work}/{layout}-{mode}-gateway.txt")
    for name, r in (("direct", direct), ("gateway", gateway)):
        print(f"| {layout} | {mode} | {name} | {r['rps']:.0f} | {r['50']:.0f} us "
              f"| {r['75']:.0f} us | {r['90']:.0f} us | {r['99']:.0f} us "
              f"| {cpu(r, 'upstream')} | {cpu(r, 'gateway')} |")
    rows.append((layout, mode, direct, gateway))
print()
print("| layout | load | gateway/direct requests/s | added p50 | added p99 |")
print("|---|---|---:|---:|---:|")
for layout, mode, direct, gateway in rows:
    print(f"| {layout} | {mode} | {100 * gateway['rps'] / direct['rps']:.1f} % "
          f"| {gateway['50'] - direct['50']:.0f} us | {gateway['99'] - direct['99']:.0f} us |")
print()
for layout in layouts:
    stats = json.load(open(f"{work}/{layout}-gateway-stats.json"))
    rejected = sum(stats["rejected"].values())
    print(f"{layout}: the gateway forwarded {stats['forwarded']} deliveries and rejected "
          f"{rejected}.")
EOF
