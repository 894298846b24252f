//! The scripted Identity Center half of [`super::sts::FakeSts`]: SSO OIDC (RegisterClient,
//! StartDeviceAuthorization, CreateToken with the device, code and refresh grants) and the
//! portal (GetRoleCredentials, ListAccounts, ListAccountRoles, Logout), in their JSON wire
//! format, on the engine's clock: access tokens expire, refresh tokens rotate, the organization's
//! session ends, grants can be revoked, roles lost and a Region taken down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sts::config::http::{HttpRequest, HttpResponse};

use super::scripted;
use crate::lock;

/// How the fake Identity Center behaves; tests change it through [`FakeIdentityCenter::set`].
#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub access_token_ttl: Duration,
    /// The organization's session length, from the first token of a login.
    pub session_length: Duration,
    /// Role credentials' lifetime (the permission set's session duration).
    pub role_ttl: Duration,
    /// Regions that do not answer (connection refused).
    pub down: BTreeSet<String>,
    /// Account/role pairs the user may not use (ForbiddenException).
    pub forbidden: BTreeSet<(String, String)>,
    pub device_interval: u64,
}

impl Default for SsoSettings {
    fn default() -> Self {
        SsoSettings {
            access_token_ttl: Duration::from_secs(3600),
            session_length: Duration::from_secs(8 * 3600),
            role_ttl: Duration::from_secs(3600),
            down: BTreeSet::new(),
            forbidden: BTreeSet::new(),
            device_interval: 1,
        }
    }
}

#[derive(Default)]
struct State {
    settings: SsoSettings,
    next: u64,
    /// access token → (region, expiry)
    access: HashMap<String, (String, SystemTime)>,
    /// the one live refresh token per session → (region, session end)
    refresh: HashMap<String, (String, SystemTime)>,
    /// device code → approved
    devices: HashMap<String, bool>,
    /// authorization code → (region)
    codes: HashMap<String, String>,
}

#[derive(Default)]
pub struct FakeIdentityCenter {
    state: Mutex<State>,
}

/// What an Identity Center request was.
pub struct SsoCall {
    pub action: String,
    pub region: String,
    pub params: BTreeMap<String, String>,
}

impl FakeIdentityCenter {
    pub fn set(&self, change: impl FnOnce(&mut SsoSettings)) {
        change(&mut lock::lock(&self.state).settings);
    }

    /// A token pair as if the user had logged in at `now` (what the AWS CLI would have cached).
    pub fn issue(&self, region: &str, now: SystemTime) -> (String, String, SystemTime) {
        let mut s = lock::lock(&self.state);
        s.next += 1;
        let n = s.next;
        let end = now + s.settings.session_length;
        let expires = now + s.settings.access_token_ttl;
        s.access
            .insert(format!("at-{n}"), (region.to_owned(), expires));
        s.refresh
            .insert(format!("rt-{n}"), (region.to_owned(), end));
        (format!("at-{n}"), format!("rt-{n}"), expires)
    }

    /// Approves every device authorization so far.
    pub fn approve_devices(&self) {
        for approved in lock::lock(&self.state).devices.values_mut() {
            *approved = true;
        }
    }

    /// The grants are revoked: tokens and refresh tokens stop working.
    pub fn revoke_all(&self) {
        let mut s = lock::lock(&self.state);
        s.access.clear();
        s.refresh.clear();
    }

    /// Is this an Identity Center request? Then its call.
    pub fn parse(request: &HttpRequest) -> Option<SsoCall> {
        let uri = request.uri().to_owned();
        let (host, rest) = uri.split_once("://")?.1.split_once('/')?;
        let (service, region) = if let Some(r) = host.strip_prefix("oidc.") {
            ("oidc", r.split('.').next()?)
        } else if let Some(r) = host.strip_prefix("portal.sso.") {
            ("portal", r.split('.').next()?)
        } else {
            return None;
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut params: BTreeMap<String, String> =
            serde_urlencoded::from_str(query).unwrap_or_default();
        if let Some(t) = request.headers().get("x-amz-sso_bearer_token") {
            params.insert("token".into(), t.to_owned());
        }
        let body = request.body().bytes().unwrap_or_default();
        if !body.is_empty()
            && let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body)
        {
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                params.insert(k, v);
            }
        }
        let action = match (service, path) {
            ("oidc", "client/register") => "RegisterClient",
            ("oidc", "device_authorization") => "StartDeviceAuthorization",
            ("oidc", "token") => "CreateToken",
            ("portal", "federation/credentials") => "GetRoleCredentials",
            ("portal", "assignment/accounts") => "ListAccounts",
            ("portal", "assignment/roles") => "ListAccountRoles",
            ("portal", "logout") => "Logout",
            other => panic!("the fake Identity Center does not know {other:?}"),
        };
        Some(SsoCall {
            action: action.to_owned(),
            region: region.to_owned(),
            params,
        })
    }

    /// The response, or `None` for a refused connection (the Region is down); with role
    /// credentials, their access key and when they really expire (their `expiration` is moved by
    /// `skew` seconds: a clock that is wrong).
    pub fn answer(
        &self,
        call: &SsoCall,
        now: SystemTime,
        skew: i64,
    ) -> Option<(HttpResponse, Option<(String, SystemTime)>)> {
        let mut s = lock::lock(&self.state);
        if s.settings.down.contains(&call.region) {
            return None;
        }
        s.next += 1;
        let n = s.next;
        let p = |k: &str| call.params.get(k).cloned().unwrap_or_default();
        let ttl = s.settings.access_token_ttl;
        let mut issued = None;
        let reply = match call.action.as_str() {
            "RegisterClient" => ok(serde_json::json!({
                "clientId": format!("client-{n}"),
                "clientSecret": format!("client-secret-{n}"),
                "clientIdIssuedAt": secs(now),
                "clientSecretExpiresAt": secs(now) + 90 * 86_400,
            })),
            "StartDeviceAuthorization" => {
                s.devices.insert(format!("device-{n}"), false);
                ok(serde_json::json!({
                    "deviceCode": format!("device-{n}"),
                    "userCode": format!("CODE-{n:04}"),
                    "verificationUri": "https://device.sso.example/",
                    "verificationUriComplete": format!("https://device.sso.example/?user_code=CODE-{n:04}"),
                    "expiresIn": 600,
                    "interval": s.settings.device_interval,
                }))
            }
            "CreateToken" => match p("grantType").as_str() {
                "urn:ietf:params:oauth:grant-type:device_code" => {
                    match s.devices.get(&p("deviceCode")).copied() {
                        Some(true) => {
                            s.devices.remove(&p("deviceCode"));
                            let end = now + s.settings.session_length;
                            tokens(&mut s, n, &call.region, now, ttl, end)
                        }
                        Some(false) => err(
                            400,
                            "AuthorizationPendingException",
                            "authorization_pending",
                        ),
                        None => err(400, "ExpiredTokenException", "expired_token"),
                    }
                }
                "authorization_code" => match s.codes.remove(&p("code")) {
                    Some(_) => {
                        let end = now + s.settings.session_length;
                        tokens(&mut s, n, &call.region, now, ttl, end)
                    }
                    None => err(400, "InvalidGrantException", "invalid_grant"),
                },
                "refresh_token" => match s.refresh.remove(&p("refreshToken")) {
                    Some((region, end)) if end > now => tokens(&mut s, n, &region, now, ttl, end),
                    _ => err(400, "InvalidGrantException", "invalid_grant"),
                },
                other => panic!("unknown grant {other:?}"),
            },
            "GetRoleCredentials" | "ListAccounts" | "ListAccountRoles" | "Logout" => {
                match s.access.get(&p("token")) {
                    Some((_, expires)) if *expires > now => {}
                    _ => {
                        return Some((
                            portal_err(
                                401,
                                "UnauthorizedException",
                                "Session token not found or invalid",
                            ),
                            None,
                        ));
                    }
                }
                match call.action.as_str() {
                    "GetRoleCredentials" => {
                        let pair = (p("account_id"), p("role_name"));
                        if s.settings.forbidden.contains(&pair) {
                            portal_err(403, "ForbiddenException", "No access")
                        } else {
                            let expiration = now + s.settings.role_ttl;
                            issued = Some((format!("ASIASSO{n:09}"), expiration));
                            let expiration = scripted::skewed(expiration, skew);
                            ok(serde_json::json!({"roleCredentials": {
                                "accessKeyId": format!("ASIASSO{n:09}"),
                                "secretAccessKey": format!("sso-secret-{n}"),
                                "sessionToken": format!("sso-token-{n}"),
                                "expiration": expiration.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64,
                            }}))
                        }
                    }
                    "ListAccounts" => ok(serde_json::json!({"accountList": [
                        {"accountId": "222222222222", "accountName": "Staging", "emailAddress": "s@acme.example"}
                    ]})),
                    "ListAccountRoles" => ok(serde_json::json!({"roleList": [
                        {"roleName": "AdministratorAccess", "accountId": "222222222222"}
                    ]})),
                    _ => {
                        let token = p("token");
                        s.access.remove(&token);
                        ok(serde_json::json!({}))
                    }
                }
            }
            other => panic!("unknown action {other}"),
        };
        Some((reply, issued))
    }
}

fn tokens(
    s: &mut State,
    n: u64,
    region: &str,
    now: SystemTime,
    ttl: Duration,
    end: SystemTime,
) -> HttpResponse {
    s.access
        .insert(format!("at-{n}"), (region.to_owned(), now + ttl));
    s.refresh
        .insert(format!("rt-{n}"), (region.to_owned(), end));
    ok(serde_json::json!({
        "accessToken": format!("at-{n}"),
        "tokenType": "Bearer",
        "expiresIn": ttl.as_secs(),
        "refreshToken": format!("rt-{n}"),
    }))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn ok(body: serde_json::Value) -> HttpResponse {
    json(200, body, None)
}

/// SSO OIDC's errors carry an OAuth `error` and `error_description`, and no `message`.
fn err(status: u16, code: &str, oauth: &str) -> HttpResponse {
    let body =
        serde_json::json!({"error": oauth, "error_description": format!("{oauth} (scripted)")});
    json(status, body, Some(code))
}

/// An Identity Center error with `code` (e.g. `(429, "TooManyRequestsException")`), as the
/// portal words its errors.
pub fn error(status: u16, code: &str) -> HttpResponse {
    portal_err(status, code, &format!("{code} (scripted)"))
}

/// The portal's errors carry a `message`.
fn portal_err(status: u16, code: &str, message: &str) -> HttpResponse {
    json(
        status,
        serde_json::json!({ "message": message }),
        Some(code),
    )
}

fn json(status: u16, body: serde_json::Value, error_type: Option<&str>) -> HttpResponse {
    let mut r = scripted::response(status, "application/json", body.to_string());
    if let Some(code) = error_type {
        r.headers_mut().insert("x-amzn-errortype", code.to_owned());
    }
    r
}
