//! The AWS SDK clients of the daemon (STS, IAM, SSO OIDC, the SSO portal), one per service and
//! region ([`Clients`]), all built alike: the latest behavior version, the engine's clock (what
//! signs requests and times them out), the one HTTP client (one connection pool), standard
//! retries, the service's own [`Limits`] and the endpoint override it read from the environment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, SharedHttpClient, TimeoutConfig};

use crate::clock::Clock;
use crate::lock;

/// The Region that signs for a global service (IAM, Organizations) in the partition of the STS
/// Region `sts_region`: such a service has one endpoint per partition, and the SDK's endpoint
/// rules find it from any Region of that partition.
pub fn global_service_region(sts_region: Option<&str>) -> &'static str {
    match sts_region {
        Some(r) if r.starts_with("cn-") => "cn-north-1",
        Some(r) if r.starts_with("us-gov-") => "us-gov-west-1",
        _ => "us-east-1",
    }
}

/// How long one call of a service may take, and how many times it is tried.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To open a connection; `None` leaves it to the SDK's default.
    pub connect: Option<Duration>,
    /// One attempt, from sending the request to the end of the response.
    pub attempt: Duration,
    /// The whole call, retries included.
    pub operation: Duration,
    pub max_attempts: u32,
}

/// A service's SDK clients, one per region, each made on first use and kept.
pub struct Clients<C> {
    made: Mutex<HashMap<String, C>>,
    /// The service's `Client::new`.
    make: fn(&SdkConfig) -> C,
    clock: Clock,
    http: SharedHttpClient,
    endpoint: Option<String>,
    limits: Limits,
}

impl<C: Clone> Clients<C> {
    /// Clients made by `make` (e.g. `aws_sdk_sts::Client::new`) that call `endpoint` instead of
    /// AWS's regional one when given.
    pub fn new(
        make: fn(&SdkConfig) -> C,
        clock: Clock,
        http: SharedHttpClient,
        endpoint: Option<String>,
        limits: Limits,
    ) -> Clients<C> {
        Clients {
            made: Mutex::new(HashMap::new()),
            make,
            clock,
            http,
            endpoint,
            limits,
        }
    }

    /// The client for `region`.
    pub fn get(&self, region: &str) -> C {
        lock::lock(&self.made)
            .entry(region.to_owned())
            .or_insert_with(|| {
                (self.make)(&config(
                    &self.clock,
                    &self.http,
                    Region::new(region.to_owned()),
                    self.endpoint.as_deref(),
                    self.limits,
                ))
            })
            .clone()
    }

    /// The endpoint that replaces AWS's, if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The HTTP client every call goes through.
    pub fn http(&self) -> &SharedHttpClient {
        &self.http
    }
}

/// The config of a client for `region`, calling `endpoint` instead of AWS's when given.
fn config(
    clock: &Clock,
    http: &SharedHttpClient,
    region: Region,
    endpoint: Option<&str>,
    limits: Limits,
) -> SdkConfig {
    let mut timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(limits.attempt)
        .operation_timeout(limits.operation);
    // Only when given: `set_connect_timeout(None)` would disable the SDK's default.
    if let Some(connect) = limits.connect {
        timeouts = timeouts.connect_timeout(connect);
    }
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .time_source(clock.clone())
        .http_client(http.clone())
        .retry_config(RetryConfig::standard().with_max_attempts(limits.max_attempts))
        .timeout_config(timeouts.build());
    config.set_endpoint_url(endpoint.map(str::to_owned));
    config.build()
}
