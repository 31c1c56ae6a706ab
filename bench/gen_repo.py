#!/usr/bin/env python3
"""History data set: a `git fast-import` stream of a long, linear, source-like history.

`gen_repo.py stream --seed S --manifest M` writes the stream to stdout (pipe it into
`git fast-import`); `gen_repo.py loose --repo R --manifest M` afterwards adds a few commits
as loose objects through git plumbing, so the scanned repository is "mostly packed" like a
real clone that has seen some local work. gen_repo.sh drives both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import content as C  # noqa: E402

AUTHORS = [
    ("Ada Lovelace", "ada@example.test"),
    ("Grace Hopper", "grace@example.test"),
    ("Alan Turing", "alan@example.test"),
    ("Edsger Dijkstra", "edsger@example.test"),
    ("Barbara Liskov", "barbara@example.test"),
]
START_EPOCH = 1546300800  # 2019-01-01, fixed so commit ids are reproducible


class File:
    __slots__ = ("kind", "lines", "token_lines")

    def __init__(self, kind: str, lines: list[bytes]):
        self.kind = kind
        self.lines = lines
        self.token_lines: list[bytes] = []

    def data(self) -> bytes:
        return b"\n".join(self.lines) + b"\n"


def stream(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    pools = C.LinePools(rng)
    out = sys.stdout.buffer
    files: dict[str, File] = {}
    dirs = C.make_dirs(rng, max(20, args.files // 12))

    def new_path(kind: str) -> str:
        while True:
            p = f"{rng.choice(dirs)}/{C.file_name(rng, C.pick_ext(rng, kind))}"
            if p not in files:
                return p

    for _ in range(args.files):
        kind = C.pick_kind(rng)
        size = C.file_size(rng, args.median_kb * 1024, 1.2, 200, 2 << 20)
        files[new_path(kind)] = File(kind, pools.lines(rng, kind, size))
    # A few large, occasionally rewritten files (fixtures, dumps, lockfiles): they dominate
    # blob bytes in many real repositories and stress per-blob buffering.
    big_paths = []
    for mb in args.big_mb:
        kind = rng.choice(["json", "log", "csv"])
        p = f"fixtures/big/{kind}_dump_{mb}mb.{kind}"
        files[p] = File(kind, pools.lines(rng, kind, mb << 20))
        big_paths.append(p)

    plants = sorted(rng.sample(range(1, args.commits), args.tokens))
    plant_at: dict[int, int] = {}
    for c in plants:
        plant_at[c] = plant_at.get(c, 0) + 1
    removals: dict[int, list[tuple[str, bytes, int]]] = {}
    manifest_tokens = []
    unique_bytes = 0
    blobs_written = 0
    epoch = START_EPOCH
    prefix_cycle = 0

    def emit_modify(path: str, f: File) -> None:
        nonlocal unique_bytes, blobs_written
        data = f.data()
        unique_bytes += len(data)
        blobs_written += 1
        out.write(b"M 100644 inline %s\ndata %d\n" % (path.encode(), len(data)))
        out.write(data)
        out.write(b"\n")

    c = 0
    while c < args.commits or unique_bytes < args.min_bytes:
        name, email = AUTHORS[rng.randrange(len(AUTHORS))]
        epoch += rng.randint(300, 40_000)
        msg = f"{rng.choice(['fix', 'feat', 'chore', 'refactor', 'test', 'docs'])}: {' '.join(rng.choice(C._WORDS) for _ in range(rng.randint(2, 7)))}\n"
        touched: dict[str, File] = {}
        deleted: list[str] = []
        if c == 0:
            touched = dict(files)
        else:
            for _ in range(rng.randint(1, 6)):
                p = rng.choice(list(files)) if rng.random() < 0.5 else rng.choice(_recent(files, rng))
                f = files[p]
                if p in big_paths:
                    continue
                _edit(rng, pools, f)
                touched[p] = f
            if rng.random() < args.big_rate:
                p = rng.choice(big_paths)
                _edit(rng, pools, files[p], appends=True)
                touched[p] = files[p]
            if rng.random() < 0.01:
                kind = C.pick_kind(rng)
                p = new_path(kind)
                files[p] = File(kind, pools.lines(rng, kind, C.file_size(rng, args.median_kb * 1024, 1.2, 200, 2 << 20)))
                touched[p] = files[p]
            if rng.random() < 0.005:
                p = rng.choice(list(files))
                if p not in big_paths and not files[p].token_lines and p not in touched:
                    deleted.append(p)
            for _ in range(plant_at.get(c, 0)):
                prefix = C.PREFIXES[prefix_cycle % len(C.PREFIXES)]
                prefix_cycle += 1
                token = C.posthog_token(rng, prefix)
                line = C.token_line(rng, token)
                p = rng.choice([q for q in rng.sample(list(files), 8) if q not in big_paths] or [next(iter(files))])
                f = files[p]
                f.lines.insert(rng.randrange(len(f.lines) + 1), line)
                f.token_lines.append(line)
                touched[p] = f
                entry = {"prefix": prefix, "digest": C.token_digest(token), "commit_index": c, "path": p, "removed_in": None}
                if rng.random() < 0.5:
                    later = rng.randint(c + 1, c + 1 + args.commits // 4)
                    removals.setdefault(later, []).append((p, line, len(manifest_tokens)))
                manifest_tokens.append(entry)
            for p, line, idx in removals.pop(c, []):
                f = files.get(p)
                if f is not None and line in f.lines:
                    f.lines.remove(line)
                    f.token_lines.remove(line)
                    touched[p] = f
                    manifest_tokens[idx]["removed_in"] = c
            if rng.random() < 0.2:
                # Occasional decoys: placeholder "keys" no scanner should report.
                p = rng.choice(list(touched))
                touched[p].lines.insert(rng.randrange(len(touched[p].lines) + 1), C.decoy_line(rng))
        out.write(b"commit refs/heads/main\n")
        out.write(f"author {name} <{email}> {epoch} +0000\ncommitter {name} <{email}> {epoch} +0000\n".encode())
        mb = msg.encode()
        out.write(b"data %d\n%s" % (len(mb), mb))
        for p in deleted:
            out.write(b"D %s\n" % p.encode())
            del files[p]
        for p, f in touched.items():
            emit_modify(p, f)
        out.write(b"\n")
        c += 1
        if c % 500 == 0:
            print(f"gen_repo: {c} commits, {unique_bytes / 2**20:.0f} MiB blob content", file=sys.stderr)
    # Removals scheduled past the last commit simply never happen (token stays in HEAD).
    out.write(b"done\n")
    out.flush()
    manifest = {
        "seed": args.seed,
        "commits_stream": c,
        "files_at_head": len(files),
        "blob_bytes_written": unique_bytes,
        "blobs_written": blobs_written,
        "tokens": manifest_tokens,
    }
    with open(args.manifest, "w") as fh:
        json.dump(manifest, fh, indent=1)


def _recent(files: dict[str, File], rng: random.Random) -> list[str]:
    # Real edits cluster: a handful of "hot" files see most changes.
    keys = list(files)
    return keys[: max(1, len(keys) // 20)]


def _edit(rng: random.Random, pools: C.LinePools, f: File, appends: bool = False) -> None:
    n = len(f.lines)
    if appends:
        f.lines.extend(pools.lines(rng, f.kind, rng.randint(64 << 10, 1 << 20)))
        return
    if rng.random() < 0.05 and not f.token_lines:
        size = max(200, sum(len(x) + 1 for x in f.lines))
        f.lines = pools.lines(rng, f.kind, int(size * rng.uniform(0.7, 1.3)))
        return
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(n + 1)
        k = rng.random()
        new = pools.lines(rng, f.kind, rng.randint(40, 1200))
        if k < 0.5:
            j = min(len(f.lines), i + rng.randint(1, 6))
            if any(x in f.token_lines for x in f.lines[i:j]):
                continue
            f.lines[i:j] = new
        elif k < 0.85:
            f.lines[i:i] = new
        else:
            j = min(len(f.lines), i + rng.randint(1, 4))
            if j - i < len(f.lines) and not any(x in f.token_lines for x in f.lines[i:j]):
                del f.lines[i:j]
        n = len(f.lines)


def loose(args: argparse.Namespace) -> None:
    """Adds commits through plumbing so their objects stay loose (after the repack)."""
    rng = random.Random(args.seed + 1)
    with open(args.manifest) as fh:
        manifest = json.load(fh)
    env = dict(os.environ, GIT_INDEX_FILE=os.path.join(args.repo, ".git", "bench-loose-index"),
               GIT_AUTHOR_NAME="Ada Lovelace", GIT_AUTHOR_EMAIL="ada@example.test",
               GIT_COMMITTER_NAME="Ada Lovelace", GIT_COMMITTER_EMAIL="ada@example.test")

    def git(*a: str, data: bytes | None = None) -> str:
        return subprocess.run(["git", "-C", args.repo, *a], input=data, env=env, check=True,
                              stdout=subprocess.PIPE).stdout.decode().strip()

    pools = C.LinePools(rng, per_kind=2000)
    git("read-tree", "HEAD")
    base = int(git("log", "-1", "--format=%ct"))
    for i in range(args.loose_commits):
        lines = pools.lines(rng, "py", rng.randint(2000, 20000))
        path = f"local/wip_{i}.py"
        if i == 0:
            token = C.posthog_token(rng, "phx_")
            lines.insert(rng.randrange(len(lines) + 1), C.token_line(rng, token))
            manifest["tokens"].append({"prefix": "phx_", "digest": C.token_digest(token),
                                       "commit_index": manifest["commits_stream"] + i, "path": path,
                                       "removed_in": None, "loose": True})
        blob = git("hash-object", "-w", "--stdin", data=b"\n".join(lines) + b"\n")
        git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = git("write-tree")
        date = f"{base + 3600 * (i + 1)} +0000"
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        commit = git("commit-tree", tree, "-p", "HEAD", "-m", f"wip: local change {i}")
        git("update-ref", "refs/heads/main", commit)
    os.remove(env["GIT_INDEX_FILE"])
    manifest["loose_commits"] = args.loose_commits
    with open(args.manifest, "w") as fh:
        json.dump(manifest, fh, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream")
    s.add_argument("--seed", type=int, default=17)
    s.add_argument("--commits", type=int, default=6000)
    s.add_argument("--files", type=int, default=3000)
    s.add_argument("--median-kb", type=float, default=20)
    s.add_argument("--big-mb", type=int, nargs="*", default=[8, 12, 16, 20])
    s.add_argument("--big-rate", type=float, default=0.003)
    s.add_argument("--tokens", type=int, default=60)
    s.add_argument("--min-bytes", type=int, default=int(1.1 * 2**30))
    s.add_argument("--manifest", required=True)
    lo = sub.add_parser("loose")
    lo.add_argument("--repo", required=True)
    lo.add_argument("--seed", type=int, default=17)
    lo.add_argument("--loose-commits", type=int, default=3)
    lo.add_argument("--manifest", required=True)
    args = ap.parse_args()
    stream(args) if args.cmd == "stream" else loose(args)


if __name__ == "__main__":
    main()
