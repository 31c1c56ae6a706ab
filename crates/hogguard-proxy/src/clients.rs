//! Proxy clients: a name, a token of the proxy's own (`hgp_…`) and the scopes the client may
//! use. Tokens are compared in constant time, by their SHA-256, against every client.

use hogguard_secret::{CLIENT_TOKEN_BODY_CHARS, Secret};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use hogguard_posthog::Scope;

/// The prefix of every client token, so that scanners can tell one from other secrets.
pub const TOKEN_PREFIX: &str = hogguard_secret::CLIENT_TOKEN_PREFIX;

/// The characters of a token body: PostHog's base57 (no `0 1 O I l`).
const BASE57: &[u8] = b"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

/// A new random client token, `hgp_` and 44 base57 characters.
///
/// ```
/// let token = hogguard_proxy::new_client_token()?;
/// assert!(token.expose().starts_with("hgp_"));
/// assert_eq!(token.expose().len(), 48);
/// assert!(hogguard_proxy::is_client_token(token.expose()));
/// # Ok::<(), getrandom::Error>(())
/// ```
pub fn new_client_token() -> Result<Secret, getrandom::Error> {
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + CLIENT_TOKEN_BODY_CHARS);
    token.push_str(TOKEN_PREFIX);
    // Rejection sampling keeps every character equally likely: bytes at or above the largest
    // multiple of 57 are drawn again.
    let limit = 256 - 256 % BASE57.len();
    let mut buffer = [0u8; 64];
    while token.len() < TOKEN_PREFIX.len() + CLIENT_TOKEN_BODY_CHARS {
        getrandom::fill(&mut buffer)?;
        for byte in buffer {
            if usize::from(byte) < limit
                && token.len() < TOKEN_PREFIX.len() + CLIENT_TOKEN_BODY_CHARS
            {
                token.push(char::from(BASE57[usize::from(byte) % BASE57.len()]));
            }
        }
    }
    Ok(Secret::new(token))
}

/// Whether `text` has the shape of a client token (`hgp_` and 44 base57 characters).
pub fn is_client_token(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
        body.len() == CLIENT_TOKEN_BODY_CHARS && body.bytes().all(|b| BASE57.contains(&b))
    })
}

/// A client as configured: its name, token and scopes.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its name in `[proxy.clients.NAME]`, which audit entries carry as the user.
    pub name: String,
    /// Its token.
    pub token: Secret,
    /// The scopes it may use.
    pub scopes: Vec<Scope>,
}

/// A client list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A token that `hogguard proxy token` did not make.
    #[error(
        "the token of client `{name}` is not a hogguard client token (hgp_ and 44 letters and digits): make one with `hogguard proxy token`"
    )]
    NotAClientToken {
        /// The client.
        name: String,
    },
    /// Two clients with one token could not be told apart.
    #[error("clients `{first}` and `{second}` have the same token")]
    SharedToken {
        /// One client.
        first: String,
        /// The other.
        second: String,
    },
}

/// The clients, ready to authenticate tokens.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clients {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
struct Entry {
    digest: [u8; 32],
    client: ClientView,
}

/// What the proxy keeps of an authenticated client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientView {
    pub(crate) name: String,
    pub(crate) scopes: Vec<Scope>,
}

impl Clients {
    pub(crate) fn new(clients: &[Client]) -> Result<Clients, ClientError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(clients.len());
        for client in clients {
            if !is_client_token(client.token.expose()) {
                return Err(ClientError::NotAClientToken {
                    name: client.name.clone(),
                });
            }
            let digest = digest(client.token.expose());
            if let Some(other) = entries.iter().find(|entry| entry.digest == digest) {
                return Err(ClientError::SharedToken {
                    first: other.client.name.clone(),
                    second: client.name.clone(),
                });
            }
            entries.push(Entry {
                digest,
                client: ClientView {
                    name: client.name.clone(),
                    scopes: client.scopes.clone(),
                },
            });
        }
        Ok(Clients { entries })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The client whose token `presented` is. Every client's digest is compared, in constant
    /// time, whether or not an earlier one matched, so the time taken tells nothing of which
    /// client (or how much of a token) matched.
    pub(crate) fn authenticate(&self, presented: &str) -> Option<&ClientView> {
        let presented = digest(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(&entry.client);
            }
        }
        found
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, token: &Secret) -> Client {
        Client {
            name: name.to_owned(),
            token: token.clone(),
            scopes: vec!["feature_flag:read".parse().unwrap()],
        }
    }

    #[test]
    fn tokens_are_random_and_well_formed() {
        let first = new_client_token().unwrap();
        let second = new_client_token().unwrap();
        assert_ne!(first.expose(), second.expose());
        assert!(is_client_token(first.expose()));
        assert!(!is_client_token("hgp_short"));
        assert!(!is_client_token(&first.expose().replace("hgp_", "phx_")));
        assert!(!format!("{first:?}").contains(first.expose()));
    }

    #[test]
    fn authenticates_each_client_by_its_token_only() {
        let (reader, writer) = (new_client_token().unwrap(), new_client_token().unwrap());
        let clients =
            Clients::new(&[client("reader", &reader), client("writer", &writer)]).unwrap();
        assert_eq!(
            clients.authenticate(reader.expose()).unwrap().name,
            "reader"
        );
        assert_eq!(
            clients.authenticate(writer.expose()).unwrap().name,
            "writer"
        );
        assert!(
            clients
                .authenticate(new_client_token().unwrap().expose())
                .is_none()
        );
        assert!(clients.authenticate("").is_none());
        let truncated = &reader.expose()[..reader.expose().len() - 1];
        assert!(clients.authenticate(truncated).is_none());
    }

    #[test]
    fn refuses_foreign_and_shared_tokens() {
        let token = new_client_token().unwrap();
        let error = Clients::new(&[client("a", &Secret::new("phx_notatoken"))]).unwrap_err();
        assert!(error.to_string().contains("client `a`"), "{error}");
        assert!(!error.to_string().contains("phx_notatoken"));
        let error = Clients::new(&[client("a", &token), client("b", &token)]).unwrap_err();
        assert_eq!(
            error,
            ClientError::SharedToken {
                first: "a".into(),
                second: "b".into()
            }
        );
    }
}
