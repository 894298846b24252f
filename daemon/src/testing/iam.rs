//! A scripted IAM for unit tests, plugged into the real SDK client as its HTTP client (as
//! [`super::sts`] is for STS): it keeps the user's access keys (two at most, as IAM does),
//! answers CreateAccessKey, DeleteAccessKey and ListAccessKeys the way IAM does, records every
//! call, and lets a test script any answer instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_iam::config::http::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;

use super::scripted::{self, Scripted};
use crate::access::iam_user::iam::Iam;
use crate::clock::Clock;
use crate::lock;

/// IAM's XML namespace.
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// One request as IAM saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    /// The key that signed it.
    pub signer: String,
    pub params: BTreeMap<String, String>,
}

/// What the fake does with a call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// What IAM would answer.
    Normal,
    /// An IAM error response, e.g. `(403, "AccessDenied")`.
    Error(u16, &'static str),
    /// The connection is refused.
    Unreachable,
}

/// One of the user's keys.
#[derive(Debug, Clone)]
pub struct FakeKey {
    pub access_key_id: String,
    pub secret: String,
    pub created_at: SystemTime,
}

type Script = Box<dyn Fn(&Call) -> Reply + Send + Sync>;

struct Inner {
    clock: Clock,
    keys: Mutex<Vec<FakeKey>>,
    script: Mutex<Script>,
    calls: Mutex<Vec<Call>>,
    issued: AtomicU64,
}

/// Cheap to clone; clones share the keys, the script and the record of calls.
#[derive(Clone)]
pub struct FakeIam(Arc<Inner>);

impl std::fmt::Debug for FakeIam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeIam").finish_non_exhaustive()
    }
}

impl FakeIam {
    /// A fake with no keys that answers every call normally, and the [`Iam`] that calls it.
    pub fn new(clock: &Clock) -> (FakeIam, Iam) {
        let fake = FakeIam(Arc::new(Inner {
            clock: clock.clone(),
            keys: Mutex::new(Vec::new()),
            script: Mutex::new(Box::new(|_| Reply::Normal)),
            calls: Mutex::new(Vec::new()),
            issued: AtomicU64::new(0),
        }));
        let http = scripted::http_client(fake.clone());
        (fake, Iam::with_http_client(clock.clone(), http))
    }

    /// Gives the user a key made at `created_at`.
    pub fn add_key(&self, access_key_id: &str, secret: &str, created_at: SystemTime) {
        lock::lock(&self.0.keys).push(FakeKey {
            access_key_id: access_key_id.to_owned(),
            secret: secret.to_owned(),
            created_at,
        });
    }

    /// The user's keys, oldest first.
    pub fn keys(&self) -> Vec<FakeKey> {
        lock::lock(&self.0.keys).clone()
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.keys().into_iter().map(|k| k.access_key_id).collect()
    }

    /// From now on, `script` decides each call's reply.
    pub fn script(&self, script: impl Fn(&Call) -> Reply + Send + Sync + 'static) {
        *lock::lock(&self.0.script) = Box::new(script);
    }

    pub fn calls_of(&self, action: &str) -> Vec<Call> {
        lock::lock(&self.0.calls)
            .iter()
            .filter(|c| c.action == action)
            .cloned()
            .collect()
    }

    fn normal(&self, call: &Call) -> HttpResponse {
        let now = self.0.clock.now();
        let mut keys = lock::lock(&self.0.keys);
        let result = match call.action.as_str() {
            "CreateAccessKey" => {
                if keys.len() >= 2 {
                    return error(409, "LimitExceeded");
                }
                let n = self.0.issued.fetch_add(1, Ordering::SeqCst);
                let key = FakeKey {
                    access_key_id: format!("AKIAFAKENEW{n:09}"),
                    secret: format!("fake-new-secret-{n}"),
                    created_at: now,
                };
                keys.push(key.clone());
                format!(
                    "<CreateAccessKeyResult><AccessKey><UserName>alice</UserName>\
                     <AccessKeyId>{}</AccessKeyId><Status>Active</Status>\
                     <SecretAccessKey>{}</SecretAccessKey><CreateDate>{}</CreateDate>\
                     </AccessKey></CreateAccessKeyResult>",
                    key.access_key_id,
                    key.secret,
                    humantime::format_rfc3339_seconds(now)
                )
            }
            "DeleteAccessKey" => {
                let id = call.params.get("AccessKeyId").cloned().unwrap_or_default();
                let before = keys.len();
                keys.retain(|k| k.access_key_id != id);
                if keys.len() == before {
                    return error(404, "NoSuchEntity");
                }
                String::new()
            }
            "ListAccessKeys" => {
                let members: String = keys
                    .iter()
                    .map(|k| {
                        format!(
                            "<member><UserName>alice</UserName><AccessKeyId>{}</AccessKeyId>\
                             <Status>Active</Status><CreateDate>{}</CreateDate></member>",
                            k.access_key_id,
                            humantime::format_rfc3339_seconds(k.created_at)
                        )
                    })
                    .collect();
                format!(
                    "<ListAccessKeysResult><UserName>alice</UserName>\
                     <AccessKeyMetadata>{members}</AccessKeyMetadata>\
                     <IsTruncated>false</IsTruncated></ListAccessKeysResult>"
                )
            }
            other => panic!("the fake IAM does not know {other:?}"),
        };
        scripted::ok_xml(XMLNS, &call.action, &result)
    }
}

impl Scripted for FakeIam {
    async fn answer(self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let params = scripted::form(&request, "IAM");
        let call = Call {
            action: params.get("Action").cloned().unwrap_or_default(),
            signer: scripted::signer(&request),
            params,
        };
        lock::lock(&self.0.calls).push(call.clone());
        let reply = (lock::lock(&self.0.script))(&call);
        match reply {
            Reply::Normal => Ok(self.normal(&call)),
            Reply::Error(status, code) => Ok(error(status, code)),
            Reply::Unreachable => Err(scripted::refused()),
        }
    }
}

/// An IAM error response, e.g. `(409, "LimitExceeded")`.
fn error(status: u16, code: &str) -> HttpResponse {
    scripted::error_xml(XMLNS, status, code, &format!("{code} (scripted)"))
}
