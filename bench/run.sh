#!/usr/bin/env bash
# Side-by-side benchmarks of hogguard and its peers on the same input in one run.
#   bash bench/run.sh [tree|history|staged|real-tree|real-history|real|all]
# Missing data sets are generated first (bench/gen_*.{py,sh}, into bench/work/). The real-*
# modes use a real PostHog SDK repository (bench/gen_real.sh, from ../shared/corpora).
# Results: bench/work/results/<mode>.{json,md} (hyperfine), <mode>-<tool>.{out,time}
# (one checked run per tool: its output and /usr/bin/time -v), <mode>-summary.md.
# Knobs (env): RUNS (tree, default 5), RUNS_HISTORY (3), RUNS_STAGED (30), HOGGUARD (binary),
# KF_TURBO=1 (adds a `kingfisher --turbo` row: its fastest mode, for context only).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
work="$here/work"
results="$work/results"
mode="${1:-all}"
RUNS="${RUNS:-5}"
RUNS_HISTORY="${RUNS_HISTORY:-3}"
RUNS_STAGED="${RUNS_STAGED:-30}"
HG="${HOGGUARD:-$root/target/release/hogguard}"
mkdir -p "$results"

case "$mode" in tree|history|staged|real-tree|real-history|real|all) ;; *) echo "usage: $0 [tree|history|staged|real-tree|real-history|real|all]" >&2; exit 2 ;; esac

for tool in rg hyperfine python3 git; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run bash bench/setup.sh" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time: run bash bench/setup.sh" >&2; exit 2; }
# The bundled binary, not the pip console script: the Python shim would add interpreter
# start-up (~30 ms) to every Kingfisher run.
KF="$(python3 -c 'import kingfisher; print(kingfisher.get_binary_path())' 2>/dev/null)" \
    || { echo "missing kingfisher-bin: run bash bench/setup.sh" >&2; exit 2; }
# Kingfisher 2.x renamed its built-in PostHog rules from kingfisher.posthog.* to
# betterleaks.posthog-*; a --rule selector is a prefix, so this selects exactly those two
# (project phc_ and personal phx_ keys). Kingfisher has no rules for phs_/pha_/phr_.
KF_RULES="--rule betterleaks.posthog"

# hogguard runs only if the binary exists and its `scan --help` has the flags a mode needs.
hg_help=""
if [ -x "$HG" ]; then hg_help="$("$HG" scan --help 2>&1 || true)"; fi
hg_supports() {
    [ -n "$hg_help" ] || return 1
    local flag
    for flag in "$@"; do grep -q -- "$flag" <<<"$hg_help" || return 1; done
}

machine() {
    {
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores"
        echo "ram: $(free -g | awk '/^Mem:/ {print $2}') GiB"
        # Virtual disk (virtio); with a warm page cache the runs do not touch it anyway.
        echo "disk: $(df -h "$work" | awk 'NR==2 {print $1 ", " $2 " " "(" $4 " free)"}'), $(lsblk -dno ROTA "$(df "$work" | awk 'NR==2 {print $1}')" 2>/dev/null | tr -d ' ' | sed 's/^1$/reported rotational/;s/^0$/reported non-rotational/')"
        # Other work on the machine skews timings: record the load when the run started.
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
        echo "rg: $(rg --version | head -n1)"
        echo "kingfisher: $("$KF" --version 2>&1 | head -n1)"
        echo "hyperfine: $(hyperfine --version)"
        echo "git: $(git --version)"
        echo "python: $(python3 --version)"
        # Builds change under us while others work: pin the exact binary measured.
        if [ -x "$HG" ]; then echo "hogguard: $("$HG" --version 2>&1 | head -n1) (built $(stat -c %y "$HG" | cut -d. -f1), sha256 $(sha256sum "$HG" | cut -c1-16))"; else echo "hogguard: not built"; fi
    } > "$results/machine.txt"
    cat "$results/machine.txt"
}

# One run per tool outside hyperfine: keeps its output (for the findings check) and
# /usr/bin/time -v (peak RSS). Args: mode tool command-string.
checked_run() {
    local m="$1" tool="$2" cmd="$3"
    echo "== $m/$tool: $cmd"
    local rc=0
    /usr/bin/time -v -o "$results/$m-$tool.time" bash -c "$cmd" >"$results/$m-$tool.out" 2>"$results/$m-$tool.err" || rc=$?
    echo "$rc" > "$results/$m-$tool.rc"
    echo "   exit $rc, $(grep -E 'Elapsed' "$results/$m-$tool.time" | sed 's/.*: //') wall, max RSS $(awk '/Maximum resident/ {printf "%.0f MB", $NF/1000}' "$results/$m-$tool.time")"
}

# Args: mode runs warmup name1 cmd1 name2 cmd2 ...
bench() {
    local m="$1" runs="$2" warm="$3"
    shift 3
    local args=() names=()
    while [ "$#" -gt 0 ]; do args+=(-n "$1" "$2"); names+=("$1"); shift 2; done
    # -i: hogguard exits 1 and Kingfisher 200 when they find secrets, which is the expected
    # outcome here; real failures are caught by checked_run's exit code and findings check.
    hyperfine -i --warmup "$warm" --runs "$runs" --style basic \
        --export-json "$results/$m.json" --export-markdown "$results/$m.md" "${args[@]}"
    printf '%s\n' "${names[@]}" > "$results/$m.tools"
}

run_tree() {
    local tree="$work/tree"
    [ -f "$work/tree.manifest.json" ] || python3 "$here/gen_tree.py" --out "$tree"
    tree_mode tree "$tree" "$work/tree.manifest.json"
}

run_real_tree() {
    [ -f "$work/real/manifest.json" ] || bash "$here/gen_real.sh" "$work/real"
    tree_mode real-tree "$work/real/tree" "$work/real/manifest.json"
}

# Args: mode tree manifest.
tree_mode() {
    local m="$1" tree="$2" manifest="$3"
    rm -f "$results/$m"-* "$results/$m".*
    # rg -uuu: no ignore files, hidden files and binary files searched as text, i.e. every
    # byte of the tree, as `hogguard --no-ignore` and Kingfisher (tree has no hidden/ignore files).
    local rg_cmd="rg -uuu --no-messages -c 'ph[cxsar]_[A-Za-z0-9]{40,49}' '$tree'"
    # Kingfisher defaults kept: 2 jobs (= cores), Base64 decoding, archive extraction (no
    # archives in the tree), 256 MB max file size (largest file is ~80 MB), dedup on.
    local kf_cmd="'$KF' scan '$tree' --no-validate --no-update-check --git-history none $KF_RULES --format json"
    local hg_cmd="'$HG' scan --no-ignore -q --format json '$tree'"
    local cmds=(rg "$rg_cmd" kingfisher "$kf_cmd")
    [ "${KF_TURBO:-0}" = 1 ] && cmds+=(kingfisher-turbo "$kf_cmd --turbo")
    if hg_supports --no-ignore --format; then
        cmds+=(hogguard "$hg_cmd")
    else
        echo "!! hogguard SKIPPED for $m: $HG missing or its scan --help lacks --no-ignore/--format"
    fi
    local i
    for ((i = 0; i < ${#cmds[@]}; i += 2)); do checked_run "$m" "${cmds[i]}" "${cmds[i+1]}"; done
    bench "$m" "$RUNS" 1 "${cmds[@]}"
    python3 "$here/report.py" "$m" "$results" "$manifest"
}

run_history() {
    [ -f "$work/history/manifest.json" ] || bash "$here/gen_repo.sh" "$work/history"
    history_mode history "$work/history/repo" "$work/history/manifest.json"
}

run_real_history() {
    [ -f "$work/real/manifest.json" ] || bash "$here/gen_real.sh" "$work/real"
    history_mode real-history "$work/real/history.git" "$work/real/manifest.json"
}

# Args: mode repo manifest.
history_mode() {
    local m="$1" repo="$2" manifest="$3"
    rm -f "$results/$m"-* "$results/$m".*
    # The physical floor: git inflating every object of the store once, in pack order.
    local git_cmd="git -C '$repo' cat-file --batch-all-objects --batch --unordered >/dev/null"
    # A repository path means full history (all refs) for Kingfisher: --git-history full
    # is its default. The repo has no checked-out files, so only history is scanned.
    local kf_cmd="'$KF' scan '$repo' --no-validate --no-update-check $KF_RULES --format json"
    local hg_cmd="'$HG' scan --git '$repo' -q --format json"
    local cmds=(git-cat-file "$git_cmd" kingfisher "$kf_cmd")
    [ "${KF_TURBO:-0}" = 1 ] && cmds+=(kingfisher-turbo "$kf_cmd --turbo")
    if hg_supports --git --format; then
        cmds+=(hogguard "$hg_cmd")
    else
        echo "!! hogguard SKIPPED for $m: $HG missing or its scan --help lacks --git/--format"
    fi
    local i
    for ((i = 0; i < ${#cmds[@]}; i += 2)); do checked_run "$m" "${cmds[i]}" "${cmds[i+1]}"; done
    bench "$m" "$RUNS_HISTORY" 1 "${cmds[@]}"
    python3 "$here/report.py" "$m" "$results" "$manifest"
}

run_staged() {
    local repo="$work/staged/repo"
    [ -f "$work/staged/manifest.json" ] || bash "$here/gen_staged.sh" "$work/staged"
    rm -f "$results"/staged-*
    # git's own staged diff is the floor any --staged scan builds on.
    local git_cmd="cd '$repo' && git diff --cached --no-color -U0"
    local kf_cmd="cd '$repo' && '$KF' scan . --staged --no-validate --no-update-check $KF_RULES --format json"
    local hg_cmd="cd '$repo' && '$HG' scan --staged -q"
    local cmds=(git-diff-cached "$git_cmd" kingfisher "$kf_cmd")
    if hg_supports --staged; then
        cmds+=(hogguard "$hg_cmd")
    else
        echo "!! hogguard SKIPPED for staged: $HG missing or its scan --help lacks --staged"
    fi
    local i
    for ((i = 0; i < ${#cmds[@]}; i += 2)); do checked_run staged "${cmds[i]}" "${cmds[i+1]}"; done
    bench staged "$RUNS_STAGED" 3 "${cmds[@]}"
    # Scanning must not have changed what is staged.
    [ "$(git -C "$repo" diff --cached --name-only | wc -l)" = 1 ] || echo "!! staged set changed during the benchmark"
    python3 "$here/report.py" staged "$results" "$work/staged/manifest.json"
}

machine
case "$mode" in
    tree) run_tree ;;
    history) run_history ;;
    staged) run_staged ;;
    real-tree) run_real_tree ;;
    real-history) run_real_history ;;
    real) run_real_tree; run_real_history ;;
    all) run_tree; run_history; run_staged; run_real_tree; run_real_history ;;
esac
