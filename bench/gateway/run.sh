#!/usr/bin/env bash
# Gateway overhead on loopback: signed Standard Webhooks POSTs go to a minimal upstream
# directly, then through the verifying gateway, and the two are compared side by side.
#   bash bench/gateway/run.sh
#
# What it measures: verification (header parsing, timestamp check, HMAC-SHA256 of a ~130-byte
# body) plus forwarding (a second HTTP hop over pooled keep-alive upstream connections). The
# replay store is OFF (--no-replay): the load generators send the same precomputed delivery
# over and over, which the store would refuse after the first; the signature is computed once
# at start-up and the tolerance raised to an hour so that its timestamp stays valid.
#
# The machine has 2 cores shared by the load generator, the upstream and the gateway, so
# processes are pinned with taskset and each server runs a single tokio worker
# (TOKIO_WORKER_THREADS=1). Layouts:
#   own-core:    load generator + upstream on CPU 0; the gateway on CPU 1
#   shared-core: load generator on CPU 0; upstream and gateway share CPU 1
# In each layout the direct run and the gateway run place the load generator and the upstream
# identically, so the only difference is the gateway. Load modes, each with CONNECTIONS
# connections:
#   rate:        the bounded load. oha sends at a fixed rate (open loop: a request leaves on
#                schedule whether or not earlier answers came back, and latency is counted
#                from the scheduled time, so stalls are not hidden), for each of RATES, ROUNDS
#                times, direct and gateway alternating. Delivered requests/s shows whether a
#                path keeps up; latency is the cost per request at that load.
#   saturating:  wrk; every connection sends its next request as soon as the answer arrives,
#                so requests/s is the capacity of the slowest part on its CPU and latency
#                includes queueing
#   paced:       wrk; every connection waits PACE_MS between an answer and its next request
#                (closed loop, at most CONNECTIONS * 1000 / PACE_MS requests/s)
# Every server's CPU time during each measured run is read from /proc and divided by the
# requests served, which other load on the machine barely changes.
#
# Knobs (env): RATES ("5000 10000 20000 30000"), ROUNDS (3), RATE_DURATION (5s), DURATION (10s, wrk
# modes), CONNECTIONS (16), THREADS (1, wrk), WARMUP (2s), PACE_MS (1), LAYOUTS ("own-core
# shared-core"), MODES ("rate saturating"), UPSTREAM_PORT (18080), GATEWAY_PORT (18081),
# STATS_PORT (18082), OHA (bench/work/tools/bin/oha, else oha on PATH; bench/setup.sh installs
# it), CARGO_TARGET_DIR (/tmp/target-gateway).
# Results in bench/work/gateway/: <layout>-<mode>-{direct,gateway}.txt (wrk output),
# <layout>-rate<R>-<round>-{direct,gateway}.json (oha output), each with .cpu (CPU ticks per
# server), <layout>-gateway-stats.json (the gateway's counters) and summary.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/bench/work/gateway"
RATES="${RATES:-5000 10000 20000 30000}"
ROUNDS="${ROUNDS:-3}"
RATE_DURATION="${RATE_DURATION:-5s}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"
PACE_MS="${PACE_MS:-1}"
LAYOUTS="${LAYOUTS:-own-core shared-core}"
MODES="${MODES:-rate saturating}"
UPSTREAM_PORT="${UPSTREAM_PORT:-18080}"
GATEWAY_PORT="${GATEWAY_PORT:-18081}"
STATS_PORT="${STATS_PORT:-18082}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-gateway}"
examples="$CARGO_TARGET_DIR/release/examples"

for tool in wrk taskset python3 curl cargo; do
    command -v "$tool" >/dev/null || { echo "missing $tool (bash bench/setup.sh installs it)" >&2; exit 2; }
done
OHA="${OHA:-$root/bench/work/tools/bin/oha}"
[ -x "$OHA" ] || OHA="$(command -v oha || true)"
case " $MODES " in
    *" rate "*) [ -n "$OHA" ] || { echo "missing oha (bash bench/setup.sh installs it)" >&2; exit 2; } ;;
esac
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

source "$here/../lib/loopback.sh"

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

# rate_load CPU PORT RATE OUT NAME=PID...: an open-loop run at RATE requests/s with oha
# (after a short warm-up at the same rate), its JSON report in OUT.
rate_load() {
    local cpu="$1" port="$2" rate="$3" out="$4"
    shift 4
    local oha_args=(--no-tui --worker-threads 1 --latency-correction -c "$CONNECTIONS" -q "$rate"
        -m POST -d "$body" -H "Content-Type: application/json" -H "webhook-id: $message_id"
        -H "webhook-timestamp: $timestamp" -H "webhook-signature: $signature"
        "http://127.0.0.1:$port/hooks/posthog")
    taskset -c "$cpu" "$OHA" -z 1s --output-format quiet "${oha_args[@]}" >/dev/null
    sample_cpu "$@"
    taskset -c "$cpu" "$OHA" -z "$RATE_DURATION" --output-format json "${oha_args[@]}" >"$out"
    record_cpu "$out" "$@"
    only_200 "$out" "verified deliveries"
}

# load CPU PORT MODE OUT NAME=PID...: a warm-up, then the measured run; OUT.cpu gets the CPU
# ticks each named server used during the measured run.
load() {
    local cpu="$1" port="$2" mode="$3" out="$4"
    shift 4
    local url="http://127.0.0.1:$port/hooks/posthog"
    taskset -c "$cpu" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/$mode.lua" "$url" \
        >/dev/null
    sample_cpu "$@"
    taskset -c "$cpu" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$work/$mode.lua" "$url" >"$out"
    record_cpu "$out" "$@"
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
    # Both start first: the gateway idles during the direct runs, so the two can alternate.
    start_upstream "$upstream_cpu"
    start_gateway "$gateway_cpu"
    # The delivery must verify, or the runs would measure rejections.
    status="$(curl -s -o /dev/null -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' -H "webhook-id: $message_id" \
        -H "webhook-timestamp: $timestamp" -H "webhook-signature: $signature" \
        --data-binary "$body" "http://127.0.0.1:$GATEWAY_PORT/hooks/posthog")"
    [ "$status" = 200 ] || { echo "the gateway answered $status, not 200" >&2; exit 1; }
    for mode in $MODES; do
        if [ "$mode" = rate ]; then
            for rate in $RATES; do
                for round in $(seq "$ROUNDS"); do
                    echo "== $layout, $rate requests/s, round $round: direct, then the gateway" >&2
                    rate_load "$wrk_cpu" "$UPSTREAM_PORT" "$rate" \
                        "$work/$layout-rate$rate-$round-direct.json" "upstream=$upstream_pid"
                    rate_load "$wrk_cpu" "$GATEWAY_PORT" "$rate" \
                        "$work/$layout-rate$rate-$round-gateway.json" \
                        "upstream=$upstream_pid" "gateway=$gateway_pid"
                done
            done
            continue
        fi
        echo "== $layout, $mode: direct" >&2
        load "$wrk_cpu" "$UPSTREAM_PORT" "$mode" "$work/$layout-$mode-direct.txt" \
            "upstream=$upstream_pid"
        echo "== $layout, $mode: through the gateway" >&2
        load "$wrk_cpu" "$GATEWAY_PORT" "$mode" "$work/$layout-$mode-gateway.txt" \
            "upstream=$upstream_pid" "gateway=$gateway_pid"
    done
    curl -s "http://127.0.0.1:$STATS_PORT/" >"$work/$layout-gateway-stats.json"
    cleanup
done

python3 - "$work" "$(getconf CLK_TCK)" "$LAYOUTS" "$MODES" "$RATES" "$ROUNDS" <<'EOF' | tee "$work/summary.md"
import json, re, statistics, sys
work, ticks_per_second = sys.argv[1], int(sys.argv[2])
layouts, modes, rates = sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
rounds = int(sys.argv[6])

def add_cpu(result, path):
    for line in open(path + ".cpu"):
        name, ticks = line.split()
        result[name] = int(ticks) * 1e6 / ticks_per_second / result["requests"]
    return result

def micros(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

def parse_wrk(path):
    text = open(path).read()
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
    }
    for pct in ("50", "99"):
        result[pct] = micros(re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M).group(1))
    return add_cpu(result, path)

def parse_oha(path):
    report = json.load(open(path))
    result = {
        "rps": report["summary"]["requestsPerSec"],
        "requests": sum(report["statusCodeDistribution"].values()),
        "50": report["latencyPercentiles"]["p50"] * 1e6,
        "99": report["latencyPercentiles"]["p99"] * 1e6,
    }
    return add_cpu(result, path)

def cpu(r, name):
    return f"{r[name]:.1f} us" if name in r else "-"

median = statistics.median
if "rate" in modes:
    print(f"Bounded load: oha at a fixed rate, open loop, latency from the scheduled send; "
          f"medians of {rounds} alternating rounds.")
    print()
    print("| layout | offered req/s | direct req/s | gateway req/s | gateway/direct "
          "| direct p50 / p99 | gateway p50 / p99 | added p50 | added p99 | gateway CPU/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for layout in layouts:
        for rate in rates:
            pairs = [(parse_oha(f"{work}/{layout}-rate{rate}-{n}-direct.json"),
                      parse_oha(f"{work}/{layout}-rate{rate}-{n}-gateway.json"))
                     for n in range(1, rounds + 1)]
            d_rps = median(d["rps"] for d, _ in pairs)
            g_rps = median(g["rps"] for _, g in pairs)
            ratio = median(100 * g["rps"] / d["rps"] for d, g in pairs)
            added50 = median(g["50"] - d["50"] for d, g in pairs)
            added99 = median(g["99"] - d["99"] for d, g in pairs)
            d50, d99 = median(d["50"] for d, _ in pairs), median(d["99"] for d, _ in pairs)
            g50, g99 = median(g["50"] for _, g in pairs), median(g["99"] for _, g in pairs)
            gcpu = median(g["gateway"] for _, g in pairs)
            each99 = ", ".join(f"{g['99'] - d['99']:.0f}" for d, g in pairs)
            print(f"| {layout} | {rate} | {d_rps:.0f} | {g_rps:.0f} | {ratio:.1f} % "
                  f"| {d50:.0f} / {d99:.0f} us | {g50:.0f} / {g99:.0f} us | {added50:.0f} us "
                  f"| {added99:.0f} us ({each99}) | {gcpu:.1f} us |")
    print()

wrk_modes = [mode for mode in modes if mode != "rate"]
if wrk_modes:
    print("| layout | load | run | requests/s | p50 | p99 | upstream CPU/req | gateway CPU/req |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for layout in layouts:
        for mode in wrk_modes:
            direct = parse_wrk(f"{work}/{layout}-{mode}-direct.txt")
            gateway = parse_wrk(f"{work}/{layout}-{mode}-gateway.txt")
            for name, r in (("direct", direct), ("gateway", gateway)):
                print(f"| {layout} | {mode} | {name} | {r['rps']:.0f} | {r['50']:.0f} us "
                      f"| {r['99']:.0f} us | {cpu(r, 'upstream')} | {cpu(r, 'gateway')} |")
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
