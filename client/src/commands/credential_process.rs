//! `credd credential-process <profile>`: the `credential_process` JSON (`"Version": 1`) on stdout.
//! Runs for every `aws` command, so it does one request and nothing else; errors go to stderr.
//! Without an access session it logs in first on the controlling terminal (botocore pipes stdout
//! and stderr, so they cannot be asked on) and asks again; where there is no terminal it fails at
//! once. stdout carries the JSON and nothing else.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use credd_proto::paths::Paths;
use credd_proto::{ErrorCode, Request, Response};
use serde::Serialize;

use super::{ask, login, unexpected};
use crate::error::ClientError;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

pub fn run(paths: &Paths, profile: String) -> Result<ExitCode, ClientError> {
    let request = Request::Credentials {
        profile: Some(profile),
    };
    let answer = match ask(paths, &request) {
        Err(ClientError::Daemon(e)) if e.code == ErrorCode::LoginRequired => {
            let verb = "`credd credential-process`";
            if let Some(code) = login::on_demand(paths, verb, Some(e.message))? {
                return Ok(code);
            }
            ask(paths, &request)?
        }
        answer => answer?,
    };
    let creds = match answer {
        Response::Credentials(c) => c,
        other => return Err(unexpected(&request, other)),
    };
    let out = Output {
        version: 1,
        access_key_id: &creds.access_key_id,
        secret_access_key: creds.secret_access_key.expose(),
        session_token: creds.session_token.expose(),
        expiration: humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_secs(creds.expiration),
        )
        .to_string(),
        account_id: creds.account_id.as_deref(),
    };
    // Straight to stdout: no intermediate copy of the secrets.
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &out).map_err(ClientError::PrintCredentials)?;
    let _ = writeln!(stdout);
    Ok(ExitCode::SUCCESS)
}
