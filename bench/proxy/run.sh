#!/usr/bin/env bash
# The PostHog API proxy's overhead on loopback: authorised calls (GET …/feature_flags/ with a
# client token) go to a minimal upstream playing PostHog, directly and through `hogguard proxy`
# with auditing on (one audit entry per call, written before the answer is relayed and fsynced
# right after it, the default `audit_fsync = "background"`), side by side.
#   bash bench/proxy/run.sh
#
# Load: oha at a fixed rate (open loop: a request leaves on schedule whether or not earlier
# answers came back, and latency counts from the scheduled time, so stalls are not hidden), for
# each of RATES, ROUNDS times, direct and proxy alternating, CONNECTIONS keep-alive connections.
# Layout (2 cores shared by everything): oha and the upstream on CPU 0, the proxy (its async
# workers and the blocking threads that append audit entries) on CPU 1. The audit log is on the
# work directory's disk.
#
# Knobs (env): RATES ("2000 5000 10000"), ROUNDS (3), RATE_DURATION (5s), CONNECTIONS (16),
# UPSTREAM_PORT (18090), PROXY_PORT (18091), PROXY_WORKERS (1), AUDIT_FSYNC (background, or
# before-answer: `[proxy] audit_fsync`), OHA (bench/work/tools/bin/oha,
# else oha on PATH; bench/setup.sh installs it), CARGO_TARGET_DIR (/tmp/target-proxy).
# Results in bench/work/proxy/: rate<R>-<round>-{direct,proxy}.json (oha), .cpu (CPU ticks per
# server), proxy.log, audit.jsonl and summary.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/bench/work/proxy"
RATES="${RATES:-2000 5000 10000}"
ROUNDS="${ROUNDS:-3}"
RATE_DURATION="${RATE_DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-16}"
UPSTREAM_PORT="${UPSTREAM_PORT:-18090}"
PROXY_PORT="${PROXY_PORT:-18091}"
PROXY_WORKERS="${PROXY_WORKERS:-1}"
AUDIT_FSYNC="${AUDIT_FSYNC:-background}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-proxy}"

for tool in taskset python3 curl cargo; do
    command -v "$tool" >/dev/null || { echo "missing $tool (bash bench/setup.sh installs it)" >&2; exit 2; }
done
OHA="${OHA:-$root/bench/work/tools/bin/oha}"
[ -x "$OHA" ] || OHA="$(command -v oha || true)"
[ -n "$OHA" ] || { echo "missing oha (bash bench/setup.sh installs it)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "needs at least 2 CPUs for the pinned layout" >&2; exit 2; }

(cd "$root" && cargo build --release -p hogguard --bin hogguard \
    && cargo build --release -p hogguard-gateway --example echo_upstream)
hogguard="$CARGO_TARGET_DIR/release/hogguard"
upstream_bin="$CARGO_TARGET_DIR/release/examples/echo_upstream"

rm -rf "$work"
mkdir -p "$work"
cd "$work"
# A made-up personal key (PostHog's shape, never issued) and a real client token.
key="$(python3 -c 'import secrets; a="23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"; print("phx_" + "".join(secrets.choice(a) for _ in range(48)))')"
token="$("$hogguard" proxy token)"
cat >hogguard.toml <<TOML
[posthog]
host = "http://127.0.0.1:$UPSTREAM_PORT"

[environments.bench]
env_file = ".env.bench"
[environments.bench.credentials]
personal_api_key = "POSTHOG_PERSONAL_API_KEY"

[audit]
path = "audit.jsonl"

[proxy]
environment = "bench"
listen = "127.0.0.1:$PROXY_PORT"
audit_fsync = "$AUDIT_FSYNC"
[proxy.clients.bench]
token = "BENCH_TOKEN"
scopes = ["feature_flag:read"]
TOML
printf 'POSTHOG_PERSONAL_API_KEY=%s\nBENCH_TOKEN=%s\n' "$key" "$token" >.env.bench
path="/api/projects/1/feature_flags/"

source "$here/../lib/loopback.sh"

TOKIO_WORKER_THREADS=1 taskset -c 0 "$upstream_bin" "127.0.0.1:$UPSTREAM_PORT" 2>upstream.log &
upstream_pid=$!
pids+=("$upstream_pid")
wait_for_port "$UPSTREAM_PORT"
env -u POSTHOG_HOST -u POSTHOG_INGEST_HOST TOKIO_WORKER_THREADS="$PROXY_WORKERS" \
    taskset -c 1 "$hogguard" --config hogguard.toml proxy 2>proxy.log &
proxy_pid=$!
pids+=("$proxy_pid")
wait_for_port "$PROXY_PORT"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$PROXY_PORT$path")"
[ "$status" = 200 ] || { echo "the proxy answered $status, not 200 (see $work/proxy.log)" >&2; exit 1; }

# rate_load PORT RATE OUT BEARER NAME=PID...: a 1 s warm-up, then the measured run at RATE.
rate_load() {
    local port="$1" rate="$2" out="$3" bearer="$4"
    shift 4
    local args=(--no-tui --worker-threads 1 --latency-correction -c "$CONNECTIONS" -q "$rate"
        -H "Authorization: Bearer $bearer" "http://127.0.0.1:$port$path")
    taskset -c 0 "$OHA" -z 1s --output-format quiet "${args[@]}" >/dev/null
    sample_cpu "$@"
    taskset -c 0 "$OHA" -z "$RATE_DURATION" --output-format json "${args[@]}" >"$out"
    record_cpu "$out" "$@"
    only_200 "$out" "forwarded calls"
}

for rate in $RATES; do
    for round in $(seq "$ROUNDS"); do
        echo "== $rate requests/s, round $round: direct, then through the proxy" >&2
        rate_load "$UPSTREAM_PORT" "$rate" "rate$rate-$round-direct.json" "$key" "upstream=$upstream_pid"
        rate_load "$PROXY_PORT" "$rate" "rate$rate-$round-proxy.json" "$token" \
            "upstream=$upstream_pid" "proxy=$proxy_pid"
    done
done
cleanup
entries="$(wc -l <audit.jsonl)"
echo "audit entries written: $entries" >&2
if grep -qF -e "$key" -e "$token" proxy.log audit.jsonl; then
    echo "a raw key or token is in the proxy's log or audit log" >&2
    exit 1
fi

python3 - "$work" "$(getconf CLK_TCK)" "$RATES" "$ROUNDS" "$entries" <<'PY' | tee summary.md
import json, statistics, sys
work, ticks, rates, rounds, entries = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5])

def run(rate, round_, kind):
    path = f"{work}/rate{rate}-{round_}-{kind}.json"
    report = json.load(open(path))
    summary = report["summary"]
    requests = sum(report["statusCodeDistribution"].values())
    result = {
        "rps": summary["requestsPerSec"],
        "p50": report["latencyPercentiles"]["p50"] * 1e6,
        "p99": report["latencyPercentiles"]["p99"] * 1e6,
    }
    for line in open(path + ".cpu"):
        name, used = line.split()
        result[name] = int(used) * 1e6 / ticks / max(requests, 1)
    return result

print("| offered req/s | direct req/s | proxy req/s | ratio | direct p50 / p99 | proxy p50 / p99 | added p50 | added p99 (rounds) | proxy CPU/req |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for rate in rates:
    direct = [run(rate, r, "direct") for r in range(1, rounds + 1)]
    proxy = [run(rate, r, "proxy") for r in range(1, rounds + 1)]
    med = lambda runs, key: statistics.median(r[key] for r in runs)
    added = [p["p99"] - d["p99"] for d, p in zip(direct, proxy)]
    print(f"| {int(rate):,} | {med(direct,'rps'):,.0f} | {med(proxy,'rps'):,.0f} | "
          f"{100 * med(proxy,'rps') / med(direct,'rps'):.1f} % | "
          f"{med(direct,'p50'):,.0f} / {med(direct,'p99'):,.0f} µs | {med(proxy,'p50'):,.0f} / {med(proxy,'p99'):,.0f} µs | "
          f"{med(proxy,'p50') - med(direct,'p50'):,.0f} µs | **{statistics.median(added):,.0f} µs** ({', '.join(f'{a:,.0f}' for a in added)}) | "
          f"{med(proxy,'proxy'):.1f} µs |")
print(f"\naudit entries written: {entries:,} (one per proxied call, warm-ups included)")
PY
