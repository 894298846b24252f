//! `credd env`: shell exports that point every AWS SDK at credd's container-credentials route,
//! and unset the variables that would otherwise win over it. It runs from shell rc files, so it
//! never logs in: without an access session it says so on stderr and prints the exports all the
//! same (they work once `credd login` has run).
//!
//! `credd env --hook SHELL` adds a hook that runs before each prompt and keeps `AWS_REGION`
//! (and `AWS_DEFAULT_REGION`) on the current profile's region after a `credd switch`: SDKs read
//! the region from the environment, not from the credentials route.

use std::collections::BTreeMap;
use std::process::ExitCode;

use credd_proto::audit::AuditVia;
use credd_proto::paths::Paths;
use credd_proto::{EndpointInfo, Request, Response};

use super::{ask, unexpected};
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
    hook: Option<HookShell>,
) -> Result<ExitCode, ClientError> {
    let info = endpoint(paths, profile)?;
    if info.needs_login {
        // A warning, not a failure: `eval "$(credd env)"` in an rc file must not stop the rest.
        eprintln!("credd: not logged in: run `credd login`");
    }
    let mut vars = variables(paths, &info);
    // What `credd audit` shows as the env route.
    vars.insert(AuditVia::ENV, AuditVia::Env.name().to_owned());
    for shadow in shadow::find() {
        shadow::warn(&shadow, false);
    }
    if json {
        output::json(&serde_json::json!({ "set": vars, "unset": CONFLICTING }));
        return Ok(ExitCode::SUCCESS);
    }
    match hook {
        Some(hook) => {
            print!("{}", render(hook.shell(), &vars));
            print!(
                "{}",
                hook_script(hook, &credd_exe(), info.region.as_deref())
            );
        }
        None => print!("{}", render(shell.unwrap_or_else(Shell::from_env), &vars)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The shells `credd env --hook` has a prompt hook for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookShell {
    Bash,
    Zsh,
    Fish,
}

impl HookShell {
    fn shell(self) -> Shell {
        match self {
            HookShell::Bash => Shell::Bash,
            HookShell::Zsh => Shell::Zsh,
            HookShell::Fish => Shell::Fish,
        }
    }
}

/// This credd, by absolute path: the hook runs it before every prompt, whatever PATH then is.
fn credd_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "credd".to_owned())
}

/// The prompt hook: when the shell follows `credd switch` (its container URI is the current
/// route, not a pinned one), before each prompt it reads the current region with `credd prompt
/// --region` (a file read, no daemon round trip) and, when it changed since the last prompt,
/// exports it (or unsets the region when the new profile has none). A region the user set by
/// hand stays until the next switch. `region` is what the exports above set.
fn hook_script(shell: HookShell, credd: &str, region: Option<&str>) -> String {
    let region = region.unwrap_or_default();
    match shell {
        HookShell::Bash | HookShell::Zsh => {
            let credd = sh_quote(credd);
            let region = sh_quote(region);
            let body = format!(
                r#"_CREDD_REGION={region};
_credd_hook() {{
  local credd_status=$? credd_region
  case "${{AWS_CONTAINER_CREDENTIALS_FULL_URI-}}" in
    */v1/credentials)
      if credd_region="$({credd} prompt --region 2>/dev/null)" && [ "$credd_region" != "${{_CREDD_REGION-}}" ]; then
        _CREDD_REGION="$credd_region"
        if [ -n "$credd_region" ]; then
          export AWS_REGION="$credd_region" AWS_DEFAULT_REGION="$credd_region"
        else
          unset AWS_REGION AWS_DEFAULT_REGION
        fi
      fi
      ;;
  esac
  return $credd_status
}};
"#
            );
            let register = match shell {
                HookShell::Bash => {
                    r#"case ";${PROMPT_COMMAND-};" in
  *";_credd_hook;"*) ;;
  *) PROMPT_COMMAND="_credd_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
esac;
"#
                }
                _ => {
                    "autoload -Uz add-zsh-hook;
add-zsh-hook precmd _credd_hook;
"
                }
            };
            body + register
        }
        HookShell::Fish => {
            let credd = fish_quote(credd);
            let region = fish_quote(region);
            format!(
                r#"set -g _CREDD_REGION {region};
function _credd_hook --on-event fish_prompt
    string match -q -- '*/v1/credentials' "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; or return
    set -l credd_region ({credd} prompt --region 2>/dev/null); or return
    if test "$credd_region" != "$_CREDD_REGION"
        set -g _CREDD_REGION "$credd_region"
        if test -n "$credd_region"
            set -gx AWS_REGION $credd_region
            set -gx AWS_DEFAULT_REGION $credd_region
        else
            set -e AWS_REGION AWS_DEFAULT_REGION
        end
    end
end;
"#
            )
        }
    }
}

fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
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
                format!("export {name}={};\n", sh_quote(value))
            }
            Shell::Fish => format!("set -gx {name} {};\n", fish_quote(value)),
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

    #[test]
    fn the_hooks_call_this_credd_quoted_and_start_from_the_exported_region() {
        let bash = hook_script(HookShell::Bash, "/opt/it's/credd", Some("eu-west-1"));
        assert!(bash.starts_with("_CREDD_REGION='eu-west-1';\n"), "{bash}");
        assert!(
            bash.contains(r"'/opt/it'\''s/credd' prompt --region"),
            "{bash}"
        );
        assert!(bash.contains("PROMPT_COMMAND=\"_credd_hook"), "{bash}");
        let zsh = hook_script(HookShell::Zsh, "/usr/bin/credd", None);
        assert!(zsh.starts_with("_CREDD_REGION='';\n"), "{zsh}");
        assert!(zsh.contains("add-zsh-hook precmd _credd_hook"), "{zsh}");
        let fish = hook_script(HookShell::Fish, "/opt/it's/credd", Some("us-east-1"));
        assert!(
            fish.starts_with("set -g _CREDD_REGION 'us-east-1';\n"),
            "{fish}"
        );
        assert!(
            fish.contains(r"('/opt/it\'s/credd' prompt --region"),
            "{fish}"
        );
        assert!(fish.contains("--on-event fish_prompt"), "{fish}");
    }
}
