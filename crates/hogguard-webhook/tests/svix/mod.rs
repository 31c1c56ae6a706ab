//! The real `svix` package (PyPI), driven from tests to sign and verify Svix-branded
//! deliveries. Shared by the webhook, gateway and CLI tests (included with `#[path]`).
//!
//! [`Svix::install`] installs it from PyPI on first use (a pinned version, in its own virtual
//! environment under `target/test-tools`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Python interpreter that can import `svix`, with the script that drives it.
pub(crate) struct Svix {
    python: PathBuf,
    tool: PathBuf,
}

impl Svix {
    /// The package, installed from PyPI into `target/test-tools` on first use.
    pub(crate) fn install() -> Svix {
        let python = hogguard_testkit::tools::python_tool("svix==2.9.1", "python");
        // Every crate of the workspace lives in `<root>/crates/<name>`.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let tool = root.join("crates/hogguard-webhook/tests/svix/svix_tool.py");
        Svix { python, tool }
    }

    /// Signs `body` as delivery `id` at `timestamp`; returns the `svix-*` headers.
    pub(crate) fn sign(
        &self,
        secret: &str,
        id: &str,
        timestamp: u64,
        body: &str,
    ) -> Vec<(String, String)> {
        let answer = self.run(&serde_json::json!({
            "op": "sign", "secret": secret, "id": id, "timestamp": timestamp, "body": body,
        }));
        ["svix-id", "svix-timestamp", "svix-signature"]
            .into_iter()
            .map(|name| (name.to_owned(), answer[name].as_str().unwrap().to_owned()))
            .collect()
    }

    /// Verifies a delivery as Svix's own library does (timestamps against the real clock).
    pub(crate) fn verify(
        &self,
        secret: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), String> {
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into()))
            .collect();
        let answer = self.run(&serde_json::json!({
            "op": "verify", "secret": secret, "headers": headers, "body": body,
        }));
        if answer["ok"] == true {
            Ok(())
        } else {
            Err(answer["error"].to_string())
        }
    }

    fn run(&self, request: &serde_json::Value) -> serde_json::Value {
        let mut child = Command::new(&self.python)
            .arg(&self.tool)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "svix_tool.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}
