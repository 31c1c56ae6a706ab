#!/usr/bin/env bash
# Installs the benchmark peers and load generators (ripgrep, hyperfine, GNU time, Kingfisher,
# wrk, oha) idempotently
# and prints their versions, so BENCHMARKS.md numbers can be tied to exact builds.
set -euo pipefail

need_apt=()
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
command -v hyperfine >/dev/null 2>&1 || need_apt+=(hyperfine)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if [ "${#need_apt[@]}" -gt 0 ]; then
    # Only refresh the index when something is actually missing: keeps re-runs offline-safe.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# Pinned so results stay comparable; override with KINGFISHER_VERSION=x.y.z (or "latest").
KINGFISHER_VERSION="${KINGFISHER_VERSION:-2.14.0}"
have_kf="$(python3 -c 'import kingfisher; print(kingfisher.__version__)' 2>/dev/null || true)"
if [ "$KINGFISHER_VERSION" = latest ]; then
    [ -n "$have_kf" ] || python3 -m pip install --quiet --disable-pip-version-check kingfisher-bin
elif [ "$have_kf" != "$KINGFISHER_VERSION" ]; then
    python3 -m pip install --quiet --disable-pip-version-check "kingfisher-bin==$KINGFISHER_VERSION"
    hash -r
    # pyenv installs console scripts behind shims that need a rehash to appear on PATH.
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# oha, the open-loop load generator of bench/gateway/run.sh, built from crates.io into the
# git-ignored bench/work/tools (a few minutes, once).
OHA_VERSION="${OHA_VERSION:-1.16.0}"
tools="$(cd "$(dirname "$0")" && pwd)/work/tools"
if [ "$("$tools/bin/oha" --version 2>/dev/null)" != "oha $OHA_VERSION" ]; then
    cargo install --quiet --locked --root "$tools" oha --version "$OHA_VERSION"
fi

echo "rg:         $(rg --version | head -n1)"
echo "hyperfine:  $(hyperfine --version)"
echo "time:       $(/usr/bin/time --version 2>&1 | head -n1)"
# run.sh calls the bundled binary directly: the pip console script is a Python shim that
# would add interpreter start-up time to every Kingfisher measurement.
kf_bin="$(python3 -c 'import kingfisher; print(kingfisher.get_binary_path())')"
echo "kingfisher: $("$kf_bin" --version 2>&1 | head -n1) ($kf_bin)"
echo "git:        $(git --version)"
echo "wrk:        $(wrk -v 2>&1 | head -n1)"
echo "oha:        $("$tools/bin/oha" --version)"
echo "python3:    $(python3 --version)"
