//! Framing and versioned envelopes.
//!
//! A frame is `u32` big-endian length + JSON body, at most [`MAX_FRAME`] bytes. Frame buffers are
//! wiped on drop because responses can carry credentials.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{PROTOCOL_VERSION, Request, Response};

pub const HEADER_LEN: usize = 4;
/// Generous for a status report with hundreds of profiles; anything larger is garbage or abuse.
pub const MAX_FRAME: usize = 1 << 20;

/// An encoded frame (header included) or a frame body; wiped on drop.
pub type Frame = Zeroizing<Vec<u8>>;

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("the connection closed before a complete message arrived")]
    Closed,
    #[error("message of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error(
        "protocol version mismatch: {peer_software} speaks protocol {peer}, this {local_software} \
         speaks protocol {local}; restart the daemon (`credd-daemon` from the same install) or \
         update the older one"
    )]
    VersionMismatch {
        local: u32,
        local_software: String,
        peer: u32,
        peer_software: String,
    },
    #[error("unknown message ({detail}) — is the client/daemon up to date?")]
    Malformed { detail: String },
}

#[derive(Serialize)]
struct OutEnvelope<'a, T> {
    version: u32,
    software: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// Read first, alone, so a version mismatch never shows up as a decode error.
#[derive(Deserialize)]
struct Header {
    version: u32,
    #[serde(default)]
    software: String,
}

/// `config`: the config file the client was pointed at (`--config`, `CREDD_CONFIG`), when it
/// was. Beside the request, not in it: every verb carries it, and a peer that does not know the
/// field ignores it (an older daemon serves the request as before; an older client sends none and
/// is served whatever the daemon's config).
#[derive(Deserialize)]
struct InRequest {
    request: Request,
    #[serde(default)]
    config: Option<String>,
}

#[derive(Deserialize)]
struct InResponse {
    response: Response,
}

#[derive(Serialize)]
struct OutRequest<'a> {
    request: &'a Request,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a str>,
}

#[derive(Serialize)]
struct OutResponse<'a> {
    response: &'a Response,
}

fn encode<T: Serialize>(software: &str, body: &T) -> Frame {
    let mut out = Zeroizing::new(vec![0u8; HEADER_LEN]);
    let envelope = OutEnvelope {
        version: PROTOCOL_VERSION,
        software,
        body,
    };
    // Serializing our own types into a Vec cannot fail.
    serde_json::to_writer(&mut *out, &envelope).expect("protocol messages serialize");
    let len = u32::try_from(out.len() - HEADER_LEN).unwrap_or(u32::MAX);
    out[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    out
}

/// `software` names the sender, e.g. `credd 0.1.0`, for version-mismatch messages.
pub fn encode_request(software: &str, request: &Request) -> Frame {
    encode_request_with_config(software, request, None)
}

/// [`encode_request`] from a client that was told which config file to use: `config` (absolute)
/// lets the daemon refuse it when it runs with another one.
pub fn encode_request_with_config(
    software: &str,
    request: &Request,
    config: Option<&str>,
) -> Frame {
    encode(software, &OutRequest { request, config })
}

pub fn encode_response(software: &str, response: &Response) -> Frame {
    encode(software, &OutResponse { response })
}

/// The body length announced by a frame header, checked against [`MAX_FRAME`].
pub fn frame_len(header: [u8; HEADER_LEN]) -> Result<usize, ProtoError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Blocking read of one frame body (for the client; the daemon reads asynchronously).
pub fn read_frame(reader: &mut impl Read) -> Result<Frame, ProtoError> {
    let mut header = [0u8; HEADER_LEN];
    read_exact(reader, &mut header)?;
    let len = frame_len(header)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    read_exact(reader, &mut body)?;
    Ok(body)
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), ProtoError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtoError::Closed,
        _ => ProtoError::Io(e),
    })
}

pub fn write_frame(writer: &mut impl Write, frame: &Frame) -> Result<(), ProtoError> {
    writer.write_all(frame)?;
    writer.flush()?;
    Ok(())
}

fn decode<T: DeserializeOwned>(local_software: &str, body: &[u8]) -> Result<T, ProtoError> {
    let header: Header = serde_json::from_slice(body).map_err(|e| ProtoError::Malformed {
        detail: format!("no protocol header: {e}"),
    })?;
    if header.version != PROTOCOL_VERSION {
        return Err(ProtoError::VersionMismatch {
            local: PROTOCOL_VERSION,
            local_software: local_software.to_owned(),
            peer: header.version,
            peer_software: printable(&header.software).unwrap_or_else(|| "the peer".to_owned()),
        });
    }
    serde_json::from_slice(body).map_err(|e| ProtoError::Malformed {
        detail: shown_detail(&e.to_string()),
    })
}

/// A decode error as it may be shown: serde quotes what the peer sent (`unknown variant
/// `...``), which must not put terminal escapes into replies or the log, nor a megabyte.
fn shown_detail(detail: &str) -> String {
    let mut shown: String = detail
        .chars()
        .take(MAX_DETAIL_LEN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if detail.chars().nth(MAX_DETAIL_LEN).is_some() {
        shown.push('…');
    }
    shown
}

/// Room for serde's list of the known variants (about 400 characters for a response).
const MAX_DETAIL_LEN: usize = 600;

/// The peer's name as it may be shown: printable ASCII, at most [`MAX_SOFTWARE_LEN`] characters,
/// anything else as `?`. A peer must not be able to put terminal escapes into replies or the log.
fn printable(software: &str) -> Option<String> {
    let shown: String = software
        .chars()
        .take(MAX_SOFTWARE_LEN)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    (!shown.trim().is_empty()).then_some(shown)
}

/// `credd-daemon 0.1.0-rc.1+g1234567` fits with room to spare.
const MAX_SOFTWARE_LEN: usize = 64;

/// Decodes a request body; `local_software` is the daemon's name for mismatch messages.
pub fn decode_request(local_software: &str, body: &[u8]) -> Result<Request, ProtoError> {
    decode_request_with_config(local_software, body).map(|(request, _)| request)
}

/// [`decode_request`], and the config file the client named, if it named one.
pub fn decode_request_with_config(
    local_software: &str,
    body: &[u8],
) -> Result<(Request, Option<String>), ProtoError> {
    decode::<InRequest>(local_software, body).map(|r| (r.request, r.config))
}

pub fn decode_response(local_software: &str, body: &[u8]) -> Result<Response, ProtoError> {
    decode::<InResponse>(local_software, body).map(|r| r.response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn round_trip() {
        let req = Request::Login {
            mfa_code: Some(Secret::new("123456")),
            browser: Default::default(),
        };
        let frame = encode_request("credd test", &req);
        let body = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(decode_request("credd-daemon test", &body).unwrap(), req);
    }

    #[test]
    fn the_named_config_travels_beside_the_request_and_is_optional() {
        let frame = encode_request_with_config("c", &Request::Status, Some("/home/a/c.toml"));
        let body = read_frame(&mut &frame[..]).unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains(r#""config":"/home/a/c.toml""#), "{text}");
        assert_eq!(
            decode_request_with_config("d", &body).unwrap(),
            (Request::Status, Some("/home/a/c.toml".to_owned()))
        );
        // A daemon that predates the field reads the request alone.
        assert_eq!(decode_request("d", &body).unwrap(), Request::Status);
        // A client that names no config sends no field.
        let frame = encode_request("c", &Request::Status);
        let body = read_frame(&mut &frame[..]).unwrap();
        assert!(!std::str::from_utf8(&body).unwrap().contains("config"));
        assert_eq!(
            decode_request_with_config("d", &body).unwrap(),
            (Request::Status, None)
        );
    }

    #[test]
    fn version_mismatch_names_both_sides() {
        let body = br#"{"version":99,"software":"credd 9.0.0","request":{"command":"status"}}"#;
        let err = decode_request("credd-daemon 0.1.0", body).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("credd 9.0.0 speaks protocol 99"), "{msg}");
        assert!(msg.contains("credd-daemon 0.1.0"), "{msg}");
        assert!(
            msg.contains(&format!("protocol {PROTOCOL_VERSION}")),
            "{msg}"
        );
    }

    #[test]
    fn the_peers_name_cannot_carry_terminal_escapes() {
        let body = r#"{"version":99,"software":"\u001b[2J\u001b]0;pwned\u0007evil","request":{}}"#;
        let msg = decode_request("d", body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
        assert!(
            msg.contains("?[2J?]0;pwned?evil speaks protocol 99"),
            "{msg}"
        );
        let long = format!(r#"{{"version":99,"software":"{}"}}"#, "x".repeat(5000));
        let msg = decode_request("d", long.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 400, "{msg}");
    }

    /// Found by the `control_frame` fuzz target (regressions/control_frame/): serde's message
    /// quotes the unknown variant, escapes and all.
    #[test]
    fn an_unknown_variant_cannot_carry_terminal_escapes() {
        let body = format!(
            r#"{{"version":{PROTOCOL_VERSION},"software":"x","response":{{"kind":"docker\u007frevoked\u001b[2J"}}}}"#
        );
        let msg = decode_response("c", body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.contains("docker?revoked?[2J"), "{msg}");
        let long = format!(
            r#"{{"version":{PROTOCOL_VERSION},"software":"x","request":{{"command":"{}"}}}}"#,
            "x".repeat(100_000)
        );
        let msg = decode_request("d", long.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 1000, "{}", msg.len());
    }

    #[test]
    fn unknown_message_says_so() {
        let body = format!(
            r#"{{"version":{PROTOCOL_VERSION},"software":"x","request":{{"command":"teleport"}}}}"#
        );
        let msg = decode_request("d", body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("unknown message"), "{msg}");
        assert!(msg.contains("up to date"), "{msg}");
    }

    #[test]
    fn oversized_header_is_refused_before_reading() {
        let header = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(matches!(
            frame_len(header),
            Err(ProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_frame_is_closed() {
        let frame = encode_request("c", &Request::Status);
        let cut = &frame[..frame.len() - 1];
        assert!(matches!(read_frame(&mut &cut[..]), Err(ProtoError::Closed)));
    }
}
