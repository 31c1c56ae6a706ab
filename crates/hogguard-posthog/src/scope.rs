//! PostHog's API scopes (`object:read`, `object:write`, `*`) and which held scopes grant a
//! required one.

use std::fmt;
use std::str::FromStr;

/// Read or write access to one kind of object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// `:read`.
    Read,
    /// `:write`, which PostHog also accepts wherever `:read` of the same object is required.
    Write,
}

impl Access {
    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One scope, as PostHog writes them on keys and in its schema, plus two wildcards that
/// policies and hogguard's proxy clients use.
///
/// ```
/// use hogguard_posthog::Scope;
///
/// let held: Vec<Scope> = ["feature_flag:write", "*:read"].iter().map(|s| s.parse().unwrap()).collect();
/// assert!(Scope::grants(&held, &"feature_flag:read".parse()?));
/// assert!(Scope::grants(&held, &"insight:read".parse()?));
/// assert!(!Scope::grants(&held, &"insight:write".parse()?));
/// # Ok::<(), hogguard_posthog::InvalidScope>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `object:read` or `object:write`.
    Object {
        /// The scope object (`feature_flag`, `insight`, …).
        object: String,
        /// Read or write.
        access: Access,
    },
    /// `*:read`: every object's read scope (a proxy client's scope; PostHog keys have none).
    AllRead,
    /// `*:write`: every object's write scope, and so every read scope too.
    AllWrite,
    /// `*`: everything, including endpoints whose scope the table does not know.
    All,
}

/// A scope that is not `*`, `*:read`, `*:write` or `object:read|write`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a scope (expected object:read, object:write, *:read, *:write or *)")]
pub struct InvalidScope {
    text: String,
}

impl Scope {
    /// `object:access`.
    pub fn object(object: impl Into<String>, access: Access) -> Scope {
        Scope::Object {
            object: object.into(),
            access,
        }
    }

    /// Whether `held` grants `required` the way PostHog's `APIScopePermission` does: `*`,
    /// the scope itself, or `object:write` for `object:read`; and the proxy's `*:read` and
    /// `*:write`. A wildcard as `required` is granted only by `*`.
    pub fn grants(held: &[Scope], required: &Scope) -> bool {
        held.iter().any(|scope| scope.covers(required))
    }

    /// Whether this one scope grants `required`.
    pub fn covers(&self, required: &Scope) -> bool {
        match (self, required) {
            (Scope::All, _) => true,
            (Scope::AllWrite, Scope::Object { .. } | Scope::AllRead | Scope::AllWrite) => true,
            (
                Scope::AllRead,
                Scope::Object {
                    access: Access::Read,
                    ..
                }
                | Scope::AllRead,
            ) => true,
            (
                Scope::Object { object, access },
                Scope::Object {
                    object: wanted,
                    access: wanted_access,
                },
            ) => object == wanted && access >= wanted_access,
            _ => false,
        }
    }
}

impl FromStr for Scope {
    type Err = InvalidScope;

    fn from_str(text: &str) -> Result<Scope, InvalidScope> {
        let invalid = || InvalidScope {
            text: text.to_owned(),
        };
        if text == "*" {
            return Ok(Scope::All);
        }
        let (object, access) = text.split_once(':').ok_or_else(invalid)?;
        let access = match access {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => return Err(invalid()),
        };
        if object == "*" {
            return Ok(match access {
                Access::Read => Scope::AllRead,
                Access::Write => Scope::AllWrite,
            });
        }
        let mut chars = object.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(invalid());
        }
        Ok(Scope::object(object, access))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Object { object, access } => write!(f, "{object}:{}", access.as_str()),
            Scope::AllRead => f.write_str("*:read"),
            Scope::AllWrite => f.write_str("*:write"),
            Scope::All => f.write_str("*"),
        }
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The fewest scopes that grant every one of `needed`: duplicates dropped, and `object:read`
/// dropped where `object:write` is needed too. Sorted.
pub fn minimal_scopes(needed: impl IntoIterator<Item = Scope>) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = needed.into_iter().collect();
    scopes.sort();
    scopes.dedup();
    let kept: Vec<Scope> = scopes
        .iter()
        .filter(|scope| {
            !scopes
                .iter()
                .any(|other| other != *scope && other.covers(scope))
        })
        .cloned()
        .collect();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Vec<Scope> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn write_implies_read_as_in_posthog() {
        let held = scopes(&["project:write"]);
        assert!(Scope::grants(&held, &"project:read".parse().unwrap()));
        assert!(Scope::grants(&held, &"project:write".parse().unwrap()));
        assert!(!Scope::grants(&held, &"user:read".parse().unwrap()));
        assert!(!Scope::grants(
            &scopes(&["project:read"]),
            &"project:write".parse().unwrap()
        ));
    }

    #[test]
    fn wildcards() {
        let read = scopes(&["*:read"]);
        assert!(Scope::grants(&read, &"insight:read".parse().unwrap()));
        assert!(!Scope::grants(&read, &"insight:write".parse().unwrap()));
        assert!(!Scope::grants(&read, &Scope::All));
        let write = scopes(&["*:write"]);
        assert!(Scope::grants(&write, &"insight:read".parse().unwrap()));
        assert!(Scope::grants(&write, &"insight:write".parse().unwrap()));
        assert!(!Scope::grants(&write, &Scope::All));
        assert!(Scope::grants(&scopes(&["*"]), &Scope::All));
    }

    #[test]
    fn parses_and_prints_round_trip() {
        for text in [
            "*",
            "*:read",
            "*:write",
            "feature_flag:read",
            "hog_function:write",
        ] {
            assert_eq!(text.parse::<Scope>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "feature_flag",
            "feature_flag:admin",
            ":read",
            "Flag:read",
            "a b:read",
            "*:*",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn minimal_drops_what_a_write_covers() {
        let needed = scopes(&[
            "insight:read",
            "feature_flag:read",
            "feature_flag:write",
            "insight:read",
        ]);
        assert_eq!(
            minimal_scopes(needed),
            scopes(&["feature_flag:write", "insight:read"])
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,40}") {
            if let Ok(scope) = text.parse::<Scope>() {
                proptest::prop_assert_eq!(scope.to_string(), text);
            }
        }
    }
}
