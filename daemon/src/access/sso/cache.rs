//! The AWS CLI v2's Identity Center token cache, shared both ways: `aws sso login --sso-session
//! NAME` and botocore read and write `~/.aws/sso/cache/<sha1 hex of NAME>.json`; credd reads it
//! (a login the CLI made is not asked for again, a token botocore refreshed is picked up) and
//! writes it after each login and refresh (`sso_session` profiles of the CLI and SDKs work after
//! `credd login`). The file is 0600 like the CLI's; one that others may read is not trusted.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credd_proto::Secret;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::{Registration, SsoToken};
use crate::runtime_dir::{self, RuntimeError};

/// Token files are a few hundred bytes.
const MAX_FILE: u64 = 64 * 1024;

/// The file's fields, named as the CLI names them. Unknown fields are ignored (the CLI adds some).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    start_url: String,
    region: String,
    access_token: Secret,
    /// RFC 3339 UTC, e.g. `2026-11-30T12:00:00Z`.
    expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    /// credd's own: when the user logged in (see [`SsoToken::session_start`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credd_session_start: Option<String>,
}

/// Where the CLI keeps the token of the session `name`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    let digest = Sha1::digest(name.as_bytes());
    dir.join(format!("{}.json", hex::encode(digest)))
}

/// `~/.aws/sso/cache`, as the CLI and the SDKs resolve it.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".aws/sso/cache"))
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    File(#[from] RuntimeError),
    #[error("{path}: not an AWS CLI token cache file: {detail}")]
    Malformed { path: PathBuf, detail: String },
}

/// The token in the file, if there is one for `start_url` in `region`.
pub fn read(file: &Path, start_url: &str, region: &str) -> Result<Option<SsoToken>, CacheError> {
    let Some(bytes) = runtime_dir::read_private_file(file, MAX_FILE)? else {
        return Ok(None);
    };
    parse(file, &bytes, start_url, region)
}

/// [`read`]'s reading of the file's bytes; `file` names it in errors.
pub(crate) fn parse(
    file: &Path,
    bytes: &[u8],
    start_url: &str,
    region: &str,
) -> Result<Option<SsoToken>, CacheError> {
    let malformed = |detail: String| CacheError::Malformed {
        path: file.to_path_buf(),
        detail,
    };
    let stored: CacheFile = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if stored.start_url.trim_end_matches('/') != start_url.trim_end_matches('/')
        || stored.region != region
    {
        tracing::info!(file = %file.display(), "the AWS CLI token cache holds another start URL or Region; not using it");
        return Ok(None);
    }
    let expires_at = parse_time(&stored.expires_at).ok_or_else(|| {
        malformed(format!(
            "expiresAt {:?} is not an RFC 3339 time",
            stored.expires_at
        ))
    })?;
    let registration = match (stored.client_id, stored.client_secret) {
        (Some(client_id), Some(client_secret)) => Some(Registration {
            client_id,
            client_secret,
            expires_at: stored
                .registration_expires_at
                .as_deref()
                .and_then(parse_time)
                .unwrap_or(UNIX_EPOCH),
            pkce: None,
        }),
        _ => None,
    };
    Ok(Some(SsoToken {
        access_token: stored.access_token,
        expires_at,
        issued_at: UNIX_EPOCH,
        session_start: stored.credd_session_start.as_deref().and_then(parse_time),
        refresh_token: stored.refresh_token,
        registration,
        region: stored.region,
    }))
}

/// Writes `token` where the CLI looks for it (0600, atomically; the directory 0700 if new).
pub fn write(file: &Path, start_url: &str, token: &SsoToken) -> Result<(), RuntimeError> {
    if let Some(dir) = file.parent()
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| RuntimeError::File {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    runtime_dir::write_private_file(file, &encode(start_url, token))
}

/// The file [`write`] writes for `token`.
pub(crate) fn encode(start_url: &str, token: &SsoToken) -> zeroize::Zeroizing<Vec<u8>> {
    let stored = CacheFile {
        start_url: start_url.to_owned(),
        region: token.region.clone(),
        access_token: token.access_token.clone(),
        expires_at: format_time(token.expires_at),
        refresh_token: token.refresh_token.clone(),
        client_id: token.registration.as_ref().map(|r| r.client_id.clone()),
        client_secret: token.registration.as_ref().map(|r| r.client_secret.clone()),
        registration_expires_at: token
            .registration
            .as_ref()
            .map(|r| format_time(r.expires_at)),
        credd_session_start: token.session_start.map(format_time),
    };
    zeroize::Zeroizing::new(serde_json::to_vec(&stored).expect("token serializes"))
}

fn parse_time(text: &str) -> Option<SystemTime> {
    // The CLI writes `Z`; older tools wrote `UTC` or `+00:00`.
    let bare = ["Z", "UTC", "+00:00"]
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))
        .unwrap_or(text);
    humantime::parse_rfc3339_weak(bare)
        .ok()
        .or_else(|| humantime::parse_rfc3339(text).ok())
}

/// Whole seconds, `Z`: what the CLI writes and every reader accepts.
fn format_time(t: SystemTime) -> String {
    let whole = UNIX_EPOCH
        + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs());
    humantime::format_rfc3339_seconds(whole).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_named_as_the_cli_names_it() {
        // sha1("acme"), as `aws sso login --sso-session acme` names its cache file.
        assert_eq!(
            path(Path::new("/c"), "acme"),
            Path::new("/c/293abb6b76d7791c0732cc517d38c4b5c734b87f.json")
        );
    }

    #[test]
    fn times_read_as_the_cli_and_botocore_write_them() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(format_time(t), "2027-01-15T08:00:00Z");
        for text in [
            "2027-01-15T08:00:00Z",
            "2027-01-15T08:00:00UTC",
            "2027-01-15T08:00:00+00:00",
            "2027-01-15T08:00:00.000Z",
        ] {
            assert_eq!(parse_time(text), Some(t), "{text}");
        }
        assert_eq!(parse_time("tomorrow"), None);
    }

    #[test]
    fn round_trip_keeps_every_field_and_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = path(&dir.path().join("sso/cache"), "acme");
        let token = SsoToken {
            access_token: Secret::new("at"),
            expires_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            issued_at: UNIX_EPOCH,
            session_start: Some(UNIX_EPOCH + Duration::from_secs(1_799_990_000)),
            refresh_token: Some(Secret::new("rt")),
            registration: Some(Registration {
                client_id: "cid".into(),
                client_secret: Secret::new("cs"),
                expires_at: UNIX_EPOCH + Duration::from_secs(1_900_000_000),
                pkce: None,
            }),
            region: "us-east-1".into(),
        };
        write(&file, "https://acme.awsapps.com/start", &token).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let text = std::fs::read_to_string(&file).unwrap();
        for key in [
            "startUrl",
            "region",
            "accessToken",
            "expiresAt",
            "refreshToken",
            "clientId",
            "clientSecret",
            "registrationExpiresAt",
        ] {
            assert!(
                text.contains(&format!("\"{key}\"")),
                "{key} missing: {text}"
            );
        }
        let back = read(&file, "https://acme.awsapps.com/start/", "us-east-1")
            .unwrap()
            .unwrap();
        assert_eq!(back.access_token.expose(), "at");
        assert_eq!(back.expires_at, token.expires_at);
        assert_eq!(back.session_start, token.session_start);
        assert_eq!(back.refresh_token.unwrap().expose(), "rt");
        let reg = back.registration.unwrap();
        assert_eq!(
            (reg.client_id.as_str(), reg.client_secret.expose()),
            ("cid", "cs")
        );
        assert_eq!(
            reg.expires_at,
            UNIX_EPOCH + Duration::from_secs(1_900_000_000)
        );
        // Another instance's token is not ours.
        assert!(
            read(&file, "https://other.awsapps.com/start", "us-east-1")
                .unwrap()
                .is_none()
        );
        assert!(
            read(&file, "https://acme.awsapps.com/start", "eu-west-1")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        std::fs::write(
            &file,
            r#"{"startUrl":"u","region":"r","accessToken":"a","expiresAt":"2027-01-15T08:00:00Z"}"#,
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&file, "u", "r").unwrap_err().to_string();
        assert!(e.contains("others may read"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&file, "u", "r").unwrap().is_some());
        std::fs::write(&file, "{").unwrap();
        assert!(
            read(&file, "u", "r")
                .unwrap_err()
                .to_string()
                .contains("not an AWS CLI token cache file")
        );
    }
}
