//! What users install beside the tool: completions and the manual page (both generated from
//! the argument definitions), and a release build without debug information.

use crate::support::TestEnv;

#[test]
fn bash_completes_subcommands_and_flags_from_the_generated_script() {
    let env = TestEnv::new();
    let script = env.hogguard(["completions", "bash"]).output();
    script.assert_code(0);
    let path = env.write("hogguard.bash", &script.stdout);
    let complete = |words: &str, index: usize| {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                // As bash calls it: the command, the word being completed, the one before.
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD={index}; \
                 _hogguard hogguard \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(complete("hogguard sca", 1), "scan\n");
    assert!(complete("hogguard scan --sta", 2).contains("--staged"));
    assert!(complete("hogguard completions ''", 2).contains("powershell"));
}

#[test]
fn every_shell_gets_a_script_and_the_manual_names_every_command() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = env.hogguard(["completions", shell]).output();
        script.assert_code(0);
        assert!(script.stdout.contains("hogguard"), "{shell}");
    }
    let unknown = env.hogguard(["completions", "tcsh"]).output();
    unknown.assert_code(2);
    let man = env.hogguard(["man"]).output();
    man.assert_code(0);
    assert!(man.stdout.contains(".TH hogguard 1"), "{}", man.stdout);
    for command in [
        "scan",
        "check",
        "rotate",
        "keys",
        "audit",
        "webhook",
        "completions",
    ] {
        assert!(
            man.stdout.contains(&format!("hogguard\\-{command}")),
            "{command}"
        );
    }
}

#[test]
fn the_release_profile_is_lean_and_profiling_keeps_symbols() {
    let manifest: toml::Table =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let profile = |name: &str| manifest["profile"][name].as_table().unwrap().clone();
    let release = profile("release");
    assert_eq!(release["strip"].as_str(), Some("symbols"), "{release:?}");
    assert!(!release.contains_key("debug"), "{release:?}");
    let profiling = profile("profiling");
    assert_eq!(profiling["inherits"].as_str(), Some("release"));
    assert_eq!(profiling["strip"].as_str(), Some("none"));
    assert!(profiling.contains_key("debug"), "{profiling:?}");
}
