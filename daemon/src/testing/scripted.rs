//! What the scripted AWS fakes ([`super::sts::FakeSts`], [`super::iam::FakeIam`])
//! share: the plumbing that plugs a fake into a real SDK client as its HTTP client, reading the
//! requests of AWS's query protocol, and writing its answers (XML) and refused connections; and
//! [`skewed`] times, for the fakes' wrong clocks.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::SharedHttpClient;
use aws_sdk_sts::config::http::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;

/// `t` moved (a clock that is wrong, in a fake's answers) by `secs` seconds, either way.
pub fn skewed(t: SystemTime, secs: i64) -> SystemTime {
    if secs >= 0 {
        t + Duration::from_secs(secs.unsigned_abs())
    } else {
        t.checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// A fake server: answers each request the SDK sends (cheap to clone: clones share its state).
pub trait Scripted: Clone + fmt::Debug + Send + Sync + 'static {
    fn answer(
        self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, ConnectorError>> + Send + 'static;
}

/// `fake` as the HTTP client of an SDK client: every call goes through the SDK's serialization,
/// signing, retries, timeouts and error parsing, and only the server is made up.
pub fn http_client(fake: impl Scripted) -> SharedHttpClient {
    Plugged(fake).into_shared()
}

/// The SDK's HTTP traits for a [`Scripted`] fake (they cannot be implemented for every
/// `Scripted` type directly: both are foreign traits).
#[derive(Clone, Debug)]
struct Plugged<T>(T);

impl<T: Scripted> HttpConnector for Plugged<T> {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let future: Pin<Box<dyn Future<Output = _> + Send>> =
            Box::pin(self.0.clone().answer(request));
        HttpConnectorFuture::new(future)
    }
}

impl<T: Scripted> HttpClient for Plugged<T> {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.clone().into_shared()
    }
}

/// The connection is refused, as by a server that is down.
pub fn refused() -> ConnectorError {
    ConnectorError::io(Box::new(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused (scripted)",
    )))
}

/// The parameters of a query-protocol request (`Action=...&...`, form-encoded in the body), to
/// `service` (for the panic when it is not a form).
pub fn form(request: &HttpRequest, service: &str) -> BTreeMap<String, String> {
    let body = request.body().bytes().unwrap_or_default();
    serde_urlencoded::from_bytes(body)
        .unwrap_or_else(|e| panic!("{service} request body is not a form ({e})"))
}

/// The access key ID that signed `request` (SigV4's `Credential=AKID/...`), else "".
pub fn signer(request: &HttpRequest) -> String {
    request
        .headers()
        .get("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// A response of `status` with `body` of `content_type`.
pub fn response(status: u16, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(
        status.try_into().expect("a valid status"),
        SdkBody::from(body),
    );
    r.headers_mut().insert("content-type", content_type);
    r
}

/// A query-protocol success of `action` in the API's XML `namespace`, `content` inside.
pub fn ok_xml(namespace: &str, action: &str, content: &str) -> HttpResponse {
    response(
        200,
        "text/xml",
        format!(
            "<{action}Response xmlns=\"{namespace}\">{content}\
             <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

/// A query-protocol error response, e.g. `(403, "AccessDenied")`, in the API's XML `namespace`.
pub fn error_xml(namespace: &str, status: u16, code: &str, message: &str) -> HttpResponse {
    response(
        status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"{namespace}\">\
             <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>fake</RequestId></ErrorResponse>"
        ),
    )
}
