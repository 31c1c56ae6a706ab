//! `hogguard proxy` end to end: the binary in front of the PostHog stand-in, with clients and
//! keys from hogguard.toml and an env file, SIGHUP and env-file reloads, audit entries, and the
//! official PostHog SDKs (PyPI `posthog`, npm `posthog-node`) using it as their host.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use hogguard_testkit::posthog::{
    FeatureFlagSpec, MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, SeededKey,
    SeededProject, UserSpec, sha256_hex,
};

use crate::support::{TestEnv, http_exchange};

const PATIENCE: Duration = Duration::from_secs(20);

const CONFIG: &str = r#"
[environments.production]
env_file = ".env.production"
[environments.production.credentials]
personal_api_key = "POSTHOG_PERSONAL_API_KEY"
secret_api_key = "POSTHOG_SECRET_API_KEY"

[proxy]
environment = "production"
[proxy.clients.reader]
token = "READER_TOKEN"
scopes = ["feature_flag:read", "insight:read"]
[proxy.clients.writer]
token = "WRITER_TOKEN"
scopes = ["feature_flag:write", "annotation:write"]
"#;

/// A PostHog project with a flag, a personal key, a spare one and a project secret key.
struct World {
    project: SeededProject,
    personal: SeededKey,
    spare: SeededKey,
    secret: SeededKey,
    reader: String,
    writer: String,
}

fn world(env: &TestEnv) -> World {
    let hog = env.posthog();
    let org = hog.add_organization("Acme");
    let project = hog.add_project(&org, "Web");
    let user = hog.add_user(UserSpec::new("ops@acme.test").member_of(&org, MembershipLevel::Admin));
    let personal = hog.add_personal_key(user.id, PersonalKeySpec::new("services").scopes(["*"]));
    let spare = hog.add_personal_key(user.id, PersonalKeySpec::new("next").scopes(["*"]));
    let secret = hog.add_project_secret_key(
        project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    hog.add_feature_flag(project.id, FeatureFlagSpec::new("new-checkout"));
    let token = || {
        env.hogguard(["proxy", "token"])
            .output()
            .assert_code(0)
            .stdout
            .trim()
            .to_owned()
    };
    let (reader, writer) = (token(), token());
    for secret in [
        &personal.value,
        &spare.value,
        &secret.value,
        &reader,
        &writer,
    ] {
        env.seed(secret);
    }
    env.write("hogguard.toml", CONFIG);
    write_env_file(env, &personal.value, &secret.value, &reader, &writer);
    World {
        project,
        personal,
        spare,
        secret,
        reader,
        writer,
    }
}

fn write_env_file(env: &TestEnv, personal: &str, secret: &str, reader: &str, writer: &str) {
    // Written beside and renamed over, as `hogguard rotate` does.
    env.write(
        ".env.production.next",
        format!(
            "POSTHOG_PERSONAL_API_KEY={personal}\nPOSTHOG_SECRET_API_KEY={secret}\nREADER_TOKEN={reader}\nWRITER_TOKEN={writer}\n"
        ),
    );
    std::fs::rename(
        env.path().join(".env.production.next"),
        env.path().join(".env.production"),
    )
    .unwrap();
}

/// A running `hogguard proxy`, its address and its log lines as they come.
struct Running {
    child: Child,
    addr: String,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(env: &TestEnv) -> Running {
        let mut child = env.hogguard(["proxy", "--listen", "127.0.0.1:0"]).spawn();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running {
            child,
            addr: String::new(),
            lines,
            seen: Vec::new(),
        };
        let listening = running.wait_for("event=listening");
        running.addr = listening
            .split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .unwrap()
            .to_owned();
        running
    }

    /// The next log line containing `text` (earlier ones are kept for the leak check).
    fn wait_for(&mut self, text: &str) -> String {
        self.wait_for_all(&[text])
    }

    /// The next log line containing each of `texts`.
    fn wait_for_all(&mut self, texts: &[&str]) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no {texts:?} in {:#?}", self.seen));
            self.seen.push(line.clone());
            if texts.iter().all(|text| line.contains(text)) {
                return line;
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stops it with SIGTERM; returns its exit code and every log line.
    fn stop(mut self) -> (i32, Vec<String>) {
        self.signal("TERM");
        let code = self.child.wait().unwrap().code().unwrap();
        self.seen.extend(self.lines.iter());
        (code, self.seen)
    }
}

/// One HTTP/1.1 exchange: the status and the body.
fn call(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    http_exchange(addr, &request)
}

#[test]
fn proxy_token_prints_a_new_client_token_each_time() {
    let env = TestEnv::new();
    let first = env.hogguard(["proxy", "token"]).output();
    first.assert_code(0);
    let token = first.stdout.trim();
    assert!(token.starts_with("hgp_") && token.len() == 48, "{token}");
    let second = env.hogguard(["proxy", "token"]).output();
    assert_ne!(second.stdout, first.stdout);
    // The scanner finds such a token as a secret wherever it is pasted.
    env.seed(token);
    env.write("service.env", format!("POSTHOG_PERSONAL_API_KEY={token}\n"));
    let scan = env.hogguard(["scan", "service.env"]).output();
    scan.assert_code(1);
    assert!(
        scan.stdout.contains("high hogguard-client-token hgp_..."),
        "{}",
        scan.stdout
    );
}

#[test]
fn the_proxy_injects_the_key_refuses_what_a_client_lacks_and_reloads() {
    let env = TestEnv::new();
    let w = world(&env);
    let hog = env.posthog();
    let mut proxy = Running::start(&env);
    let flags = format!("/api/projects/{}/feature_flags/", w.project.id);
    let (status, body) = call(&proxy.addr, "GET", &flags, Some(&w.reader), "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("new-checkout"));
    let last_credential = || hog.requests().last().unwrap().credential_sha256.clone();
    assert_eq!(last_credential(), Some(sha256_hex(&w.personal.value)));
    // The reader may not write; PostHog never sees the attempt.
    let before = hog.requests().len();
    let (status, body) = call(
        &proxy.addr,
        "POST",
        &flags,
        Some(&w.reader),
        r#"{"key":"x"}"#,
    );
    assert_eq!(
        (status, body.as_str()),
        (
            403,
            r#"{"type":"authentication_error","code":"permission_denied","detail":"API key missing required scope 'feature_flag:write'","attr":null}"#
        )
    );
    assert_eq!(hog.requests().len(), before);
    // A PostHog key sent to the proxy is refused.
    let (status, _) = call(&proxy.addr, "GET", &flags, Some(&w.personal.value), "");
    assert_eq!(status, 401);
    // Flag definitions go out with the project secret key.
    let definitions = format!("/flags/definitions?token={}", w.project.api_token);
    assert_eq!(
        call(&proxy.addr, "GET", &definitions, Some(&w.reader), "").0,
        200
    );
    assert_eq!(last_credential(), Some(sha256_hex(&w.secret.value)));

    // SIGHUP after the env file changes: the next call has the new key.
    write_env_file(&env, &w.spare.value, &w.secret.value, &w.reader, &w.writer);
    proxy.signal("HUP");
    proxy.wait_for("event=reloaded trigger=signal");
    assert_eq!(call(&proxy.addr, "GET", &flags, Some(&w.reader), "").0, 200);
    assert_eq!(last_credential(), Some(sha256_hex(&w.spare.value)));
    // Without a signal, a changed env file is noticed on its own.
    write_env_file(
        &env,
        &w.personal.value,
        &w.secret.value,
        &w.reader,
        &w.writer,
    );
    // The watcher may also have noticed the first change; wait for the reload of this one.
    proxy.wait_for_all(&[
        "event=reloaded trigger=file-changed",
        &format!("personal_key={}", hogguard_secret::mask(&w.personal.value)),
    ]);
    assert_eq!(call(&proxy.addr, "GET", &flags, Some(&w.reader), "").0, 200);
    assert_eq!(last_credential(), Some(sha256_hex(&w.personal.value)));

    let (code, lines) = proxy.stop();
    assert_eq!(code, 0, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("event=stopped forwarded=4")),
        "{lines:#?}"
    );
    env.assert_no_leak("the proxy's log", &lines.join("\n"));
    // Every call is in the audit log, under its client's name.
    let shown = env
        .hogguard([
            "audit",
            "show",
            "--action",
            "posthog.api.call",
            "--format",
            "json",
        ])
        .output();
    shown.assert_code(0);
    let entries: Vec<serde_json::Value> = shown
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let users: Vec<&str> = entries
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        [
            "reader",
            "reader",
            "unauthenticated",
            "reader",
            "reader",
            "reader"
        ]
    );
    assert_eq!(entries[1]["metadata"]["reason"], "missing-scope");
    assert_eq!(entries[3]["metadata"]["endpoint"], "/flags/definitions");
}

#[test]
fn a_proxy_without_its_section_or_tokens_says_what_is_missing() {
    let env = TestEnv::new();
    env.write("hogguard.toml", "[environments.production]\n");
    let output = env.hogguard(["proxy"]).output();
    output.assert_code(2);
    assert!(
        output.stderr.contains("no [proxy] section"),
        "{}",
        output.stderr
    );
    let w = world(&env);
    env.write(
        ".env.production",
        format!("POSTHOG_PERSONAL_API_KEY={}\n", w.personal.value),
    );
    let output = env.hogguard(["proxy"]).output();
    output.assert_code(2);
    assert!(
        output.stderr.contains("READER_TOKEN is not set"),
        "{}",
        output.stderr
    );
}

/// Runs `program args` in `dir` with `vars`, and returns its standard output.
fn run_sdk(
    program: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> String {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

const PYTHON_SDK: &str = r#"
import json, os
from posthog import Posthog

client = Posthog(
    os.environ["PHC"],
    host=os.environ["PROXY"],
    personal_api_key=os.environ["TOKEN"],
    sync_mode=True,
)
flag = client.get_feature_flag("new-checkout", "user-1", only_evaluate_locally=True)
client.capture("signed_up", distinct_id="user-1")
client.shutdown()
print(json.dumps({"flag": flag}))
"#;

const NODE_SDK: &str = r#"
const { PostHog } = require('posthog-node');
(async () => {
  const client = new PostHog(process.env.PHC, {
    host: process.env.PROXY,
    personalApiKey: process.env.TOKEN,
    flushAt: 1,
    flushInterval: 0,
  });
  const flag = await client.getFeatureFlag('new-checkout', 'user-2', { onlyEvaluateLocally: true });
  client.capture({ distinctId: 'user-2', event: 'signed_up_node' });
  await client.shutdown();
  console.log(JSON.stringify({ flag }));
})().catch((error) => { console.error(error); process.exit(1); });
"#;

#[test]
fn the_official_sdks_evaluate_flags_locally_and_capture_through_the_proxy() {
    let python = hogguard_testkit::tools::python_tool("posthog==7.91.1", "python");
    let node_modules = hogguard_testkit::tools::npm_packages(&["posthog-node@5.70.0"]);
    let env = TestEnv::new();
    let w = world(&env);
    let hog = env.posthog();
    let proxy = Running::start(&env);
    let host = format!("http://{}", proxy.addr);
    let vars = [
        ("PHC", w.project.api_token.as_str()),
        ("PROXY", host.as_str()),
        ("TOKEN", w.reader.as_str()),
    ];
    let script = env.write("sdk.py", PYTHON_SDK);
    let out = run_sdk(&python, &[script.to_str().unwrap()], env.path(), &vars);
    assert_eq!(out.trim(), r#"{"flag": true}"#);
    std::fs::write(node_modules.join("sdk.js"), NODE_SDK).unwrap();
    let out = run_sdk(Path::new("node"), &["sdk.js"], &node_modules, &vars);
    assert_eq!(out.trim(), r#"{"flag":true}"#);
    let events: Vec<String> = hog.events().iter().map(|e| e.event.clone()).collect();
    assert!(events.contains(&"signed_up".to_owned()), "{events:?}");
    assert!(events.contains(&"signed_up_node".to_owned()), "{events:?}");
    // Both polled flag definitions through the proxy, which sent the project secret key.
    let polls: Vec<_> = hog
        .requests()
        .into_iter()
        .filter(|r| r.path == "/flags/definitions")
        .collect();
    assert!(polls.len() >= 2, "{polls:?}");
    assert!(
        polls
            .iter()
            .all(|r| r.credential_sha256.as_deref() == Some(sha256_hex(&w.secret.value).as_str()))
    );
    let (code, lines) = proxy.stop();
    assert_eq!(code, 0);
    env.assert_no_leak("the proxy's log", &lines.join("\n"));
}
