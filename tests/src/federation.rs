//! A stand-in for the AWS federation endpoint (`/federation?Action=getSigninToken`), which no
//! emulator has: it records the `Session` (the credentials the daemon sent) and `SessionDuration`
//! of each request and answers a fresh `SigninToken`, or the failure the test chose. The daemon
//! reaches it through `CREDD_TEST_FEDERATION_ENDPOINT` ([`FederationEndpoint::env`]); the tests
//! check the credentials against moto themselves.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::server::{Refused, ServerThread, bind, lock};

/// The daemon's variable naming the stand-in.
pub const ENDPOINT_VAR: &str = "CREDD_TEST_FEDERATION_ENDPOINT";

/// How the stand-in answers `getSigninToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with a fresh `{"SigninToken": ...}`.
    Token,
    /// This status with this body.
    Status(u16, String),
    /// 200 with this body (not a token).
    Malformed(String),
    /// The connection closes without an answer.
    Hangup,
}

/// The credentials a `Session` carried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    #[serde(rename = "sessionId")]
    pub access_key_id: String,
    #[serde(rename = "sessionKey")]
    pub secret_access_key: String,
    #[serde(rename = "sessionToken")]
    pub session_token: String,
}

/// One `getSigninToken` request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Each query parameter, decoded, in order.
    pub query: Vec<(String, String)>,
    /// `Session` parsed, if it was JSON with the three fields.
    pub session: Option<Session>,
    /// The token answered, if one was.
    pub token: Option<String>,
}

impl Received {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    answer: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
}

pub struct FederationEndpoint {
    shared: Arc<Shared>,
    server: ServerThread,
}

impl FederationEndpoint {
    /// Listening on a free loopback port, answering tokens.
    pub fn start() -> FederationEndpoint {
        let shared = Arc::new(Shared {
            answer: Mutex::new(Answer::Token),
            received: Mutex::new(Vec::new()),
        });
        let listener = bind("federation endpoint stand-in");
        let state = shared.clone();
        let server = ServerThread::start("federation", listener, move |listener, stop| {
            serve(listener, state, stop)
        });
        FederationEndpoint { shared, server }
    }

    /// `http://127.0.0.1:PORT/federation`.
    pub fn url(&self) -> String {
        format!("http://{}/federation", self.server.addr)
    }

    /// What to set in the daemon's environment.
    pub fn env(&self) -> (&'static str, String) {
        (ENDPOINT_VAR, self.url())
    }

    /// How the next requests are answered.
    pub fn answer(&self, answer: Answer) {
        *lock(&self.shared.answer) = answer;
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener)
        .expect("register the federation stand-in's listener");
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, shared.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Refused> {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).unwrap_or_default();
    let session = query
        .iter()
        .find(|(k, _)| k == "Session")
        .and_then(|(_, v)| serde_json::from_str(v).ok());
    let answer = lock(&shared.answer).clone();
    let token = (answer == Answer::Token).then(new_token);
    lock(&shared.received).push(Received {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query,
        session,
        token: token.clone(),
    });
    let reply = |status: u16, body: String| -> Result<Response<Full<Bytes>>, Refused> {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
        Ok(response)
    };
    match answer {
        Answer::Token => reply(
            200,
            serde_json::json!({ "SigninToken": token.expect("made above") }).to_string(),
        ),
        Answer::Status(status, body) => reply(status, body),
        Answer::Malformed(body) => reply(200, body),
        Answer::Hangup => Err(Refused("federation endpoint stand-in")),
    }
}

/// A random token with the characters a URL must escape, as real ones have.
fn new_token() -> String {
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random numbers");
    format!("{}+/=", hex::encode(bytes))
}
