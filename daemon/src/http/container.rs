//! The container-credentials routes (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): the current profile,
//! which follows `credd switch`, and pinned profiles, which never change identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use zeroize::Zeroizing;

use super::error::{self, reply};
use super::{HttpState, Owner, Peer, rfc3339};
use crate::creds::RoleCredentials;
use crate::lock;
use crate::logging::{THROTTLE_WINDOW, Throttle};
use crate::vend::{Caller, Route, Vend};

/// Refused requests of other users, logged at most once a minute.
static REFUSED: Throttle = Throttle::new(THROTTLE_WINDOW);

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    account_id: &'a str,
}

/// Layer on the container routes: a process of the daemon's own user (or of a user the config
/// allows), and the raw token in `Authorization`, compared in constant time and never echoed
/// anywhere. The token alone is not enough: another user who learnt it (it was sent to their
/// program while they held the port) still gets nothing.
pub async fn require_token(
    State(state): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    // Looked up once, when the connection was accepted; `Unverifiable` where the OS cannot tell
    // (macOS), where the token is the only check, as it always was there.
    let owner = req.extensions().get::<Peer>().map(|p| p.owner);
    let allowed = match owner {
        Some(Owner::Me | Owner::Unverifiable) => true,
        Some(Owner::Other(uid)) => state.daemon.config().daemon.allow_uids.contains(&uid),
        Some(Owner::Unknown) | None => false,
    };
    if !allowed {
        if let Some(more) = REFUSED.allow() {
            tracing::warn!(
                owner = ?owner,
                suppressed_since_last = more,
                "refused a credentials request from another user"
            );
        }
        return reply(
            StatusCode::FORBIDDEN,
            "ForeignUser",
            "credentials are served only to processes of the daemon's own user (another user's \
             needs its uid in [daemon] allow_uids)",
        );
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if state.daemon.http_token.matches(given) {
        next.run(req).await
    } else {
        reply(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong Authorization token (see AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
        )
    }
}

pub async fn current(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<Peer>>,
) -> Response {
    serve(&state, None, peer).await
}

pub async fn pinned(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<Peer>>,
    profile: Result<Path<String>, PathRejection>,
) -> Response {
    match profile {
        Ok(Path(profile)) => serve(&state, Some(profile), peer).await,
        Err(rejection) => error::bad_path(&rejection),
    }
}

async fn serve(
    state: &HttpState,
    profile: Option<String>,
    peer: Option<Extension<Peer>>,
) -> Response {
    let caller = Caller::tcp(peer.as_ref().map(|p| &p.0));
    match state
        .daemon
        .vending
        .vend(Route::Container, profile, &caller)
        .await
    {
        Ok(v) => {
            let mut response = Response::new(state.container_answers.json(&v).into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => error::engine(&e),
    }
}

/// The container route's answers, rendered once and then served as the same bytes: the same
/// credentials with the same advertised expiry (in whole seconds, as it is written) are the same
/// JSON. A pinned profile's answer is rendered once per refresh; the current profile's, whose
/// advertised expiry moves with the clock (the follow window), at most once a second.
#[derive(Default)]
pub struct Answers {
    /// The last answer per profile.
    last: Mutex<HashMap<String, Rendered>>,
}

struct Rendered {
    /// Which credentials: a `Weak` keeps their allocation, so the address is never another's,
    /// without keeping them.
    credentials: Weak<RoleCredentials>,
    /// The advertised expiry, in whole seconds since the epoch.
    expiration: u64,
    /// Holds the secrets: wiped when the next answer of the profile replaces it and the last
    /// response sending it is done.
    json: Bytes,
}

impl Answers {
    /// The JSON body for `v`: the one rendered last for its profile if it is the same, else
    /// rendered now and kept.
    fn json(&self, v: &Vend) -> Bytes {
        let expiration = v
            .expiration
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let same = |r: &Rendered| {
            std::ptr::eq(r.credentials.as_ptr(), Arc::as_ptr(&v.credentials))
                && r.expiration == expiration
        };
        let mut last = lock::lock(&self.last);
        if let Some(rendered) = last.get(&v.profile).filter(|r| same(r)) {
            return rendered.json.clone();
        }
        let json = render(&v.credentials, UNIX_EPOCH + Duration::from_secs(expiration));
        last.insert(
            v.profile.clone(),
            Rendered {
                credentials: Arc::downgrade(&v.credentials),
                expiration,
                json: json.clone(),
            },
        );
        json
    }
}

fn render(c: &RoleCredentials, expiration: SystemTime) -> Bytes {
    let body = Body {
        access_key_id: &c.creds.access_key_id,
        secret_access_key: c.creds.secret_access_key.expose(),
        token: c.session_token(),
        expiration: rfc3339(expiration),
        account_id: &c.account_id,
    };
    // Room for all of it: no copy of the secrets is left behind by a reallocation.
    let fields = body.access_key_id.len() + body.secret_access_key.len() + body.token.len();
    let mut json = Zeroizing::new(Vec::with_capacity(256 + fields));
    serde_json::to_writer(&mut *json, &body).expect("a struct of strings always serializes");
    Bytes::from_owner(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::AwsCredentials;
    use credd_proto::Secret;

    fn credentials(key: &str) -> Arc<RoleCredentials> {
        let mut creds = AwsCredentials::long_lived(key, &Secret::from(format!("{key}-secret")));
        creds.session_token = Some(Secret::from(format!("{key}-token")));
        Arc::new(RoleCredentials {
            creds,
            issued: UNIX_EPOCH,
            expiration: UNIX_EPOCH + Duration::from_secs(3600),
            assumed_arn: "arn:aws:sts::111111111111:assumed-role/r/s".to_owned(),
            account_id: "111111111111".to_owned(),
            region: "us-east-1".to_owned(),
        })
    }

    fn vend(credentials: &Arc<RoleCredentials>, expiration: SystemTime) -> Vend {
        Vend {
            profile: "dev".to_owned(),
            credentials: credentials.clone(),
            expiration,
        }
    }

    #[test]
    fn an_answer_is_rendered_once_per_credentials_and_second() {
        let answers = Answers::default();
        let first = credentials("AKIA1");
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(250);
        let json = answers.json(&vend(&first, at));
        let body: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(body["AccessKeyId"], "AKIA1");
        assert_eq!(body["SecretAccessKey"], "AKIA1-secret");
        assert_eq!(body["Token"], "AKIA1-token");
        assert_eq!(body["AccountId"], "111111111111");
        assert_eq!(body["Expiration"], "2027-01-15T08:00:00Z");
        // Later within the same second: the same bytes, not rendered again.
        let again = answers.json(&vend(&first, at + Duration::from_millis(500)));
        assert_eq!(again.as_ptr(), json.as_ptr(), "served from the cache");
        // The next second (the current profile's expiry follows the clock).
        let later = answers.json(&vend(&first, at + Duration::from_secs(1)));
        let body: serde_json::Value = serde_json::from_slice(&later).unwrap();
        assert_eq!(body["Expiration"], "2027-01-15T08:00:01Z");
        // Refreshed credentials, even with the same expiry.
        let second = credentials("AKIA2");
        let refreshed = answers.json(&vend(&second, at + Duration::from_secs(1)));
        let body: serde_json::Value = serde_json::from_slice(&refreshed).unwrap();
        assert_eq!(body["AccessKeyId"], "AKIA2");
        // Replaced credentials, gone, are never mistaken for new ones at the same address.
        drop(first);
        let third = credentials("AKIA3");
        let body: serde_json::Value =
            serde_json::from_slice(&answers.json(&vend(&third, at))).unwrap();
        assert_eq!(body["AccessKeyId"], "AKIA3");
    }
}
