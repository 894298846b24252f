//! `credd env`: shell exports that point every AWS SDK at credd's container-credentials route,
//! and unset the variables that would otherwise win over it. Without an access session it logs
//! in first on the terminal (the exports go to stdout, as ever), or fails at once where there is
//! none.

use std::collections::BTreeMap;
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{EndpointInfo, Request, Response};

use super::{ask, login, unexpected};
use crate::error::ClientError;
use crate::output;
use crate::shadow;

/// Variables that take precedence over the container route in SDK credential chains, or would
/// redirect it; `credd env` and `credd exec` remove them.
pub const CONFLICTING: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Sh,
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl Shell {
    fn from_env() -> Shell {
        let shell = std::env::var("SHELL").unwrap_or_default();
        match shell.rsplit('/').next().unwrap_or_default() {
            "fish" => Shell::Fish,
            "pwsh" | "powershell" => Shell::Powershell,
            "zsh" => Shell::Zsh,
            "bash" => Shell::Bash,
            _ => Shell::Sh,
        }
    }
}

pub fn endpoint(paths: &Paths, profile: Option<String>) -> Result<EndpointInfo, ClientError> {
    let request = Request::Endpoint { profile };
    match ask(paths, &request)? {
        Response::Endpoint(info) => Ok(info),
        other => Err(unexpected(&request, other)),
    }
}

/// The variables to set for `info`. The token file is the one this client derives from its own
/// paths, never one a daemon names: an SDK sends that file's contents as its `Authorization`.
pub fn variables(paths: &Paths, info: &EndpointInfo) -> BTreeMap<&'static str, String> {
    let mut vars = BTreeMap::new();
    vars.insert("AWS_CONTAINER_CREDENTIALS_FULL_URI", info.url.clone());
    vars.insert(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        paths.token_file().display().to_string(),
    );
    if let Some(region) = &info.region {
        vars.insert("AWS_REGION", region.clone());
        vars.insert("AWS_DEFAULT_REGION", region.clone());
    }
    vars
}

pub fn run(
    paths: &Paths,
    json: bool,
    profile: Option<String>,
    shell: Option<Shell>,
) -> Result<ExitCode, ClientError> {
    let info = endpoint(paths, profile)?;
    if info.needs_login
        && let Some(code) = login::on_demand(paths, "`credd env`", None)?
    {
        return Ok(code);
    }
    let vars = variables(paths, &info);
    for shadow in shadow::find() {
        shadow::warn(&shadow, false);
    }
    if json {
        output::json(&serde_json::json!({ "set": vars, "unset": CONFLICTING }));
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(shell.unwrap_or_else(Shell::from_env), &vars));
    Ok(ExitCode::SUCCESS)
}

fn render(shell: Shell, vars: &BTreeMap<&'static str, String>) -> String {
    let mut out = match shell {
        Shell::Sh | Shell::Bash | Shell::Zsh => format!("unset {};\n", CONFLICTING.join(" ")),
        Shell::Fish => format!("set -e {};\n", CONFLICTING.join(" ")),
        Shell::Powershell => CONFLICTING
            .iter()
            .map(|name| format!("Remove-Item Env:{name} -ErrorAction SilentlyContinue;\n"))
            .collect(),
    };
    for (name, value) in vars {
        out.push_str(&match shell {
            Shell::Sh | Shell::Bash | Shell::Zsh => {
                format!("export {name}='{}';\n", value.replace('\'', r"'\''"))
            }
            Shell::Fish => format!(
                "set -gx {name} '{}';\n",
                value.replace('\\', r"\\").replace('\'', r"\'")
            ),
            Shell::Powershell => format!("$Env:{name} = '{}';\n", value.replace('\'', "''")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_per_shell() {
        let mut vars = BTreeMap::new();
        vars.insert("AWS_REGION", "it's".to_owned());
        assert!(render(Shell::Bash, &vars).contains("export AWS_REGION='it'\\''s';"));
        assert!(render(Shell::Fish, &vars).contains("set -gx AWS_REGION 'it\\'s';"));
        assert!(render(Shell::Powershell, &vars).contains("$Env:AWS_REGION = 'it''s';"));
        assert!(
            render(Shell::Zsh, &vars).starts_with("unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY ")
        );
    }
}
