//! Entry points for the fuzz targets (`tests/fuzz/`) and their corpus replay (credd-tests'
//! `fuzz_replay`): each runs one parser on arbitrary bytes and panics when an invariant breaks.
//! Not an API: the parsers stay private to their modules.

use crate::{HEADER_LEN, ProtoError, decode_request_with_config, decode_response, read_frame};
use crate::{encode_request_with_config, encode_response};

/// The control socket's decoder, as the daemon and the client run it: a frame read from `data`
/// (length header, then body), its body decoded as a request and as a response.
///
/// Invariants: a frame read is exactly the announced bytes; a message that decodes re-encodes to
/// a frame that decodes to the same message, and encoding it again gives the same bytes; no
/// error message carries a control character (a peer must not put escapes into a terminal or the
/// log).
pub fn control_frame(data: &[u8]) {
    match read_frame(&mut &data[..]) {
        Ok(body) => {
            let len = u32::from_be_bytes(data[..HEADER_LEN].try_into().unwrap()) as usize;
            assert_eq!(&body[..], &data[HEADER_LEN..HEADER_LEN + len]);
        }
        Err(e) => check_error(&e),
    }
    // The body alone too: most inputs have no valid length header.
    match decode_request_with_config("fuzz", data) {
        Ok((request, config)) => {
            let frame = encode_request_with_config("fuzz", &request, config.as_deref());
            let body = read_frame(&mut &frame[..]).expect("an encoded frame reads back");
            let again =
                decode_request_with_config("fuzz", &body).expect("an encoded request decodes");
            assert_eq!(again, (request.clone(), config.clone()));
            let twice = encode_request_with_config("fuzz", &again.0, again.1.as_deref());
            assert_eq!(&frame[..], &twice[..], "encoding is not stable");
        }
        Err(e) => check_error(&e),
    }
    match decode_response("fuzz", data) {
        Ok(response) => {
            let frame = encode_response("fuzz", &response);
            let body = read_frame(&mut &frame[..]).expect("an encoded frame reads back");
            let again = decode_response("fuzz", &body).expect("an encoded response decodes");
            assert_eq!(again, response);
            assert_eq!(&frame[..], &encode_response("fuzz", &again)[..]);
        }
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &ProtoError) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    assert!(
        !msg.chars().any(char::is_control),
        "an error message carries a control character: {msg:?}"
    );
}
