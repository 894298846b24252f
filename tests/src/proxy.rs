//! A fault-injecting HTTP/1.1 reverse proxy in front of moto: it forwards STS requests verbatim
//! (the original `Host` too, which SigV4 signs), counts them per `Action` and signing region, and
//! can be switched at runtime to delay, fail, refuse, or fail one region only, or to refuse or
//! hold one `Action` only (e.g. IAM's DeleteAccessKey: IAM's Query calls pass the same way). It
//! also keeps each request's form parameters, so a test can check what was asked of STS (serial,
//! code, tags...).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

use crate::server::{Refused, ServerThread, bind, lock};

/// How the proxy treats the next requests. Switch with [`StsProxy::set_mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward every request.
    Pass,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Answer 503 with an AWS-style `ServiceUnavailable` error, as during an STS outage.
    Down,
    /// Close the connection without answering (new connections are dropped at once).
    Refuse,
    /// Answer 503 to requests signed for this region (SigV4 credential scope), forward the rest.
    FailRegion(String),
    /// Answer every request with this AWS error, as STS would, e.g. `ExpiredToken` (400) when the
    /// credentials that signed it have expired or `AccessDenied` (403) for a wrong MFA code.
    Reject {
        status: u16,
        code: String,
        message: String,
    },
}

/// The region key for requests that carry no SigV4 scope (unsigned calls such as
/// AssumeRoleWithWebIdentity).
pub const UNSIGNED: &str = "unsigned";

/// The action key for requests with no `Action` parameter.
pub const NO_ACTION: &str = "(none)";

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    forwarded: usize,
    failed: usize,
    /// Forwarded requests whose answer from moto is on its way back.
    answered: usize,
}

struct Shared {
    mode: Mutex<ProxyMode>,
    /// (action, region) -> tally.
    counts: Mutex<HashMap<(String, String), Tally>>,
    /// Every request's action, signing key and form parameters, in arrival order.
    requests: Mutex<Vec<Recorded>>,
    /// Actions whose answers' credentials are made to expire this long after they pass.
    lifetimes: Mutex<HashMap<String, Duration>>,
    /// Actions answered with an AWS error whatever the mode: action -> (status, code, message).
    rejected_actions: Mutex<HashMap<String, (u16, String, String)>>,
    /// Actions held this long before they are forwarded.
    delayed_actions: Mutex<HashMap<String, Duration>>,
}

struct Recorded {
    action: String,
    signer: String,
    params: Params,
}

/// One request's form parameters (body, then query), percent-decoded: `RoleArn`, `TokenCode`,
/// `Tags.member.1.Key`...
pub type Params = BTreeMap<String, String>;

impl Shared {
    fn mode(&self) -> ProxyMode {
        lock(&self.mode).clone()
    }

    fn record(&self, action: &str, region: &str, forwarded: bool) {
        let mut counts = lock(&self.counts);
        let tally = counts
            .entry((action.to_owned(), region.to_owned()))
            .or_default();
        if forwarded {
            tally.forwarded += 1;
        } else {
            tally.failed += 1;
        }
    }

    fn record_answered(&self, action: &str, region: &str) {
        lock(&self.counts)
            .entry((action.to_owned(), region.to_owned()))
            .or_default()
            .answered += 1;
    }

    fn sum(&self, keep: impl Fn(&str, &str) -> bool, pick: impl Fn(&Tally) -> usize) -> usize {
        lock(&self.counts)
            .iter()
            .filter(|((action, region), _)| keep(action, region))
            .map(|(_, tally)| pick(tally))
            .sum()
    }
}

/// A running proxy; dropping it stops the server and its runtime thread.
pub struct StsProxy {
    shared: Arc<Shared>,
    server: ServerThread,
}

impl StsProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `upstream` (`http://HOST:PORT`),
    /// in [`ProxyMode::Pass`].
    pub fn start(upstream: &str) -> StsProxy {
        let upstream: Uri = upstream
            .parse()
            .unwrap_or_else(|e| panic!("upstream {upstream:?} is not a URL: {e}"));
        let authority = upstream
            .authority()
            .unwrap_or_else(|| panic!("upstream {upstream} has no host:port"))
            .clone();
        let shared = Arc::new(Shared {
            mode: Mutex::new(ProxyMode::Pass),
            counts: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            lifetimes: Mutex::new(HashMap::new()),
            rejected_actions: Mutex::new(HashMap::new()),
            delayed_actions: Mutex::new(HashMap::new()),
        });
        let state = shared.clone();
        let server = ServerThread::start("sts-proxy", bind("STS proxy"), move |listener, stop| {
            serve(listener, authority.to_string(), state, stop)
        });
        StsProxy { shared, server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }

    /// Applies to every request that arrives from now on (also on kept-alive connections).
    pub fn set_mode(&self, mode: ProxyMode) {
        *lock(&self.shared.mode) = mode;
    }

    pub fn mode(&self) -> ProxyMode {
        self.shared.mode()
    }

    /// From now on, the credentials in `action`'s answers expire `lifetime` after they pass
    /// (their `<Expiration>` is rewritten): compressed time for renewal tests, as if STS had
    /// granted a session that short (moto grants what is asked, and credd asks for 15 min at
    /// least).
    pub fn set_lifetime(&self, action: &str, lifetime: Duration) {
        lock(&self.shared.lifetimes).insert(action.to_owned(), lifetime);
    }

    /// From now on, requests with this `Action` are answered with this AWS error (e.g. `403
    /// AccessDenied` for IAM's `DeleteAccessKey`), whatever the mode; the others as the mode says.
    pub fn reject_action(&self, action: &str, status: u16, code: &str, message: &str) {
        lock(&self.shared.rejected_actions).insert(
            action.to_owned(),
            (status, code.to_owned(), message.to_owned()),
        );
    }

    /// From now on, requests with this `Action` wait `delay` before they are forwarded (a window
    /// in which a test can change the world between two steps of the daemon).
    pub fn delay_action(&self, action: &str, delay: Duration) {
        lock(&self.shared.delayed_actions).insert(action.to_owned(), delay);
    }

    /// Undoes [`StsProxy::reject_action`] and [`StsProxy::delay_action`] for `action`.
    pub fn pass_action(&self, action: &str) {
        lock(&self.shared.rejected_actions).remove(action);
        lock(&self.shared.delayed_actions).remove(action);
    }

    /// Requests with this `Action` that reached the proxy, whatever the mode answered.
    pub fn calls(&self, action: &str) -> usize {
        self.shared
            .sum(|a, _| a == action, |t| t.forwarded + t.failed)
    }

    /// Requests with this `Action` signed for `region` ([`UNSIGNED`] for unsigned ones).
    pub fn calls_in_region(&self, action: &str, region: &str) -> usize {
        self.shared.sum(
            |a, r| a == action && r == region,
            |t| t.forwarded + t.failed,
        )
    }

    /// Requests with this `Action` that were passed on to moto.
    pub fn forwarded(&self, action: &str) -> usize {
        self.shared.sum(|a, _| a == action, |t| t.forwarded)
    }

    /// Requests with this `Action` the proxy failed on purpose (503, refused or rejected).
    pub fn failed(&self, action: &str) -> usize {
        self.shared.sum(|a, _| a == action, |t| t.failed)
    }

    /// Forwarded requests with this `Action` whose answer is on its way back to the caller (after
    /// any [`ProxyMode::Delay`]): [`StsProxy::forwarded`] minus this is what is still in flight.
    pub fn answered(&self, action: &str) -> usize {
        self.shared.sum(|a, _| a == action, |t| t.answered)
    }

    /// Every request seen, any action.
    pub fn total_calls(&self) -> usize {
        self.shared.sum(|_, _| true, |t| t.forwarded + t.failed)
    }

    /// The form parameters of every request with this `Action` so far, oldest first, whatever
    /// the mode answered.
    pub fn params(&self, action: &str) -> Vec<Params> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.action == action)
            .map(|r| r.params.clone())
            .collect()
    }

    /// The access key id that signed each request with this `Action` ([`UNSIGNED`] for none),
    /// oldest first: shows which credentials a call was made with (e.g. a chained AssumeRole).
    pub fn signers(&self, action: &str) -> Vec<String> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.action == action)
            .map(|r| r.signer.clone())
            .collect()
    }

    /// Forgets the counts and the recorded parameters.
    pub fn reset_counts(&self) {
        lock(&self.shared.counts).clear();
        lock(&self.shared.requests).clear();
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener =
        tokio::net::TcpListener::from_std(listener).expect("register the proxy listener");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        // The incoming Host header is forwarded as is: SigV4 signed it.
        .set_host(false)
        .build(connector);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // e.g. too many open files: keep serving the connections we have.
                Err(_) => continue,
            },
        };
        if shared.mode() == ProxyMode::Refuse {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                handle(req, shared.clone(), client.clone(), upstream.clone())
            });
            // Errors here are connections the client or a Refuse closed: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// How the proxy refuses (see [`Refused`]).
const REFUSED: Refused = Refused("test proxy");

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<ProxyBody>, Refused> {
    let (mut parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(REFUSED),
    };
    let action = sts_action(parts.uri.query(), &body);
    let region = signing_region(&parts.headers, parts.uri.query());
    lock(&shared.requests).push(Recorded {
        action: action.clone(),
        signer: credential_scope(&parts.headers, parts.uri.query())
            .and_then(|scope| scope.split('/').next().map(str::to_owned))
            .filter(|key| !key.is_empty())
            .unwrap_or_else(|| UNSIGNED.to_owned()),
        params: form_params(parts.uri.query(), &body),
    });

    let rejected = lock(&shared.rejected_actions).get(&action).cloned();
    if let Some((status, code, message)) = rejected {
        shared.record(&action, &region, false);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        return Ok(xml_error(status, &code, &message));
    }
    let mode = shared.mode();
    if let ProxyMode::Reject {
        status,
        code,
        message,
    } = &mode
    {
        shared.record(&action, &region, false);
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
        return Ok(xml_error(status, code, message));
    }
    let fail = match &mode {
        ProxyMode::Pass | ProxyMode::Delay(_) | ProxyMode::Reject { .. } => None,
        ProxyMode::Down => Some("STS is down (test proxy)"),
        ProxyMode::Refuse => {
            shared.record(&action, &region, false);
            return Err(REFUSED);
        }
        ProxyMode::FailRegion(failing) if *failing == region => {
            Some("STS is down in this region (test proxy)")
        }
        ProxyMode::FailRegion(_) => None,
    };
    if let Some(message) = fail {
        shared.record(&action, &region, false);
        return Ok(service_unavailable(message));
    }
    shared.record(&action, &region, true);
    if let ProxyMode::Delay(delay) = mode {
        tokio::time::sleep(delay).await;
    }
    let delay = lock(&shared.delayed_actions).get(&action).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    parts.uri = format!("http://{upstream}{path}")
        .parse()
        .expect("upstream authority + request path is a valid URI");
    let lifetime = lock(&shared.lifetimes).get(&action).copied();
    let answer = match client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(response) => match lifetime {
            Some(lifetime) => shortened(response, lifetime).await,
            None => response.map(|b| b.boxed()),
        },
        Err(e) => xml_error(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            &format!("test proxy could not reach moto at {upstream}: {e}"),
        ),
    };
    shared.record_answered(&action, &region);
    Ok(answer)
}

/// `response` with every `<Expiration>` set to `lifetime` from now.
async fn shortened(response: Response<Incoming>, lifetime: Duration) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let expiration = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + lifetime);
    let mut out = String::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("<Expiration>") {
        let Some(end) = rest[start..].find("</Expiration>") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&format!("<Expiration>{expiration}</Expiration>"));
        rest = &rest[start + end + "</Expiration>".len()..];
    }
    out.push_str(rest);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Full::new(Bytes::from(out))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    )
}

fn service_unavailable(message: &str) -> Response<ProxyBody> {
    xml_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        message,
    )
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = format!(
        "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>credd-tests-proxy</RequestId></ErrorResponse>"
    );
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/xml")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("a static error response is valid")
}

/// The STS `Action` from the form body (SDKs POST it), else from the query string.
fn sts_action(query: Option<&str>, body: &[u8]) -> String {
    let from = |text: &str| {
        text.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "Action")
            .map(|(_, value)| value.to_owned())
    };
    std::str::from_utf8(body)
        .ok()
        .and_then(from)
        .or_else(|| query.and_then(from))
        .unwrap_or_else(|| NO_ACTION.to_owned())
}

/// The decoded `key=value` pairs of the form body, then of the query (the body wins).
fn form_params(query: Option<&str>, body: &[u8]) -> Params {
    let mut params = Params::new();
    let body = std::str::from_utf8(body).unwrap_or("");
    for text in [body, query.unwrap_or("")] {
        for (key, value) in text.split('&').filter_map(|pair| pair.split_once('=')) {
            params
                .entry(percent_decode(key))
                .or_insert_with(|| percent_decode(value));
        }
    }
    params
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SigV4 credential scope `AKID/DATE/REGION/SERVICE/aws4_request`, from the `Authorization`
/// header or a presigned query.
fn credential_scope(headers: &hyper::HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|auth| auth.split_once("Credential="))
        .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or(rest).to_owned());
    let from_query = || {
        query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "X-Amz-Credential")
            .map(|(_, value)| value.replace("%2F", "/").replace("%2f", "/"))
    };
    from_header.or_else(from_query)
}

/// The region of the SigV4 credential scope; [`UNSIGNED`] when there is none.
fn signing_region(headers: &hyper::HeaderMap, query: Option<&str>) -> String {
    credential_scope(headers, query)
        .and_then(|scope| scope.split('/').nth(2).map(str::to_owned))
        .filter(|region| !region.is_empty())
        .unwrap_or_else(|| UNSIGNED.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_comes_from_the_form_body_then_the_query() {
        assert_eq!(
            sts_action(None, b"Action=AssumeRole&Version=2011-06-15"),
            "AssumeRole"
        );
        assert_eq!(
            sts_action(Some("Action=GetCallerIdentity&Version=2011-06-15"), b""),
            "GetCallerIdentity"
        );
        assert_eq!(sts_action(None, b""), NO_ACTION);
    }

    #[test]
    fn form_params_are_decoded_and_the_body_wins() {
        let params = form_params(
            Some("Action=Ignored&Extra=q"),
            b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2FA&Tags.member.1.Value=a+b%zz",
        );
        assert_eq!(params["Action"], "AssumeRole");
        assert_eq!(params["RoleArn"], "arn:aws:iam::1:role/A");
        assert_eq!(params["Tags.member.1.Value"], "a b%zz");
        assert_eq!(params["Extra"], "q");
    }

    #[test]
    fn region_comes_from_the_credential_scope() {
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(signing_region(&headers, None), UNSIGNED);
        headers.insert(
            AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-1/sts/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
                .parse()
                .expect("valid header"),
        );
        assert_eq!(signing_region(&headers, None), "eu-west-1");
        let presigned = "Action=GetCallerIdentity&X-Amz-Credential=AKID%2F20261125%2Fus-west-2%2Fsts%2Faws4_request";
        assert_eq!(
            signing_region(&hyper::HeaderMap::new(), Some(presigned)),
            "us-west-2"
        );
    }
}
