//! The small encodings of the wire: base64url, the PKCE S256 challenge, page tokens, and the
//! loopback redirect URIs of native clients (RFC 8252).

/// The PKCE S256 challenge of `verifier`: base64url(SHA-256(verifier)), unpadded.
pub fn s256(verifier: &str) -> String {
    base64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Unpadded base64url (RFC 4648 §5).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub(super) fn encode_page_token(scope: &str, offset: usize) -> String {
    hex::encode(format!("{scope}#{offset}"))
}

pub(super) fn decode_page_token(token: &str, scope: &str) -> Option<usize> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (from, offset) = text.rsplit_once('#')?;
    (from == scope).then(|| offset.parse().ok()).flatten()
}

/// `(host, port, path)` of an `http://` loopback URI; None for anything else.
pub(super) fn parse_loopback(uri: &str) -> Option<(&str, Option<u16>, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1").then_some((host, port, path))
}

/// Whether a redirect URI in a request matches a registered one: exactly, or (RFC 8252 §7.3,
/// as the AWS CLI registers `http://127.0.0.1/oauth/callback` and listens on any port) a
/// registered loopback URI without a port matches the same URI with any port.
pub(super) fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (parse_loopback(registered), parse_loopback(requested)) {
        (Some((host, None, path)), Some((r_host, Some(_), r_path))) => {
            host == r_host && path == r_path
        }
        _ => false,
    }
}

/// `uri` with `pairs` appended to its query.
pub(super) fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(pairs).expect("string pairs always encode");
    let joiner = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{joiner}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_and_s256_match_rfc_7636() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
