//! A small AWS SDK for Rust client for the end-to-end tests: it gets credentials the way a real
//! program would, then asks STS who it is. It runs as its own process so that `aws-config` reads
//! the environment of the test world (never the test runner's), e.g. under `credd exec`.
//!
//! `sdk-client default` — the whole default chain, configured from the environment only;
//! `sdk-client container` — `EcsCredentialsProvider` (`AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` from the environment);
//! `sdk-client imds URL` — `ImdsCredentialsProvider` with an IMDS client whose endpoint is URL;
//! `sdk-client follow` — the default chain and one STS client (its identity cache) for the whole
//! process, one call per line read on stdin, one JSON line each (`{"error"}` when one fails).
//!
//! Every client gets [`http_client`] (the SDK's own, on ring: the workspace builds no aws-lc).
//! STS is reached at `AWS_ENDPOINT_URL_STS`. Prints one JSON line
//! `{"arn": CALLER ARN, "expiration": UNIX SECONDS}` and exits 0; on failure prints the error to
//! stderr and exits 1.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::config::Region;
use credd_tests::sdk::http_client;

/// Bounds every call, so a hung daemon fails the test instead of hanging it.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    if args == ["follow"] {
        return follow(&runtime);
    }
    match runtime.block_on(run(&args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sdk-client {}: {e}", args.join(" "));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<String, String> {
    let providers = ProviderConfig::default().with_http_client(http_client());
    let provider = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["default"] => aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .load()
            .await
            .credentials_provider()
            .ok_or("the default chain found no credentials provider")?,
        ["container"] => SharedCredentialsProvider::new(
            EcsCredentialsProvider::builder()
                .configure(&providers)
                .build(),
        ),
        ["imds", url] => {
            let client = aws_config::imds::Client::builder()
                .configure(&providers)
                .endpoint(url)
                .map_err(|e| format!("bad IMDS endpoint {url}: {e}"))?
                .build();
            SharedCredentialsProvider::new(
                ImdsCredentialsProvider::builder()
                    .imds_client(client)
                    .build(),
            )
        }
        _ => return Err("usage: sdk-client default | container | imds URL".into()),
    };
    let credentials = provider.provide_credentials().await.map_err(|e| {
        format!(
            "no credentials: {}",
            aws_sdk_sts::error::DisplayErrorContext(&e)
        )
    })?;
    let expiration = credentials
        .expiry()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());

    let endpoint = std::env::var("AWS_ENDPOINT_URL_STS")
        .map_err(|_| "AWS_ENDPOINT_URL_STS is not set".to_owned())?;
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(provider)
        .endpoint_url(endpoint)
        .http_client(http_client())
        .timeout_config(
            aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .build();
    let identity = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetCallerIdentity: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
    let arn = identity.arn().ok_or("GetCallerIdentity returned no Arn")?;
    Ok(serde_json::json!({ "arn": arn, "expiration": expiration }).to_string())
}

/// `sdk-client follow`: as a long-running program uses the SDK, the config loaded once and the
/// client's own identity cache deciding when to fetch again.
fn follow(runtime: &tokio::runtime::Runtime) -> ExitCode {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_STS") else {
        eprintln!("sdk-client follow: AWS_ENDPOINT_URL_STS is not set");
        return ExitCode::FAILURE;
    };
    let shared = runtime.block_on(
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .load(),
    );
    let config = aws_sdk_sts::config::Builder::from(&shared)
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .timeout_config(
            aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .build();
    let client = aws_sdk_sts::Client::from_conf(config);
    for _ in std::io::stdin().lines().map_while(Result::ok) {
        let line = match runtime.block_on(client.get_caller_identity().send()) {
            Ok(identity) => serde_json::json!({
                "arn": identity.arn(),
                "provider": null,
                "expiry": null,
                "account_id": null,
            }),
            Err(e) => serde_json::json!({
                "error": aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
            }),
        };
        println!("{line}");
    }
    ExitCode::SUCCESS
}
