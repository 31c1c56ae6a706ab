//! Where PostHog lives: the private-API host, the capture (ingest) host, and the two cloud
//! regions a key may belong to.

use std::fmt;

use crate::error::Error;

/// A PostHog Cloud region. Credentials are region-bound: a key issued in one region is unknown
/// to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// US Cloud (`us.posthog.com`, also the legacy `app.posthog.com`).
    Us,
    /// EU Cloud (`eu.posthog.com`).
    Eu,
}

impl Region {
    /// Both regions, US first.
    pub const ALL: [Region; 2] = [Region::Us, Region::Eu];

    /// The region's private-API base URL.
    pub fn api_url(self) -> &'static str {
        match self {
            Region::Us => "https://us.posthog.com",
            Region::Eu => "https://eu.posthog.com",
        }
    }

    /// The region's capture base URL.
    pub fn ingest_url(self) -> &'static str {
        match self {
            Region::Us => "https://us.i.posthog.com",
            Region::Eu => "https://eu.i.posthog.com",
        }
    }

    /// The other region.
    pub fn other(self) -> Region {
        match self {
            Region::Us => Region::Eu,
            Region::Eu => Region::Us,
        }
    }

    /// The region's stable name in machine-readable output: `us` or `eu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }

    /// The cloud region a host name belongs to, accepting the legacy `app.posthog.com` and the
    /// capture hosts (SDK configurations often name `us.i.posthog.com` as "the host").
    fn of_host_name(host_name: &str) -> Option<Region> {
        match host_name {
            "us.posthog.com" | "app.posthog.com" | "us.i.posthog.com" => Some(Region::Us),
            "eu.posthog.com" | "eu.i.posthog.com" => Some(Region::Eu),
            _ => None,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checked base URL: `http` or `https`, a host, an optional path prefix, and no user info,
/// query, fragment or trailing slash, so request paths can be appended to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Parses `https://host[:port][/prefix]`; a bare `host` means `https://host`. Hosts under
    /// `posthog.com` always get `https`, so a key is never sent to PostHog in clear text.
    pub fn parse(text: &str) -> Result<BaseUrl, Error> {
        let text = text.trim();
        let invalid = |reason: &'static str| Error::InvalidHost {
            // User info may hold a credential; such a value is never echoed.
            host: if text.contains('@') {
                "(a URL with user info, not shown)".to_owned()
            } else {
                text.to_owned()
            },
            reason,
        };
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_owned(), text),
        };
        if scheme != "https" && scheme != "http" {
            return Err(invalid("the scheme must be http or https"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(invalid("there is no host name"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "user info is not allowed: credentials never go into a URL",
            ));
        }
        let authority_ok = authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
        if !authority_ok {
            return Err(invalid("the host name holds characters a host cannot have"));
        }
        if path
            .bytes()
            .any(|b| b == b'?' || b == b'#' || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(invalid("a query, fragment or space is not allowed"));
        }
        let authority = authority.to_ascii_lowercase();
        let host_name = host_name_of(&authority);
        let scheme = if host_name == "posthog.com" || host_name.ends_with(".posthog.com") {
            "https"
        } else {
            scheme.as_str()
        };
        let path = path.trim_end_matches('/');
        Ok(BaseUrl(format!("{scheme}://{authority}{path}")))
    }

    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host name, without scheme, port or path.
    pub fn host_name(&self) -> &str {
        let authority = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = authority.split('/').next().unwrap_or("");
        host_name_of(authority)
    }

    /// `path` (starting with `/`) appended to this base.
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host name of an authority (`host`, `host:port`, `[v6]:port`).
fn host_name_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(host, _)| &host[1..]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Host settings from one source (the caller's overrides, such as the `POSTHOG_HOST` variable,
/// or `hogguard.toml`'s `[posthog]` table). The crate never reads the environment itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// The private-API host.
    pub host: Option<String>,
    /// The capture host.
    pub ingest_host: Option<String>,
}

/// Where to send private-API calls and captured events.
///
/// ```
/// use hogguard_posthog::{HostSettings, Hosts, Region};
///
/// let config = HostSettings { host: Some("eu.posthog.com".into()), ingest_host: None };
/// let hosts = Hosts::resolve(&HostSettings::default(), &config)?;
/// assert_eq!(hosts.api().as_str(), "https://eu.posthog.com");
/// assert_eq!(hosts.ingest().as_str(), "https://eu.i.posthog.com");
/// assert_eq!(hosts.region(), Some(Region::Eu));
///
/// let env = HostSettings { host: Some("https://posthog.internal".into()), ingest_host: None };
/// let hosts = Hosts::resolve(&env, &config)?;
/// assert_eq!(hosts.ingest().as_str(), "https://posthog.internal");
/// assert_eq!(hosts.region(), None);
/// # Ok::<(), hogguard_posthog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    api: BaseUrl,
    ingest: BaseUrl,
    region: Option<Region>,
}

impl Hosts {
    /// A PostHog Cloud region's hosts.
    pub fn cloud(region: Region) -> Hosts {
        Hosts {
            api: BaseUrl(region.api_url().to_owned()),
            ingest: BaseUrl(region.ingest_url().to_owned()),
            region: Some(region),
        }
    }

    /// The hosts for a private-API host: a cloud host (`us`, `eu`, legacy `app`, or a capture
    /// host) becomes that region's canonical pair; any other host is self-hosted and captures
    /// on the same host.
    pub fn new(api_host: &str) -> Result<Hosts, Error> {
        let api = BaseUrl::parse(api_host)?;
        match Region::of_host_name(api.host_name()) {
            Some(region) => Ok(Hosts::cloud(region)),
            None => Ok(Hosts {
                ingest: api.clone(),
                api,
                region: None,
            }),
        }
    }

    /// These hosts with capture sent to `ingest_host` instead.
    pub fn with_ingest(self, ingest_host: &str) -> Result<Hosts, Error> {
        Ok(Hosts {
            ingest: BaseUrl::parse(ingest_host)?,
            ..self
        })
    }

    /// Applies overrides field by field, `env` winning over `config`; the API host defaults
    /// to US Cloud and the ingest host to the one that goes with the API host.
    pub fn resolve(env: &HostSettings, config: &HostSettings) -> Result<Hosts, Error> {
        let hosts = match env.host.as_deref().or(config.host.as_deref()) {
            Some(host) => Hosts::new(host)?,
            None => Hosts::default(),
        };
        match env.ingest_host.as_deref().or(config.ingest_host.as_deref()) {
            Some(ingest) => hosts.with_ingest(ingest),
            None => Ok(hosts),
        }
    }

    /// The private-API base URL.
    pub fn api(&self) -> &BaseUrl {
        &self.api
    }

    /// The capture base URL.
    pub fn ingest(&self) -> &BaseUrl {
        &self.ingest
    }

    /// The cloud region of the API host; `None` when self-hosted.
    pub fn region(&self) -> Option<Region> {
        self.region
    }
}

impl Default for Hosts {
    /// US Cloud.
    fn default() -> Hosts {
        Hosts::cloud(Region::Us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: Option<&str>, ingest: Option<&str>) -> HostSettings {
        HostSettings {
            host: host.map(str::to_owned),
            ingest_host: ingest.map(str::to_owned),
        }
    }

    #[test]
    fn defaults_to_us_cloud() {
        let hosts = Hosts::resolve(&HostSettings::default(), &HostSettings::default()).unwrap();
        assert_eq!(hosts.api().as_str(), "https://us.posthog.com");
        assert_eq!(hosts.ingest().as_str(), "https://us.i.posthog.com");
        assert_eq!(hosts.region(), Some(Region::Us));
    }

    #[test]
    fn cloud_hosts_are_canonical_and_https() {
        for (given, api, ingest) in [
            (
                "app.posthog.com",
                "https://us.posthog.com",
                "https://us.i.posthog.com",
            ),
            (
                "http://US.posthog.com/",
                "https://us.posthog.com",
                "https://us.i.posthog.com",
            ),
            (
                "https://us.i.posthog.com",
                "https://us.posthog.com",
                "https://us.i.posthog.com",
            ),
            (
                "eu.posthog.com",
                "https://eu.posthog.com",
                "https://eu.i.posthog.com",
            ),
            (
                "https://eu.i.posthog.com/",
                "https://eu.posthog.com",
                "https://eu.i.posthog.com",
            ),
        ] {
            let hosts = Hosts::new(given).unwrap();
            assert_eq!(
                (hosts.api().as_str(), hosts.ingest().as_str()),
                (api, ingest),
                "{given}"
            );
        }
    }

    #[test]
    fn self_hosted_captures_on_the_same_host() {
        let hosts = Hosts::new("http://127.0.0.1:8000/posthog/").unwrap();
        assert_eq!(hosts.api().as_str(), "http://127.0.0.1:8000/posthog");
        assert_eq!(hosts.ingest().as_str(), "http://127.0.0.1:8000/posthog");
        assert_eq!(hosts.region(), None);
        assert_eq!(hosts.api().host_name(), "127.0.0.1");
    }

    #[test]
    fn env_wins_field_by_field() {
        let env = settings(None, Some("https://capture.example"));
        let config = settings(Some("eu.posthog.com"), Some("https://ignored.example"));
        let hosts = Hosts::resolve(&env, &config).unwrap();
        assert_eq!(hosts.api().as_str(), "https://eu.posthog.com");
        assert_eq!(hosts.ingest().as_str(), "https://capture.example");

        let env = settings(Some("https://ph.example"), None);
        let hosts = Hosts::resolve(&env, &config).unwrap();
        assert_eq!(hosts.api().as_str(), "https://ph.example");
        assert_eq!(hosts.ingest().as_str(), "https://ignored.example");
    }

    #[test]
    fn refuses_hosts_that_could_leak_or_misroute() {
        let reason = |text: &str| match BaseUrl::parse(text) {
            Err(Error::InvalidHost { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            reason("ftp://x.example"),
            "the scheme must be http or https"
        );
        assert_eq!(reason("https://"), "there is no host name");
        assert_eq!(
            reason("https://a.example/?token=1"),
            "a query, fragment or space is not allowed"
        );
        assert_eq!(
            reason("https://bad host"),
            "the host name holds characters a host cannot have"
        );
        let error = BaseUrl::parse("https://me:phx_SecretValue@h.example").unwrap_err();
        assert!(!error.to_string().contains("SecretValue"), "{error}");
        assert_eq!(
            BaseUrl::parse("http://[::1]:9/").unwrap().host_name(),
            "::1"
        );
    }
}
