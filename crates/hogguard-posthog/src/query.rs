//! Percent-encoding for path segments and query values, and reading one parameter back out of
//! a pagination link.

/// `text` with everything but RFC 3986 unreserved characters percent-encoded.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` as one path segment: [`encode`]d, with `.` and `..` spelled `%2E` so a segment can
/// never climb out of its path.
pub(crate) fn segment(text: &str) -> String {
    match text {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => encode(text),
    }
}

/// The decoded value of query parameter `name` in `url`.
pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode("a/b?c d=é~"), "a%2Fb%3Fc%20d%3D%C3%A9~");
    }

    #[test]
    fn segments_cannot_be_dot_segments() {
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("."), "%2E");
        assert_eq!(segment("a.b"), "a.b");
    }

    #[test]
    fn reads_a_parameter_back() {
        let next = "http://h/api/projects/1/activity_log/?scope=PersonalAPIKey&cursor=bz0xMDA%3D";
        assert_eq!(param(next, "cursor").as_deref(), Some("bz0xMDA="));
        assert_eq!(param(next, "scope").as_deref(), Some("PersonalAPIKey"));
        assert_eq!(param(next, "page"), None);
        assert_eq!(param("http://h/x", "cursor"), None);
        assert_eq!(param("http://h/?a=%zz+1", "a").as_deref(), Some("%zz 1"));
    }
}
