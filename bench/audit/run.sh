#!/usr/bin/env bash
# Benchmark of hogguard-audit: acknowledged (fsynced) appends per second with group commit
# against one fsync per append on the same disk, the disk's fsync latency, and entries verified
# per second.
#
#   bench/audit/run.sh [--threads 8] [--seconds 5] [--rounds 3] [--verify-entries 500000] [--sweep 1,8,64,256]
#
# AUDIT_BENCH_DIR picks the directory (and so the disk) the logs are written to; it defaults
# to /tmp/hogguard-audit-bench. The build goes to $CARGO_TARGET_DIR (default /tmp/target-audit).
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${AUDIT_BENCH_DIR:-/tmp/hogguard-audit-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-audit}
mkdir -p "$dir"

cargo build --release --quiet -p hogguard-audit --example audit_bench

echo "## machine"
lscpu | grep 'Model name' || true
echo "cpus: $(nproc)"
df -hT "$dir" | tail -n 1
echo "filesystem: $(stat -f -c %T "$dir")"
echo "rustc: $(rustc --version)"
echo
echo "## command"
echo "AUDIT_BENCH_DIR=$dir bench/audit/run.sh $*"
echo
echo "## results"
"$CARGO_TARGET_DIR/release/examples/audit_bench" --dir "$dir" "$@"
