//! The HTTP client of credd's own OIDC login: hyper over rustls (ring, the system's roots), one
//! attempt of at most [`TIMEOUT`] per call, no redirects followed (an OAuth client must not), and
//! bodies of at most [`MAX_BODY`]. `openidconnect` calls it through its `AsyncHttpClient` trait.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openidconnect::{HttpRequest, HttpResponse};

use crate::access::error_chain;

/// A discovery document, a key set or a token response is a few KiB.
const MAX_BODY: usize = 1024 * 1024;
/// One call: the identity provider answers in well under this, or is treated as unreachable.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no HTTPS client: {0}")]
    Setup(String),
    #[error("{0}")]
    Request(String),
    #[error("no answer within {}s", TIMEOUT.as_secs())]
    Timeout,
    #[error("the answer is larger than {} KiB", MAX_BODY / 1024)]
    TooLarge,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type HttpsClient = Client<Connector, Full<Bytes>>;

/// Cheap to clone; every clone shares one client (one connection pool), made at the first call
/// (loading the system's root certificates is not worth doing for a login that never comes).
/// Unit tests answer with a scripted identity provider instead ([`OidcHttp::scripted`]).
#[derive(Clone, Default)]
pub struct OidcHttp {
    client: Arc<OnceLock<Result<HttpsClient, String>>>,
    #[cfg(test)]
    scripted: Option<Scripted>,
}

/// A unit test's identity provider: the request in, the answer (or the failure) out.
#[cfg(test)]
pub type Scripted = Arc<
    dyn Fn(HttpRequest) -> crate::access::BoxFuture<'static, Result<HttpResponse, HttpError>>
        + Send
        + Sync,
>;

impl OidcHttp {
    fn client(&self) -> Result<&HttpsClient, HttpError> {
        self.client
            .get_or_init(|| {
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map(|b| {
                        let connector = b.https_or_http().enable_http1().build();
                        Client::builder(TokioExecutor::new()).build(connector)
                    })
                    .map_err(|e| format!("could not load the system's root certificates: {e}"))
            })
            .as_ref()
            .map_err(|e| HttpError::Setup(e.clone()))
    }

    /// Every call answered by `provider`, under the same time limit.
    #[cfg(test)]
    pub fn scripted(provider: Scripted) -> OidcHttp {
        OidcHttp {
            client: Arc::default(),
            scripted: Some(provider),
        }
    }

    pub async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        #[cfg(test)]
        if let Some(provider) = &self.scripted {
            return tokio::time::timeout(TIMEOUT, provider(request))
                .await
                .unwrap_or(Err(HttpError::Timeout));
        }
        let client = self.client()?;
        let (parts, body) = request.into_parts();
        let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let work = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| HttpError::Request(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge
                    } else {
                        HttpError::Request(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(HttpResponse::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }
}
