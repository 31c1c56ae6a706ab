//! Request paths as PostHog's router sees them, so that the scope the proxy checks is the
//! scope of the view PostHog will run.
//!
//! Django resolves the percent-decoded path (`%2F` is a separator there), and a load balancer
//! between the proxy and PostHog may merge `//` or resolve `.` and `..`. A path is therefore
//! decoded before it is matched, and one whose meaning could change on the way (dot segments,
//! empty segments, malformed escapes, bytes that are not UTF-8, control characters) is
//! refused rather than guessed at. The request goes upstream with its path exactly as
//! received.

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// It does not start with `/`.
    #[error("the path does not start with `/`")]
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    #[error("the path has a malformed percent escape")]
    BadEscape,
    /// The decoded path is not UTF-8.
    #[error("the decoded path is not UTF-8")]
    NotUtf8,
    /// A segment is empty (`//`), `.` or `..`, which something on the way may rewrite.
    #[error("the path has an empty, `.` or `..` segment")]
    AmbiguousSegment,
    /// The decoded path holds a control character.
    #[error("the path holds a control character")]
    ControlCharacter,
}

/// The decoded segments of `raw` (the path of a request target, without its query), one
/// trailing slash ignored as PostHog's router ignores it: `/api/projects/1/` gives
/// `["api", "projects", "1"]`, and `/` gives none.
pub fn segments(raw: &str) -> Result<Vec<String>, PathRefusal> {
    let rest = raw.strip_prefix('/').ok_or(PathRefusal::NotAbsolute)?;
    let decoded = percent_decode(rest)?;
    let decoded = String::from_utf8(decoded).map_err(|_| PathRefusal::NotUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathRefusal::ControlCharacter);
    }
    let trimmed = decoded.strip_suffix('/').unwrap_or(&decoded);
    if trimmed.is_empty() {
        // `/` itself, or `//` (which a merge would turn into `/`).
        return if decoded.is_empty() {
            Ok(Vec::new())
        } else {
            Err(PathRefusal::AmbiguousSegment)
        };
    }
    trimmed
        .split('/')
        .map(|segment| match segment {
            "" | "." | ".." => Err(PathRefusal::AmbiguousSegment),
            _ => Ok(segment.to_owned()),
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<Vec<u8>, PathRefusal> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| char::from(b).to_digit(16);
            let high = bytes.get(i + 1).copied().and_then(hex);
            let low = bytes.get(i + 2).copied().and_then(hex);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(PathRefusal::BadEscape);
            };
            // Two hex digits make at most 255.
            out.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_django_and_ignores_one_trailing_slash() {
        assert_eq!(
            segments("/api/projects/1/feature_flags/").unwrap(),
            ["api", "projects", "1", "feature_flags"]
        );
        assert_eq!(
            segments("/api/projects/1/feature_flags").unwrap(),
            ["api", "projects", "1", "feature_flags"]
        );
        assert_eq!(
            segments("/api/projects/1/feature%5Fflags/").unwrap(),
            ["api", "projects", "1", "feature_flags"]
        );
        // An encoded slash separates segments in Django, so it does here.
        assert_eq!(
            segments("/api/projects/1%2Ffeature_flags").unwrap(),
            ["api", "projects", "1", "feature_flags"]
        );
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn refuses_what_could_be_rewritten_on_the_way() {
        for (path, refusal) in [
            ("api/projects", PathRefusal::NotAbsolute),
            ("/api/projects/1/%zz", PathRefusal::BadEscape),
            ("/api/projects/1/%4", PathRefusal::BadEscape),
            ("/api/%ff", PathRefusal::NotUtf8),
            ("/api//projects", PathRefusal::AmbiguousSegment),
            (
                "/api/projects/1/../feature_flags",
                PathRefusal::AmbiguousSegment,
            ),
            (
                "/api/projects/1/%2e%2e/feature_flags",
                PathRefusal::AmbiguousSegment,
            ),
            ("/api/./projects", PathRefusal::AmbiguousSegment),
            ("/api/projects//", PathRefusal::AmbiguousSegment),
            ("//", PathRefusal::AmbiguousSegment),
            ("/api/%0a", PathRefusal::ControlCharacter),
        ] {
            assert_eq!(segments(path), Err(refusal), "{path}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_path_is_decoded_or_refused(path in "\\PC{0,80}") {
            if let Ok(segments) = segments(&path) {
                for segment in &segments {
                    proptest::prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                    proptest::prop_assert!(!segment.contains('/'));
                }
            }
        }

        #[test]
        fn plain_segments_come_back_as_they_were(parts in proptest::collection::vec("[a-z0-9_@-]{1,12}", 0..6)) {
            let path = format!("/{}", parts.join("/"));
            proptest::prop_assert_eq!(segments(&path).unwrap(), parts.clone());
            proptest::prop_assert_eq!(segments(&format!("{path}/")).unwrap_or_default().len(), parts.len());
        }
    }
}
