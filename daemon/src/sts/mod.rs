//! STS calls with regional failover.
//!
//! One SDK client per configured region (sharing the HTTP connection pool); credentials are set
//! per call. A region that fails in a way another region might not (connection error, timeout,
//! 5xx, throttling after the SDK's own retries) falls over to the next region in order; an answer
//! that another region would repeat (access denied, bad token) is returned at once.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sts::config::SharedHttpClient;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use tokio::time::Instant;

use crate::clock::Clock;

use crate::creds::AwsCredentials;
use crate::lock;
use crate::sdk::{Clients, Limits};

mod clock_probe;
pub mod gate;
pub use clock_probe::ClockProbe;
use gate::Gates;

/// A slow STS must not hold a refresh forever: one attempt gets 5 s, the whole call 12 s, a
/// connection 2 s. Two attempts per region; failover to the next region is the rest of the retry
/// story.
pub const LIMITS: Limits = Limits {
    connect: Some(Duration::from_secs(2)),
    attempt: Duration::from_secs(5),
    operation: Duration::from_secs(12),
    max_attempts: 2,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The region could not answer; another one might.
    Outage,
    /// The credentials that signed the call have expired (`ExpiredToken`).
    Expired,
    /// STS refused the call; every region would.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("STS in {region}: {code}: {message}")]
pub struct StsFailure {
    pub kind: FailureKind,
    pub region: String,
    pub code: String,
    pub message: String,
}

/// After a failover, the region that answered is tried first for this long, so an outage of
/// the first region does not cost every call its failed attempts there.
const PREFER_FALLBACK_FOR: Duration = Duration::from_secs(5 * 60);

pub struct Sts {
    /// One per region, all through one HTTP client (one connection pool).
    clients: Clients<aws_sdk_sts::Client>,
    /// The fallback region that answered last, and when.
    preferred: Mutex<Option<(String, Instant)>>,
    /// What signs requests and times them out: the engine's clock.
    clock: Clock,
    /// A few calls in flight per Region, the ones someone waits for first.
    gates: Gates,
}

impl Sts {
    /// `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`, replace the regional endpoints (tests,
    /// private endpoints); the region still goes into the signature.
    pub fn from_env(clock: Clock) -> Sts {
        let endpoint = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Sts::new(clock, endpoint, https_client())
    }

    /// STS reached through `http` instead of the network: a scripted fake ([`crate::testing::sts`]).
    #[cfg(test)]
    pub fn with_http_client(clock: Clock, http: SharedHttpClient) -> Sts {
        Sts::new(clock, None, http)
    }

    fn new(clock: Clock, endpoint: Option<String>, http: SharedHttpClient) -> Sts {
        Sts {
            clients: Clients::new(
                aws_sdk_sts::Client::new,
                clock.clone(),
                http,
                endpoint,
                LIMITS,
            ),
            preferred: Mutex::new(None),
            clock,
            gates: Gates::default(),
        }
    }

    /// The HTTP client the STS calls go through, for other SDK parts that insist on one.
    pub fn http_client(&self) -> SharedHttpClient {
        self.clients.http().clone()
    }

    /// The wall clock the calls are signed with.
    pub fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    pub fn endpoint_override(&self) -> Option<&str> {
        self.clients.endpoint()
    }

    /// The clients for `regions` in the order to try them: the configured order, except that a
    /// fallback region that answered in the last [`PREFER_FALLBACK_FOR`] goes first.
    fn clients(&self, regions: &[String]) -> Vec<(String, aws_sdk_sts::Client)> {
        let mut order: Vec<&String> = regions.iter().collect();
        if let Some((preferred, since)) = lock::lock(&self.preferred).clone()
            && since.elapsed() < PREFER_FALLBACK_FOR
            && let Some(i) = order.iter().position(|r| **r == preferred)
        {
            let r = order.remove(i);
            order.insert(0, r);
        }
        order
            .into_iter()
            .map(|r| (r.clone(), self.clients.get(r)))
            .collect()
    }

    /// The most calls ever in flight at once to one Region.
    pub fn peak_in_flight(&self) -> usize {
        self.gates.peak()
    }

    /// Runs `op` against each region in turn until one answers or fails for good; each call
    /// waits for its place in the Region's [`gate::Gate`] first, so its timeouts count from when
    /// it is sent.
    pub async fn with_failover<T, F, Fut>(
        &self,
        regions: &[String],
        op: F,
    ) -> Result<(T, String), StsFailure>
    where
        F: Fn(aws_sdk_sts::Client, String) -> Fut,
        Fut: Future<Output = Result<T, StsFailure>>,
    {
        let clients = self.clients(regions);
        let first_configured = regions.first();
        let mut last = None;
        let count = clients.len();
        for (i, (region, client)) in clients.into_iter().enumerate() {
            let answer = {
                let _pass = self.gates.get(&region).enter().await;
                // On the heap while it is in flight: an SDK call's future is tens of kB, and
                // inline it would make every profile's idle worker that big.
                Box::pin(op(client, region.clone())).await
            };
            match answer {
                Ok(v) => {
                    let mut preferred = lock::lock(&self.preferred);
                    if Some(&region) == first_configured {
                        *preferred = None;
                    } else {
                        if i > 0 {
                            tracing::warn!(region = %region, "STS answered from a fallback region");
                        }
                        *preferred = Some((region.clone(), Instant::now()));
                    }
                    return Ok((v, region));
                }
                Err(f) if f.kind == FailureKind::Outage && i + 1 < count => {
                    tracing::warn!(region = %region, code = %f.code, message = %f.message, "STS region failed; trying the next one");
                    last = Some(f);
                }
                Err(f) => return Err(f),
            }
        }
        Err(last.unwrap_or_else(|| StsFailure {
            kind: FailureKind::Refused,
            region: "-".into(),
            code: "NoRegions".into(),
            message: "no STS regions configured".into(),
        }))
    }
}

/// Connections kept open per endpoint between calls: as many as the gate lets calls through.
/// hyper's default keeps every one, so 500 calls at once left ~450 idle connections.
pub const IDLE_CONNECTIONS: usize = gate::IN_FLIGHT;
/// An idle connection is closed after this long (hyper's default is 90 s). Refreshes spread over
/// minutes reuse one now and then; a TLS handshake more is cheaper than sockets held open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The SDK's default HTTP client (hyper, rustls with the system's roots, `HTTPS_PROXY`/`NO_PROXY`,
/// the config's connect timeout) with ring as rustls' crypto instead of aws-lc, whose C build cost
/// more than the rest of the daemon. aws-config's providers need one too, even to read a key from
/// a file. `build_with_connector_fn` is how the SDK builds its default; `build_https()` would
/// ignore the proxy variables.
pub fn https_client() -> aws_sdk_sts::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        https_connector(
            settings.cloned(),
            components.and_then(|components| components.sleep_impl()),
        )
    })
}

/// The connector behind [`https_client`], with its TLS and proxy settings: also for the one call
/// the daemon makes outside an SDK (the console's federation endpoint, [`crate::console`]).
pub fn https_connector(
    settings: Option<aws_smithy_runtime_api::client::http::HttpConnectorSettings>,
    sleep: Option<aws_smithy_async::rt::sleep::SharedAsyncSleep>,
) -> aws_smithy_http_client::Connector {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Connector, proxy::ProxyConfig};

    let mut connector = Connector::builder()
        .pool_max_idle_per_host(IDLE_CONNECTIONS)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .proxy_config(ProxyConfig::from_env());
    connector.set_connector_settings(settings);
    connector.set_sleep_impl(sleep);
    connector.build()
}

/// Per-call signing credentials, without rebuilding the client.
pub fn signed_by(creds: &AwsCredentials) -> aws_sdk_sts::config::Builder {
    aws_sdk_sts::config::Builder::default().credentials_provider(creds.to_sdk())
}

/// Sorts an SDK error into what the caller should do about it.
pub fn classify<E>(region: &str, err: SdkError<E, HttpResponse>) -> StsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = |kind, code: &str, message: String| StsFailure {
        kind,
        region: region.to_owned(),
        code: code.to_owned(),
        message,
    };
    match &err {
        SdkError::TimeoutError(_) => failure(
            FailureKind::Outage,
            "Timeout",
            "no answer in time".to_owned(),
        ),
        SdkError::DispatchFailure(e) => failure(
            FailureKind::Outage,
            "ConnectionFailed",
            e.as_connector_error()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "could not send the request".to_owned()),
        ),
        SdkError::ResponseError(_) => failure(
            FailureKind::Outage,
            "BadResponse",
            "the response could not be read".to_owned(),
        ),
        SdkError::ServiceError(service) => {
            // An answer in a shape the SDK cannot read (a proxy's, moto's access checks) still
            // has its HTTP status: say that rather than "Unknown".
            let code = service.err().code().map_or_else(
                || format!("HTTP {}", service.raw().status().as_u16()),
                str::to_owned,
            );
            let message = service.err().message().unwrap_or("no message").to_owned();
            let kind = match code.as_str() {
                "ExpiredToken" | "ExpiredTokenException" => FailureKind::Expired,
                "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "ServiceUnavailable"
                | "InternalFailure"
                | "InternalError"
                | "RegionDisabledException" => FailureKind::Outage,
                _ if service.raw().status().is_server_error() => FailureKind::Outage,
                _ => FailureKind::Refused,
            };
            failure(kind, &code, message)
        }
        _ => failure(FailureKind::Refused, "RequestFailed", err.to_string()),
    }
}
