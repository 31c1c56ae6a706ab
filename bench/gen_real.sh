#!/usr/bin/env bash
# Builds the real-code data sets from a git bundle of a public PostHog SDK repository
# (shared/corpora/posthog-python.bundle beside the repository, or CORPUS=path):
#   OUT/history.git  a bare clone with every ref of the bundle (the history benchmark)
#   OUT/tree/        the checkout of its default branch copied MB/size times (the tree benchmark)
#   OUT/manifest.json counts only: files, bytes, commits, blobs, PostHog mention density.
# Usage: bash bench/gen_real.sh [OUT_DIR]   (default bench/work/real; MB=600)
# Nothing of the corpus is committed: it is benchmark input only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${1:-$here/work/real}"
corpus="${CORPUS:-$root/../shared/corpora/posthog-python.bundle}"
mb="${MB:-600}"
[ -f "$corpus" ] || { echo "gen_real: no corpus at $corpus (set CORPUS=)" >&2; exit 2; }
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

rm -rf "$out"
mkdir -p "$out"
git -c init.defaultBranch=main clone -q --bare "$corpus" "$out/history.git"
git -c init.defaultBranch=main clone -q "$corpus" "$out/checkout"
rm -rf "$out/checkout/.git"
one=$(du -sb "$out/checkout" | cut -f1)
copies=$(( (mb * 1024 * 1024 + one - 1) / one ))
mkdir -p "$out/tree"
for i in $(seq -w 1 "$copies"); do cp -r "$out/checkout" "$out/tree/copy$i"; done
rm -rf "$out/checkout"

python3 - "$out" "$copies" <<'PY'
import json, os, subprocess, sys
out, copies = sys.argv[1], int(sys.argv[2])
files = bytes_ = lines = mentions = 0
for d, _, names in os.walk(os.path.join(out, "tree")):
    for n in names:
        p = os.path.join(d, n)
        data = open(p, "rb").read()
        files += 1
        bytes_ += len(data)
        for line in data.split(b"\n"):
            lines += 1
            mentions += b"posthog" in line.lower()
repo = os.path.join(out, "history.git")
kinds = {}
listing = subprocess.run(["git", "-C", repo, "cat-file", "--batch-all-objects", "--batch-check"],
                         capture_output=True, text=True, check=True).stdout
for row in listing.splitlines():
    _, kind, size = row.split()
    count, total = kinds.get(kind, (0, 0))
    kinds[kind] = (count + 1, total + int(size))
pack = sum(os.path.getsize(os.path.join(repo, "objects/pack", f))
           for f in os.listdir(os.path.join(repo, "objects/pack")) if f.endswith(".pack"))
manifest = {
    "files": files, "bytes": bytes_, "copies": copies, "lines": lines,
    "posthog_lines": mentions, "posthog_line_share": round(mentions / max(lines, 1), 4),
    "commits": kinds.get("commit", (0, 0))[0], "unique_blobs": kinds.get("blob", (0, 0))[0],
    "unique_blob_bytes": kinds.get("blob", (0, 0))[1], "pack_bytes": pack, "loose_objects": 0,
    "tokens": [], "tokens_total": 0, "tokens_removed_later": 0,
}
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=1)
print(json.dumps(manifest))
PY
