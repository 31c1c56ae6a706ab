//! The private-API client for one personal API key, typed by what the key may do.
//!
//! hogguard follows the service-account pattern: the key that reads (audits, the activity log)
//! is not the key that writes (rotating project secret API keys). [`PostHogClient<Reader>`]
//! has only read operations and refuses a key that can write; [`PostHogClient<Writer>`] adds
//! the write operations and refuses a key without the write scope they need. Both check the
//! key's real scopes once, with `GET /api/personal_api_keys/@current/`, when they are built.
//!
//! Write operations do not exist on a reader, so calling one does not compile:
//!
//! ```compile_fail,E0599
//! use hogguard_posthog::{PostHogClient, Reader};
//!
//! fn rotate(client: &PostHogClient<Reader>) {
//!     client.roll_project_secret_key(1, "key-id");
//! }
//! ```
//!
//! The same call on a writer does:
//!
//! ```no_run
//! use hogguard_posthog::{PostHogClient, Writer};
//!
//! fn rotate(client: &PostHogClient<Writer>) {
//!     let _ = client.roll_project_secret_key(1, "key-id");
//! }
//! ```

use std::fmt;
use std::marker::PhantomData;

use hogguard_secret::{CredentialKind, Secret};

use crate::config::ClientConfig;
use crate::error::Error;
use crate::hosts::{BaseUrl, Hosts};
use crate::model::{
    ActivityEntry, ActivityLogPage, ActivityLogQuery, CursorPage, ListPage, NewProjectSecretKey,
    PersonalKeyInfo, ProjectSecretKeyInfo, UserInfo, WithValue,
};
use crate::query;
use crate::transport::{Call, Method, Repeat, Transport};

/// The path of the key-metadata probe, which answers for any valid personal API key whatever
/// its scopes.
pub(crate) const CURRENT_KEY_PATH: &str = "/api/personal_api_keys/@current/";
/// The path of the user probe, the fallback when `@current` is not available.
pub(crate) const ME_PATH: &str = "/api/users/@me/";
/// Rows fetched per page when listing project secret API keys.
const LIST_PAGE_SIZE: usize = 100;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Reader {}
    impl Sealed for super::Writer {}
}

/// What a [`PostHogClient`] is allowed to do: [`Reader`] or [`Writer`]. Sealed.
pub trait Role: sealed::Sealed {
    /// The role's name in messages: `reader` or `writer`.
    const NAME: &'static str;

    /// Refuses a key whose scopes do not fit the role.
    fn admit(key: &PersonalKeyInfo) -> Result<(), Error>;
}

/// The read-only role: a key holding `*` or any `<object>:write` scope is refused.
#[derive(Debug)]
pub enum Reader {}

/// The role that manages project secret API keys: the key must hold
/// [`Writer::REQUIRED_SCOPE`] (or `*`).
#[derive(Debug)]
pub enum Writer {}

impl Writer {
    /// The scope PostHog requires to create, roll and delete project secret API keys.
    pub const REQUIRED_SCOPE: &'static str = "project:write";
}

impl Role for Reader {
    const NAME: &'static str = "reader";

    fn admit(key: &PersonalKeyInfo) -> Result<(), Error> {
        match key.first_write_scope() {
            Some(scope) => Err(Error::ReaderHoldsWriteScope {
                scope: scope.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

impl Role for Writer {
    const NAME: &'static str = "writer";

    fn admit(key: &PersonalKeyInfo) -> Result<(), Error> {
        if key.grants(Writer::REQUIRED_SCOPE) {
            Ok(())
        } else {
            Err(Error::WriterLacksScope {
                scope: Writer::REQUIRED_SCOPE.to_owned(),
            })
        }
    }
}

/// A client that may only read.
pub type ReaderClient = PostHogClient<Reader>;
/// A client that may also manage project secret API keys.
pub type WriterClient = PostHogClient<Writer>;

/// A client of PostHog's private API, authenticated by one personal API key whose scopes were
/// checked against the role `R` when it was built.
///
/// ```
/// use hogguard_posthog::{ClientConfig, Error, Hosts, PostHogClient, Reader};
/// use hogguard_secret::Secret;
/// use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, UserSpec};
///
/// let hog = FakeHog::start();
/// let user = hog.add_user(UserSpec::new("audit@acme.test"));
/// let read = hog.add_personal_key(user.id, PersonalKeySpec::new("audit").scopes(["activity_log:read"]));
/// let admin = hog.add_personal_key(user.id, PersonalKeySpec::new("admin").scopes(["*"]));
/// let hosts = Hosts::new(hog.base_url())?;
///
/// let reader = PostHogClient::<Reader>::connect(&hosts, &ClientConfig::default(), Secret::new(read.value))?;
/// assert_eq!(reader.key_info().scopes, ["activity_log:read"]);
///
/// let refused = PostHogClient::<Reader>::connect(&hosts, &ClientConfig::default(), Secret::new(admin.value));
/// assert_eq!(refused.unwrap_err(), Error::ReaderHoldsWriteScope { scope: "*".into() });
/// # Ok::<(), Error>(())
/// ```
pub struct PostHogClient<R: Role> {
    transport: Transport,
    api: BaseUrl,
    key: Secret,
    key_info: PersonalKeyInfo,
    role: PhantomData<R>,
}

impl<R: Role> fmt::Debug for PostHogClient<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostHogClient")
            .field("role", &R::NAME)
            .field("api", &self.api)
            .field("key", &self.key)
            .field("scopes", &self.key_info.scopes)
            .finish_non_exhaustive()
    }
}

impl<R: Role> PostHogClient<R> {
    /// Builds a client on `hosts`' API host for `key`, a personal API key, after checking its
    /// scopes against the role.
    ///
    /// Fails with [`Error::UnsupportedCredential`] for a credential that is not a personal
    /// API key, [`Error::InvalidCredential`] when PostHog does not know the key,
    /// [`Error::ReaderHoldsWriteScope`] or [`Error::WriterLacksScope`] when its scopes do not
    /// fit, or any transport error.
    pub fn connect(hosts: &Hosts, config: &ClientConfig, key: Secret) -> Result<Self, Error> {
        if let Some(kind) = CredentialKind::from_value(key.expose())
            .filter(|kind| *kind != CredentialKind::PersonalApiKey)
        {
            return Err(Error::UnsupportedCredential {
                kind: kind.as_str(),
                why: "the private-API client authenticates with a personal API key (phx_)",
            });
        }
        let transport = Transport::new(config);
        let api = hosts.api().clone();
        let key_info: PersonalKeyInfo = transport.get_json(api.join(CURRENT_KEY_PATH), &key)?;
        R::admit(&key_info)?;
        Ok(PostHogClient {
            transport,
            api,
            key,
            key_info,
            role: PhantomData,
        })
    }

    /// The key's metadata as PostHog reported it when the client was built.
    pub fn key_info(&self) -> &PersonalKeyInfo {
        &self.key_info
    }

    /// The API host this client talks to.
    pub fn api_host(&self) -> &BaseUrl {
        &self.api
    }

    /// The key's metadata now (`GET /api/personal_api_keys/@current/`).
    pub fn current_key(&self) -> Result<PersonalKeyInfo, Error> {
        self.get(CURRENT_KEY_PATH.to_owned())
    }

    /// The key's owner (`GET /api/users/@me/`, needs `user:read`).
    pub fn me(&self) -> Result<UserInfo, Error> {
        self.get(ME_PATH.to_owned())
    }

    /// Every project secret API key of a project, newest first (needs `project:read`).
    pub fn project_secret_keys(&self, project_id: u64) -> Result<Vec<ProjectSecretKeyInfo>, Error> {
        let mut keys = Vec::new();
        loop {
            let path = format!(
                "{}?limit={LIST_PAGE_SIZE}&offset={}",
                secret_keys_path(project_id),
                keys.len()
            );
            match self.get::<ListPage<ProjectSecretKeyInfo>>(path)? {
                ListPage::Plain(all) => return Ok(all),
                ListPage::Paginated { results, next } => {
                    let last = next.is_none() || results.is_empty();
                    keys.extend(results);
                    if last {
                        return Ok(keys);
                    }
                }
            }
        }
    }

    /// One project secret API key (needs `project:read`).
    pub fn project_secret_key(
        &self,
        project_id: u64,
        key_id: &str,
    ) -> Result<ProjectSecretKeyInfo, Error> {
        self.get(secret_key_path(project_id, key_id))
    }

    /// One page of a project's activity log, newest first (needs `activity_log:read`);
    /// `cursor` is a previous page's [`next_cursor`](ActivityLogPage::next_cursor).
    pub fn activity_log_page(
        &self,
        project_id: u64,
        query: &ActivityLogQuery,
        cursor: Option<&str>,
    ) -> Result<ActivityLogPage, Error> {
        let mut params = Vec::new();
        if let Some(scope) = &query.scope {
            params.push(format!("scope={}", query::encode(scope)));
        }
        if let Some(item_id) = &query.item_id {
            params.push(format!("item_id={}", query::encode(item_id)));
        }
        if query.include_organization_scoped {
            params.push("include_organization_scoped=1".to_owned());
        }
        if let Some(page_size) = query.page_size {
            params.push(format!("page_size={page_size}"));
        }
        if let Some(cursor) = cursor {
            params.push(format!("cursor={}", query::encode(cursor)));
        }
        let mut path = format!("/api/projects/{project_id}/activity_log/");
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        let page: CursorPage = self.get(path)?;
        // Only the cursor is taken from the `next` link: following the link itself would send
        // the key to whatever host PostHog put in it.
        Ok(ActivityLogPage {
            entries: page.results,
            next_cursor: page
                .next
                .as_deref()
                .and_then(|next| query::param(next, "cursor")),
        })
    }

    /// Up to `limit` rows of a project's activity log, newest first, following the cursor
    /// across pages.
    pub fn activity_log(
        &self,
        project_id: u64,
        query: &ActivityLogQuery,
        limit: usize,
    ) -> Result<Vec<ActivityEntry>, Error> {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        while entries.len() < limit {
            let page = self.activity_log_page(project_id, query, cursor.as_deref())?;
            entries.extend(page.entries);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: String) -> Result<T, Error> {
        self.transport.get_json(self.api.join(&path), &self.key)
    }
}

impl PostHogClient<Writer> {
    /// Creates a project secret API key; the answer holds its value, shown only this once.
    /// Never retried after a server error: the key may have been made.
    pub fn create_project_secret_key(
        &self,
        project_id: u64,
        label: &str,
        scopes: &[&str],
    ) -> Result<NewProjectSecretKey, Error> {
        let body = serde_json::json!({ "label": label, "scopes": scopes })
            .to_string()
            .into_bytes();
        let answer = self.transport.send(&Call {
            method: Method::Post,
            url: self.api.join(&secret_keys_path(project_id)),
            bearer: Some(&self.key),
            json_body: Some(body),
            repeat: Repeat::Unsafe,
            body_secret: None,
        })?;
        NewProjectSecretKey::from_answer(answer.json::<WithValue>()?)
    }

    /// Rolls a project secret API key: the old value stops working at once and the answer
    /// holds the new one. Never retried after a server error: the roll may have happened.
    pub fn roll_project_secret_key(
        &self,
        project_id: u64,
        key_id: &str,
    ) -> Result<NewProjectSecretKey, Error> {
        let answer = self.transport.send(&Call {
            method: Method::Post,
            url: self
                .api
                .join(&format!("{}roll/", secret_key_path(project_id, key_id))),
            bearer: Some(&self.key),
            json_body: None,
            repeat: Repeat::Unsafe,
            body_secret: None,
        })?;
        NewProjectSecretKey::from_answer(answer.json::<WithValue>()?)
    }

    /// Deletes a project secret API key. Retried after a server error like a read, so a
    /// delete whose first answer was lost can come back [`Error::NotFound`].
    pub fn delete_project_secret_key(&self, project_id: u64, key_id: &str) -> Result<(), Error> {
        self.transport.send(&Call {
            method: Method::Delete,
            url: self.api.join(&secret_key_path(project_id, key_id)),
            bearer: Some(&self.key),
            json_body: None,
            repeat: Repeat::Safe,
            body_secret: None,
        })?;
        Ok(())
    }
}

fn secret_keys_path(project_id: u64) -> String {
    format!("/api/projects/{project_id}/project_secret_api_keys/")
}

fn secret_key_path(project_id: u64, key_id: &str) -> String {
    format!(
        "{}{}/",
        secret_keys_path(project_id),
        query::segment(key_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_with(scopes: &[&str]) -> PersonalKeyInfo {
        serde_json::from_value(serde_json::json!({
            "id": "k1", "label": "ci", "created_at": "2025-01-01T00:00:00Z", "user_id": 7,
            "scopes": scopes
        }))
        .unwrap()
    }

    #[test]
    fn reader_refuses_any_write_scope() {
        assert_eq!(
            Reader::admit(&key_with(&["user:read", "activity_log:read"])),
            Ok(())
        );
        assert_eq!(
            Reader::admit(&key_with(&["user:read", "feature_flag:write"])),
            Err(Error::ReaderHoldsWriteScope {
                scope: "feature_flag:write".to_owned()
            })
        );
        assert_eq!(
            Reader::admit(&key_with(&[])),
            Err(Error::ReaderHoldsWriteScope {
                scope: "*".to_owned()
            })
        );
    }

    #[test]
    fn writer_needs_project_write() {
        assert_eq!(Writer::admit(&key_with(&["project:write"])), Ok(()));
        assert_eq!(Writer::admit(&key_with(&["*"])), Ok(()));
        assert_eq!(
            Writer::admit(&key_with(&["project:read", "insight:write"])),
            Err(Error::WriterLacksScope {
                scope: "project:write".to_owned()
            })
        );
    }

    #[test]
    fn key_ids_cannot_escape_their_path() {
        assert_eq!(
            secret_key_path(3, "../../users/@me"),
            "/api/projects/3/project_secret_api_keys/..%2F..%2Fusers%2F%40me/"
        );
    }
}
