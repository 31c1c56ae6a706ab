#!/usr/bin/env python3
"""Working-tree data set (target 16): a source-like tree of >= 500 MB, deterministic from a
seed, with a known number of current-format PostHog tokens planted.

Usage: python3 bench/gen_tree.py [--out bench/work/tree] [--seed 7] [--mb 600] [--tokens 500]

The tree has no hidden files and no ignore files, so every tool scans the same bytes
whatever its ignore defaults; it is all text (no binary files) for the same reason.
The manifest (OUT.manifest.json, beside the tree so no scanner sees it) holds counts and
SHA-256 digests of the planted tokens, never the tokens themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import content as C  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "work", "tree"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mb", type=int, default=600, help="total size in MiB (>= 500 for target 16)")
    ap.add_argument("--tokens", type=int, default=500)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    pools = C.LinePools(rng)
    total_target = args.mb << 20

    # Large files first (>= 50 MiB each): logs, a data export, a fixture dump.
    big = [("logs/archive/ingestion-2024.log", "log", 80), ("data/exports/events_export.csv", "csv", 60),
           ("fixtures/snapshots/api_dump.json", "json", 55)]
    specs: list[tuple[str, str, int, bool]] = [(p, k, mb << 20, False) for p, k, mb in big]
    remaining = total_target - sum(s[2] for s in specs)
    dirs = C.make_dirs(rng, 1500, max_depth=7)
    used = {s[0] for s in specs}
    # A few minified one-line bundles: long lines are a classic scanner pitfall.
    for i in range(12):
        size = rng.randint(200 << 10, 3 << 20)
        p = f"frontend/dist/assets/bundle_{i}.min.js"
        specs.append((p, "json", size, True))
        used.add(p)
        remaining -= size
    while remaining > 0:
        kind = C.pick_kind(rng)
        size = min(remaining, C.file_size(rng, 8 << 10, 1.3, 64, 8 << 20))
        p = f"{rng.choice(dirs)}/{C.file_name(rng, C.pick_ext(rng, kind))}"
        if p in used:
            continue
        used.add(p)
        specs.append((p, kind, size, False))
        remaining -= size

    # Plant tokens: cycle prefixes for an even split; a line each, never in a minified file.
    plantable = [i for i, s in enumerate(specs) if not s[3]]
    plants: dict[int, list[bytes]] = {}
    digests = []
    by_prefix: dict[str, int] = {}
    for i in range(args.tokens):
        prefix = C.PREFIXES[i % len(C.PREFIXES)]
        token = C.posthog_token(rng, prefix)
        # Each big file gets a few; the rest land in random small files.
        idx = rng.choice(range(3)) if rng.random() < 0.03 else rng.choice(plantable)
        plants.setdefault(idx, []).append(C.token_line(rng, token))
        digests.append({"prefix": prefix, "digest": C.token_digest(token), "path": specs[idx][0]})
        by_prefix[prefix] = by_prefix.get(prefix, 0) + 1

    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    total_bytes = 0
    decoys = 0
    for idx, (p, kind, size, minified) in enumerate(specs):
        lines = pools.minified_json(rng, size) if minified else pools.lines(rng, kind, size)
        if not minified and rng.random() < 0.01:
            lines.insert(rng.randrange(len(lines) + 1), C.decoy_line(rng))
            decoys += 1
        for line in plants.get(idx, []):
            lines.insert(rng.randrange(len(lines) + 1), line)
        full = os.path.join(args.out, p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        data = b"\n".join(lines) + b"\n"
        with open(full, "wb") as fh:
            fh.write(data)
        total_bytes += len(data)

    manifest = {
        "seed": args.seed,
        "files": len(specs),
        "bytes": total_bytes,
        "large_files": {p: os.path.getsize(os.path.join(args.out, p)) for p, _, _ in big},
        "tokens_total": args.tokens,
        "tokens_by_prefix": by_prefix,
        "decoys": decoys,
        "tokens": digests,
    }
    with open(args.out.rstrip("/") + ".manifest.json", "w") as fh:
        json.dump(manifest, fh, indent=1)
    print(f"gen_tree: {len(specs)} files, {total_bytes / 2**20:.0f} MiB, {args.tokens} tokens {by_prefix} -> {args.out}")


if __name__ == "__main__":
    main()
