# Shared by the loopback load benchmarks (bench/gateway, bench/proxy): server processes that
# stop with the script, waiting for a port, and the CPU time servers use during a run.
# Source it after `set -euo pipefail`.

# Servers started in the background; killed and reaped on exit.
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap cleanup EXIT

# wait_for_port PORT: returns once something accepts connections on 127.0.0.1:PORT.
wait_for_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# sample_cpu NAME=PID... before a run, record_cpu OUT NAME=PID... after it: OUT.cpu gets the CPU
# ticks each named server used in between.
sample_cpu() {
    before_ticks=()
    local server
    for server in "$@"; do before_ticks+=("$(cpu_ticks "${server#*=}")"); done
}
record_cpu() {
    local out="$1" i=0 server
    shift
    : >"$out.cpu"
    for server in "$@"; do
        echo "${server%%=*} $(( $(cpu_ticks "${server#*=}") - before_ticks[i] ))" >>"$out.cpu"
        i=$((i + 1))
    done
}

# only_200 OUT WHAT: stops the benchmark unless every answer in oha's JSON report OUT was 200
# (otherwise the run did not measure WHAT).
only_200() {
    python3 - "$1" "$2" <<'PY'
import json, sys
codes = json.load(open(sys.argv[1]))["statusCodeDistribution"]
if set(codes) != {"200"}:
    sys.exit(f"{sys.argv[1]}: answers other than 200 ({codes}): the run did not measure {sys.argv[2]}")
PY
}
