//! SSO OIDC: client registration (kept and reused), the two ways to authorize (the device grant,
//! and the authorization code with PKCE through a loopback redirect), and the refresh grant.

use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_ssooidc::error::{ProvideErrorMetadata, SdkError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use credd_proto::{Authorization, LoginMethod, Secret};
use sha2::{Digest, Sha256};

use super::{IdentityCenter, Registration, SsoError, SsoToken};
use crate::access::BoxFuture;
use crate::access::loopback::{CallbackError, Loopback};
use crate::clock::unix;
use crate::sdk::Limits;

/// The scope of an `sso-session` login: refreshable tokens for account access.
const SCOPE: &str = "sso:account:access";
const CLIENT_NAME: &str = "credd";
const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const GRANT_CODE: &str = "authorization_code";
const GRANT_REFRESH: &str = "refresh_token";
/// A browser login the user never finishes lapses after this long (the device grant's own
/// expiry is Identity Center's, 10 minutes).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(600);
/// Added to the device grant's polling interval at each `SlowDownException` (RFC 8628).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Each OIDC call: one attempt 10 s, all of it 20 s.
pub(super) const LIMITS: Limits = Limits {
    connect: None,
    attempt: Duration::from_secs(10),
    operation: Duration::from_secs(20),
    max_attempts: 2,
};

/// An authorization waiting for the user, and the work that finishes it.
pub struct Pending {
    pub prompt: Authorization,
    /// Ends with the token, or why not. Dropping it abandons the authorization.
    pub completion: BoxFuture<'static, Result<SsoToken, SsoError>>,
}

/// Sorts an OIDC or portal error by what can be done about it.
pub(super) fn classify<E>(
    region: &str,
    err: SdkError<E, aws_sdk_ssooidc::config::http::HttpResponse>,
) -> SsoError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // SSO OIDC says what went wrong in the OAuth `error_description`, not in a `message`.
    let description = match &err {
        SdkError::ServiceError(e) => e
            .raw()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v.get("error_description")?.as_str().map(str::to_owned)),
        _ => None,
    };
    let mut failure = crate::sts::classify(region, err);
    if let Some(description) = description.filter(|d| !d.is_empty())
        && (failure.message.is_empty() || failure.message == "no message")
    {
        failure.message = description;
    }
    match (failure.kind, failure.code.as_str()) {
        (crate::sts::FailureKind::Outage, _)
        | (_, "TooManyRequestsException" | "SlowDownException" | "InternalServerException") => {
            SsoError::Unreachable {
                region: region.to_owned(),
                detail: format!("{}: {}", failure.code, failure.message),
            }
        }
        (_, "InvalidGrantException" | "UnauthorizedException" | "ExpiredTokenException") => {
            SsoError::SessionEnded {
                detail: format!("{}: {}", failure.code, failure.message),
            }
        }
        (_, "AccessDeniedException") => SsoError::AuthorizationDenied,
        _ => SsoError::Refused {
            region: region.to_owned(),
            code: failure.code,
            message: failure.message,
        },
    }
}

/// Identity Center answers InvalidRequestException to a start URL not its instance's: to
/// StartDeviceAuthorization's `startUrl`, and to the browser registration's `issuerUrl` (the only
/// other request member a config gets wrong).
fn start_url_refused(error: SsoError, region: &str, start_url: &str) -> SsoError {
    match error {
        SsoError::Refused { code, message, .. } if code == "InvalidRequestException" => {
            SsoError::WrongStartUrl {
                region: region.to_owned(),
                start_url: start_url.to_owned(),
                message,
            }
        }
        other => other,
    }
}

/// `https://device.example/?user_code=ABCD` → `https://device.example/`.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(buf)
}

fn token_from(
    out: aws_sdk_ssooidc::operation::create_token::CreateTokenOutput,
    region: &str,
    registration: &Registration,
    previous: Option<&SsoToken>,
    now: std::time::SystemTime,
) -> Result<SsoToken, SsoError> {
    let expires_in = u64::try_from(out.expires_in).unwrap_or(0);
    let Some(access_token) = out.access_token else {
        return Err(SsoError::Refused {
            region: region.to_owned(),
            code: "EmptyResponse".into(),
            message: "CreateToken returned no access token".into(),
        });
    };
    Ok(SsoToken {
        access_token: Secret::from(access_token),
        expires_at: now + Duration::from_secs(expires_in),
        issued_at: now,
        // A refreshed token belongs to the same login; a new one starts now.
        session_start: previous.map_or(Some(now), |p| p.session_start),
        // Without rotation the old refresh token stays good.
        refresh_token: out
            .refresh_token
            .map(Secret::from)
            .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
        registration: Some(registration.clone()),
        region: region.to_owned(),
    })
}

impl IdentityCenter {
    pub(super) fn oidc(&self, region: &str) -> aws_sdk_ssooidc::Client {
        self.oidc_clients.get(region)
    }

    /// A CreateToken of `grant` by the registered client.
    fn create_token(
        &self,
        region: &str,
        registration: &Registration,
        grant: &str,
    ) -> aws_sdk_ssooidc::operation::create_token::builders::CreateTokenFluentBuilder {
        self.oidc(region)
            .create_token()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose())
            .grant_type(grant)
    }

    /// The kept registration, or a new one (RegisterClient).
    async fn registered(&self, region: &str, pkce: Option<&str>) -> Result<Registration, SsoError> {
        if let Some(r) = self.registration(region, pkce.is_some()) {
            return Ok(r);
        }
        let mut call = self
            .oidc(region)
            .register_client()
            .client_name(CLIENT_NAME)
            .client_type("public")
            .scopes(SCOPE);
        let start_url = self.start_url(region).unwrap_or_default();
        if let Some(redirect) = pkce {
            call = call
                .grant_types(GRANT_CODE)
                .grant_types(GRANT_REFRESH)
                .redirect_uris(redirect)
                .issuer_url(start_url);
        }
        let out = call.send().await.map_err(|e| match classify(region, e) {
            e if pkce.is_some() => start_url_refused(e, region, start_url),
            e => e,
        })?;
        let (Some(client_id), Some(client_secret)) = (out.client_id, out.client_secret) else {
            return Err(SsoError::Refused {
                region: region.to_owned(),
                code: "EmptyResponse".into(),
                message: "RegisterClient returned no client".into(),
            });
        };
        let registration = Registration {
            client_id,
            client_secret: Secret::from(client_secret),
            expires_at: UNIX_EPOCH
                + Duration::from_secs(u64::try_from(out.client_secret_expires_at).unwrap_or(0)),
            pkce: Some(pkce.is_some()),
        };
        tracing::info!(
            region,
            expires_at = unix(registration.expires_at),
            "registered credd with Identity Center"
        );
        self.remember_registration(region, &registration);
        Ok(registration)
    }

    /// Starts an authorization in `region`; the user approves it in a browser.
    pub async fn authorize(
        self: &std::sync::Arc<Self>,
        method: LoginMethod,
        region: &str,
    ) -> Result<Pending, SsoError> {
        let start_url = self.configured_start_url(region)?.to_owned();
        match method {
            LoginMethod::Device => self.authorize_device(region, &start_url).await,
            LoginMethod::Browser | LoginMethod::Command => self.authorize_browser(region).await,
        }
    }

    async fn authorize_device(
        self: &std::sync::Arc<Self>,
        region: &str,
        start_url: &str,
    ) -> Result<Pending, SsoError> {
        let start = |registration: &Registration| {
            self.oidc(region)
                .start_device_authorization()
                .client_id(&registration.client_id)
                .client_secret(registration.client_secret.expose())
                .start_url(start_url)
                .send()
        };
        let mut registration = self.registered(region, None).await?;
        let mut attempt = start(&registration).await;
        if let Err(e) = &attempt
            && matches!(
                e.code(),
                Some("InvalidClientException" | "UnauthorizedClientException")
            )
        {
            // The kept registration is no longer accepted (or was made for the other grant).
            self.forget_registration(region);
            registration = self.registered(region, None).await?;
            attempt = start(&registration).await;
        }
        let out = attempt.map_err(|e| start_url_refused(classify(region, e), region, start_url))?;
        let now = self.now();
        let expires_at = now + Duration::from_secs(u64::try_from(out.expires_in).unwrap_or(600));
        let (Some(device_code), Some(user_code)) = (out.device_code, out.user_code) else {
            return Err(SsoError::Refused {
                region: region.to_owned(),
                code: "EmptyResponse".into(),
                message: "StartDeviceAuthorization returned no device code".into(),
            });
        };
        // The plain page, without the code: a URL with the code in it, handed to a browser, is in
        // its argv for every local user to read, and whoever enters the code first (signed in as
        // themselves) decides whose login this is. The code is shown in the terminal only.
        let url = out
            .verification_uri
            .or_else(|| out.verification_uri_complete.as_deref().map(without_query))
            .unwrap_or_default();
        let prompt = Authorization {
            method: LoginMethod::Device,
            url,
            user_code: Some(user_code),
            provider: format!("IAM Identity Center ({region})"),
            region: Some(region.to_owned()),
            expires_at: unix(expires_at),
            joined: false,
        };
        let interval = Duration::from_secs(u64::try_from(out.interval).unwrap_or(5).max(1));
        let ic = self.clone();
        let region = region.to_owned();
        let device_code = Secret::from(device_code);
        let completion = Box::pin(async move {
            ic.poll_device(&region, &registration, &device_code, interval, expires_at)
                .await
        });
        Ok(Pending { prompt, completion })
    }

    async fn poll_device(
        &self,
        region: &str,
        registration: &Registration,
        device_code: &Secret,
        mut interval: Duration,
        expires_at: std::time::SystemTime,
    ) -> Result<SsoToken, SsoError> {
        loop {
            self.clock.sleep(interval).await;
            if self.now() >= expires_at {
                return Err(SsoError::AuthorizationExpired);
            }
            let result = self
                .create_token(region, registration, GRANT_DEVICE)
                .device_code(device_code.expose())
                .send()
                .await;
            match result {
                Ok(out) => return token_from(out, region, registration, None, self.now()),
                Err(e) => match e.code() {
                    Some("AuthorizationPendingException") => {}
                    Some("SlowDownException") => interval += SLOW_DOWN_STEP,
                    Some("ExpiredTokenException") => return Err(SsoError::AuthorizationExpired),
                    Some("AccessDeniedException") => return Err(SsoError::AuthorizationDenied),
                    _ => match classify(region, e) {
                        // A blip while the user is still approving: keep polling.
                        SsoError::Unreachable { detail, .. } => {
                            tracing::warn!(region, %detail, "polling for the device login failed; retrying");
                        }
                        other => return Err(other),
                    },
                },
            }
        }
    }

    async fn authorize_browser(
        self: &std::sync::Arc<Self>,
        region: &str,
    ) -> Result<Pending, SsoError> {
        let state = random_b64(32);
        let loopback =
            Loopback::bind(&state, BROWSER_TIMEOUT)
                .await
                .map_err(|e| SsoError::Refused {
                    region: region.to_owned(),
                    code: "LoopbackUnavailable".into(),
                    message: format!("cannot listen for the browser's redirect on 127.0.0.1: {e}"),
                })?;
        let redirect_uri = loopback.redirect_uri();
        // The registration names the redirect URI; the CLI registers the bare loopback path and
        // AWS accepts any port on it.
        let registration = self
            .registered(region, Some("http://127.0.0.1/oauth/callback"))
            .await?;
        let verifier = Secret::new(random_b64(32));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", registration.client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("state", state.as_str()),
            ("code_challenge_method", "S256"),
            ("code_challenge", challenge.as_str()),
            ("scopes", SCOPE),
        ])
        .expect("query encodes");
        let url = format!("{}/authorize?{query}", self.endpoints.oidc_base(region));
        let expires_at = self.now() + BROWSER_TIMEOUT;
        let prompt = Authorization {
            method: LoginMethod::Browser,
            url: loopback.start_page(url),
            user_code: None,
            provider: format!("IAM Identity Center ({region})"),
            region: Some(region.to_owned()),
            expires_at: unix(expires_at),
            joined: false,
        };
        let ic = self.clone();
        let region = region.to_owned();
        let completion = Box::pin(async move {
            let code = tokio::select! {
                code = loopback.code() => code.map_err(|e| match e {
                    CallbackError::Denied { .. } => SsoError::AuthorizationDenied,
                    CallbackError::Cancelled => SsoError::AuthorizationCancelled,
                })?,
                () = ic.clock.sleep(BROWSER_TIMEOUT) => return Err(SsoError::AuthorizationExpired),
            };
            let out = ic
                .create_token(&region, &registration, GRANT_CODE)
                .code(code.expose())
                .code_verifier(verifier.expose())
                .redirect_uri(&redirect_uri)
                .send()
                .await
                .map_err(|e| classify(&region, e))?;
            token_from(out, &region, &registration, None, ic.now())
        });
        Ok(Pending { prompt, completion })
    }

    /// A fresh access token from the refresh token (rotated when Identity Center rotates it).
    pub async fn refresh(&self, token: &SsoToken) -> Result<SsoToken, SsoError> {
        let region = &token.region;
        let Some(refresh_token) = &token.refresh_token else {
            return Err(SsoError::SessionEnded {
                detail: "the access token expired and came without a refresh token".into(),
            });
        };
        let Some(registration) = &token.registration else {
            return Err(SsoError::SessionEnded {
                detail: "the token's client registration is unknown".into(),
            });
        };
        if registration.expires_at <= self.now() {
            return Err(SsoError::SessionEnded {
                detail: "credd's client registration with Identity Center expired".into(),
            });
        }
        let out = self
            .create_token(region, registration, GRANT_REFRESH)
            .refresh_token(refresh_token.expose())
            .send()
            .await
            .map_err(|e| classify(region, e))?;
        token_from(out, region, registration, Some(token), self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_values_are_url_safe_and_long_enough() {
        let v = random_b64(32);
        assert_eq!(v.len(), 43);
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(v, random_b64(32));
        // RFC 7636 appendix B.
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
