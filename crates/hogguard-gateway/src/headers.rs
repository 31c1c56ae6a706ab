//! Header rules for forwarding: which headers stop at the gateway, and `X-Forwarded-For`.

use std::net::IpAddr;

use http::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus the non-standard `Keep-Alive` and
/// `Proxy-Connection`): they describe one connection, not the message, so a proxy must not pass
/// them on. hyper frames the forwarded message itself.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// `X-Forwarded-For`, the de facto standard list of client addresses a request passed through.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Removes hop-by-hop headers: the fixed list and every header that `Connection` names. Any
/// proxy of hogguard's (this gateway, the PostHog API proxy) forwards a message without them.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds the peer's address to `X-Forwarded-For`, after any addresses already listed (by a TLS
/// terminator in front, say).
///
/// Several `X-Forwarded-For` lines are merged into one `a, b, c` value, because many upstreams
/// read only the first line.
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    // An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`; forward the IPv4 form.
    let peer = peer.to_canonical().to_string();
    let mut list = Vec::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        list.extend_from_slice(value.as_bytes());
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(peer.as_bytes());
    // Existing values were valid header values and the address is plain ASCII, so the join is
    // valid too; should that ever fail, the original header is left as it was.
    if let Ok(value) = HeaderValue::from_bytes(&list) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut headers = header_map(&[
            ("connection", "keep-alive, X-Drop-Me"),
            ("connection", "x-also-dropped"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic cHJveHk6cGFzcw=="),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-drop-me", "1"),
            ("x-also-dropped", "1"),
            ("webhook-id", "msg_1"),
            ("content-type", "application/json"),
        ]);
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "webhook-id"]);
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_one_merged_list() {
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, "127.0.0.1".parse().unwrap());
        assert_eq!(headers[&X_FORWARDED_FOR], "127.0.0.1");

        let mut headers = header_map(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.2, 192.0.2.1"),
        ]);
        append_forwarded_for(&mut headers, "::ffff:10.0.0.5".parse().unwrap());
        assert_eq!(headers.get_all(&X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(
            headers[&X_FORWARDED_FOR],
            "203.0.113.9, 198.51.100.2, 192.0.2.1, 10.0.0.5"
        );

        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, "::1".parse().unwrap());
        assert_eq!(headers[&X_FORWARDED_FOR], "::1");
    }
}
