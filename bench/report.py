#!/usr/bin/env python3
"""Summarises one bench/run.sh mode: hyperfine times, peak RSS, findings checked against the
data set's manifest, and the ratios the project's targets are stated in.

Usage: report.py tree|history|staged|real-tree|real-history RESULTS_DIR MANIFEST
The real-* modes run on a real repository with no planted tokens: findings are counted and
compared between tools, not checked against a manifest.
Prints a markdown summary and writes it to RESULTS_DIR/<mode>-summary.md (+ .json).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys

TOKEN = re.compile(r"ph[cxsar]_[A-Za-z0-9]{40,49}")
KF_PREFIXES = ("phc_", "phx_")  # the only prefixes Kingfisher's PostHog rules cover


def digest(t: str) -> str:
    return hashlib.sha256(t.encode()).hexdigest()


def json_docs(text: str) -> list:
    """Kingfisher prints a report envelope and a summary as consecutive JSON documents."""
    dec, i, docs = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)


def strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


def check(mode: str, tool: str, out: str, manifest: dict, rc: int | None) -> dict:
    """What a tool found versus what was planted (unique tokens, by SHA-256)."""
    planted = {t["digest"] for t in manifest["tokens"]}
    res: dict = {"planted": len(planted)}
    try:
        if tool == "git-cat-file":
            res.update(found="-", expected="-", unit="(inflates every object; finds nothing)", ok=None)
        elif mode.startswith("real-"):
            res.update(real_findings(tool, out), ok=None)
        elif tool == "rg":
            lines = sum(int(l.rsplit(":", 1)[1]) for l in out.splitlines() if ":" in l)
            res.update(found=lines, expected=manifest["tokens_total"], unit="matching lines")
            res["ok"] = lines == manifest["tokens_total"]
        elif tool == "git-diff-cached":
            found = {digest(t) for t in TOKEN.findall(out)}
            res.update(found=len(found & planted), expected=len(planted), unit="tokens in diff")
            res["ok"] = found >= planted
        elif tool.startswith("kingfisher"):
            docs = json_docs(out)
            findings = docs[0].get("findings", []) if docs else []
            found = {digest(m) for f in findings for m in TOKEN.findall(f.get("finding", {}).get("snippet", ""))}
            expected = {t["digest"] for t in manifest["tokens"] if t["prefix"] in KF_PREFIXES}
            res.update(findings=len(findings), found=len(found & planted), expected=len(expected),
                       unit="unique planted tokens (its rules cover phc_/phx_ only)")
            res["ok"] = found >= expected
            if docs:
                s = docs[0].get("metadata", {}).get("summary", {})
                res.update(blobs_scanned=s.get("blobs_scanned"), bytes_scanned=s.get("bytes_scanned"))
        elif tool == "hogguard":
            try:
                doc = json.loads(out)
            except ValueError:
                # Text mode (the staged command has no --format json): values are masked,
                # so the exit code (1 = secrets found) is the evidence.
                found = {digest(m) for m in TOKEN.findall(out)}
                if found:
                    res.update(found=len(found & planted), expected=len(planted), unit="unique planted tokens (text output)")
                    res["ok"] = found >= planted
                else:
                    res.update(found=f"exit {rc}", expected="exit 1", unit="(text output, values redacted)")
                    res["ok"] = rc == 1
                return res
            findings = doc.get("findings", [])
            summary = doc.get("summary") or {}
            res.update(findings=len(findings), summary=summary)
            # `fingerprint` is the hex SHA-256 of the secret, the same digest the manifests
            # hold, so the check is exact although the report only shows masked values.
            found = {f["fingerprint"] for f in findings if isinstance(f.get("fingerprint"), str)}
            found |= {digest(m) for f in findings for s in strings(f) for m in TOKEN.findall(s)}
            if found:
                res.update(found=len(found & planted), expected=len(planted), unit="unique planted tokens",
                           other_secrets=len(found - planted))
                res["ok"] = found >= planted
            else:
                res.update(found=len(findings), expected=len(planted), unit="findings (no fingerprints)")
                res["ok"] = len(findings) >= len(planted)
            if mode == "tree" and summary.get("bytes") not in (None, manifest["bytes"]):
                res["note"] = f"scanned {summary.get('bytes')} bytes of {manifest['bytes']} (binary_skipped={summary.get('binary_skipped')})"
    except Exception as e:  # a malformed output is a result worth reporting, not a crash
        res.update(error=f"{type(e).__name__}: {e}", ok=False)
    return res


def real_findings(tool: str, out: str) -> dict:
    """What a tool reported on real code: counts by kind, since nothing was planted."""
    if tool == "rg":
        lines = sum(int(l.rsplit(":", 1)[1]) for l in out.splitlines() if ":" in l)
        return {"found": lines, "expected": "-", "unit": "matching lines"}
    if tool.startswith("kingfisher"):
        docs = json_docs(out)
        findings = docs[0].get("findings", []) if docs else []
        unique = {digest(m) for f in findings for m in TOKEN.findall(f.get("finding", {}).get("snippet", ""))}
        return {"found": len(findings), "expected": "-", "unit": f"findings, {len(unique)} unique phc_/phx_ tokens"}
    if tool == "hogguard":
        doc = json.loads(out)
        findings = doc.get("findings", [])
        secrets = {f["fingerprint"] for f in findings if f.get("secret")}
        public = {f["fingerprint"] for f in findings if not f.get("secret")}
        return {"found": len(findings), "expected": "-",
                "unit": f"findings: {len(secrets)} unique secrets, {len(public)} unique public project keys"}
    return {"found": "?", "expected": "-", "unit": ""}


def rss_kb(path: str) -> int | None:
    try:
        for line in open(path):
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1])
    except FileNotFoundError:
        pass
    return None


def fmt_s(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def main() -> None:
    mode, rdir, mpath = sys.argv[1], sys.argv[2], sys.argv[3]
    manifest = json.load(open(mpath))
    hf = json.load(open(os.path.join(rdir, f"{mode}.json")))["results"]
    rows = {}
    for r in hf:
        tool = r["command"]
        base = os.path.join(rdir, f"{mode}-{tool}")
        out = open(base + ".out", errors="replace").read() if os.path.exists(base + ".out") else ""
        rc = int(open(base + ".rc").read()) if os.path.exists(base + ".rc") else None
        rows[tool] = {"mean": r["mean"], "cpu": (r.get("user") or 0.0) + (r.get("system") or 0.0), "stddev": r["stddev"] or 0.0, "min": r["min"], "max": r["max"],
                      "runs": len(r["times"]), "rc": rc, "rss_kb": rss_kb(base + ".time"),
                      "check": check(mode, tool, out, manifest, rc)}
    lines = [f"### {mode}: results", "", "| tool | mean ± σ | min … max | CPU (user+sys) | runs | peak RSS | exit | findings check |",
             "|---|---|---|---|---|---|---|---|"]
    for tool, r in rows.items():
        c = r["check"]
        verdict = {True: "ok", False: "MISMATCH", None: "n/a"}[c.get("ok")]
        found = f"{c.get('found')}/{c.get('expected')} {c.get('unit', '')}" if "error" not in c else c["error"]
        if c.get("other_secrets"):
            found += f", +{c['other_secrets']} not planted"
        if c.get("note"):
            found += f" ({c['note']})"
        rss = f"{r['rss_kb'] / 1024:.0f} MiB" if r["rss_kb"] else "?"
        lines.append(f"| {tool} | {fmt_s(r['mean'])} ± {fmt_s(r['stddev'])} | {fmt_s(r['min'])} … {fmt_s(r['max'])} "
                     f"| {fmt_s(r['cpu'])} | {r['runs']} | {rss} | {r['rc']} | {verdict}: {found} |")
    lines.append("")
    hg = rows.get("hogguard")
    verdicts = []
    if mode in ("tree", "real-tree"):
        mb = manifest["bytes"] / 1e6
        data = f"Data: {manifest['files']} files, {manifest['bytes'] / 2**20:.0f} MiB, {manifest['tokens_total']} tokens planted"
        if "posthog_line_share" in manifest:
            data += f", PostHog named on {manifest['posthog_line_share'] * 100:.1f} % of {manifest['lines']} lines"
        lines.append(data + ".")
        for tool, r in rows.items():
            lines.append(f"- {tool}: {mb / r['mean']:.0f} MB/s")
        if hg:
            ratio_rg = hg["mean"] / rows["rg"]["mean"]
            cpu_rg = hg["cpu"] / rows["rg"]["cpu"]
            speed_kf = rows["kingfisher"]["mean"] / hg["mean"]
            limit = 1.2 if mode == "real-tree" else 2
            verdicts += [f"hogguard / rg = {ratio_rg:.2f}× wall, {cpu_rg:.2f}× CPU (target ≤ {limit}× wall): {'PASS' if ratio_rg <= limit else 'FAIL'}",
                         f"Kingfisher / hogguard = {speed_kf:.2f}× (target > 1×, hogguard faster): {'PASS' if speed_kf > 1 else 'FAIL'}"]
    elif mode in ("history", "real-history"):
        bb, nb = manifest["unique_blob_bytes"], manifest["unique_blobs"]
        lines.append(f"Data: {manifest['commits']} commits, {nb} unique blobs, {bb / 2**30:.2f} GiB unique blob content, "
                     f"pack {manifest['pack_bytes'] / 2**20:.0f} MiB + {manifest['loose_objects']} loose objects, "
                     f"{manifest['tokens_total']} tokens planted ({manifest['tokens_removed_later']} later removed).")
        for tool, r in rows.items():
            lines.append(f"- {tool}: {bb / r['mean'] / 1e6:.0f} MB/s, {nb / r['mean']:.0f} blobs/s (unique blob content over mean wall time)")
        if hg:
            speed = rows["kingfisher"]["mean"] / hg["mean"]
            rss_mb = (hg["rss_kb"] or 0) * 1024 / 1e6
            verdicts += [f"Kingfisher / hogguard = {speed:.2f}× (target ≥ 5×): {'PASS' if speed >= 5 else 'FAIL'}",
                         f"hogguard peak RSS = {rss_mb:.0f} MB (target ≤ 200 MB): {'PASS' if hg['rss_kb'] and rss_mb <= 200 else 'FAIL'}"]
            floor = rows.get("git-cat-file")
            if floor:
                cpu = hg["cpu"] / floor["cpu"]
                verdicts += [f"hogguard / git cat-file = {cpu:.2f}× CPU, {hg['mean'] / floor['mean']:.2f}× wall; "
                             f"hogguard uses {hg['cpu'] / hg['mean']:.2f} cores (target ≤ 1.3× the inflate CPU): "
                             f"{'PASS' if cpu <= 1.3 else 'FAIL'}"]
    elif mode == "staged":
        lines.append(f"Data: {manifest['files']} tracked files, one staged change ({manifest['staged_path']}) with 1 token.")
        if hg:
            verdicts += [f"hogguard --staged = {fmt_s(hg['mean'])} (target < 100 ms): {'PASS' if hg['mean'] < 0.1 else 'FAIL'}",
                         f"Kingfisher / hogguard = {rows['kingfisher']['mean'] / hg['mean']:.1f}×"]
    if not hg:
        verdicts.append("hogguard: SKIPPED (binary missing or lacks the flags) — targets pending")
    lines += [""] + [f"- **{v}**" for v in verdicts]
    text = "\n".join(lines) + "\n"
    print(text)
    open(os.path.join(rdir, f"{mode}-summary.md"), "w").write(text)
    json.dump({"rows": rows, "verdicts": verdicts}, open(os.path.join(rdir, f"{mode}-summary.json"), "w"), indent=1, default=str)


if __name__ == "__main__":
    main()
