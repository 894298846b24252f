//! credd's own OpenID Connect login, for `oidc_issuer` + `oidc_client_id`: discovery, the
//! authorization code with PKCE (S256) through the loopback redirect, the device authorization
//! grant, and the refresh grant that renews the ID token without the user. The ID token is checked
//! (signature against the issuer's keys, issuer, audience, expiry, and the login's nonce) before it
//! is traded with STS.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::{Authorization, LoginMethod, Secret};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreErrorResponseType,
    CoreGrantType, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClientId, CsrfToken,
    DeviceAuthorizationUrl, DiscoveryError, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::http::{HttpError, OidcHttp};
use crate::access::loopback::{CallbackError, Loopback};
use crate::access::{BoxFuture, error_chain};
use crate::clock::{Clock, unix};
use crate::config::OidcConfig;

/// A browser login the user never finishes lapses after this long; a device grant lapses when
/// the identity provider says.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider {issuer} cannot be reached: {detail}")]
    Unreachable { issuer: String, detail: String },
    #[error(
        "the identity provider {issuer} has no usable discovery document ({issuer}/.well-known/openid-configuration): {detail}"
    )]
    Discovery { issuer: String, detail: String },
    #[error(
        "the identity provider {issuer} does not offer the device authorization grant: log in with the browser instead (without --device-code)"
    )]
    NoDeviceGrant { issuer: String },
    #[error("the identity provider refused the login: {0}")]
    Refused(String),
    #[error("the login was declined at the identity provider{}", .0.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Denied(Option<String>),
    #[error("the login was not approved in time; run `credd login` again")]
    Expired,
    #[error("the login was cancelled")]
    Cancelled,
    #[error("the identity provider no longer renews this login ({0})")]
    RefreshRefused(String),
    #[error("the identity provider's ID token failed its checks: {0}")]
    BadIdToken(String),
    #[error("the identity provider sent no ID token: is \"openid\" among oidc_scopes?")]
    NoIdToken,
}

/// An ID token fresh from the identity provider, and what it says about the user.
#[derive(Clone)]
pub struct IdTokens {
    pub id_token: Secret,
    /// The refresh token, when the identity provider gave one (`offline_access`).
    pub refresh_token: Option<Secret>,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
}

/// An authorization waiting for the user, and the work that finishes it.
pub struct Pending {
    pub prompt: Authorization,
    /// Ends with the tokens, or why not. Dropping it abandons the authorization.
    pub completion: BoxFuture<'static, Result<IdTokens, OidcError>>,
}

pub struct OidcLogin {
    pub config: OidcConfig,
    http: OidcHttp,
    /// What an ID token's expiry is checked against: the engine's clock.
    clock: Clock,
    /// The discovery document and keys, fetched at the first need and again after a failure.
    provider: tokio::sync::Mutex<Option<Arc<Metadata>>>,
}

impl OidcLogin {
    pub fn new(config: OidcConfig, http: OidcHttp, clock: Clock) -> OidcLogin {
        OidcLogin {
            config,
            http,
            clock,
            provider: tokio::sync::Mutex::new(None),
        }
    }

    fn issuer(&self) -> String {
        self.config.issuer.clone()
    }

    fn http_client(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> BoxFuture<'static, Result<openidconnect::HttpResponse, HttpError>>
    + use<> {
        let http = self.http.clone();
        move |request| {
            let http = http.clone();
            Box::pin(async move { http.call(request).await })
        }
    }

    /// The discovery document and key set; fetched again when `fresh` (a key may have rotated).
    async fn metadata(&self, fresh: bool) -> Result<Arc<Metadata>, OidcError> {
        let mut cached = self.provider.lock().await;
        if !fresh && let Some(m) = &*cached {
            return Ok(m.clone());
        }
        let issuer_url = IssuerUrl::new(self.issuer()).map_err(|e| OidcError::Discovery {
            issuer: self.issuer(),
            detail: e.to_string(),
        })?;
        let http = self.http_client();
        let metadata = Metadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| match e {
                DiscoveryError::Request(e) => OidcError::Unreachable {
                    issuer: self.issuer(),
                    detail: e.to_string(),
                },
                other => OidcError::Discovery {
                    issuer: self.issuer(),
                    detail: error_chain(&other),
                },
            })?;
        if metadata.token_endpoint().is_none() {
            return Err(OidcError::Discovery {
                issuer: self.issuer(),
                detail: "it names no token_endpoint".to_owned(),
            });
        }
        let metadata = Arc::new(metadata);
        *cached = Some(metadata.clone());
        Ok(metadata)
    }

    fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.config
            .scopes
            .iter()
            .filter(|s| *s != "openid")
            .map(|s| Scope::new(s.clone()))
    }

    /// Starts a login the user approves: in the browser here (PKCE, loopback redirect) or, with
    /// `Device`, on any device with a code.
    pub async fn authorize(self: &Arc<Self>, method: LoginMethod) -> Result<Pending, OidcError> {
        let metadata = self.metadata(true).await?;
        match method {
            LoginMethod::Device => self.authorize_device(metadata).await,
            _ => self.authorize_browser(metadata).await,
        }
    }

    async fn authorize_browser(
        self: &Arc<Self>,
        metadata: Arc<Metadata>,
    ) -> Result<Pending, OidcError> {
        let state = CsrfToken::new_random();
        let loopback = Loopback::bind(state.secret(), BROWSER_TIMEOUT)
            .await
            .map_err(|e| {
                OidcError::Refused(format!(
                    "cannot listen for the browser's redirect on 127.0.0.1: {e}"
                ))
            })?;
        let redirect_uri = loopback.redirect_uri();
        let client = self
            .client(&metadata)
            .set_redirect_uri(RedirectUrl::new(redirect_uri).expect("a loopback URL parses"));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let expected_nonce = nonce.clone();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || state,
                move || nonce,
            )
            .add_scopes(self.scopes())
            .set_pkce_challenge(challenge);
        if self.config.scopes.iter().any(|s| s == "offline_access") {
            // OpenID Connect Core 11: a refresh token for offline access is granted only with
            // the user's consent asked for.
            request = request.add_prompt(CoreAuthPrompt::Consent);
        }
        let (url, _, _) = request.url();
        let prompt = Authorization {
            method: LoginMethod::Browser,
            url: loopback.start_page(url.to_string()),
            user_code: None,
            provider: format!("your identity provider ({})", self.issuer()),
            region: None,
            expires_at: unix(SystemTime::now() + BROWSER_TIMEOUT),
            joined: false,
        };
        let login = self.clone();
        let completion = Box::pin(async move {
            let code = tokio::select! {
                code = loopback.code() => code.map_err(|e| match e {
                    CallbackError::Denied { error } => OidcError::Denied(Some(error)),
                    CallbackError::Cancelled => OidcError::Cancelled,
                })?,
                () = tokio::time::sleep(BROWSER_TIMEOUT) => return Err(OidcError::Expired),
            };
            let http = login.http_client();
            let response = client
                .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
                .map_err(|e| OidcError::Discovery {
                    issuer: login.issuer(),
                    detail: e.to_string(),
                })?
                .set_pkce_verifier(verifier)
                .request_async(&http)
                .await
                .map_err(|e| login.token_error(e, false))?;
            login.tokens(
                client.id_token_verifier(),
                &response,
                None,
                Some(&expected_nonce),
            )
        });
        Ok(Pending { prompt, completion })
    }

    async fn authorize_device(
        self: &Arc<Self>,
        metadata: Arc<Metadata>,
    ) -> Result<Pending, OidcError> {
        let Some(device_url) = metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
        else {
            return Err(OidcError::NoDeviceGrant {
                issuer: self.issuer(),
            });
        };
        let client = self
            .client(&metadata)
            .set_device_authorization_url(device_url);
        let http = self.http_client();
        let details: CoreDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(self.scopes())
            .add_scope(Scope::new("openid".to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| self.token_error(e, false))?;
        // The plain page, without the code: see the device login of Identity Center.
        let url = details.verification_uri().to_string();
        let prompt = Authorization {
            method: LoginMethod::Device,
            url,
            user_code: Some(details.user_code().secret().clone()),
            provider: format!("your identity provider ({})", self.issuer()),
            region: None,
            expires_at: unix(SystemTime::now() + details.expires_in()),
            joined: false,
        };
        let login = self.clone();
        let completion = Box::pin(async move {
            let http = login.http_client();
            let response = client
                .exchange_device_access_token(&details)
                .map_err(|e| OidcError::Discovery {
                    issuer: login.issuer(),
                    detail: e.to_string(),
                })?
                .request_async(&http, tokio::time::sleep, None)
                .await
                .map_err(|e| match e {
                    RequestTokenError::ServerResponse(r) => match r.error() {
                        openidconnect::DeviceCodeErrorResponseType::AccessDenied => {
                            OidcError::Denied(None)
                        }
                        openidconnect::DeviceCodeErrorResponseType::ExpiredToken => {
                            OidcError::Expired
                        }
                        _ => OidcError::Refused(server_error(&r)),
                    },
                    RequestTokenError::Request(e) => OidcError::Unreachable {
                        issuer: login.issuer(),
                        detail: e.to_string(),
                    },
                    other => OidcError::Refused(error_chain(&other)),
                })?;
            login.tokens(client.id_token_verifier(), &response, None, None)
        });
        Ok(Pending { prompt, completion })
    }

    /// A new ID token from the refresh token, without the user. A refused refresh token (the
    /// identity provider ended the session, or revoked it) is [`OidcError::RefreshRefused`].
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<IdTokens, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(&metadata);
        let http = self.http_client();
        // Sent once, never retried: an identity provider that rotates refresh tokens treats a
        // used one seen again as theft and ends the whole login.
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_owned()))
            .map_err(|e| OidcError::Discovery {
                issuer: self.issuer(),
                detail: e.to_string(),
            })?
            .request_async(&http)
            .await
            .map_err(|e| self.token_error(e, true))?;
        match self.tokens(
            client.id_token_verifier(),
            &response,
            Some(refresh_token),
            None,
        ) {
            // The keys may have rotated since discovery: check the same answer with fresh ones.
            Err(OidcError::BadIdToken(_)) => {
                let metadata = self.metadata(true).await?;
                let client = self.client(&metadata);
                self.tokens(
                    client.id_token_verifier(),
                    &response,
                    Some(refresh_token),
                    None,
                )
            }
            other => other,
        }
    }

    /// The client for the refresh grant (the other flows add their endpoint).
    fn client(
        &self,
        metadata: &Metadata,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            None,
        )
        .set_auth_type(AuthType::RequestBody)
    }

    fn token_error<RE: std::error::Error + 'static>(
        &self,
        e: RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
        refreshing: bool,
    ) -> OidcError {
        match e {
            RequestTokenError::ServerResponse(r) => {
                let detail = server_error(&r);
                if refreshing && *r.error() == CoreErrorResponseType::InvalidGrant {
                    OidcError::RefreshRefused(detail)
                } else {
                    OidcError::Refused(detail)
                }
            }
            RequestTokenError::Request(e) => OidcError::Unreachable {
                issuer: self.issuer(),
                detail: error_chain(&e),
            },
            other => OidcError::Refused(error_chain(&other)),
        }
    }

    /// Checks the response's ID token and reads the user from it.
    fn tokens(
        &self,
        verifier: CoreIdTokenVerifier<'_>,
        response: &CoreTokenResponse,
        previous_refresh: Option<&Secret>,
        nonce: Option<&Nonce>,
    ) -> Result<IdTokens, OidcError> {
        let id_token: &CoreIdToken = response.id_token().ok_or(OidcError::NoIdToken)?;
        let clock = self.clock.clone();
        let verifier = verifier.set_time_fn(move || clock.now().into());
        let claims = match nonce {
            Some(n) => id_token.claims(&verifier, n),
            // A refreshed or device-grant ID token carries no nonce of ours.
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| OidcError::BadIdToken(e.to_string()))?;
        Ok(IdTokens {
            id_token: Secret::new(id_token.to_string()),
            refresh_token: response
                .refresh_token()
                .map(|r| Secret::new(r.secret().as_str()))
                .or_else(|| previous_refresh.cloned()),
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
        })
    }
}

/// `error: error_description`, as the identity provider put it.
fn server_error<T: openidconnect::ErrorResponseType + std::fmt::Display>(
    r: &openidconnect::StandardErrorResponse<T>,
) -> String {
    match r.error_description() {
        Some(d) if !d.is_empty() => format!("{}: {d}", r.error()),
        _ => r.error().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local "identity provider" serving `discovery` as its discovery document.
    async fn provider(discovery: impl Fn(&str) -> String + Send + Sync + 'static) -> String {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let body = discovery(&issuer);
        let app = axum::Router::new().route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    fn login(issuer: &str) -> Arc<OidcLogin> {
        Arc::new(OidcLogin::new(
            OidcConfig {
                issuer: issuer.to_owned(),
                client_id: "credd".into(),
                scopes: vec!["openid".into()],
            },
            OidcHttp::default(),
            Clock::system(),
        ))
    }

    #[tokio::test]
    async fn a_discovery_document_without_what_a_login_needs_is_named() {
        let issuer = provider(|_| r#"{"issuer": "https://elsewhere.example"}"#.to_owned()).await;
        let e = login(&issuer)
            .authorize(LoginMethod::Device)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&e, OidcError::Discovery { .. })
                && e.to_string().starts_with(&format!(
                    "the identity provider {issuer} has no usable discovery document"
                )),
            "{e}"
        );
        let issuer = provider(|issuer| {
            format!(
                r#"{{"issuer": "{issuer}", "authorization_endpoint": "{issuer}/auth",
                "jwks_uri": "{issuer}/jwks", "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]}}"#
            )
        })
        .await;
        // No key set behind jwks_uri.
        let e = login(&issuer)
            .authorize(LoginMethod::Browser)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, OidcError::Discovery { .. }), "{e}");
        let e = login("http://127.0.0.1:1")
            .authorize(LoginMethod::Browser)
            .await
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("the identity provider http://127.0.0.1:1 cannot be reached: "),
            "{e}"
        );
    }
}
