"""Shared, seeded generators for the benchmark data sets (tree, history, staged).

Everything is drawn from one `random.Random(seed)`, so a given seed and Python version give
byte-identical data. PostHog tokens are made at run time with PostHog's own algorithm
(`posthog/models/utils.py`): base57 of `randbits(n*8) | 1 << (n*8-1)`, most significant digit
first; no key-shaped literal lives in these scripts.
"""

from __future__ import annotations

import hashlib
import random

BASE57 = "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
# Random bytes PostHog draws today: 35 for personal/secret keys, 32 for the rest.
PREFIX_BYTES = {"phc_": 32, "phx_": 35, "phs_": 35, "pha_": 32, "phr_": 32}
PREFIXES = list(PREFIX_BYTES)


def int_to_base57(n: int) -> str:
    digits = []
    while n:
        n, r = divmod(n, 57)
        digits.append(BASE57[r])
    return "".join(reversed(digits)) or BASE57[0]


def posthog_token(rng: random.Random, prefix: str) -> str:
    bits = PREFIX_BYTES[prefix] * 8
    return prefix + int_to_base57(rng.getrandbits(bits) | (1 << (bits - 1)))


def token_digest(token: str) -> str:
    # Manifests keep digests, not tokens, so result checks never need the raw values on disk.
    return hashlib.sha256(token.encode()).hexdigest()


# Contexts a token is planted in. Each ends the token with a quote, space or newline, which
# is what real config/code looks like (and what Kingfisher's rules require after a match).
TOKEN_CONTEXTS = [
    'POSTHOG_API_KEY = "{t}"',
    "    posthog.api_key = '{t}'",
    '  "posthogKey": "{t}",',
    "export POSTHOG_PERSONAL_API_KEY={t}",
    "const client = new PostHog('{t}', {{ host: 'https://us.i.posthog.com' }});",
    "posthog_token: {t}",
    "curl -H 'Authorization: Bearer {t}' https://us.posthog.com/api/projects/",
    "2024-03-01T10:22:13Z INFO init analytics client key={t} region=us",
]


def token_line(rng: random.Random, token: str) -> bytes:
    return rng.choice(TOKEN_CONTEXTS).format(t=token).encode()


_WORDS = (
    "user account event project team session request response handler config value "
    "data item list map key index count total result error status client server cache "
    "query filter token payload message batch record stream buffer offset length name "
    "path file line column scope context options params headers body timeout retry "
    "graph phase photo phone alpha beta gamma delta update insert delete select create "
    "person cohort insight dashboard feature flag experiment survey action element"
).split()
_KEYWORDS_PY = ["def", "return", "if", "elif", "else:", "for", "in", "import", "from", "class", "with", "yield", "await"]
_KEYWORDS_RS = ["fn", "let", "mut", "pub", "impl", "match", "struct", "enum", "use", "return", "if", "else"]
_LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
_HEX = "0123456789abcdef"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _ident(rng: random.Random) -> str:
    n = rng.randint(1, 3)
    return "_".join(rng.choice(_WORDS) for _ in range(n))


def _camel(rng: random.Random) -> str:
    parts = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def _hexstr(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HEX) for _ in range(n))


def _code_line_py(rng: random.Random) -> str:
    ind = "    " * rng.randint(0, 3)
    k = rng.random()
    if k < 0.25:
        return f"{ind}{_ident(rng)} = {_ident(rng)}({_ident(rng)}, {rng.randint(0, 9999)})"
    if k < 0.4:
        return f"{ind}{rng.choice(_KEYWORDS_PY)} {_ident(rng)}.{_ident(rng)}({_ident(rng)}={_ident(rng)})"
    if k < 0.5:
        return f"{ind}# {' '.join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))}"
    if k < 0.6:
        return f'{ind}logger.info("{" ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 8)))}: %s", {_ident(rng)})'
    if k < 0.7:
        return f"{ind}def {_ident(rng)}(self, {_ident(rng)}, {_ident(rng)}=None):"
    if k < 0.8:
        return f'{ind}{_ident(rng)}["{_ident(rng)}"] = "{_hexstr(rng, rng.choice([8, 16, 32, 40]))}"'
    if k < 0.9:
        return ""
    return f"{ind}return {_ident(rng)} {rng.choice(['+', '-', '*', 'and', 'or'])} {_ident(rng)}"


def _code_line_rs(rng: random.Random) -> str:
    ind = "    " * rng.randint(0, 3)
    k = rng.random()
    if k < 0.3:
        return f"{ind}let {rng.choice(['', 'mut '])}{_ident(rng)} = {_ident(rng)}::{_ident(rng)}(&{_ident(rng)})?;"
    if k < 0.45:
        return f"{ind}{rng.choice(_KEYWORDS_RS)} {_camel(rng)}<'a> {{"
    if k < 0.55:
        return f"{ind}/// {' '.join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))}"
    if k < 0.65:
        return f"{ind}}}"
    if k < 0.75:
        return f'{ind}const {_ident(rng).upper()}: &str = "{_hexstr(rng, rng.choice([16, 32, 64]))}";'
    if k < 0.85:
        return ""
    return f"{ind}self.{_ident(rng)}.push({_ident(rng)}.len() + {rng.randint(0, 512)});"


def _code_line_ts(rng: random.Random) -> str:
    ind = "  " * rng.randint(0, 4)
    k = rng.random()
    if k < 0.3:
        return f"{ind}const {_camel(rng)} = await {_camel(rng)}.{_camel(rng)}({_camel(rng)}, {{ {_camel(rng)}: {rng.randint(0, 99)} }});"
    if k < 0.45:
        return f"{ind}export function {_camel(rng)}({_camel(rng)}: {_camel(rng).capitalize()}): void {{"
    if k < 0.55:
        return f"{ind}// {' '.join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))}"
    if k < 0.65:
        return f"{ind}}}"
    if k < 0.75:
        return f"{ind}import {{ {_camel(rng)} }} from '../{_ident(rng)}/{_camel(rng)}';"
    if k < 0.85:
        return ""
    return f"{ind}if ({_camel(rng)}.{_camel(rng)} === '{_ident(rng)}') return {_camel(rng)};"


def _json_line(rng: random.Random) -> str:
    ind = "  " * rng.randint(1, 4)
    k = rng.random()
    if k < 0.3:
        return f'{ind}"{_camel(rng)}": "{_ident(rng)}",'
    if k < 0.5:
        return f'{ind}"{_camel(rng)}": {rng.randint(0, 10**9)},'
    if k < 0.6:
        return f'{ind}"id": "{_hexstr(rng, 8)}-{_hexstr(rng, 4)}-{_hexstr(rng, 4)}-{_hexstr(rng, 4)}-{_hexstr(rng, 12)}",'
    if k < 0.7:
        return f'{ind}"{_camel(rng)}": {{'
    if k < 0.8:
        return f"{ind}}},"
    if k < 0.9:
        return f'{ind}"{_camel(rng)}": [{", ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(1, 12)))}],'
    return f'{ind}"{_camel(rng)}": {rng.choice(["true", "false", "null"])},'


def _log_line(rng: random.Random) -> str:
    ts = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return (
        f"{ts} {rng.choice(_LEVELS)} [{_ident(rng)}] req={_hexstr(rng, 16)} ip={ip} "
        f"path=/api/{_ident(rng)}/{rng.randint(1, 99999)}/ status={rng.choice([200, 200, 201, 204, 301, 400, 404, 500])} "
        f"dur_ms={rng.randint(1, 4000)} {' '.join(rng.choice(_WORDS) for _ in range(rng.randint(0, 8)))}"
    )


def _csv_line(rng: random.Random) -> str:
    return ",".join(
        [str(rng.randint(1, 10**7)), _ident(rng), _hexstr(rng, 32), str(rng.random())[:8],
         "".join(rng.choice(_ALNUM) for _ in range(rng.randint(8, 24))), rng.choice(_WORDS)]
    )


def _md_line(rng: random.Random) -> str:
    k = rng.random()
    if k < 0.1:
        return "#" * rng.randint(1, 3) + " " + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 6))).capitalize()
    if k < 0.2:
        return ""
    if k < 0.3:
        return f"- `{_ident(rng)}`: {' '.join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14)))}"
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 22))).capitalize() + "."


# kind -> (line generator, extensions)
KINDS = {
    "py": (_code_line_py, [".py"]),
    "rs": (_code_line_rs, [".rs"]),
    "ts": (_code_line_ts, [".ts", ".tsx", ".js"]),
    "json": (_json_line, [".json"]),
    "log": (_log_line, [".log"]),
    "csv": (_csv_line, [".csv"]),
    "md": (_md_line, [".md", ".txt"]),
}
KIND_WEIGHTS = {"py": 24, "rs": 14, "ts": 24, "json": 14, "log": 10, "csv": 4, "md": 10}


# Lines that name PostHog without holding a key, per kind: real SDK code and the apps that use
# it name PostHog on 3-6 % of their lines (PostHog's Python SDK: 3.4 %), which costs a scanner
# whose context rules look at every mention. No value here is key-shaped.
POSTHOG_MENTIONS = {
    "py": ["import posthog", "from posthog import Posthog",
           "    posthog.capture(distinct_id, \"{w}_{w}\", properties={{\"{w}\": {n}}})",
           "posthog.project_api_key = os.environ[\"POSTHOG_API_KEY\"]",
           "posthog_client = Posthog(settings.POSTHOG_KEY, host=settings.POSTHOG_HOST)",
           "    # send the {w} to PostHog once the {w} is flushed", "    posthog.flush()"],
    "rs": ["    let posthog = PostHogClient::new(config.posthog_key.clone());",
           "    posthog.capture(\"{w}_{w}\", &{w}).await?;", "use posthog_rs::Event;"],
    "ts": ["import posthog from 'posthog-js'", "  posthog.capture('{w}_{w}', {{ {w}: {n} }})",
           "  posthog.identify({w}.id)", "const posthogKey = process.env.NEXT_PUBLIC_POSTHOG_KEY",
           "  posthog.init(posthogKey, {{ api_host: 'https://us.i.posthog.com' }})"],
    "json": ['    "posthog-js": "^1.{n}.0",', '  "posthogHost": "https://us.i.posthog.com",',
             '  "posthog": {{ "enabled": true, "{w}": {n} }},'],
    "log": ["2024-03-01T10:22:13Z INFO posthog flush ok batch={n} {w}={w}",
            "2024-03-01T10:22:14Z DEBUG PostHog request {w} status=200 dur_ms={n}"],
    "csv": ["{n},posthog,{w},{n}"],
    "md": ["Send {w} events to PostHog with `posthog.capture()`.", "## PostHog {w}"],
}
POSTHOG_LINE_SHARE = 0.035


def posthog_line(rng: random.Random, kind: str) -> str:
    return rng.choice(POSTHOG_MENTIONS[kind]).format(w=rng.choice(_WORDS), n=rng.randint(0, 9999))


class LinePools:
    """Pre-generated line pools per kind; files are assembled by sampling them, which is far
    faster than generating every line and still gives varied, compressible, code-like text.
    A share of each pool names PostHog, as real code that uses it does."""

    def __init__(self, rng: random.Random, per_kind: int = 60_000):
        self.pools = {
            k: [(posthog_line(rng, k) if rng.random() < POSTHOG_LINE_SHARE else gen(rng)).encode()
                for _ in range(per_kind)]
            for k, (gen, _) in KINDS.items()
        }

    def lines(self, rng: random.Random, kind: str, approx_bytes: int) -> list[bytes]:
        pool = self.pools[kind]
        avg = max(8, sum(len(x) + 1 for x in pool[:256]) // 256)
        n = max(1, approx_bytes // avg)
        return rng.choices(pool, k=n)

    def minified_json(self, rng: random.Random, approx_bytes: int) -> list[bytes]:
        # One very long line: scanners that are line-oriented pay for it.
        parts = [x.strip().rstrip(b",") for x in self.lines(rng, "json", approx_bytes) if b'":' in x]
        return [b"{" + b",".join(parts) + b"}"]


def pick_kind(rng: random.Random) -> str:
    return rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]


def pick_ext(rng: random.Random, kind: str) -> str:
    return rng.choice(KINDS[kind][1])


def file_size(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, rng.lognormvariate(0, sigma) * median)))


_DIR_WORDS = (
    "src lib api core utils models views services handlers tests fixtures components hooks "
    "pages server client plugins migrations scripts config docs internal pkg cmd ingestion "
    "frontend backend common shared queries storage workers tasks schemas"
).split()


def make_dirs(rng: random.Random, count: int, max_depth: int = 6) -> list[str]:
    dirs = [""]
    while len(dirs) < count:
        parent = rng.choice(dirs)
        if parent.count("/") >= max_depth - 1:
            continue
        name = rng.choice(_DIR_WORDS) + (str(rng.randint(0, 99)) if rng.random() < 0.5 else "")
        d = f"{parent}/{name}" if parent else name
        if d not in dirs:
            dirs.append(d)
    return dirs[1:]


def file_name(rng: random.Random, ext: str) -> str:
    return _ident(rng) + (str(rng.randint(0, 999)) if rng.random() < 0.3 else "") + ext


def decoy_line(rng: random.Random) -> bytes:
    # Placeholders and short lookalikes a precise scanner must not report (none match rg's
    # 40-49 char pattern either, so all tools agree they are not tokens).
    return rng.choice([
        b'POSTHOG_API_KEY = "phc_your_project_api_key"',
        b"# set phx_<personal-key> in the environment",
        b'"posthogKey": "phc_test",',
        b"token = os.environ['POSTHOG_PERSONAL_API_KEY']  # phx_...",
    ])
