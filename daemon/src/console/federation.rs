//! The AWS federation endpoint's `getSigninToken`, over the STS client's own connector (its TLS,
//! the system's roots, `HTTPS_PROXY`/`NO_PROXY`). The request carries the credentials and the
//! answer a sign-in token: neither the URL nor the answer is ever logged or put in an error.
//!
//! The endpoint is the partition's own; only a test may point the daemon elsewhere, through
//! [`TEST_ENDPOINT_VAR`], and only at a loopback address: no setting can send credentials to
//! another host.

use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use credd_proto::Secret;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use url::Url;

use super::url::{Partition, signin_token_request};
use crate::access::error_chain;
use crate::creds::AwsCredentials;

/// The end-to-end tests' stand-in for the federation endpoint: an `http://` URL on a loopback
/// address, e.g. `http://127.0.0.1:4567/federation`, used for every partition. Anything else
/// is refused at start (logged) and the real endpoints stay in force.
pub const TEST_ENDPOINT_VAR: &str = "CREDD_TEST_FEDERATION_ENDPOINT";

/// The whole call, connection included: the endpoint answers in well under a second.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A `{"SigninToken": "..."}` answer is well under 2 KiB.
const MAX_BODY: usize = 64 * 1024;

/// What an error may quote of a refusal's body.
const MAX_QUOTED: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    #[error("the AWS federation endpoint ({host}) could not be reached: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("the AWS federation endpoint ({host}) did not answer within {}s", TIMEOUT.as_secs())]
    Timeout { host: String },
    #[error("the AWS federation endpoint ({host}) refused the sign-in: HTTP {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        host: String,
        status: u16,
        detail: Option<String>,
    },
    #[error(
        "the AWS federation endpoint ({host}) answered something other than a sign-in token: {what}"
    )]
    Malformed { host: String, what: &'static str },
    #[error("only temporary credentials sign in to the console, not a long-lived key")]
    LongLivedKey,
}

/// The federation endpoints the daemon signs in at.
pub struct Federation {
    /// [`TEST_ENDPOINT_VAR`], for every partition.
    test_endpoint: Option<Url>,
    /// Made at the first sign-in (loading the system's roots is not worth it for none).
    connector: OnceLock<aws_smithy_http_client::Connector>,
}

impl Federation {
    /// The real endpoints, unless a test names a loopback stand-in in [`TEST_ENDPOINT_VAR`].
    pub fn from_env() -> Federation {
        let test_endpoint = std::env::var(TEST_ENDPOINT_VAR)
            .ok()
            .filter(|v| !v.is_empty())
            .and_then(|v| match loopback_endpoint(&v) {
                Ok(url) => {
                    tracing::info!(endpoint = %url, "federation endpoint overridden for tests ({TEST_ENDPOINT_VAR})");
                    Some(url)
                }
                Err(why) => {
                    tracing::error!("{TEST_ENDPOINT_VAR} ignored: {why}");
                    None
                }
            });
        Federation {
            test_endpoint,
            connector: OnceLock::new(),
        }
    }

    /// The endpoint for `partition`.
    pub fn endpoint(&self, partition: Partition) -> Url {
        self.test_endpoint
            .clone()
            .unwrap_or_else(|| partition.federation_endpoint())
    }

    /// A sign-in token for `creds` (temporary credentials: a role session or a federation
    /// token); `duration_secs` only for a federation token.
    pub async fn signin_token(
        &self,
        partition: Partition,
        creds: &AwsCredentials,
        duration_secs: Option<u64>,
    ) -> Result<Secret, FederationError> {
        let endpoint = self.endpoint(partition);
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        let Some(session_token) = &creds.session_token else {
            // Callers only pass session credentials; a long-lived key would be refused anyway.
            return Err(FederationError::LongLivedKey);
        };
        let secrets = [
            creds.secret_access_key.expose(),
            session_token.expose(),
            creds.access_key_id.as_str(),
        ];
        let request_url = signin_token_request(
            &endpoint,
            &creds.access_key_id,
            &creds.secret_access_key,
            session_token,
            duration_secs,
        );
        let mut request =
            HttpRequest::get(request_url.expose()).map_err(|_| FederationError::Unreachable {
                host: host.clone(),
                detail: "the request could not be built".to_owned(),
            })?;
        request
            .headers_mut()
            .insert("user-agent", concat!("credd/", env!("CARGO_PKG_VERSION")));
        request.headers_mut().insert("accept", "application/json");
        drop(request_url);

        let connector = self
            .connector
            .get_or_init(|| crate::sts::https_connector(None, None));
        let call = async {
            let response =
                connector
                    .call(request)
                    .await
                    .map_err(|e| FederationError::Unreachable {
                        host: host.clone(),
                        detail: scrubbed(&error_chain(&e), &secrets)
                            .unwrap_or_else(|| "the connection failed".to_owned()),
                    })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| FederationError::Malformed {
                    host: host.clone(),
                    what: "the answer could not be read, or is too large",
                })?
                .to_bytes();
            Ok::<_, FederationError>((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| FederationError::Timeout { host: host.clone() })??;
        if status != 200 {
            return Err(FederationError::Refused {
                host,
                status,
                detail: quoted(&body, &secrets),
            });
        }
        parse_answer(&body).map_err(|what| FederationError::Malformed { host, what })
    }
}

/// The `SigninToken` of a 200 answer. The error says what was wrong, never what was there.
fn parse_answer(body: &[u8]) -> Result<Secret, &'static str> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "SigninToken")]
        signin_token: Option<Secret>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| "not a JSON object")?;
    match answer.signin_token {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err("no SigninToken in it"),
    }
}

/// A short, printable excerpt of a refusal's body for the message, unless it holds any of
/// `secrets` (an endpoint that echoes the request).
fn quoted(body: &[u8], secrets: &[&str]) -> Option<String> {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_QUOTED)
        .collect();
    if text.is_empty() {
        return None;
    }
    scrubbed(&text, secrets)
}

/// `text`, unless it holds any of `secrets`, or the request itself (where they are escaped).
fn scrubbed(text: &str, secrets: &[&str]) -> Option<String> {
    let holds_request = ["Session=", "getSigninToken", "sessionKey"]
        .iter()
        .any(|s| text.contains(s));
    let holds_secret = secrets.iter().any(|s| !s.is_empty() && text.contains(s));
    (!holds_request && !holds_secret).then(|| text.to_owned())
}

/// [`TEST_ENDPOINT_VAR`]'s value, if it is an `http://` URL on a loopback IP address.
fn loopback_endpoint(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if url.scheme() == "http" && loopback && url.query().is_none() {
        Ok(url)
    } else {
        Err(format!(
            "{value:?} is not an http:// URL on a loopback IP address (it is for tests only)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_stand_in_replaces_the_endpoint() {
        assert!(loopback_endpoint("http://127.0.0.1:4567/federation").is_ok());
        assert!(loopback_endpoint("http://[::1]:80/federation").is_ok());
        for bad in [
            "https://127.0.0.1/federation",
            "http://localhost:1/federation",
            "http://10.0.0.1/federation",
            "http://signin.evil.example/federation",
            "http://127.0.0.1/federation?x=1",
            "not a url",
        ] {
            assert!(loopback_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_token_is_a_good_answer_and_errors_never_quote_it() {
        assert_eq!(
            parse_answer(br#"{"SigninToken":"abc"}"#).unwrap().expose(),
            "abc"
        );
        assert_eq!(parse_answer(b"<html>"), Err("not a JSON object"));
        assert_eq!(
            parse_answer(br#"{"SigninToken":""}"#),
            Err("no SigninToken in it")
        );
        assert_eq!(
            parse_answer(br#"{"Other":"x"}"#),
            Err("no SigninToken in it")
        );
        assert_eq!(
            parse_answer(br#"{"SigninToken":12}"#),
            Err("not a JSON object")
        );
    }

    #[test]
    fn a_refusal_is_quoted_only_when_it_holds_no_secret() {
        assert_eq!(
            quoted(b"  Bad\n request \x07", &["SECRET"]).as_deref(),
            Some("Bad request")
        );
        assert_eq!(quoted(b"echo: SECRET", &["SECRET"]), None);
        assert_eq!(
            quoted(b"GET /federation?Action=getSigninToken&Session=%7B", &[]),
            None
        );
        assert_eq!(quoted(b"", &["SECRET"]), None);
        let long = vec![b'x'; 1000];
        assert_eq!(quoted(&long, &[]).unwrap().len(), MAX_QUOTED);
    }
}
