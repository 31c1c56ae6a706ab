//! `fakehog`: runs the PostHog stand-in for demos and manual testing.
//!
//! ```text
//! cargo run -p hogguard-testkit --bin fakehog -- --listen 127.0.0.1:8010 --seed demo
//! ```
//!
//! With `--seed demo` it prints the demo keys it made. They exist only inside this process, so
//! printing them is harmless; nothing else it prints holds a secret.

use std::net::SocketAddr;
use std::process::ExitCode;

use hogguard_testkit::posthog::{CONTROL_ENDPOINTS, FakeHog};

const USAGE: &str = "\
usage: fakehog [--listen ADDR] [--seed demo]

  --listen ADDR  address to listen on (default 127.0.0.1:8010; port 0 picks a free one)
  --seed demo    seed a demo organisation, project, users and keys, and print them
  --help         show this help";

struct Args {
    listen: SocketAddr,
    seed_demo: bool,
}

/// Parses the arguments; `Ok(None)` asks for the help text.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8010)),
        seed_demo: false,
    };
    while let Some(arg) = args.next() {
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--help" | "-h" => return Ok(None),
            "--listen" => {
                let text = value()?;
                parsed.listen = text
                    .parse()
                    .map_err(|_| format!("--listen wants IP:PORT, got {text:?}"))?;
            }
            "--seed" => match value()?.as_str() {
                "demo" => parsed.seed_demo = true,
                other => return Err(format!("unknown seed {other:?}; the only seed is `demo`")),
            },
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("fakehog: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let hog = match FakeHog::builder().listen(args.listen).start() {
        Ok(hog) => hog,
        Err(error) => {
            eprintln!("fakehog: cannot listen on {}: {error}", args.listen);
            return ExitCode::from(2);
        }
    };
    let base = hog.base_url();
    println!("fakehog: PostHog stand-in on {base} (private API and capture host)");
    if args.seed_demo {
        let demo = hog.seed_demo();
        println!("\ndemo data (these keys exist only in this process):");
        println!(
            "{}",
            serde_json::to_string_pretty(&demo).expect("the demo serializes")
        );
        println!("\ntry:");
        println!(
            "  curl -s -H 'Authorization: Bearer {}' {base}/api/personal_api_keys/@current/",
            demo.read_only_key.value
        );
    }
    println!("\ncontrol endpoints:");
    for (endpoint, what) in CONTROL_ENDPOINTS {
        println!("  {endpoint}\n      {what}");
    }
    println!("\nStop with Ctrl-C.");
    loop {
        std::thread::park();
    }
}
