#!/usr/bin/env python3
"""Staged data set helper: `stream` writes a one-commit fast-import stream of N small files;
`stage` then changes one of them in the work tree (adding one phx_ token) for
gen_staged.sh to `git add`. Deterministic from the seed."""

from __future__ import annotations

import json
import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import content as C  # noqa: E402


def paths(rng: random.Random, n: int) -> list[str]:
    dirs = C.make_dirs(rng, max(50, n // 20), max_depth=6)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        kind = C.pick_kind(rng)
        p = f"{rng.choice(dirs)}/{C.file_name(rng, C.pick_ext(rng, kind))}"
        if p not in seen:
            seen.add(p)
            out.append((p, kind))
    return out


def stream(seed: int, n: int) -> None:
    rng = random.Random(seed)
    files = paths(rng, n)  # first, so `stage` can re-derive the same paths from the seed
    pools = C.LinePools(rng, per_kind=20_000)
    out = sys.stdout.buffer
    out.write(b"commit refs/heads/main\nauthor Ada Lovelace <ada@example.test> 1700000000 +0000\n"
              b"committer Ada Lovelace <ada@example.test> 1700000000 +0000\ndata 15\ninitial import\n")
    total = 0
    for p, kind in files:
        data = b"\n".join(pools.lines(rng, kind, C.file_size(rng, 1500, 0.8, 40, 64 << 10))) + b"\n"
        total += len(data)
        out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (p.encode(), len(data), data))
    out.write(b"\ndone\n")
    print(f"gen_staged: {n} files, {total / 2**20:.0f} MiB", file=sys.stderr)


def stage(seed: int, n: int, repo: str, manifest: str) -> None:
    rng = random.Random(seed)
    files = paths(rng, n)
    rng2 = random.Random(seed + 1)
    p, _ = files[rng2.randrange(len(files))]
    # A personal key: a real secret (phc_ project keys are public, so a scanner may rightly
    # pass them), and one that Kingfisher's PostHog rules also cover.
    token = C.posthog_token(rng2, "phx_")
    full = os.path.join(repo, p)
    with open(full, "rb") as fh:
        lines = fh.read().split(b"\n")
    lines.insert(rng2.randrange(len(lines)), C.token_line(rng2, token))
    with open(full, "wb") as fh:
        fh.write(b"\n".join(lines))
    with open(manifest, "w") as fh:
        json.dump({"seed": seed, "files": n, "staged_path": p, "tokens_total": 1,
                   "tokens_by_prefix": {"phx_": 1}, "tokens": [{"prefix": "phx_", "digest": C.token_digest(token), "path": p}]},
                  fh, indent=1)
    print(p)


if __name__ == "__main__":
    cmd, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    stream(seed, n) if cmd == "stream" else stage(seed, n, sys.argv[4], sys.argv[5])
