//! Command-line arguments, as plain data. Settings are resolved from them in the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps PostHog credentials safe: finds leaked keys, checks projects against the PostHog
/// security checklist, rotates keys without downtime, keeps a tamper-evident audit trail and
/// verifies webhook signatures.
#[derive(Debug, Parser)]
#[command(
    name = "hogguard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 clean, 1 findings or failed verification, 2 usage or runtime error, 130 interrupted."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Configuration file [default: ./hogguard.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// When to colour output; NO_COLOR in the environment turns `auto` off
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub(crate) color: ColorChoice,
    /// Print only findings and errors: no summary, no progress, no informational findings
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Find PostHog secrets in files, staged changes or a repository's whole history
    #[command(long_about = SCAN_ABOUT, after_long_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),
    /// Set the project up: a commented hogguard.toml, .gitignore lines, a pre-commit hook
    Init(InitArgs),
    /// Check the project against the PostHog security checklist
    #[command(long_about = CHECK_ABOUT)]
    Check(CheckArgs),
    /// Rotate a credential without downtime, crash-safe (--resume after any interruption)
    #[command(long_about = ROTATE_ABOUT)]
    Rotate(RotateArgs),
    /// List the configured credentials per environment: live or not, scopes, age, policy verdicts
    #[command(long_about = KEYS_ABOUT)]
    Keys(KeysArgs),
    /// The tamper-evident audit log: verify it, query it, add to it, ship it to PostHog
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Make webhook signing secrets, sign or verify deliveries, run a verifying gateway
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Run a proxy in front of PostHog's API: each service its own token and scopes, the real
    /// key injected, every call audited (`proxy token` makes a client token)
    #[command(long_about = PROXY_ABOUT, args_conflicts_with_subcommands = true)]
    Proxy(ProxyArgs),
    /// The scopes each key and proxy client holds, uses (from the audit log) and could drop
    /// (`scopes import SCHEMA.json` refreshes the proxy's scope table)
    #[command(long_about = SCOPES_ABOUT, args_conflicts_with_subcommands = true)]
    Scopes(ScopesArgs),
    /// Print a shell completion script
    #[command(after_long_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `hogguard man > ~/.local/share/man/man1/hogguard.1`
    Man,
}

const COMPLETIONS_EXAMPLES: &str = "\
Install:
  bash:        hogguard completions bash > ~/.local/share/bash-completion/completions/hogguard
  zsh:         hogguard completions zsh > ~/.zfunc/_hogguard   (with fpath+=~/.zfunc before compinit)
  fish:        hogguard completions fish > ~/.config/fish/completions/hogguard.fish
  powershell:  hogguard completions powershell >> $PROFILE
  elvish:      hogguard completions elvish >> ~/.config/elvish/rc.elv";

/// Arguments of `hogguard completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

const CHECK_ABOUT: &str = "\
Check the project against the PostHog security checklist.

Items: secrets-in-env (no PostHog secret in tracked files; with --deep, in the whole history), \
env-files-ignored (.env files ignored by git's own rules, untracked, private), \
keys-per-environment (no value shared between environments), least-privilege and key-age \
(asked of PostHog, like `hogguard keys`), webhook-signatures (a strong, unshared secret per \
environment), audit-log (configured, present, and its chain verifies). Each is pass, warn, fail \
or skip, with the reason and the fix. Exit 1 when any item fails.";

/// Arguments of `hogguard init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Install a git pre-commit hook that runs `hogguard scan --staged` (an existing hook is
    /// kept and chained)
    #[arg(long)]
    pub(crate) pre_commit: bool,
    /// Replace an existing hogguard.toml
    #[arg(long)]
    pub(crate) force: bool,
}

/// Arguments of `hogguard check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub(crate) env: Option<String>,
    /// Do not ask PostHog: the items that need it are skipped, never passed
    #[arg(long)]
    pub(crate) offline: bool,
    /// Scan the repository's whole history for secrets, not only tracked files
    #[arg(long)]
    pub(crate) deep: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub(crate) format: CheckFormat,
}

/// Formats of `hogguard check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckFormat {
    /// A table for people
    Human,
    /// `{"version":1,"items":[{"id","status","reason","fix","details"}]}`
    Json,
    /// A Markdown table, for a pull-request comment
    Markdown,
}

const ROTATE_ABOUT: &str = "\
Rotate a credential without downtime, crash-safe.

Every step is journaled under .hogguard/rotations/ before it touches PostHog or the store, so \
after any interruption `--resume` continues from PostHog's real state, and `--abort` returns to \
the old key where that is still possible. Project secret keys (phs_) are automatic: a new key \
is created, checked, stored, the environment's verify_command is run, and only then is the old \
key deleted. Personal keys (phx_) are assisted: hogguard says which dashboard page to open and \
which scopes to give, reads the new key without echo (or --stdin), checks it, stores it, runs \
verify_command, then waits until the old key is dead (or kills it with --revoke-old). Webhook \
secrets get a new primary while the old one stays accepted for --grace, then --finish. Public \
phc_ keys get guidance. Exit 0 when done (or not due), 1 when a check failed (the old key is \
kept), 2 on errors or when another rotation of the credential is running.

Examples:
  hogguard rotate production project_secret_api_key --dry-run
  hogguard rotate production project_secret_api_key --if-older-than 30d   # from cron or CI
  hogguard rotate production personal_api_key                            # assisted
  hogguard rotate production webhook_secret --grace 24h; hogguard rotate production webhook_secret --finish";

/// Arguments of `hogguard rotate`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The environment, as in [environments.NAME]
    #[arg(value_name = "ENV")]
    pub(crate) environment: String,
    /// The credential, as in [environments.NAME.credentials]
    #[arg(value_name = "CREDENTIAL")]
    pub(crate) credential: String,
    /// Print the plan and what would stop a real run (a setting, a terminal, the current
    /// key, an open rotation); change nothing. Exit 1 when a real run would stop
    #[arg(long, conflicts_with_all = ["resume", "abort", "finish"])]
    pub(crate) dry_run: bool,
    /// Continue an interrupted rotation from PostHog's real state
    #[arg(long, conflicts_with_all = ["abort", "finish"])]
    pub(crate) resume: bool,
    /// Return to the old key where that is still possible
    #[arg(long, conflicts_with = "finish")]
    pub(crate) abort: bool,
    /// Webhook secrets: drop the old secret now instead of after the grace period
    #[arg(long)]
    pub(crate) finish: bool,
    /// Rotate only when the key is older than this (e.g. 30d), for cron and CI
    #[arg(long, value_name = "AGE")]
    pub(crate) if_older_than: Option<String>,
    /// Read the new key from standard input instead of the terminal
    #[arg(long)]
    pub(crate) stdin: bool,
    /// Personal keys: kill the old key through PostHog's leaked-key endpoint instead of asking
    /// the person to delete it
    #[arg(long)]
    pub(crate) revoke_old: bool,
    /// Webhook secrets: how long the old secret stays accepted
    #[arg(long, value_name = "AGE", default_value = "24h")]
    pub(crate) grace: String,
    /// Answer yes to confirmations
    #[arg(long)]
    pub(crate) yes: bool,
}

const KEYS_ABOUT: &str = "\
List the configured credentials per environment: live or not, scopes, age, policy verdicts.

For every credential in [environments.NAME.credentials] of hogguard.toml, the value is read from \
the environment's env_file (or the process environment), shown masked, and asked of PostHog: \
live (with scopes, projects, created / last used / last rolled), invalid, or unknown with the \
reason. Public phc_ keys are listed, never probed. Verdicts: scopes beyond allowed_scopes, `*` \
outside development, a production key not scoped to projects, a key older than max_key_age, the \
same value in two environments, a missing or invalid value. Exit 1 when any verdict stands.";

/// Arguments of `hogguard keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub(crate) env: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = KeysFormat::Human)]
    pub(crate) format: KeysFormat,
}

/// Formats of `hogguard keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeysFormat {
    /// For people
    Human,
    /// `{"version":1,"credentials":[...]}`
    Json,
}

/// `hogguard audit ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the whole chain and the checkpoint: exit 0 when intact, 1 naming the first bad
    /// seq and why (hash mismatch, gap, reordering, duplicate, checkpoint mismatch)
    Verify,
    /// Print entries, oldest first
    Show(AuditShowArgs),
    /// Append an entry, for scripts and runbooks
    #[command(after_long_help = AUDIT_LOG_EXAMPLES)]
    Log(AuditLogArgs),
    /// Send entries not yet acknowledged to PostHog as `audit` events (safe to repeat: each
    /// entry has a fixed uuid; run it from cron)
    Ship,
}

const AUDIT_LOG_EXAMPLES: &str = "\
Examples:
  hogguard audit log --action key.rotated --resource production/personal_api_key --result success --meta ticket=SEC-142
  hogguard audit log --action deploy.secret --resource api --result failure --user ci-bot";

/// Arguments of `hogguard audit show`.
#[derive(Debug, Args)]
pub(crate) struct AuditShowArgs {
    /// Entries at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Entries before this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Entries of this action; a trailing `*` matches a prefix (`key.*`)
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Entries of this user
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Entries with this result
    #[arg(long, value_enum)]
    pub(crate) result: Option<ResultName>,
    /// Output format
    #[arg(long, value_enum, default_value_t = AuditFormat::Human)]
    pub(crate) format: AuditFormat,
}

/// Arguments of `hogguard audit log`.
#[derive(Debug, Args)]
pub(crate) struct AuditLogArgs {
    /// What was done, e.g. `key.rotated`
    #[arg(long)]
    pub(crate) action: String,
    /// What it was done to
    #[arg(long)]
    pub(crate) resource: String,
    /// How it went
    #[arg(long, value_enum)]
    pub(crate) result: ResultName,
    /// Who did it [default: HOGGUARD_USER, else USER]
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Extra detail, `key=value`; repeatable. Credentials are masked whatever is passed
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) meta: Vec<String>,
}

/// An entry's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ResultName {
    /// It worked
    Success,
    /// It did not
    Failure,
}

/// Formats of `hogguard audit show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuditFormat {
    /// One line per entry
    Human,
    /// The entries as stored, one JSON object per line
    Json,
}

/// `hogguard webhook ...`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Print a new Standard Webhooks signing secret (`whsec_` + 32 random bytes) from the OS
    /// random source
    Secret,
    /// Print the signature headers for a body, one `name: value` per line
    #[command(after_long_help = SIGN_EXAMPLES)]
    Sign(SignArgs),
    /// Check one delivery: exit 0 when it verifies, 1 when not (the reason on stderr)
    #[command(after_long_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Run a gateway that forwards only verified deliveries to an app
    #[command(long_about = SERVE_ABOUT)]
    Serve(ServeArgs),
}

const SERVE_ABOUT: &str = "\
Run a gateway that forwards only verified deliveries to an app.

Every request is buffered (up to --body-limit), its signature verified with any of the secrets, \
its timestamp checked (--tolerance either way) and its id checked against replays; a verified \
request goes to --forward with its method, path, query, headers and exact body, and the app's \
answer comes back. Everything else gets the same 401 {\"error\":\"invalid signature\"}, and a \
log line on stderr with the real reason (never a secret or a signature).

A delivery is used up only once the app took it (2xx, or a 4xx other than 408, 425, 429): when \
the app is down (502), slow (504), answers 5xx, or the gateway stops first, the sender's retry \
is forwarded. A copy that arrives while the first is being forwarded gets 503 with Retry-After \
and is not forwarded.

Replays: a Standard Webhooks delivery is known by its message id, a Stripe one by its signed \
timestamp and body, for twice --tolerance after it was taken, by which time its timestamp is \
too old anyway. GitHub and hex sign no time or id: those deliveries are remembered by their \
body for twice --tolerance and refused as replays within that time, but a copy sent later is \
forwarded again (raise --tolerance to widen the window), and two different deliveries with \
identical bodies within it count as one. The gateway warns about this when it starts. GET /_hogguard/health \
answers locally. SIGTERM or Ctrl-C stops it gracefully; the counters are printed and written to \
the audit log. Put TLS in front of it (a load balancer or reverse proxy).

Example:
  hogguard webhook serve --listen 0.0.0.0:8080 --forward http://127.0.0.1:3000 \\
      --secret-env POSTHOG_WEBHOOK_SECRET,POSTHOG_WEBHOOK_SECRET_PREVIOUS --replay-store .hogguard/replay";

/// Arguments of `hogguard webhook serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) scheme: SchemeArgs,
    /// Address to listen on
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: std::net::SocketAddr,
    /// The app to forward verified requests to, `http://host:port[/base]`
    #[arg(long, value_name = "URL")]
    pub(crate) forward: String,
    /// Environment variables that hold the accepted secrets, comma-separated (any may verify)
    #[arg(
        long,
        value_name = "VAR[,VAR2]",
        value_delimiter = ',',
        required = true
    )]
    pub(crate) secret_env: Vec<String>,
    /// Seconds a timestamp may be off, either way; deliveries are remembered for twice this
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) tolerance: u64,
    /// Keep the deliveries taken in this file (created private), so a restart does not reopen
    /// the replay window
    #[arg(long, value_name = "PATH", conflicts_with = "no_replay")]
    pub(crate) replay_store: Option<PathBuf>,
    /// Turn replay protection off (benchmarks only)
    #[arg(long)]
    pub(crate) no_replay: bool,
    /// Largest body accepted, in bytes (413 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub(crate) body_limit: usize,
    /// Seconds a client may take to send its request head
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) header_timeout: u64,
    /// Seconds a client may take to send its body
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) body_timeout: u64,
    /// Seconds the app may take to answer (504 beyond)
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) upstream_timeout: u64,
    /// Also serve the counters as JSON on this (private) address
    #[arg(long, value_name = "ADDR")]
    pub(crate) stats_listen: Option<std::net::SocketAddr>,
    /// Deliveries the replay store holds; when all are being forwarded or still within twice
    /// the tolerance, deliveries get 503 with Retry-After (senders retry) rather than going
    /// unchecked
    #[arg(long, value_name = "N", default_value_t = hogguard_webhook::replay::DEFAULT_CAPACITY)]
    pub(crate) replay_capacity: usize,
    /// Requests handled at once; beyond it, 503 with Retry-After before the body is read
    #[arg(long, value_name = "N", default_value_t = hogguard_gateway::DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub(crate) max_requests: usize,
    /// Open connections; at the limit no new one is accepted until one closes
    #[arg(long, value_name = "N", default_value_t = hogguard_gateway::DEFAULT_MAX_CONNECTIONS)]
    pub(crate) max_connections: usize,
    /// Rejection log lines per second; beyond it one line counts the rest (the counters stay
    /// exact)
    #[arg(long, value_name = "N", default_value_t = hogguard_gateway::DEFAULT_REJECTION_LOG_LIMIT)]
    pub(crate) rejection_log_limit: u32,
}

const SIGN_EXAMPLES: &str = "\
Examples:
  export WEBHOOK_SECRET=$(hogguard webhook secret)
  hogguard webhook sign --secret-env WEBHOOK_SECRET payload.json
  hogguard webhook sign --scheme github --secret-env GITHUB_WEBHOOK_SECRET - < payload.json";

const VERIFY_EXAMPLES: &str = "\
Examples:
  hogguard webhook verify --secret-env WEBHOOK_SECRET \\
      --header 'webhook-id: msg_2Lx...' --header 'webhook-timestamp: 1714000000' \\
      --header 'webhook-signature: v1,K5oZ...' --now 1714000010 payload.json
  During a rotation, pass both secrets: --secret-env NEW_SECRET,OLD_SECRET";

/// Which signature scheme, and for `hex` which header.
#[derive(Debug, Args)]
pub(crate) struct SchemeArgs {
    /// Signature scheme
    #[arg(long, value_enum, default_value_t = SchemeName::Standard)]
    pub(crate) scheme: SchemeName,
    /// Header that carries the signature (scheme `hex` only)
    #[arg(long, value_name = "NAME", default_value = "x-signature-256")]
    pub(crate) signature_header: String,
}

/// Signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeName {
    /// Standard Webhooks (PostHog's HTTP webhook destination): webhook-id, webhook-timestamp,
    /// webhook-signature; Svix's svix-id, svix-timestamp, svix-signature are accepted too
    Standard,
    /// Hex HMAC-SHA256 of the body in one header (PostHog Hog functions' sha256HmacChainHex)
    Hex,
    /// GitHub: X-Hub-Signature-256: sha256=<hex>
    Github,
    /// Stripe: Stripe-Signature: t=...,v1=...
    Stripe,
}

/// Arguments of `hogguard webhook sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) scheme: SchemeArgs,
    /// Environment variable that holds the signing secret
    #[arg(long, value_name = "VAR")]
    pub(crate) secret_env: String,
    /// Message id (standard) [default: a new random id]
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Unix timestamp to sign (standard, stripe) [default: now]
    #[arg(long, value_name = "UNIX")]
    pub(crate) timestamp: Option<u64>,
    /// File with the body; `-` reads standard input
    #[arg(value_name = "BODY", default_value = "-")]
    pub(crate) body: PathBuf,
}

/// Arguments of `hogguard webhook verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) scheme: SchemeArgs,
    /// Environment variables that hold the accepted secrets, comma-separated (any may verify)
    #[arg(
        long,
        value_name = "VAR[,VAR2]",
        value_delimiter = ',',
        required = true
    )]
    pub(crate) secret_env: Vec<String>,
    /// A received header, `name: value`; repeat for each
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Judge timestamps as if the time were this Unix time (replays, tests)
    #[arg(long, value_name = "UNIX")]
    pub(crate) now: Option<u64>,
    /// Seconds a timestamp may be off, either way
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) tolerance: u64,
    /// File with the body; `-` reads standard input
    #[arg(value_name = "BODY", default_value = "-")]
    pub(crate) body: PathBuf,
}

const SCAN_ABOUT: &str = "\
Find PostHog secrets in files, staged changes or a repository's whole history.

Finds personal API keys (phx_), project secret API keys (phs_), OAuth tokens (pha_, phr_), \
unprefixed pre-2021 personal keys next to PostHog context, webhook signing secrets (whsec_) and \
literal values of POSTHOG_*_KEY/SECRET/TOKEN variables. Public project keys (phc_) are listed \
as information and never fail a scan. Secrets are shown masked (phx_...abcd), never in full.

Suppress a finding with a `hogguard:allow` comment on its line (`gitleaks:allow` and \
`pragma: allowlist secret` work too), or accept the current findings with --write-baseline and \
pass the file with --baseline afterwards: baselines match by a SHA-256 fingerprint of the \
secret, so moved lines and squashed commits stay suppressed.";

const SCAN_EXAMPLES: &str = "\
Examples:
  hogguard scan                      scan the current directory, honouring .gitignore
  hogguard scan --staged             scan what the next commit would hold (pre-commit hook)
  hogguard scan --git                scan every blob in the repository's object store
  hogguard scan --git --format sarif -o hogguard.sarif
  cat build.log | hogguard scan -    scan standard input";

/// Arguments of `hogguard scan`.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files and directories to scan; `-` reads standard input, and pipes, FIFOs and
    /// `<(command)` are read as streams [default: .]
    #[arg(value_name = "PATH", conflicts_with_all = ["git", "staged"])]
    pub(crate) paths: Vec<PathBuf>,
    /// Scan every blob of the repository's object store (all refs, reflogs, stashes and
    /// unreachable objects), each attributed to the commit that introduced it
    #[arg(long, value_name = "REPO", num_args = 0..=1, default_missing_value = ".", conflicts_with = "staged")]
    pub(crate) git: Option<PathBuf>,
    /// Scan the content staged in the index, as the next commit would hold it
    #[arg(long)]
    pub(crate) staged: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    /// Write the report to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Ignore findings whose secret is in this baseline file
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// Write every current finding to a baseline file, and exit 0
    #[arg(long, value_name = "FILE")]
    pub(crate) write_baseline: Option<PathBuf>,
    /// Also scan files that .gitignore, .ignore and git's exclude files skip
    #[arg(long)]
    pub(crate) no_ignore: bool,
    /// Also scan files that look binary
    #[arg(long)]
    pub(crate) binary: bool,
    /// Worker threads, 1 to 256 [default: number of CPUs]
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=hogguard_scan::MAX_THREADS as u64))]
    pub(crate) threads: Option<usize>,
    /// Ask PostHog whether each found personal key, OAuth token and secret key is live, and
    /// what it can reach (both cloud regions; POSTHOG_HOST or [posthog] host for self-hosted)
    #[arg(long)]
    pub(crate) verify: bool,
    /// Report live secrets to PostHog's leaked-key endpoint, which rolls or revokes them at once
    /// and emails their owners (implies --verify; never for public phc_ keys)
    #[arg(long)]
    pub(crate) revoke: bool,
    /// Do not ask before --revoke
    #[arg(long, requires = "revoke")]
    pub(crate) yes: bool,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per finding, for people
    Human,
    /// `{"version":1,"findings":[...],"summary":{...}}`
    Json,
    /// SARIF 2.1.0, for GitHub code scanning
    Sarif,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn git_takes_an_optional_repository() {
        let cli = Cli::try_parse_from(["hogguard", "scan", "--git"]).unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("scan")
        };
        assert_eq!(args.git, Some(PathBuf::from(".")));
        let cli = Cli::try_parse_from(["hogguard", "-q", "scan", "--git", "repo"]).unwrap();
        assert!(cli.global.quiet);
        let Command::Scan(args) = cli.command else {
            panic!("scan")
        };
        assert_eq!(args.git, Some(PathBuf::from("repo")));
    }

    #[test]
    fn sources_exclude_each_other() {
        assert!(Cli::try_parse_from(["hogguard", "scan", "--git", "--staged"]).is_err());
        assert!(Cli::try_parse_from(["hogguard", "scan", "--staged", "src"]).is_err());
    }
}

const PROXY_ABOUT: &str = "\
Run a proxy in front of PostHog's API. Services point their PostHog SDK's host at it and use \
a client token (hgp_…, from `hogguard proxy token`) where a personal API key would go. The \
proxy checks the scope each call needs against the client's scopes in [proxy.clients.NAME], \
refuses with PostHog's own 403 when it is missing (the call never reaches PostHog), injects \
the environment's real key (its project secret key for local evaluation and remote config), \
and writes an audit entry per call. Capture and flag evaluation with the public phc_ key pass \
through untouched. SIGHUP, or a change of an env file, reloads keys and clients; calls in \
flight keep theirs. Runs until SIGTERM or Ctrl-C.";

/// Arguments of `hogguard proxy`.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Make a client token instead of running the proxy
    #[command(subcommand)]
    pub(crate) command: Option<ProxyCommand>,
    /// The environment whose credentials are injected [default: [proxy] environment]
    #[arg(long, value_name = "NAME")]
    pub(crate) env: Option<String>,
    /// Where to listen [default: [proxy] listen, else 127.0.0.1:8788]
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

/// Subcommands of `hogguard proxy`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProxyCommand {
    /// Print a new random client token (hgp_…) for a variable named in [proxy.clients.NAME]
    Token,
}

const SCOPES_ABOUT: &str = "\
For each configured key: the scopes PostHog says it has, the scopes the proxy's audit entries \
show were used within the window, the unused ones, and a suggested scope list; for each proxy \
client, allowed against used. Exit 1 when any key or client holds unused scopes. \
`scopes import SCHEMA.json` reads the scope of every operation from a PostHog instance's \
OpenAPI schema (GET /api/schema/?format=json) into the proxy's scope table.";

/// Arguments of `hogguard scopes`.
#[derive(Debug, Args)]
pub(crate) struct ScopesArgs {
    /// Refresh the scope table instead of reporting
    #[command(subcommand)]
    pub(crate) command: Option<ScopesCommand>,
    /// Only this environment's keys
    #[arg(long, value_name = "NAME")]
    pub(crate) env: Option<String>,
    /// How far back the audit log counts, e.g. 30d, 12w
    #[arg(long, value_name = "AGE", default_value = "30d")]
    pub(crate) since: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = ScopesFormat::Human)]
    pub(crate) format: ScopesFormat,
}

/// Subcommands of `hogguard scopes`.
#[derive(Debug, Subcommand)]
pub(crate) enum ScopesCommand {
    /// Read every operation's scopes from PostHog's OpenAPI schema (JSON) into the proxy's
    /// scope table
    Import(ScopesImportArgs),
}

/// Arguments of `hogguard scopes import`.
#[derive(Debug, Args)]
pub(crate) struct ScopesImportArgs {
    /// The schema, as an instance serves it at /api/schema/?format=json
    #[arg(value_name = "SCHEMA.json")]
    pub(crate) schema: PathBuf,
    /// Where to write the table [default: [proxy] scope_table, else .hogguard/posthog-scopes.toml]
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// Output formats of `hogguard scopes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScopesFormat {
    /// For people.
    Human,
    /// `{"version":1,"keys":[…],"clients":[…]}`.
    Json,
}
