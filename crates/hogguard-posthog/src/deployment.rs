//! Where a key may be at home: one of the two cloud regions, or a self-hosted instance.

use crate::error::Error;
use crate::hosts::{BaseUrl, Hosts, Region};

/// The private-API hosts of the two cloud regions. [`Regions::cloud`] is PostHog Cloud; tests
/// point both at local stand-ins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regions {
    us: BaseUrl,
    eu: BaseUrl,
}

impl Regions {
    /// PostHog Cloud: `https://us.posthog.com` and `https://eu.posthog.com`.
    pub fn cloud() -> Regions {
        Regions {
            us: Hosts::cloud(Region::Us).api().clone(),
            eu: Hosts::cloud(Region::Eu).api().clone(),
        }
    }

    /// Regions played by other hosts (tests, proxies).
    pub fn new(us: &str, eu: &str) -> Result<Regions, Error> {
        Ok(Regions {
            us: BaseUrl::parse(us)?,
            eu: BaseUrl::parse(eu)?,
        })
    }

    /// A region's private-API host.
    pub fn api(&self, region: Region) -> &BaseUrl {
        match region {
            Region::Us => &self.us,
            Region::Eu => &self.eu,
        }
    }
}

/// Which PostHog a key may belong to, so verification and leak reports know whom to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// PostHog Cloud: keys are region-bound, so both regions are asked, `first` first.
    Cloud {
        /// The regions' hosts.
        regions: Regions,
        /// The region asked first (the configured one).
        first: Region,
    },
    /// A self-hosted instance: the only place to ask.
    SelfHosted {
        /// Its private-API host.
        api: BaseUrl,
    },
}

impl Deployment {
    /// The deployment `hosts` point at: PostHog Cloud (configured region first) for a cloud
    /// host, else the self-hosted instance.
    pub fn of(hosts: &Hosts) -> Deployment {
        match hosts.region() {
            Some(first) => Deployment::Cloud {
                regions: Regions::cloud(),
                first,
            },
            None => Deployment::SelfHosted {
                api: hosts.api().clone(),
            },
        }
    }

    /// The places to ask, in order; `region` is `None` for a self-hosted instance.
    pub(crate) fn targets(&self) -> Vec<(Option<Region>, &BaseUrl)> {
        match self {
            Deployment::Cloud { regions, first } => [*first, first.other()]
                .into_iter()
                .map(|region| (Some(region), regions.api(region)))
                .collect(),
            Deployment::SelfHosted { api } => vec![(None, api)],
        }
    }
}

/// How a place is named in reasons: the region, or `self-hosted`.
pub(crate) fn place_name(region: Option<Region>) -> &'static str {
    region.map_or("self-hosted", Region::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_hosts_ask_both_regions_configured_first() {
        let deployment = Deployment::of(&Hosts::cloud(Region::Eu));
        let targets: Vec<(Option<Region>, &str)> = deployment
            .targets()
            .into_iter()
            .map(|(region, api)| (region, api.as_str()))
            .collect();
        assert_eq!(
            targets,
            [
                (Some(Region::Eu), "https://eu.posthog.com"),
                (Some(Region::Us), "https://us.posthog.com")
            ]
        );
    }

    #[test]
    fn self_hosted_asks_only_itself() {
        let deployment = Deployment::of(&Hosts::new("https://ph.example").unwrap());
        let targets: Vec<(Option<Region>, &str)> = deployment
            .targets()
            .into_iter()
            .map(|(region, api)| (region, api.as_str()))
            .collect();
        assert_eq!(targets, [(None, "https://ph.example")]);
    }
}
