//! Read access to request headers, whatever type the caller keeps them in.

use crate::error::VerifyError;

/// Read access to a request's headers, so [`Verifier::verify`](crate::Verifier::verify) works
/// with any header container.
///
/// Implemented for slices, arrays and vectors of `(name, value)` pairs (names as `&str` or
/// `String`, values as `&str`, `String`, `&[u8]` or `Vec<u8>`), and for `http::HeaderMap` with
/// the `http` feature. Names are matched ASCII case-insensitively, as HTTP requires.
///
/// ```
/// use hogguard_webhook::Headers;
///
/// let headers = [("Webhook-Id", "msg_1"), ("content-type", "application/json")];
/// let ids: Vec<&[u8]> = headers.header_values("webhook-id").collect();
/// assert_eq!(ids, [&b"msg_1"[..]]);
/// ```
pub trait Headers {
    /// Returns the value of every header called `name` (ASCII case-insensitive), in order.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]>;
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.as_slice().header_values(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for Vec<(K, V)> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.as_slice().header_values(name)
    }
}

#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        // `HeaderMap` stores names in lower case and lower-cases `&str` keys on lookup.
        self.get_all(name).iter().map(http::HeaderValue::as_bytes)
    }
}

/// Whether `name` is a valid HTTP header name (RFC 9110 §5.1: a non-empty `token`).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// Returns the one value of header `name`, trimmed of surrounding spaces and tabs.
///
/// Missing, repeated and over-long headers are errors: a repeated header would leave two readings
/// of the same delivery (which one was verified?), and the length cap bounds the work an attacker
/// can cause.
pub(crate) fn single_value<'a, H: Headers + ?Sized>(
    headers: &'a H,
    name: &'a str,
    max_len: usize,
) -> Result<&'a [u8], VerifyError> {
    optional_single_value(headers, name, max_len)?.ok_or_else(|| VerifyError::MissingHeader {
        name: name.to_owned(),
    })
}

/// Like [`single_value`], but a missing header is `None`.
fn optional_single_value<'a, H: Headers + ?Sized>(
    headers: &'a H,
    name: &'a str,
    max_len: usize,
) -> Result<Option<&'a [u8]>, VerifyError> {
    let mut values = headers.header_values(name);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::malformed(
            name,
            "header appears more than once",
        ));
    }
    // RFC 9110 §5.5: leading and trailing whitespace is not part of a field value.
    let value = trim_optional_whitespace(value);
    if value.len() > max_len {
        return Err(VerifyError::malformed(name, "header value is too long"));
    }
    Ok(Some(value))
}

/// A header that may come under either of two names, such as `webhook-id` and Svix's `svix-id`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AliasedHeader {
    /// The name errors use when neither is present.
    pub(crate) name: &'static str,
    pub(crate) alias: &'static str,
    /// The problem reported when both are present with different values.
    pub(crate) disagreement: &'static str,
}

impl AliasedHeader {
    /// Returns the one value of the header under either name, and the name it came under.
    ///
    /// Both names with the same value are one header; with different values they are two
    /// readings of the delivery, which is refused as malformed.
    pub(crate) fn value<'a, H: Headers + ?Sized>(
        &self,
        headers: &'a H,
        max_len: usize,
    ) -> Result<(&'a [u8], &'static str), VerifyError> {
        let named = optional_single_value(headers, self.name, max_len)?;
        let aliased = optional_single_value(headers, self.alias, max_len)?;
        match (named, aliased) {
            (Some(named), Some(aliased)) if named != aliased => {
                Err(VerifyError::malformed(self.name, self.disagreement))
            }
            (Some(value), _) => Ok((value, self.name)),
            (None, Some(value)) => Ok((value, self.alias)),
            (None, None) => Err(VerifyError::MissingHeader {
                name: self.name.to_owned(),
            }),
        }
    }
}

/// Trims leading and trailing spaces and tabs (HTTP's optional whitespace), nothing else.
pub(crate) fn trim_optional_whitespace(value: &[u8]) -> &[u8] {
    let is_content = |byte: &u8| *byte != b' ' && *byte != b'\t';
    let Some(start) = value.iter().position(is_content) else {
        return &[];
    };
    let end = value
        .iter()
        .rposition(is_content)
        .map_or(start, |last| last + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_case_insensitively() {
        let headers = vec![
            ("WEBHOOK-ID".to_owned(), b"a".to_vec()),
            ("other".to_owned(), b"b".to_vec()),
        ];
        assert_eq!(
            single_value(&headers, "webhook-id", 16).ok(),
            Some(&b"a"[..])
        );
    }

    #[test]
    fn missing_repeated_and_long_headers_are_errors() {
        let headers = [("x", "1"), ("X", "2"), ("long", "123456789")];
        assert!(matches!(
            single_value(&headers, "absent", 16),
            Err(VerifyError::MissingHeader { name }) if name == "absent"
        ));
        assert!(matches!(
            single_value(&headers, "x", 16),
            Err(VerifyError::MalformedHeader { .. })
        ));
        assert!(matches!(
            single_value(&headers, "long", 8),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn header_names_are_tokens() {
        for good in [
            "X-Signature",
            "x-hub-signature-256",
            "X_Sig.v2",
            "a!#$%&'*+-.^_`|~9",
        ] {
            assert!(is_valid_name(good), "{good:?}");
        }
        for bad in [
            "",
            "X Signature",
            "x-signature:",
            " x-signature",
            "x-sig\n",
            "sig(1)",
            "é",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_optional_whitespace_is_trimmed() {
        let headers = [("a", " \t value \t "), ("b", "\n1\n"), ("c", "   ")];
        assert_eq!(single_value(&headers, "a", 16).ok(), Some(&b"value"[..]));
        assert_eq!(single_value(&headers, "b", 16).ok(), Some(&b"\n1\n"[..]));
        assert_eq!(single_value(&headers, "c", 16).ok(), Some(&b""[..]));
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map_lookup_ignores_case() {
        let mut map = http::HeaderMap::new();
        map.append("Webhook-Id", http::HeaderValue::from_static("msg_1"));
        map.append("webhook-id", http::HeaderValue::from_static("msg_2"));
        let values: Vec<&[u8]> = Headers::header_values(&map, "WEBHOOK-ID").collect();
        assert_eq!(values, [&b"msg_1"[..], &b"msg_2"[..]]);
        assert_eq!(Headers::header_values(&map, "not a valid name").count(), 0);
    }
}
