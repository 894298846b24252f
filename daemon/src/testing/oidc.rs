//! A scripted OpenID provider for unit tests, answering web identity's own login through
//! [`OidcHttp::scripted`]: discovery, its key set, the device grant and the refresh grant, with
//! ID tokens signed (RS256) by the key of the moment and dated on the engine's clock. A test can
//! rotate the signing key (the old one leaves the key set at once), and script any endpoint's
//! answer: down, slow, an OAuth error, an ID token dated by a wrong clock.
//!
//! Its two keys (`oidc/key1.pem`, `oidc/key2.pem`) are throwaway 1024-bit RSA keys made for these
//! tests (small: RSA in a debug build is slow), never used anywhere else.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, HttpRequest, HttpResponse, IssuerUrl,
    JsonWebKeyId, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};

use super::scripted::skewed;
use crate::access::web_identity::{HttpError, OidcHttp};
use crate::clock::Clock;
use crate::lock;

pub const ISSUER: &str = "https://login.acme.example";
pub const CLIENT_ID: &str = "credd";
/// How long its ID tokens last.
pub const ID_TOKEN_TTL: Duration = Duration::from_secs(3600);

const KEYS: [&str; 2] = [include_str!("oidc/key1.pem"), include_str!("oidc/key2.pem")];

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct IdpCall {
    /// `discovery`, `jwks`, `device` or `token`.
    pub endpoint: &'static str,
    /// The token endpoint's `grant_type`.
    pub grant: Option<String>,
    pub at: SystemTime,
}

/// What the provider does with a call.
#[derive(Debug, Clone)]
pub enum IdpReply {
    /// What an identity provider would answer.
    Normal,
    /// The connection is refused.
    Unreachable,
    /// An error with this status: an OAuth `temporarily_unavailable` from the token endpoint,
    /// an HTML page from the others (as a proxy in front of a down provider gives).
    Status(u16),
    /// Nothing comes back; web identity's time limit ends the call.
    Hang,
    /// The reply, after a while.
    Delayed(Duration, Box<IdpReply>),
    /// A normal answer whose ID token's `iat` and `exp` are moved by this many seconds.
    Skewed(i64),
}

type Script = Box<dyn Fn(&IdpCall) -> IdpReply + Send + Sync>;

struct State {
    /// The key that signs, and the only one the key set publishes.
    key: usize,
    next: u64,
    refresh_tokens: HashSet<String>,
    calls: Vec<IdpCall>,
}

struct Inner {
    clock: Clock,
    keys: Vec<CoreRsaPrivateSigningKey>,
    state: Mutex<State>,
    script: Mutex<Script>,
}

/// Cheap to clone; clones share the provider.
#[derive(Clone)]
pub struct FakeIdp(Arc<Inner>);

impl FakeIdp {
    /// A provider that answers every call normally, and the [`OidcHttp`] that reaches it.
    pub fn new(clock: &Clock) -> (FakeIdp, OidcHttp) {
        let keys = KEYS
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(format!("k{i}"))))
                    .expect("a test key")
            })
            .collect();
        let fake = FakeIdp(Arc::new(Inner {
            clock: clock.clone(),
            keys,
            state: Mutex::new(State {
                key: 0,
                next: 0,
                refresh_tokens: HashSet::new(),
                calls: Vec::new(),
            }),
            script: Mutex::new(Box::new(|_| IdpReply::Normal)),
        }));
        let answering = fake.clone();
        let http = OidcHttp::scripted(Arc::new(move |request| {
            let fake = answering.clone();
            Box::pin(async move { fake.answer(request).await })
        }));
        (fake, http)
    }

    /// From now on, `script` decides each call's reply.
    pub fn script(&self, script: impl Fn(&IdpCall) -> IdpReply + Send + Sync + 'static) {
        *lock::lock(&self.0.script) = Box::new(script);
    }

    /// A new signing key: the key set publishes only it from now on.
    pub fn rotate_keys(&self) {
        let mut s = lock::lock(&self.0.state);
        s.key = (s.key + 1) % self.0.keys.len();
    }

    pub fn calls(&self) -> Vec<IdpCall> {
        lock::lock(&self.0.state).calls.clone()
    }

    async fn answer(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri = request.uri().to_string();
        let path = uri.strip_prefix(ISSUER).unwrap_or(&uri);
        let endpoint = match path {
            "/.well-known/openid-configuration" => "discovery",
            "/jwks" => "jwks",
            "/device" => "device",
            "/token" => "token",
            other => panic!("the fake identity provider has no {other:?}"),
        };
        let form: std::collections::BTreeMap<String, String> =
            serde_urlencoded::from_bytes(request.body()).unwrap_or_default();
        let call = IdpCall {
            endpoint,
            grant: form.get("grant_type").cloned(),
            at: self.0.clock.now(),
        };
        lock::lock(&self.0.state).calls.push(call.clone());
        let mut reply = (lock::lock(&self.0.script))(&call);
        loop {
            match reply {
                IdpReply::Normal => return Ok(self.normal(endpoint, &form, 0)),
                IdpReply::Skewed(secs) => return Ok(self.normal(endpoint, &form, secs)),
                IdpReply::Unreachable => {
                    return Err(HttpError::Request(
                        "connection refused (scripted)".to_owned(),
                    ));
                }
                IdpReply::Status(status) if endpoint == "token" => {
                    return Ok(json(
                        status,
                        serde_json::json!({"error": "temporarily_unavailable",
                            "error_description": "scripted"}),
                    ));
                }
                IdpReply::Status(status) => {
                    return Ok(response(
                        status,
                        "text/html",
                        b"<html>unavailable</html>".to_vec(),
                    ));
                }
                IdpReply::Hang => std::future::pending().await,
                IdpReply::Delayed(d, then) => {
                    self.0.clock.sleep(d).await;
                    reply = *then;
                }
            }
        }
    }

    fn normal(
        &self,
        endpoint: &str,
        form: &std::collections::BTreeMap<String, String>,
        skew: i64,
    ) -> HttpResponse {
        match endpoint {
            "discovery" => json(
                200,
                serde_json::json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": format!("{ISSUER}/authorize"),
                    "token_endpoint": format!("{ISSUER}/token"),
                    "device_authorization_endpoint": format!("{ISSUER}/device"),
                    "jwks_uri": format!("{ISSUER}/jwks"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }),
            ),
            "jwks" => {
                let key = lock::lock(&self.0.state).key;
                let set = CoreJsonWebKeySet::new(vec![self.0.keys[key].as_verification_key()]);
                json(200, serde_json::to_value(set).expect("a key set"))
            }
            "device" => {
                let n = self.next();
                json(
                    200,
                    serde_json::json!({
                        "device_code": format!("device-{n}"),
                        "user_code": format!("CODE-{n}"),
                        "verification_uri": format!("{ISSUER}/activate"),
                        "expires_in": 600,
                        "interval": 1,
                    }),
                )
            }
            _ => {
                let grant = form.get("grant_type").map(String::as_str);
                let refresh = match grant {
                    // The user approves at once.
                    Some("urn:ietf:params:oauth:grant-type:device_code") => {
                        let token = format!("refresh-{}", self.next());
                        lock::lock(&self.0.state)
                            .refresh_tokens
                            .insert(token.clone());
                        token
                    }
                    Some("refresh_token") => {
                        let token = form.get("refresh_token").cloned().unwrap_or_default();
                        if !lock::lock(&self.0.state).refresh_tokens.contains(&token) {
                            return json(400, serde_json::json!({"error": "invalid_grant"}));
                        }
                        token
                    }
                    other => panic!("the fake identity provider has no grant {other:?}"),
                };
                json(
                    200,
                    serde_json::json!({
                        "access_token": format!("access-{}", self.next()),
                        "token_type": "Bearer",
                        "expires_in": ID_TOKEN_TTL.as_secs(),
                        "refresh_token": refresh,
                        "id_token": self.id_token(skew),
                    }),
                )
            }
        }
    }

    fn next(&self) -> u64 {
        let mut s = lock::lock(&self.0.state);
        s.next += 1;
        s.next
    }

    /// alice's ID token, signed by the key of the moment, dated `skew` seconds off.
    fn id_token(&self, skew: i64) -> String {
        let issued = skewed(self.0.clock.now(), skew);
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(ISSUER.to_owned()).expect("an issuer URL"),
            vec![Audience::new(CLIENT_ID.to_owned())],
            (issued + ID_TOKEN_TTL).into(),
            issued.into(),
            StandardClaims::new(SubjectIdentifier::new("alice".to_owned()))
                .set_email(Some(EndUserEmail::new("alice@acme.example".to_owned()))),
            EmptyAdditionalClaims {},
        );
        let key = lock::lock(&self.0.state).key;
        CoreIdToken::new(
            claims,
            &self.0.keys[key],
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .expect("a signed ID token")
        .to_string()
    }
}

fn json(status: u16, body: serde_json::Value) -> HttpResponse {
    response(status, "application/json", body.to_string().into_bytes())
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    let mut r = HttpResponse::new(body);
    *r.status_mut() = status.try_into().expect("a valid status");
    r.headers_mut().insert(
        "content-type",
        content_type.parse().expect("a content type"),
    );
    r
}
