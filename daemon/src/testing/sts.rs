//! A scripted STS for unit tests: plugged into the real SDK client as its HTTP client, so every
//! call goes through the SDK's serialization, signing, retries, timeouts and error parsing, and
//! only the server is made up.
//!
//! Identity Center's requests go to its own half ([`super::sso`]). STS:
//! it answers AssumeRole, GetSessionToken and GetCallerIdentity the way STS does (credentials
//! for the requested `DurationSeconds`, expiring on the engine's clock), records every call, and
//! lets a test script any answer: an STS error, a delay, a region that never answers, a refused
//! connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::http::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;

use super::scripted::{self, Scripted, skewed};
use super::sso::FakeIdentityCenter;
use crate::clock::Clock;
use crate::lock;
use crate::sts::Sts;

/// STS's XML namespace.
const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The IAM user every fake session belongs to.
pub const USER_ARN: &str = "arn:aws:iam::111111111111:user/alice";

/// One request as STS saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    /// From the regional endpoint the SDK called.
    pub region: String,
    /// The key that signed it.
    pub access_key_id: String,
    pub params: BTreeMap<String, String>,
    /// On the engine's clock.
    pub at: SystemTime,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// What the fake does with a call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// What STS would answer.
    Normal,
    /// An STS error response, e.g. `(403, "AccessDenied")`.
    Error(u16, &'static str),
    /// An STS error response with STS's message, e.g. `(403, "AccessDenied",
    /// "MultiFactorAuthentication failed with invalid MFA one time pass code.")`.
    ErrorWithMessage(u16, &'static str, &'static str),
    /// The connection is refused (the region is unreachable).
    Unreachable,
    /// Nothing ever comes back; the SDK's timeouts end the call.
    Hang,
    /// The reply, after a while.
    Delayed(Duration, Box<Reply>),
    /// What STS would answer, but with the credentials' `Expiration` moved by this many seconds
    /// (a clock that is wrong): the credentials really last as long as asked
    /// ([`FakeSts::true_expiry`]). For Identity Center's GetRoleCredentials too.
    Skewed(i64),
}

type Script = Box<dyn Fn(&Call) -> Reply + Send + Sync>;

struct Inner {
    clock: Clock,
    /// The Identity Center half, for requests to its endpoints.
    sso: FakeIdentityCenter,
    script: Mutex<Script>,
    /// Decides the reply to each Identity Center call (`Normal`: what its half answers).
    sso_script: Mutex<Script>,
    calls: Mutex<Vec<Call>>,
    issued: AtomicU64,
    /// When each access key issued really expires, whatever its `Expiration` said.
    truth: Mutex<HashMap<String, SystemTime>>,
}

/// Cheap to clone; clones share the script and the record of calls.
#[derive(Clone)]
pub struct FakeSts(Arc<Inner>);

impl std::fmt::Debug for FakeSts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSts").finish_non_exhaustive()
    }
}

impl FakeSts {
    /// A fake that answers every call normally, and the [`Sts`] that calls it.
    pub fn new(clock: &Clock) -> (FakeSts, Sts) {
        let fake = FakeSts(Arc::new(Inner {
            clock: clock.clone(),
            sso: FakeIdentityCenter::default(),
            script: Mutex::new(Box::new(|_| Reply::Normal)),
            sso_script: Mutex::new(Box::new(|_| Reply::Normal)),
            calls: Mutex::new(Vec::new()),
            issued: AtomicU64::new(0),
            truth: Mutex::new(HashMap::new()),
        }));
        let http = scripted::http_client(fake.clone());
        (fake, Sts::with_http_client(clock.clone(), http))
    }

    /// From now on, `script` decides each call's reply.
    pub fn script(&self, script: impl Fn(&Call) -> Reply + Send + Sync + 'static) {
        *lock::lock(&self.0.script) = Box::new(script);
    }

    /// From now on, `script` decides each Identity Center call's reply (its `action` is e.g.
    /// `"CreateToken"` or `"GetRoleCredentials"`): `Normal` is what its half answers, an `Error`
    /// its JSON error with that code, and the rest as for STS.
    pub fn script_sso(&self, script: impl Fn(&Call) -> Reply + Send + Sync + 'static) {
        *lock::lock(&self.0.sso_script) = Box::new(script);
    }

    /// When credentials with `access_key_id`, issued by this fake (STS or Identity Center), really
    /// expire: what their `Expiration` said unless it was [`Reply::Skewed`].
    pub fn true_expiry(&self, access_key_id: &str) -> Option<SystemTime> {
        lock::lock(&self.0.truth).get(access_key_id).copied()
    }

    /// How many calls were made so far (cheaper than [`FakeSts::calls`]).
    pub fn call_count(&self) -> usize {
        lock::lock(&self.0.calls).len()
    }

    pub fn calls(&self) -> Vec<Call> {
        lock::lock(&self.0.calls).clone()
    }

    /// The calls of one action, e.g. `"AssumeRole"`.
    pub fn calls_of(&self, action: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == action)
            .collect()
    }

    /// The fake Identity Center behind the same HTTP client.
    pub fn sso(&self) -> &FakeIdentityCenter {
        &self.0.sso
    }

    fn parse(&self, request: &HttpRequest) -> Call {
        let params = scripted::form(request, "STS");
        // https://sts.<region>.amazonaws.com/
        let region = request
            .uri()
            .split("://sts.")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .unwrap_or("us-east-1")
            .to_owned();
        Call {
            action: params.get("Action").cloned().unwrap_or_default(),
            region,
            access_key_id: scripted::signer(request),
            params,
            at: self.0.clock.now(),
        }
    }

    fn normal(&self, call: &Call, skew: i64) -> HttpResponse {
        let seconds: u64 = call
            .param("DurationSeconds")
            .and_then(|d| d.parse().ok())
            .unwrap_or(3600);
        let n = self.0.issued.fetch_add(1, Ordering::SeqCst);
        let expiry = call.at + Duration::from_secs(seconds);
        lock::lock(&self.0.truth).insert(format!("ASIAFAKE{n:08}"), expiry);
        let credentials = format!(
            "<Credentials><AccessKeyId>ASIAFAKE{n:08}</AccessKeyId>\
             <SecretAccessKey>fake-secret-{n}</SecretAccessKey>\
             <SessionToken>fake-token-{n}</SessionToken>\
             <Expiration>{}</Expiration></Credentials>",
            humantime::format_rfc3339_seconds(skewed(expiry, skew))
        );
        let result = match call.action.as_str() {
            "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => {
                let role_arn = call.param("RoleArn").unwrap_or_default();
                let session = call.param("RoleSessionName").unwrap_or_default();
                let (account, role) = role_arn
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|r| r.split_once(":role/"))
                    .unwrap_or(("000000000000", "unknown"));
                format!(
                    "{credentials}<AssumedRoleUser><AssumedRoleId>AROAFAKE:{session}</AssumedRoleId>\
                     <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn></AssumedRoleUser>"
                )
            }
            "GetSessionToken" => credentials,
            "GetCallerIdentity" => format!(
                "<Arn>{USER_ARN}</Arn><UserId>AIDAFAKE</UserId><Account>111111111111</Account>"
            ),
            other => panic!("the fake STS does not know {other:?}"),
        };
        let action = &call.action;
        scripted::ok_xml(
            XMLNS,
            action,
            &format!("<{action}Result>{result}</{action}Result>"),
        )
    }
}

impl Scripted for FakeSts {
    async fn answer(self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        if let Some(sso_call) = FakeIdentityCenter::parse(&request) {
            let call = Call {
                action: sso_call.action.clone(),
                region: sso_call.region.clone(),
                access_key_id: String::new(),
                params: sso_call.params.clone(),
                at: self.0.clock.now(),
            };
            lock::lock(&self.0.calls).push(call.clone());
            let mut reply = (lock::lock(&self.0.sso_script))(&call);
            loop {
                let skew = match reply {
                    Reply::Normal => 0,
                    Reply::Skewed(secs) => secs,
                    Reply::Error(status, code) | Reply::ErrorWithMessage(status, code, _) => {
                        return Ok(crate::testing::sso::error(status, code));
                    }
                    Reply::Unreachable => return Err(scripted::refused()),
                    Reply::Hang => std::future::pending().await,
                    Reply::Delayed(d, then) => {
                        self.0.clock.sleep(d).await;
                        reply = *then;
                        continue;
                    }
                };
                let now = self.0.clock.now();
                let answer = self.0.sso.answer(&sso_call, now, skew);
                return match answer {
                    Some((r, issued)) => {
                        if let Some((key, expiry)) = issued {
                            lock::lock(&self.0.truth).insert(key, expiry);
                        }
                        Ok(r)
                    }
                    None => Err(scripted::refused()),
                };
            }
        }
        let call = self.parse(&request);
        lock::lock(&self.0.calls).push(call.clone());
        let mut reply = (lock::lock(&self.0.script))(&call);
        loop {
            match reply {
                Reply::Normal => return Ok(self.normal(&call, 0)),
                Reply::Skewed(secs) => return Ok(self.normal(&call, secs)),
                Reply::Error(status, code) => {
                    return Ok(scripted::error_xml(
                        XMLNS,
                        status,
                        code,
                        &format!("{code} (scripted)"),
                    ));
                }
                Reply::ErrorWithMessage(status, code, message) => {
                    return Ok(scripted::error_xml(XMLNS, status, code, message));
                }
                Reply::Unreachable => return Err(scripted::refused()),
                Reply::Hang => std::future::pending::<()>().await,
                Reply::Delayed(d, then) => {
                    self.0.clock.sleep(d).await;
                    reply = *then;
                }
            }
        }
    }
}
