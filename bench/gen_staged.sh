#!/usr/bin/env bash
# Builds the staged data set (target 18): a repository of 100,000 small committed files,
# then one file modified (one phx_ personal-key token added) and staged.
# Usage: bash bench/gen_staged.sh [OUT_DIR]   (default bench/work/staged; rebuilt from scratch)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/work/staged}"
seed="${SEED:-23}"
nfiles="${NFILES:-100000}"
repo="$out/repo"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Ada Lovelace" GIT_AUTHOR_EMAIL=ada@example.test
export GIT_COMMITTER_NAME="Ada Lovelace" GIT_COMMITTER_EMAIL=ada@example.test

rm -rf "$out"
mkdir -p "$out"
git init -q -b main "$repo"
start=$(date +%s)
# One fast-import commit holding every file: `git add` of 100k files would be far slower.
python3 "$here/gen_staged.py" stream "$seed" "$nfiles" | git -C "$repo" fast-import --quiet --done
git -C "$repo" repack -a -d -q
# Populate the work tree and index so the repository looks like a normal checkout.
git -C "$repo" reset -q --hard main
path="$(python3 "$here/gen_staged.py" stage "$seed" "$nfiles" "$repo" "$out/manifest.json")"
git -C "$repo" add -- "$path"
# A refreshed index keeps stat data clean, as in a developer's warm checkout.
git -C "$repo" update-index -q --refresh || true
echo "gen_staged: $(git -C "$repo" ls-files | wc -l) files tracked, staged: $(git -C "$repo" diff --cached --name-only)"
echo "gen_staged: done in $(( $(date +%s) - start ))s -> $repo"
