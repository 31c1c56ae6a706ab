#!/usr/bin/env bash
# Builds the history data set (target 17): >= 5,000 commits and >= 1 GiB of unique blob
# content, deterministic from SEED. Usage: bash bench/gen_repo.sh [OUT_DIR]
# Default OUT_DIR: bench/work/history. Re-running rebuilds from scratch.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/work/history}"
seed="${SEED:-17}"
repo="$out/repo"
manifest="$out/manifest.json"

rm -rf "$out"
mkdir -p "$out"
git init -q -b main "$repo"
# Fixed identity and no user config, so commit ids depend on the seed only.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

start=$(date +%s)
# fast-import writes packs directly: far faster than thousands of `git commit` calls.
python3 "$here/gen_repo.py" stream --seed "$seed" --manifest "$manifest" \
    | git -C "$repo" fast-import --quiet --done
echo "gen_repo: fast-import done in $(( $(date +%s) - start ))s"

# fast-import only deltas against the previous blob in the stream, so recompute deltas
# (-f) the way a real clone's pack would look; then add loose objects on top.
git -C "$repo" repack -a -d -f -q --window=10 --depth=50
git -C "$repo" prune-packed
echo "gen_repo: repack done in $(( $(date +%s) - start ))s"
python3 "$here/gen_repo.py" loose --repo "$repo" --seed "$seed" --manifest "$manifest"
git -C "$repo" reflog expire --expire=now --all

# Measure what was actually built (exact unique blob bytes, not the generator's estimate).
python3 - "$repo" "$manifest" <<'PY'
import json, subprocess, sys
repo, path = sys.argv[1], sys.argv[2]
out = subprocess.run(["git", "-C", repo, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectsize)"],
                     check=True, stdout=subprocess.PIPE, text=True).stdout
blobs = [int(l.split()[1]) for l in out.splitlines() if l.startswith("blob ")]
commits = int(subprocess.run(["git", "-C", repo, "rev-list", "--count", "--all"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout)
count = subprocess.run(["git", "-C", repo, "count-objects", "-v"], check=True, stdout=subprocess.PIPE, text=True).stdout
co = dict(l.split(": ") for l in count.splitlines())
head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
m = json.load(open(path))
m.update(head=head, commits=commits, unique_blobs=len(blobs), unique_blob_bytes=sum(blobs),
         loose_objects=int(co["count"]), pack_bytes=int(co["size-pack"]) * 1024, packs=int(co["packs"]))
by = {}
for t in m["tokens"]:
    by[t["prefix"]] = by.get(t["prefix"], 0) + 1
m["tokens_by_prefix"] = by
m["tokens_total"] = len(m["tokens"])
m["tokens_removed_later"] = sum(1 for t in m["tokens"] if t["removed_in"] is not None)
json.dump(m, open(path, "w"), indent=1)
print(f"gen_repo: {commits} commits, {len(blobs)} unique blobs, {sum(blobs)/2**30:.2f} GiB blob content, "
      f"pack {m['pack_bytes']/2**20:.0f} MiB, {m['loose_objects']} loose objects, "
      f"{len(m['tokens'])} tokens planted ({m['tokens_removed_later']} removed later) {by}")
assert commits >= 5000 and sum(blobs) >= 2**30, "data set below the target-17 minimums"
PY
echo "gen_repo: total $(( $(date +%s) - start ))s -> $repo"
