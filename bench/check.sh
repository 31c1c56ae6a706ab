#!/usr/bin/env bash
# Target of `hogguard check --offline` on a repository of 10,000 files: under 1 second.
# Builds the repository with gen_staged.sh (NFILES=10000), adds a hogguard.toml with three
# environments and their env files, then times the check with hyperfine.
# Usage: bash bench/check.sh   (needs target/release/hogguard: cargo build --release)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/work/check"
hogguard="${HOGGUARD:-$here/../target/release/hogguard}"
[ -x "$hogguard" ] || { echo "build first: cargo build --release" >&2; exit 2; }

if [ ! -d "$out/repo" ]; then
    NFILES=10000 SEED=31 bash "$here/gen_staged.sh" "$out" >/dev/null
    cd "$out/repo"
    git commit -q -m "the staged change" --author "Ada Lovelace <ada@example.test>"
    printf '.env\n.env.*\n.hogguard/\n' > .gitignore
    secret() { "$hogguard" webhook secret; }
    for env in development staging production; do
        printf 'POSTHOG_WEBHOOK_SECRET=%s\n' "$(secret)" > ".env.$env"
        chmod 600 ".env.$env"
    done
    cat > hogguard.toml <<'TOML'
[environments.development]
env_file = ".env.development"
[environments.development.credentials]
webhook_secret = "POSTHOG_WEBHOOK_SECRET"
[environments.staging]
env_file = ".env.staging"
[environments.staging.credentials]
webhook_secret = "POSTHOG_WEBHOOK_SECRET"
[environments.production]
env_file = ".env.production"
[environments.production.credentials]
webhook_secret = "POSTHOG_WEBHOOK_SECRET"
[audit]
path = ".hogguard/audit.jsonl"
TOML
    git add .gitignore hogguard.toml
    git commit -q -m "hogguard" --author "Ada Lovelace <ada@example.test>"
fi
cd "$out/repo"
echo "files tracked: $(git ls-files | wc -l)"
"$hogguard" check --offline || true
hyperfine -N -i --warmup 2 --runs 20 --export-json "$out/check.json" "$hogguard check --offline"
