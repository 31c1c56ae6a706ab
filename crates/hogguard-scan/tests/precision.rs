//! Precision and recall on real-looking code: each kind of false alarm seen on real PostHog
//! code is a test here, from fixtures generated at run time (no real key is committed), and
//! every real secret is still found with its exact extent, in every context real text puts
//! it in.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hogguard_scan::{Finding, ScanOptions, Scanner};
use hogguard_testkit::keys::{self, Era, Prefix};

/// Every finding in `text`.
fn findings(text: &str) -> Vec<Finding> {
    let scanner = Scanner::new(&[], ScanOptions::default()).unwrap();
    scanner.scan_reader("-", text.as_bytes()).unwrap().findings
}

/// (rule, value) of every finding in `text`.
fn found(text: &str) -> Vec<(String, String)> {
    findings(text)
        .iter()
        .map(|f| (f.rule.clone(), f.value.expose().to_owned()))
        .collect()
}

/// A pre-2021 key that looks random (upper and lower case letters and digits).
fn legacy() -> String {
    loop {
        let key = keys::legacy_personal();
        let has = |f: fn(&u8) -> bool| key.as_bytes().iter().any(f);
        if has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit) {
            return key;
        }
    }
}

fn rules(found: &[(String, String)]) -> Vec<&str> {
    found.iter().map(|(rule, _)| rule.as_str()).collect()
}

#[test]
fn kind_1_pre_2021_project_keys_are_public_project_keys() {
    let key = legacy();
    for line in [
        format!("POSTHOG_API_KEY = \"{key}\""),
        format!("posthog.project_api_key = '{key}'"),
        format!("posthog.api_key = {key}"),
        format!("PostHog::init('{key}', array('host' => 'https://app.posthog.com'));"),
        format!("posthog.init('{key}', {{ api_host: 'https://app.posthog.com' }})"),
        format!("const client = new PostHog('{key}', {{ host: 'https://app.posthog.com' }})"),
        format!("posthog = Posthog('{key}', host='https://app.posthog.com')"),
        format!("  \"posthogProjectToken\": \"{key}\","),
    ] {
        let found = found(&format!("{line}\n"));
        assert_eq!(
            found,
            vec![("posthog-legacy-project-api-key".to_owned(), key.clone())],
            "{line}"
        );
    }
}

#[test]
fn kind_1_only_a_personal_key_name_or_bearer_makes_a_personal_key() {
    let key = legacy();
    for line in [
        format!("POSTHOG_PERSONAL_API_KEY={key}"),
        format!("posthog_personal_api_key: '{key}'"),
        format!("const client = new PostHog(\n  'phc_x',\n  {{ personalApiKey: '{key}' }}\n)"),
        format!("posthog = Posthog('phc_x', personal_api_key='{key}')"),
        format!("new PostHog(token, {{ personalApiKey: \"{key}\" }})"),
        format!("curl -H 'Authorization: Bearer {key}' https://app.posthog.com/api/projects/"),
        format!("headers = {{\"Authorization\": \"Bearer {key}\"}}  # posthog api"),
    ] {
        let found = found(&format!("{line}\n"));
        assert_eq!(
            found,
            vec![("posthog-legacy-personal-api-key".to_owned(), key.clone())],
            "{line}"
        );
    }
}

#[test]
fn kind_2_context_elsewhere_on_a_long_line_is_not_context() {
    let id = legacy();
    for line in [
        format!(
            "# sample event: {{\"event\": \"pageview\", \"uuid\": \"{id}\", \"lib\": \"x\"}} sent by posthog-js"
        ),
        format!("capture(\"{id}\") // then posthog.flush()"),
        format!("{id} posthog"),
    ] {
        assert_eq!(found(&format!("{line}\n")), vec![], "{line}");
    }
}

#[test]
fn kind_3_sequential_and_keyboard_strings_are_placeholders() {
    for line in [
        "POSTHOG_PERSONAL_API_KEY=phx_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL",
        "key: phx_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
        "phc_qwertyuiopasdfghjklzxcvbnmQWERTYUIOPASDFGHJKLZ",
        "phs_1234567890qwertyuiop1234567890asdfghjkl12345678",
        "POSTHOG_SECRET=abcdefghijklmnopqrstuvwxyz0123456789",
        "POSTHOG_PERSONAL_API_KEY=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq",
    ] {
        assert_eq!(found(line), vec![], "{line}");
    }
    // A random key still passes.
    let key = keys::current(Prefix::Personal);
    assert_eq!(rules(&found(&key)), vec!["posthog-personal-api-key"]);
}

#[test]
fn kind_4_test_literals_are_not_secrets() {
    for value in [
        "mock-personal-key",
        "test-personal-key",
        "other-sessions-token",
        "my-key-value-here",
        "fake_posthog_secret_value",
        "dummy-project-api-key-for-tests",
        "maskPersonalDataProperties",
    ] {
        for line in [
            format!("POSTHOG_PERSONAL_API_KEY = '{value}'"),
            format!("  posthogApiKey: \"{value}\","),
            format!("export POSTHOG_SECRET={value}"),
        ] {
            assert_eq!(found(&line), vec![], "{line}");
        }
    }
    // Random-looking values still are.
    let value = "Zq8vK2mN4pR7sT9wX3yB6cD5";
    assert_eq!(
        found(&format!("POSTHOG_SECRET={value}")),
        vec![("posthog-secret-assignment".to_owned(), value.to_owned())]
    );
}

#[test]
fn kind_5_pieces_of_longer_encoded_strings_are_not_keys() {
    // A lockfile line: a sha512 integrity hash next to a PostHog package name.
    let piece = legacy().replace(['-', '_'], "x");
    let integrity = format!("sha512-Ab3/{piece}+Qz9w==");
    for line in [
        format!(
            "\"node_modules/posthog-js\": {{\"version\": \"1.2.3\", \"integrity\": \"{integrity}\"}},"
        ),
        format!("posthog-node@^4.0.0: resolved \"x\" integrity {integrity}"),
        format!("POSTHOG_API_KEY_SHA=abc/{piece}"),
    ] {
        assert_eq!(found(&format!("{line}\n")), vec![], "{line}");
    }
}

#[test]
fn kind_6_code_about_tokens_is_not_a_value() {
    for line in [
        r"const POSTHOG_TOKEN_PATTERN = /\bph[a-z]_[A-Za-z0-9_-]{20,}\b/g",
        r"POSTHOG_KEY_REGEX = re.compile(r'ph[cx]_[A-Za-z0-9]{43,}')",
        r#"posthog_token_format = "phc_{project}_{random_hex_string}""#,
        "let posthogKeyType: PosthogKeyKind = PosthogKeyKind.Personal",
        r#"POSTHOG_KEY_PREFIX = "phx_posthog_key_prefix_value""#,
    ] {
        assert_eq!(found(&format!("{line}\n")), vec![], "{line}");
    }
}

#[test]
fn kind_7_references_are_not_values() {
    let id = legacy();
    for line in [
        "POSTHOG_KEY_FILE=/run/secrets/posthog".to_owned(),
        "posthog_api_key = os.environ[\"POSTHOG_API_KEY\"]".to_owned(),
        "let key = ProcessInfo.processInfo.environment[\"POSTHOG_API_KEY\"]".to_owned(),
        "posthogKey: import.meta.env['NG_APP_POSTHOG_KEY'] || '<ph_project_token>',".to_owned(),
        "POSTHOG_PERSONAL_API_KEY=my-personal-api-key".to_owned(),
        "POSTHOG_PERSONAL_API_KEY=<your personal api key>".to_owned(),
        "posthog_secret = settings.POSTHOG_SECRET_KEY_VALUE".to_owned(),
        "POSTHOG_CLI_API_KEY: normalizePersonalApiKey(sourcemapsConfig.personalApiKey),".to_owned(),
        "posthog.init(token, { mask_personal_data_properties: maskPersonalDataProperties })"
            .to_owned(),
        format!(
            "{{\"distinct_id\": \"{id}\", \"properties\": {{\"email\": \"ada@posthog.com\"}}}}"
        ),
    ] {
        assert_eq!(found(&format!("{line}\n")), vec![], "{line}");
    }
}

/// Every prefix in every era a key was issued in.
fn recall_tokens() -> Vec<(String, &'static str)> {
    let mut tokens = Vec::new();
    for prefix in Prefix::ALL {
        let rule = match prefix {
            Prefix::Project => "posthog-project-api-key",
            Prefix::Personal => "posthog-personal-api-key",
            Prefix::Secret => "posthog-project-secret-api-key",
            Prefix::OAuthAccess => "posthog-oauth-access-token",
            Prefix::OAuthRefresh => "posthog-oauth-refresh-token",
        };
        for era in [Era::Current, Era::Base62 { bytes: 32 }] {
            tokens.push((keys::token(prefix, era), rule));
        }
    }
    tokens.push((keys::webhook_secret(), "posthog-webhook-secret"));
    tokens.push((keys::client_token(), "hogguard-client-token"));
    tokens
}

/// The contexts real text puts a key in, `{t}` standing for it.
const CONTEXTS: &[&str] = &[
    "{t}",
    "POSTHOG_KEY={t}",
    "export POSTHOG_PERSONAL_API_KEY=\"{t}\"",
    "  \"posthogKey\": \"{t}\",",
    "const client = new PostHog('{t}', { host: 'https://us.i.posthog.com' });",
    "curl -H 'Authorization: Bearer {t}' https://us.posthog.com/api/projects/",
    "log: key={t} region=us",
    // JSON escapes.
    "{\"config\": \"{\\\"token\\\": \\\"{t}\\\"}\"}",
    "\"line one\\n{t}\\nline three\"",
    "\"\\t{t}\\t\"",
    "{\"k\": \"\\u0022{t}\\u0022\"}",
    // URL encoding.
    "https://example.test/cb?token%3D{t}%26x%3D1",
    "q=%22{t}%22&r=1",
    "a%20{t}%20b",
    // C-style escapes.
    "printf(\"\\x22{t}\\x22\")",
];

#[test]
fn recall_every_token_in_every_context_with_its_exact_extent() {
    let mut checked = 0;
    for (token, rule) in recall_tokens() {
        for context in CONTEXTS {
            let text = format!("{}\n", context.replace("{t}", &token));
            assert_eq!(
                found(&text),
                vec![(rule.to_owned(), token.clone())],
                "{context}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 150, "{checked}");
}

#[test]
fn recall_legacy_personal_keys_after_escapes() {
    let key = legacy();
    for line in [
        format!("{{\\\"posthogPersonalApiKey\\\": \\\"{key}\\\"}}"),
        format!("POSTHOG_PERSONAL_API_KEY%3D{key}%26"),
        format!("posthog_personal_api_key=%22{key}%22"),
    ] {
        assert_eq!(
            found(&format!("{line}\n")),
            vec![("posthog-legacy-personal-api-key".to_owned(), key.clone())],
            "{line}"
        );
    }
}

#[test]
fn recall_tokens_inside_base64_blobs_are_reported_at_the_blob() {
    let mut checked = 0;
    for (token, rule) in recall_tokens() {
        // Only PostHog's token prefixes are looked for in base64, as Kingfisher looks for them.
        if rule == "posthog-webhook-secret" || rule == "hogguard-client-token" {
            continue;
        }
        // The token at each byte offset modulo 3, so at each of its three base64 forms; in
        // both alphabets, padded or not.
        for lead in ["", "#", "# "] {
            let text = format!("{lead}POSTHOG_KEY={token}\nregion=us\n");
            for blob in [
                STANDARD.encode(&text),
                URL_SAFE.encode(&text),
                URL_SAFE_NO_PAD.encode(format!("{text}x")),
            ] {
                if blob.len() % 4 != 0 {
                    continue;
                }
                let input = format!("kind: Secret\ndata:\n  env: {blob}\n");
                let found = findings(&input);
                assert_eq!(found.len(), 1, "{lead:?} {blob}");
                let f = &found[0];
                assert_eq!((f.rule.as_str(), f.value.expose()), (rule, token.as_str()));
                assert_eq!((f.line, f.column), (3, 8));
                assert_eq!(f.decoded_from, Some("base64"));
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "{checked}");
}

#[test]
fn base64_that_decodes_to_bytes_is_never_read() {
    let token = keys::current(Prefix::Personal);
    for round in 0..300 {
        // Random bytes around a real token, as in a compressed file or an image: the blob
        // holds the token's base64 form, but it does not decode to text.
        let mut bytes = keys::random_bytes(24 + round % 200);
        let at = usize::from(bytes[0]) % bytes.len();
        bytes.splice(at..at, token.bytes());
        let blob = STANDARD.encode(&bytes);
        for line in [
            format!("\"integrity\": \"sha512-{blob}\","),
            format!("background: url(data:image/png;base64,{blob});"),
            format!("-----BEGIN CERTIFICATE-----\n{blob}\n-----END CERTIFICATE-----"),
            format!("{{\"avatar\": \"{blob}\"}}"),
        ] {
            assert_eq!(found(&format!("{line}\n")), vec![], "{line}");
        }
    }
}
