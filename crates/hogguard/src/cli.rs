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
    /// Files and directories to scan; `-` reads standard input [default: .]
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
    /// Worker threads [default: number of CPUs]
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
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
        let Command::Scan(args) = cli.command;
        assert_eq!(args.git, Some(PathBuf::from(".")));
        let cli = Cli::try_parse_from(["hogguard", "-q", "scan", "--git", "repo"]).unwrap();
        assert!(cli.global.quiet);
        let Command::Scan(args) = cli.command;
        assert_eq!(args.git, Some(PathBuf::from("repo")));
    }

    #[test]
    fn sources_exclude_each_other() {
        assert!(Cli::try_parse_from(["hogguard", "scan", "--git", "--staged"]).is_err());
        assert!(Cli::try_parse_from(["hogguard", "scan", "--staged", "src"]).is_err());
    }
}
