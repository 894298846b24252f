//! AWS Organizations, asked one thing: which organization the access identity's account belongs
//! to, and which account manages it (DescribeOrganization, which any account of an
//! organization may call). Built like [`crate::sts`]: the daemon's HTTP client and clock, short
//! limits (it runs inside `credd doctor`), and an endpoint override from the environment
//! (`AWS_ENDPOINT_URL_ORGANIZATIONS`, then `AWS_ENDPOINT_URL`), which is how the tests point it at
//! moto. Organizations is global: one endpoint per partition.

use std::time::Duration;

use aws_sdk_organizations::config::SharedHttpClient;
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};

use crate::clock::Clock;
use crate::creds::AwsCredentials;
use crate::sdk::{Clients, Limits, global_service_region};

/// One call per doctor run: 4 s an attempt, 8 s in all, 2 s to connect.
const LIMITS: Limits = Limits {
    connect: Some(Duration::from_secs(2)),
    attempt: Duration::from_secs(4),
    operation: Duration::from_secs(8),
    max_attempts: 2,
};

/// What DescribeOrganization said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// The account belongs to no organization (AWSOrganizationsNotInUseException).
    None,
    /// The account is in organization `id`, managed by `management_account`.
    Organization {
        id: String,
        management_account: String,
    },
}

/// Why the question could not be answered. No secret: AWS's messages name no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationsError {
    #[error("AWS Organizations denied organizations:DescribeOrganization: {message}")]
    AccessDenied { message: String },
    #[error("AWS Organizations could not be reached at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("AWS Organizations refused DescribeOrganization: {code}: {message}")]
    Refused { code: String, message: String },
}

pub struct Organizations {
    clients: Clients<aws_sdk_organizations::Client>,
}

impl Organizations {
    /// `http` is the STS client's: one connection pool for the daemon.
    pub fn from_env(clock: Clock, http: SharedHttpClient) -> Organizations {
        let endpoint = ["AWS_ENDPOINT_URL_ORGANIZATIONS", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Organizations {
            clients: Clients::new(
                aws_sdk_organizations::Client::new,
                clock,
                http,
                endpoint,
                LIMITS,
            ),
        }
    }

    /// DescribeOrganization signed by `signer`.
    pub async fn membership(
        &self,
        sts_region: Option<&str>,
        signer: &AwsCredentials,
    ) -> Result<Membership, OrganizationsError> {
        let region = global_service_region(sts_region);
        let result = self
            .clients
            .get(region)
            .describe_organization()
            .customize()
            .config_override(
                aws_sdk_organizations::config::Builder::default()
                    .credentials_provider(signer.to_sdk()),
            )
            .send()
            .await;
        let endpoint = || {
            self.clients
                .endpoint()
                .map_or_else(|| format!("Organizations ({region})"), str::to_owned)
        };
        match result {
            Ok(out) => {
                let org = out
                    .organization
                    .ok_or_else(|| OrganizationsError::Refused {
                        code: "EmptyResponse".into(),
                        message: "DescribeOrganization returned no organization".into(),
                    })?;
                Ok(Membership::Organization {
                    id: org.id.unwrap_or_default(),
                    management_account: org.master_account_id.unwrap_or_default(),
                })
            }
            Err(SdkError::ServiceError(e)) => {
                let code = e.err().code().unwrap_or("Unknown").to_owned();
                let message = e.err().message().unwrap_or("no message").to_owned();
                match code.as_str() {
                    "AWSOrganizationsNotInUseException" => Ok(Membership::None),
                    "AccessDeniedException" | "AccessDenied" => {
                        Err(OrganizationsError::AccessDenied { message })
                    }
                    _ if e.raw().status().is_server_error() => {
                        Err(OrganizationsError::Unreachable {
                            endpoint: endpoint(),
                            detail: format!("{code}: {message}"),
                        })
                    }
                    _ => Err(OrganizationsError::Refused { code, message }),
                }
            }
            Err(SdkError::TimeoutError(_)) => Err(OrganizationsError::Unreachable {
                endpoint: endpoint(),
                detail: "no answer in time".into(),
            }),
            Err(SdkError::DispatchFailure(e)) => Err(OrganizationsError::Unreachable {
                endpoint: endpoint(),
                detail: e
                    .as_connector_error()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "could not send the request".into()),
            }),
            Err(e) => Err(OrganizationsError::Unreachable {
                endpoint: endpoint(),
                detail: e.to_string(),
            }),
        }
    }
}
