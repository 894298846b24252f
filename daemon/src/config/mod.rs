//! The config file: TOML types, defaults and validation.
//!
//! One module per section — `daemon` (`[daemon]`), `access` (`[access]`, a file per access
//! source), `profiles` (`[profiles.NAME]`) — and `checks` for the small value checkers they share.
//! `import` proposes the profiles `credd import --sso` adds, by the same rules.
//! Parsing keeps the source span of every value that has rules beyond its type, so each error
//! names `file:line:col` and what was expected. A [`Config`] only exists once it is fully valid.

mod access;
mod audit;
mod checks;
mod daemon;
mod docker;
mod import;
#[cfg(test)]
mod import_aws_tests;
pub mod names;
mod profiles;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use access::{
    AccessConfig, AccessSourceKind, DEFAULT_AWS_PROFILE, DEFAULT_FEDERATED_DURATION,
    DEFAULT_REGION, DEFAULT_SESSION_DURATION, DEFAULT_SSO_SESSION_DURATION, FEDERATED_MAX,
    FEDERATED_MIN, IamUserConfig, KeySource, OidcConfig, SESSION_MAX, SESSION_MIN, SSO_SESSION_MAX,
    SSO_SESSION_MIN, SamlConfig, SourceConfig, SsoConfig, SsoLogin, SsoReplica, SsoRole,
    WebIdentityConfig, WebIdentityToken,
};
pub use audit::{AuditConfig, DEFAULT_MAX_SIZE};
pub use checks::{check_name, check_region};
pub use daemon::{BOTOCORE_IMDS_FLOOR, DEFAULT_LISTEN, DEFAULT_MIN_REMAINING, DaemonConfig};
pub use docker::{DockerConfig, unix_socket};
pub use import::sso_import;
pub use profiles::{
    ASSUME_ROLE_DEFAULT, ASSUME_ROLE_MAX, ASSUME_ROLE_MIN, CHAINED_ROLE_MAX, Profile, ProfileKind,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub default_profile: Option<String>,
    pub daemon: DaemonConfig,
    pub audit: AuditConfig,
    pub docker: DockerConfig,
    pub access: AccessConfig,
    pub profiles: BTreeMap<String, Profile>,
    /// Valid but noteworthy (e.g. a chained duration capped at 1 h): logged and shown by status.
    pub warnings: Vec<String>,
}

/// What went wrong, and where: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; `None` when the problem is the file as a whole (missing, unreadable).
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(line), Some(col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.msg)
            }
            _ => write!(f, "{}: {}", self.path.display(), self.msg),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_profile: Option<Spanned<String>>,
    #[serde(default)]
    daemon: daemon::RawDaemon,
    #[serde(default)]
    audit: audit::RawAudit,
    #[serde(default)]
    docker: docker::RawDocker,
    access: Option<Spanned<access::RawAccess>>,
    #[serde(default)]
    profiles: profiles::RawProfiles,
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: None,
        col: None,
        msg: if e.kind() == std::io::ErrorKind::NotFound {
            "no config file here; create one (see the README's config reference) or point \
             CREDD_CONFIG / --config at it"
                .to_owned()
        } else {
            format!("cannot read: {e}")
        },
    })?;
    parse(path, &text)
}

/// Where the HTTP API listens with the config at `path`: its `[daemon] listen`, or the default
/// while there is no config file yet.
pub fn listen_address(path: &Path) -> anyhow::Result<std::net::SocketAddr> {
    if !path.exists() {
        return Ok(daemon::DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"));
    }
    Ok(load(path)?.daemon.listen)
}

/// Validates config text; `path` is only used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let v = Validator { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let mut msg = e.message().trim_end().to_owned();
        let line = e
            .span()
            .map(|span| line_at(text, span.start))
            .unwrap_or_default();
        if let Some(hint) = aws_config_habit(line) {
            msg.push_str(&format!("\nhint: {hint}"));
        }
        v.error(e.span(), msg)
    })?;
    v.config(raw)
}

/// The whole line of `text` around byte `offset`.
fn line_at(text: &str, offset: usize) -> &str {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    &text[start..end]
}

/// A hint for a table header written as in `~/.aws/config` (`[profile prod]`, `[profile.prod]`),
/// which credd's TOML spells `[profiles.prod]`.
fn aws_config_habit(line: &str) -> Option<String> {
    let header = line.trim().strip_prefix('[')?.split(']').next()?.trim();
    let rest = header.strip_prefix("profile")?;
    let name = rest
        .strip_prefix('.')
        .or_else(|| rest.strip_prefix(|c: char| c.is_whitespace()))?
        .trim()
        .trim_matches(['"', '\'']);
    if name.is_empty() {
        return None;
    }
    let key = if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    };
    Some(format!(
        "credd's config names a profile `[profiles.{key}]`; `[{header}]` is how the AWS CLI's \
         config file says it"
    ))
}

/// Turns the raw TOML into a [`Config`]; each section's module adds its own methods.
struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn error(&self, span: Option<Range<usize>>, msg: impl Into<String>) -> ConfigError {
        let (line, col) = match span {
            Some(span) => {
                let (l, c) = line_col(self.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            col,
            msg: msg.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, msg: impl Into<String>) -> ConfigError {
        self.error(Some(value.span()), msg)
    }

    /// An error about a key that has no place here: it points at `key` itself where the text
    /// reads `key = value`, else at the value.
    fn at_key(&self, value: Range<usize>, key: &str, msg: impl Into<String>) -> ConfigError {
        let offset = key_start(self.text, value.start, key).unwrap_or(value.start);
        self.error(Some(offset..offset), msg)
    }

    fn duration(&self, value: &Spanned<String>, what: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(value.get_ref().trim()).map_err(|e| {
            self.at(
                value,
                format!(
                    "{what}: expected a duration like \"30m\", \"1h\" or \"12h\", found {:?} ({e})",
                    value.get_ref()
                ),
            )
        })
    }

    /// A duration within `limits` (`whose` names them: "STS", "Identity Center").
    fn duration_in(
        &self,
        value: &Spanned<String>,
        what: &str,
        (min, max): (Duration, Duration),
        whose: &str,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(value, what)?;
        if d < min || d > max {
            return Err(self.at(
                value,
                format!(
                    "{what} must be between {} and {} ({whose} limits), found {}",
                    fmt_duration(min),
                    fmt_duration(max),
                    fmt_duration(d)
                ),
            ));
        }
        Ok(d)
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let daemon = self.daemon(raw.daemon)?;
        let audit = self.audit(raw.audit)?;
        let docker = self.docker(raw.docker)?;
        let Some(access) = raw.access else {
            return Err(self.error(
                Some(0..0),
                "missing [access] table: say how you log into the access account, e.g.\n\
                 [access]\nsource = \"iam-user\"\naws_profile = \"access\"",
            ));
        };
        let access = self.access(access)?;
        let profiles = self.profiles(raw.profiles, &access, &daemon, &mut warnings)?;
        daemon.warnings(&mut warnings);

        let default_profile = match raw.default_profile {
            Some(d) if !profiles.contains_key(d.get_ref()) => {
                return Err(self.at(
                    &d,
                    format!(
                        "default_profile = {:?} is not a configured profile{}",
                        d.get_ref(),
                        profiles::known(&profiles, d.get_ref())
                    ),
                ));
            }
            Some(d) => Some(d.into_inner()),
            None => None,
        };

        Ok(Config {
            path: self.path.to_path_buf(),
            default_profile,
            daemon: daemon.config,
            audit,
            docker,
            access,
            profiles,
            warnings,
        })
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Where `key` starts when `text` reads `key = ` right before `value_start` (spaces allowed, as
/// in `[table]` bodies and inline tables); `None` for any other shape.
fn key_start(text: &str, value_start: usize, key: &str) -> Option<usize> {
    let before = text.get(..value_start)?.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?.trim_end_matches([' ', '\t']);
    let start = before.strip_suffix(key).map(str::len)?;
    let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    match before[..start].chars().next_back() {
        Some(c) if bare(c) => None,
        _ => Some(start),
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `1h 30m`, `1day 12h`; from 30 days on in days (`90days`), where humantime would say months of
/// 30.44 days (`2months 29days 2h 52m 48s` for 90 days).
pub fn fmt_duration(d: Duration) -> String {
    const DAY: u64 = 86_400;
    let days = d.as_secs() / DAY;
    if days < 30 {
        return humantime::format_duration(d).to_string();
    }
    let rest = d - Duration::from_secs(days * DAY);
    if rest.is_zero() {
        format!("{days}days")
    } else {
        format!("{days}days {}", humantime::format_duration(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{GOOD, SSO, err, ok};
    use super::*;

    #[test]
    fn a_misspelt_profile_name_in_the_config_gets_a_suggestion() {
        let e = err(&GOOD.replace(
            "default_profile = \"staging\"",
            "default_profile = \"stagign\"",
        ));
        assert!(
            e.to_string().ends_with(
                "default_profile = \"stagign\" is not a configured profile; did you mean \
                 \"staging\"? (known: prod-audit, staging)"
            ),
            "{e}"
        );
        let e = err(&GOOD.replace("via = \"staging\"", "via = \"Staging\""));
        assert!(e.to_string().contains("did you mean \"staging\"?"), "{e}");
    }

    #[test]
    fn an_aws_cli_profile_header_gets_a_hint_towards_profiles_dot_name() {
        for (header, hint) in [
            (
                "[profile prod]",
                "`[profiles.prod]`; `[profile prod]` is how the AWS CLI",
            ),
            (
                "[profile.prod]",
                "`[profiles.prod]`; `[profile.prod]` is how the AWS CLI",
            ),
            ("[profile \"my prod\"]", "`[profiles.\"my prod\"]`"),
        ] {
            let text =
                format!("{GOOD}\n{header}\nrole_arn = \"arn:aws:iam::333333333333:role/Deploy\"\n");
            let e = err(&text);
            let shown = e.to_string();
            assert!(
                shown.contains("hint: credd's config names a profile "),
                "{header}: {shown}"
            );
            assert!(shown.contains(hint), "{header}: {shown}");
            let line = text.lines().position(|l| l == header).map(|i| i + 1);
            assert_eq!(e.line, line, "{header}: {shown}");
        }
        // Nothing to hint at elsewhere.
        let e = err(&format!("{GOOD}\n[profiles prod]\n"));
        assert!(!e.to_string().contains("hint"), "{e}");
    }

    #[test]
    fn good_config_loads_with_defaults_and_caps() {
        let c = ok(GOOD);
        assert_eq!(c.default_profile.as_deref(), Some("staging"));
        assert_eq!(c.access.session_duration, DEFAULT_SESSION_DURATION);
        assert_eq!(c.profiles["staging"].account_id, "222222222222");
        assert_eq!(c.profiles["staging"].duration, ASSUME_ROLE_DEFAULT);
        assert_eq!(c.profiles["prod-audit"].duration, CHAINED_ROLE_MAX);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    #[test]
    fn the_identity_center_example_loads() {
        let c = ok(SSO);
        assert_eq!(c.access.kind(), AccessSourceKind::Sso);
        assert_eq!(c.warnings, Vec::<String>::new());
        let staging = &c.profiles["staging"];
        assert_eq!(
            staging.kind,
            ProfileKind::Sso(SsoRole {
                account_id: "222222222222".into(),
                role_name: "AdministratorAccess".into(),
            })
        );
        assert_eq!(staging.account_id, "222222222222");
        assert_eq!(
            staging.sso_role().as_deref(),
            Some("222222222222/AdministratorAccess")
        );
        assert_eq!((staging.role_arn(), staging.via.as_deref()), (None, None));
        assert_eq!(staging.duration, ASSUME_ROLE_DEFAULT);
        let prod = &c.profiles["prod"];
        assert_eq!(
            prod.role_arn(),
            Some("arn:aws:iam::333333333333:role/Deployer")
        );
        assert_eq!(
            (prod.account_id.as_str(), prod.sso_role()),
            ("333333333333", None)
        );
        assert_eq!(
            (prod.via.as_deref(), prod.duration),
            (None, CHAINED_ROLE_MAX)
        );
        let c = ok(&format!("default_profile = \"staging\"\n{SSO}"));
        assert_eq!(c.default_profile.as_deref(), Some("staging"));
    }

    #[test]
    fn syntax_errors_and_unknown_keys_are_located() {
        let e = err("[access]\nsource = \"iam-user\"\nbogus = 1\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.msg.contains("unknown field"), "{e}");
        let e = err("[access\n");
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn default_profile_must_exist() {
        let e = err(&GOOD.replace(
            "default_profile = \"staging\"",
            "default_profile = \"prod\"",
        ));
        assert_eq!(e.line, Some(2));
        assert!(e.msg.contains("known: prod-audit, staging"), "{e}");
    }

    #[test]
    fn key_start_finds_the_key_of_a_value() {
        let text = "[access]\nsource = \"sso\"\naws_profile   =  \"x\"\nt = { mfa_serial=\"y\" }\n";
        let value = text.find("\"x\"").unwrap();
        assert_eq!(
            key_start(text, value, "aws_profile"),
            text.find("aws_profile")
        );
        let value = text.find("\"y\"").unwrap();
        assert_eq!(
            key_start(text, value, "mfa_serial"),
            text.find("mfa_serial")
        );
        // Another key ending in the same letters, or no `key =` before the value: no key.
        let text = "my_aws_profile = \"x\"";
        assert_eq!(key_start(text, 17, "aws_profile"), None);
        assert_eq!(key_start("[\"x\"]", 1, "aws_profile"), None);
    }

    #[test]
    fn long_durations_print_in_days() {
        assert_eq!(fmt_duration(Duration::from_secs(36 * 3600)), "1day 12h");
        assert_eq!(fmt_duration(Duration::from_secs(90 * 86_400)), "90days");
        assert_eq!(
            fmt_duration(Duration::from_secs(30 * 86_400 + 60)),
            "30days 1m"
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
