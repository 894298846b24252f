//! The fake's HTTP side: routes each request to its operation, reads the members where the
//! models put them (JSON body, query string, `x-amz-sso_bearer_token` header), and writes answers
//! and errors as AWS does: for SSO OIDC a body of `error` + `error_description` (aws-cli #8561
//! shows one), for the portal `message` + `__type`, and for both the type in `x-amzn-ErrorType`,
//! which botocore and the Rust SDKs read first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::errors::{ApiError, ErrorKind, Service};
use super::state::{AuthorizeRequest, Authorized, Registration, TokenRequest};
use super::{DeviceAuthorization, Grant, Op, Outage, SSO_USER, Shared, epoch_millis};
use crate::moto::{REGION, assume_role};
use crate::server::{Refused, lock};

/// The `x-amzn-ErrorType` suffixes AWS's front ends add (botocore and the SDKs cut at the `:`).
const OIDC_NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazonaws.sso.oidc/";
const PORTAL_NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/";
/// The `__type` prefix of portal error bodies.
const PORTAL_TYPE_PREFIX: &str = "com.amazonaws.switchboard.portal#";

/// For `x-amzn-RequestId`.
static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

type Answer = Response<Full<Bytes>>;

pub(super) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener)
        .expect("register the Identity Center fake's listener");
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // e.g. too many open files: keep serving the connections we have.
                Err(_) => continue,
            },
        };
        if *lock(&shared.outage) == Outage::Refused {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, shared.clone()));
            // Errors are connections closed by the client or by a refusal: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// How the fake refuses (see [`Refused`]).
const REFUSED: Refused = Refused("Identity Center fake");

/// A request's parts the operations read.
struct Call {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    bearer: Option<String>,
    body: Bytes,
}

impl Call {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Answer, Refused> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| REFUSED)?.to_bytes();
    let call = Call {
        query: parts
            .uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default(),
        path: parts.uri.path().to_owned(),
        bearer: parts
            .headers
            .get("x-amz-sso_bearer_token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        method: parts.method,
        body,
    };
    let op = operation(&call);
    let shown = format!("{} {} {op:?}", call.method, call.path);
    match *lock(&shared.outage) {
        Outage::Refused => {
            shared.record(op, false, format!("{shown} -> refused (outage)"));
            return Err(REFUSED);
        }
        Outage::Unavailable => {
            let error = ApiError::new(ErrorKind::ServiceUnavailable, "Service Unavailable");
            shared.record(op, false, format!("{shown} -> 503 (outage)"));
            return Ok(error_answer(&error));
        }
        Outage::None => {}
    }
    let (answer, outcome) = match answer(op, &call, &shared).await {
        Ok((answer, outcome)) => (answer, outcome),
        Err(error) => (
            error_answer(&error),
            format!("{} {error}", error.kind.status()),
        ),
    };
    let ok = answer.status().is_success() || answer.status() == StatusCode::FOUND;
    shared.record(op, ok, format!("{shown} -> {outcome}"));
    Ok(answer)
}

fn operation(call: &Call) -> Op {
    match (&call.method, call.path.as_str()) {
        (&Method::POST, "/client/register") => Op::RegisterClient,
        (&Method::POST, "/device_authorization") => Op::StartDeviceAuthorization,
        // `/token?aws_iam=t` is CreateTokenWithIAM, which the fake does not do.
        (&Method::POST, "/token") if call.query.is_empty() => {
            let body: Option<Value> = serde_json::from_slice(&call.body).ok();
            let grant = body.as_ref().and_then(|b| b["grantType"].as_str());
            Op::CreateToken(Grant::of(grant))
        }
        (&Method::GET, "/authorize") => Op::Authorize,
        (&Method::GET, "/device") => Op::DevicePage,
        (&Method::GET, "/federation/credentials") => Op::GetRoleCredentials,
        (&Method::GET, "/assignment/accounts") => Op::ListAccounts,
        (&Method::GET, "/assignment/roles") => Op::ListAccountRoles,
        (&Method::POST, "/logout") => Op::Logout,
        _ => Op::Unknown,
    }
}

/// The answer to a well-routed request and a short outcome for the log.
async fn answer(op: Op, call: &Call, shared: &Shared) -> Result<(Answer, String), ApiError> {
    let now = Instant::now();
    let ok = |value: Value| (json_answer(&value), "200".to_owned());
    match op {
        Op::RegisterClient => {
            let body = json_body(call)?;
            let registration = Registration {
                client_name: string(&body, "clientName")?,
                client_type: string(&body, "clientType")?,
                scopes: strings(&body, "scopes")?,
                grant_types: strings(&body, "grantTypes")?,
                redirect_uris: strings(&body, "redirectUris")?,
                issuer_url: string(&body, "issuerUrl")?,
            };
            let registered =
                lock(&shared.state).register_client(registration, now, SystemTime::now())?;
            Ok(ok(json!({
                "clientId": registered.client_id,
                "clientSecret": registered.client_secret,
                "clientIdIssuedAt": registered.issued_at,
                "clientSecretExpiresAt": registered.secret_expires_at,
            })))
        }
        Op::StartDeviceAuthorization => {
            let body = json_body(call)?;
            let mut state = lock(&shared.state);
            let started = state.start_device_authorization(
                string(&body, "clientId")?.as_deref(),
                string(&body, "clientSecret")?.as_deref(),
                string(&body, "startUrl")?.as_deref(),
                now,
            )?;
            let verification_uri = format!("{}/device", shared.base_url);
            let complete = format!(
                "{verification_uri}?{}",
                serde_urlencoded::to_string([("user_code", &started.user_code)])
                    .expect("a user code encodes")
            );
            state.last_device = Some(DeviceAuthorization {
                user_code: started.user_code.clone(),
                verification_uri: verification_uri.clone(),
                verification_uri_complete: complete.clone(),
            });
            Ok(ok(json!({
                "deviceCode": started.device_code,
                "userCode": started.user_code,
                "verificationUri": verification_uri,
                "verificationUriComplete": complete,
                "expiresIn": started.expires_in,
                "interval": started.interval,
            })))
        }
        Op::CreateToken(_) => {
            let body = json_body(call)?;
            let request = TokenRequest {
                client_id: string(&body, "clientId")?,
                client_secret: string(&body, "clientSecret")?,
                grant_type: string(&body, "grantType")?,
                device_code: string(&body, "deviceCode")?,
                code: string(&body, "code")?,
                refresh_token: string(&body, "refreshToken")?,
                redirect_uri: string(&body, "redirectUri")?,
                code_verifier: string(&body, "codeVerifier")?,
            };
            let tokens = lock(&shared.state).create_token(request, now)?;
            let mut out = json!({
                "accessToken": tokens.access_token,
                "tokenType": "Bearer",
                "expiresIn": tokens.expires_in,
            });
            if let Some(refresh) = tokens.refresh_token {
                out["refreshToken"] = Value::String(refresh);
            }
            Ok(ok(out))
        }
        Op::Authorize => {
            let request = AuthorizeRequest {
                response_type: call.query("response_type").map(str::to_owned),
                client_id: call.query("client_id").map(str::to_owned),
                redirect_uri: call.query("redirect_uri").map(str::to_owned),
                state: call.query("state").map(str::to_owned),
                code_challenge_method: call.query("code_challenge_method").map(str::to_owned),
                code_challenge: call.query("code_challenge").map(str::to_owned),
            };
            Ok(match lock(&shared.state).authorize(request, now) {
                Authorized::Redirect(location) => {
                    let outcome = if location.contains("code=") {
                        "302 with a code".to_owned()
                    } else {
                        format!("302 {}", location.rsplit_once('?').map_or("", |(_, q)| q))
                    };
                    (redirect(&location), outcome)
                }
                Authorized::Refuse(why) => {
                    (page(StatusCode::BAD_REQUEST, &why), format!("400 {why}"))
                }
            })
        }
        Op::DevicePage => Ok(match call.query("user_code") {
            None => (
                page(StatusCode::OK, "Enter the code shown by your application."),
                "200 (code form)".to_owned(),
            ),
            Some(code) => match lock(&shared.state).decide_device(code, true, now) {
                Ok(()) => (
                    page(
                        StatusCode::OK,
                        "Request approved. You can close this window.",
                    ),
                    "200 approved".to_owned(),
                ),
                Err(why) => (page(StatusCode::BAD_REQUEST, &why), format!("400 {why}")),
            },
        }),
        Op::GetRoleCredentials => {
            let role = lock(&shared.state).role_to_assume(
                call.bearer.as_deref(),
                call.query("account_id"),
                call.query("role_name"),
                now,
            )?;
            let ttl = lock(&shared.state).options.role_credentials_ttl;
            let assumed = assume_role(
                &shared.moto.endpoint(),
                REGION,
                &shared.signer,
                &role,
                SSO_USER,
                Some(ttl),
            )
            .await;
            match assumed {
                Ok(assumed) => Ok(ok(json!({
                    "roleCredentials": {
                        "accessKeyId": assumed.keys.access_key_id,
                        "secretAccessKey": assumed.keys.secret_access_key,
                        "sessionToken": assumed.keys.session_token,
                        "expiration": epoch_millis(assumed.expiration),
                    }
                }))),
                Err(why) => {
                    let message = format!("the fake's AssumeRole {role} at moto failed: {why}");
                    Ok((
                        raw_error(500, "InternalServerException", &message),
                        format!("500 {message}"),
                    ))
                }
            }
        }
        Op::ListAccounts => {
            let (accounts, next) = lock(&shared.state).list_accounts(
                call.bearer.as_deref(),
                call.query("next_token"),
                call.query("max_result"),
                now,
            )?;
            let list: Vec<Value> = accounts
                .iter()
                .map(|a| json!({"accountId": a.id, "accountName": a.name, "emailAddress": a.email}))
                .collect();
            Ok(ok(with_next(json!({ "accountList": list }), next)))
        }
        Op::ListAccountRoles => {
            let account_id = call.query("account_id");
            let (roles, next) = lock(&shared.state).list_account_roles(
                call.bearer.as_deref(),
                account_id,
                call.query("next_token"),
                call.query("max_result"),
                now,
            )?;
            let list: Vec<Value> = roles
                .iter()
                .map(|r| json!({"roleName": r, "accountId": account_id}))
                .collect();
            Ok(ok(with_next(json!({ "roleList": list }), next)))
        }
        Op::Logout => {
            lock(&shared.state).logout(call.bearer.as_deref(), now)?;
            Ok((empty_answer(), "200".to_owned()))
        }
        Op::Unknown => {
            let message = format!("no operation at {} {}", call.method, call.path);
            Ok((
                raw_error(404, "UnknownOperationException", &message),
                "404 unknown operation".to_owned(),
            ))
        }
    }
}

fn with_next(mut out: Value, next: Option<String>) -> Value {
    if let Some(next) = next {
        out["nextToken"] = Value::String(next);
    }
    out
}

fn json_body(call: &Call) -> Result<Value, ApiError> {
    let invalid = || ApiError::new(ErrorKind::InvalidRequest, "the body is not a JSON object");
    let value: Value = serde_json::from_slice(&call.body).map_err(|_| invalid())?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(invalid())
    }
}

fn string(body: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match &body[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("{name} must be a string"),
        )),
    }
}

fn strings(body: &Value, name: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("{name} must be a list of strings"),
        )
    };
    match &body[name] {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    format!("c0ffee00-0000-4000-8000-{n:012x}")
}

fn build(status: u16, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header("x-amzn-RequestId", request_id())
        .body(Full::new(body))
        .expect("a response of static parts is valid")
}

fn json_answer(value: &Value) -> Answer {
    build(200, "application/json", Bytes::from(value.to_string()))
}

fn empty_answer() -> Answer {
    build(200, "application/json", Bytes::new())
}

/// An error as its service sends it: see the module doc.
fn error_answer(error: &ApiError) -> Answer {
    let code = error.kind.code();
    let (header, body) = match error.kind.service() {
        Service::Oidc => (
            format!("{code}:{OIDC_NAMESPACE}"),
            json!({
                "error": error.kind.oauth_error(),
                "error_description": error.message,
            }),
        ),
        Service::Portal => (
            format!("{code}:{PORTAL_NAMESPACE}"),
            json!({ "message": error.message, "__type": format!("{PORTAL_TYPE_PREFIX}{code}") }),
        ),
        Service::Edge => (code.to_owned(), json!({ "message": error.message })),
    };
    let mut answer = build(
        error.kind.status(),
        "application/json",
        Bytes::from(body.to_string()),
    );
    answer.headers_mut().insert(
        "x-amzn-ErrorType",
        header.parse().expect("error types are header-safe"),
    );
    answer
}

/// An error outside the models (the fake's own failures, unknown paths).
fn raw_error(status: u16, code: &str, message: &str) -> Answer {
    let body = json!({ "message": message });
    let mut answer = build(status, "application/json", Bytes::from(body.to_string()));
    answer.headers_mut().insert(
        "x-amzn-ErrorType",
        code.parse().expect("error types are header-safe"),
    );
    answer
}

fn redirect(location: &str) -> Answer {
    let mut answer = build(302, "text/html", Bytes::new());
    *answer.status_mut() = StatusCode::FOUND;
    answer.headers_mut().insert(
        LOCATION,
        location
            .parse()
            .expect("a redirect URI with an encoded query is header-safe"),
    );
    answer
}

/// A small HTML page, as the browser-facing routes answer.
fn page(status: StatusCode, text: &str) -> Answer {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    build(
        status.as_u16(),
        "text/html; charset=utf-8",
        Bytes::from(format!(
            "<!doctype html><title>AWS access portal (test)</title><p>{escaped}</p>\n"
        )),
    )
}
