#!/usr/bin/env bash
# Runs one fuzz target with libFuzzer on the stable toolchain (coverage instrumentation
# without sanitizers): bash fuzz/run.sh scan_input 60
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-60}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros, which must not be
# instrumented (they would not link against the missing sanitizer runtime).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --target "$host" --bin "$target"
mkdir -p "corpus/$target"
"target/$host/release/$target" -max_total_time="$seconds" "corpus/$target"
