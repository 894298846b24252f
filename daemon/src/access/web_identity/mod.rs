//! `source = "web-identity"`: an ID token from the company's OpenID provider, traded for the
//! access role's credentials with AssumeRoleWithWebIdentity (an unsigned call: no AWS key at all).
//! The token comes from credd's own login ([`oidc`]), from `token_file`, or from `token_command`;
//! the session renews itself with the refresh token, or by reading the file or running the
//! command again.

mod http;
pub mod oidc;
mod source;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use credd_proto::Secret;

use super::command;
use super::federated::{self, Federation};
use super::{AccessError, AccessSession};
use crate::clock::Clock;
use crate::config::{WebIdentityConfig, WebIdentityToken};
use crate::sts::Sts;
#[cfg(test)]
pub use http::Scripted;
pub use http::{HttpError, OidcHttp, TIMEOUT as HTTP_TIMEOUT};
pub use oidc::{IdTokens, OidcError, OidcLogin};

/// `token_command` runs unattended (at login and at each renewal): it has this long.
const TOKEN_COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// A token file holds one JWT: a few KiB.
const MAX_TOKEN_FILE: u64 = 64 * 1024;
/// How long reading `token_file` may take.
const TOKEN_FILE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct WebIdentity {
    pub config: WebIdentityConfig,
    /// DurationSeconds of each AssumeRoleWithWebIdentity.
    pub duration: Duration,
    /// credd's own login, with `oidc_issuer`.
    pub oidc: Option<Arc<OidcLogin>>,
}

impl WebIdentity {
    /// `http` reaches the identity provider, and ID tokens are checked on `clock`.
    pub fn new(
        config: &WebIdentityConfig,
        duration: Duration,
        http: OidcHttp,
        clock: Clock,
    ) -> WebIdentity {
        let oidc = match &config.token {
            WebIdentityToken::Oidc(c) => Some(Arc::new(OidcLogin::new(c.clone(), http, clock))),
            _ => None,
        };
        WebIdentity {
            config: config.clone(),
            duration,
            oidc,
        }
    }

    /// How the session renews itself, for status; `None` when it cannot (no refresh token).
    pub fn renewal(&self, refresh_token: Option<&Secret>) -> Option<String> {
        match &self.config.token {
            WebIdentityToken::Oidc(_) => {
                refresh_token.map(|_| "with the identity provider's refresh token".to_owned())
            }
            WebIdentityToken::File(path) => Some(format!("by reading {} again", path.display())),
            WebIdentityToken::Command(argv) => Some(format!("by running `{}` again", argv[0])),
        }
    }

    /// An ID token without the user: the refresh grant, the file, or the command.
    pub async fn unattended_token(
        &self,
        refresh_token: Option<&Secret>,
    ) -> Result<IdTokens, AccessError> {
        match (&self.config.token, &self.oidc) {
            (WebIdentityToken::Oidc(_), Some(oidc)) => match refresh_token {
                Some(r) => Ok(oidc.refresh(r).await?),
                None => Err(OidcError::RefreshRefused(
                    "no refresh token: add \"offline_access\" to oidc_scopes, or allow refresh \
                     tokens for this client"
                        .to_owned(),
                )
                .into()),
            },
            (WebIdentityToken::File(path), _) => {
                let token = read_token_file(path).await?;
                peeked(token, "token_file")
            }
            (WebIdentityToken::Command(argv), _) => {
                let token = command::run(argv, "token_command", TOKEN_COMMAND_LIMIT).await?;
                peeked(token, "token_command")
            }
            (WebIdentityToken::Oidc(_), None) => unreachable!("an OIDC source has its login"),
        }
    }

    /// A login without the user: an [unattended token](Self::unattended_token) traded with STS
    /// (the daemon's own login, and each renewal).
    pub async fn login_unattended(
        &self,
        sts: &Sts,
        regions: &[String],
        refresh_token: Option<&Secret>,
    ) -> Result<(AccessSession, String), AccessError> {
        let tokens = self.unattended_token(refresh_token).await?;
        self.exchange(sts, regions, tokens).await
    }

    /// AssumeRoleWithWebIdentity with `tokens`, named after the user.
    pub async fn exchange(
        &self,
        sts: &Sts,
        regions: &[String],
        tokens: IdTokens,
    ) -> Result<(AccessSession, String), AccessError> {
        let session_name = super::session_name(tokens.email.as_deref().unwrap_or(&tokens.subject));
        let (creds, identity_arn, region) = federated::assume_role_with_web_identity(
            sts,
            regions,
            &self.config.role_arn,
            &session_name,
            &tokens.id_token,
            self.duration,
        )
        .await
        .map_err(|f| explain(f, &self.config.role_arn, &tokens))?;
        let renews = self.renewal(tokens.refresh_token.as_ref());
        let session = federated::session(
            creds,
            identity_arn,
            Federation {
                who: format!(
                    "{} at {}",
                    tokens.email.as_deref().unwrap_or(&tokens.subject),
                    tokens.issuer
                ),
                refresh_token: tokens.refresh_token,
                renews,
                issued_at: sts.now(),
            },
        );
        Ok((session, region))
    }
}

async fn read_token_file(path: &std::path::Path) -> Result<Secret, AccessError> {
    let fail = |detail: String| AccessError::TokenFile {
        path: path.display().to_string(),
        detail,
    };
    let owned = path.to_path_buf();
    // On the blocking pool, under a time limit: a file on a hung network mount must not hang the
    // login.
    let read = tokio::task::spawn_blocking(move || read_token_file_now(&owned));
    match tokio::time::timeout(TOKEN_FILE_LIMIT, read).await {
        Ok(Ok(result)) => result.map_err(fail),
        Ok(Err(e)) => Err(fail(format!("cannot be read: {e}"))),
        Err(_) => Err(fail(format!(
            "could not be read within {}s",
            TOKEN_FILE_LIMIT.as_secs()
        ))),
    }
}

/// Reads the token file; `Err` says what is wrong with it.
fn read_token_file_now(path: &std::path::Path) -> Result<Secret, String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // Non-blocking: a FIFO planted there cannot make the open wait for a writer. Symlinks are
    // followed (Kubernetes' projected tokens are links); the checks are on the file opened.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file; not using it".to_owned());
    }
    // Whoever can write the file decides whose role credd assumes (and so where your tools'
    // data goes): it must be yours (or root's, as a mounted token is) and writable by no one else.
    let me = credd_proto::paths::current_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "belongs to another user (uid {}): whoever can write it chooses whose role credd \
             assumes; not using it",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "is writable by others (mode {:o}): whoever can write it chooses whose role credd \
             assumes; not using it (chmod go-w)",
            meta.mode() & 0o777
        ));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_TOKEN_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "is not text".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("is empty".to_owned());
    }
    Ok(Secret::new(token))
}

/// STS's refusal of an ID token, with what to check. Outages stay [`AccessError::Sts`] (worth
/// retrying).
fn explain(f: crate::sts::StsFailure, role_arn: &str, tokens: &IdTokens) -> AccessError {
    let advice = match f.code.as_str() {
        "InvalidIdentityToken" => format!(
            "STS did not accept the ID token from {}: the access account needs an IAM OIDC \
             identity provider for this issuer whose audiences include the client ID",
            tokens.issuer
        ),
        "IDPRejectedClaim" | "AccessDenied" => format!(
            "STS refused {role_arn} for {}: the role's trust policy must allow \
             sts:AssumeRoleWithWebIdentity for this identity provider, and its conditions (aud, \
             sub) must match the token",
            tokens.email.as_deref().unwrap_or(&tokens.subject)
        ),
        "ExpiredTokenException" | "ExpiredToken" => {
            "the ID token had expired when STS saw it: check this machine's clock".to_owned()
        }
        "IDPCommunicationError" => {
            "STS could not reach the identity provider to check the token (it retries)".to_owned()
        }
        _ => return AccessError::Sts(f),
    };
    federated::explained(f, advice)
}

/// A token another tool provides: credd reads who it names (STS checks its signature).
fn peeked(token: Secret, what: &'static str) -> Result<IdTokens, AccessError> {
    let claims = peek_claims(token.expose()).ok_or_else(|| {
        AccessError::Oidc(OidcError::BadIdToken(format!(
            "what {what} gave is not a JWT (three base64url parts separated by dots)"
        )))
    })?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(IdTokens {
        issuer: text("iss").unwrap_or_else(|| "an unnamed issuer".to_owned()),
        subject: text("sub").unwrap_or_else(|| "unknown".to_owned()),
        email: text("email"),
        id_token: token,
        refresh_token: None,
    })
}

/// The claims of a JWT, unverified.
fn peek_claims(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = jwt.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes =
        zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO (which would block a plain open until someone writes) and a directory are refused
    /// at once; a regular file of ours is read.
    #[tokio::test]
    async fn only_a_regular_token_file_is_read_and_a_fifo_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("token");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), read_token_file(&fifo))
            .await
            .expect("no hang on a FIFO")
            .unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
        let e = read_token_file(dir.path()).await.unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
        let file = dir.path().join("real");
        std::fs::write(&file, "tok3n\n").unwrap();
        assert_eq!(read_token_file(&file).await.unwrap().expose(), "tok3n");
    }

    #[test]
    fn a_jwt_names_its_user_and_anything_else_is_refused() {
        let payload =
            URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp","sub":"u1","email":"a@b.c"}"#);
        let t = peeked(
            Secret::new(format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")),
            "token_file",
        )
        .unwrap();
        assert_eq!(
            (t.issuer.as_str(), t.subject.as_str(), t.email.as_deref()),
            ("https://idp", "u1", Some("a@b.c"))
        );
        let e = peeked(Secret::new("not a token"), "token_command")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "the identity provider's ID token failed its checks: what token_command gave is not a \
             JWT (three base64url parts separated by dots)"
        );
        assert!(peek_claims("a.b.c.d").is_none());
    }
}
