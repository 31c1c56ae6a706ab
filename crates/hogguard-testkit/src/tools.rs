//! Real clients that tests drive the way users do (the pre-commit framework, PostHog's SDKs),
//! installed from the package registries on first use into the build's target directory and
//! reused after that. Installs take a lock, so parallel tests install once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/test-tools`, beside the test binary's build directory.
pub fn tools_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps");
    target.join("test-tools")
}

/// The console script `binary` of the PyPI package `requirement` (`pre-commit==4.7.0`), from a
/// virtual environment of its own.
pub fn python_tool(requirement: &str, binary: &str) -> PathBuf {
    let venv = tools_dir().join(format!("venv-{}", slug(requirement)));
    let tool = venv.join("bin").join(binary);
    installed(&venv, &tool, || {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(requirement));
    });
    tool
}

/// A folder whose `node_modules` holds the npm `packages` (`posthog-node@5.8.0`).
pub fn npm_packages(packages: &[&str]) -> PathBuf {
    let dir = tools_dir().join(format!("npm-{}", slug(&packages.join("+"))));
    let marker = dir.join("node_modules");
    installed(&dir, &marker, || {
        std::fs::create_dir_all(&dir).expect("create the npm folder");
        run(Command::new("npm")
            .current_dir(&dir)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                ".",
            ])
            .args(packages));
    });
    dir
}

/// Runs `install` once, under a lock, unless `ready` exists; a failed install leaves
/// nothing that looks ready.
fn installed(dir: &Path, ready: &Path, install: impl FnOnce()) {
    let tools = tools_dir();
    std::fs::create_dir_all(&tools).expect("create target/test-tools");
    let lock = File::create(tools.join(".lock")).expect("create the install lock");
    lock.lock().expect("take the install lock");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(dir);
        install();
        assert!(ready.exists(), "{} was not installed", ready.display());
    }
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
