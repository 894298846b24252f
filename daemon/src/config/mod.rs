//! The config file: TOML types, defaults and validation.
//!
//! Parsing keeps the source span of every value that has rules beyond its type, so each error
//! names `file:line:col` and what was expected. A [`Config`] only exists once it is fully valid.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// STS AssumeRole limits; a chained role (assumed from role credentials) is capped at one hour.
pub const ASSUME_ROLE_MIN: Duration = Duration::from_secs(900);
pub const ASSUME_ROLE_MAX: Duration = Duration::from_secs(43_200);
pub const CHAINED_ROLE_MAX: Duration = Duration::from_secs(3_600);
/// STS's own default when DurationSeconds is omitted.
pub const ASSUME_ROLE_DEFAULT: Duration = Duration::from_secs(3_600);
/// GetSessionToken limits for IAM users.
pub const SESSION_MIN: Duration = Duration::from_secs(900);
pub const SESSION_MAX: Duration = Duration::from_secs(129_600);

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9911";
/// SDKs refresh 10–15 minutes before expiry and botocore's IMDS path misbehaves under 25 minutes,
/// so by default nothing is served with less than 30 minutes left.
pub const DEFAULT_MIN_REMAINING: Duration = Duration::from_secs(30 * 60);
/// botocore extends IMDS credentials it gets with less than 15 min + (2..10 min) left.
pub const BOTOCORE_IMDS_FLOOR: Duration = Duration::from_secs(25 * 60);
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub default_profile: Option<String>,
    pub daemon: DaemonConfig,
    pub access: AccessConfig,
    pub profiles: BTreeMap<String, Profile>,
    /// Valid but noteworthy (e.g. a chained duration capped at 1 h): logged and shown by status.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub imds: bool,
    /// IP TTL / hop limit of IMDS responses; 1 keeps them off other hosts and containers.
    pub imds_hop_limit: u8,
    pub min_remaining: Duration,
    /// The current route advertises an `Expiration` at most this far ahead, so SDKs come back
    /// (and follow `credd switch`) within it; never less than `min_remaining`.
    pub follow_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessSourceKind {
    IamUser,
    Sso,
    WebIdentity,
    Saml,
}

impl AccessSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessSourceKind::IamUser => "iam-user",
            AccessSourceKind::Sso => "sso",
            AccessSourceKind::WebIdentity => "web-identity",
            AccessSourceKind::Saml => "saml",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessConfig {
    pub source: AccessSourceKind,
    /// The shared-credentials profile holding the IAM user's long-lived key.
    pub aws_profile: String,
    pub mfa_serial: Option<String>,
    /// `iam-user`: the GetSessionToken session's length. `sso`: the organization's Identity
    /// Center session length, after which a new browser login is needed (shown by status).
    pub session_duration: Duration,
    /// STS regions in order of preference.
    pub regions: Vec<String>,
    /// `source = "sso"`: the Identity Center instance and how to log into it.
    pub sso: Option<SsoConfig>,
}

/// How `credd login` authorizes with Identity Center.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SsoLogin {
    /// The browser (authorization code + PKCE) where the client has a display, else the device
    /// grant.
    #[default]
    Auto,
    Browser,
    Device,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SsoConfig {
    /// `sso_session`: names the session and the AWS CLI token cache file (sha1 of this name).
    pub session: String,
    pub start_url: String,
    /// The Identity Center instance's (home) Region.
    pub region: String,
    pub login: SsoLogin,
    /// `sso_account_id` + `sso_role_name` in `[access]`: the access-account role whose
    /// credentials sign AssumeRole for `role_arn` profiles.
    pub access_role: Option<SsoRole>,
    /// Multi-Region Identity Center: further Regions, each with its own start URL, tried in order
    /// when the home Region cannot answer.
    pub replicas: Vec<SsoReplica>,
}

/// A permission set in an account, as Identity Center names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRole {
    pub account_id: String,
    pub role_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoReplica {
    pub region: String,
    pub start_url: String,
}

/// Where a profile's credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileKind {
    /// sts:AssumeRole, signed by the access session, the access role, or the `via` profile.
    AssumeRole { role_arn: String },
    /// Identity Center's GetRoleCredentials for an account and permission set.
    Sso(SsoRole),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub kind: ProfileKind,
    pub account_id: String,
    pub region: Option<String>,
    pub via: Option<String>,
    pub external_id: Option<String>,
    /// Requested DurationSeconds (already capped at 1 h for chained profiles).
    pub duration: Duration,
    pub session_name: Option<String>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Profile {
    /// The role ARN an AssumeRole profile assumes.
    pub fn role_arn(&self) -> Option<&str> {
        match &self.kind {
            ProfileKind::AssumeRole { role_arn } => Some(role_arn),
            ProfileKind::Sso(_) => None,
        }
    }

    /// `ACCOUNT/ROLE_NAME` of an Identity Center profile.
    pub fn sso_role(&self) -> Option<String> {
        match &self.kind {
            ProfileKind::Sso(r) => Some(format!("{}/{}", r.account_id, r.role_name)),
            ProfileKind::AssumeRole { .. } => None,
        }
    }
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

// ---- raw TOML shape ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_profile: Option<Spanned<String>>,
    #[serde(default)]
    daemon: RawDaemon,
    access: Option<Spanned<RawAccess>>,
    #[serde(default)]
    profiles: BTreeMap<Spanned<String>, Spanned<RawProfile>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    listen: Option<Spanned<String>>,
    imds: Option<bool>,
    imds_hop_limit: Option<Spanned<i64>>,
    min_remaining: Option<Spanned<String>>,
    follow_window: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    source: Spanned<String>,
    aws_profile: Option<Spanned<String>>,
    mfa_serial: Option<Spanned<String>>,
    session_duration: Option<Spanned<String>>,
    regions: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    role_arn: Spanned<String>,
    region: Option<Spanned<String>>,
    via: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    source_identity: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<Spanned<String>, Spanned<String>>,
}

// ---- loading -----------------------------------------------------------------------------------

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

/// Validates config text; `path` is only used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let v = Validator { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| v.error(e.span(), e.message()))?;
    v.config(raw)
}

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

    fn duration_in(
        &self,
        value: &Spanned<String>,
        what: &str,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(value, what)?;
        if d < min || d > max {
            return Err(self.at(
                value,
                format!(
                    "{what} must be between {} and {} (STS limits), found {}",
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
        let Some(access) = raw.access else {
            return Err(self.error(
                Some(0..0),
                "missing [access] table: say how you log into the access account, e.g.\n\
                 [access]\nsource = \"iam-user\"\naws_profile = \"access\"",
            ));
        };
        let access = self.access(access)?;

        let mut profiles = BTreeMap::new();
        let mut via_spans = BTreeMap::new();
        for (name, raw_profile) in raw.profiles {
            check_name(name.get_ref()).map_err(|msg| {
                self.at(&name, format!("profile name {:?}: {msg}", name.get_ref()))
            })?;
            if let Some(via) = &raw_profile.get_ref().via {
                via_spans.insert(name.get_ref().clone(), via.clone());
            }
            let profile = self.profile(name.get_ref(), raw_profile, &mut warnings)?;
            profiles.insert(profile.name.clone(), profile);
        }

        // `via` must name a known profile and never loop back.
        for (name, via) in &via_spans {
            if !profiles.contains_key(via.get_ref()) {
                return Err(self.at(
                    via,
                    format!(
                        "profile {name:?}: via = {:?} is not a configured profile (known: {})",
                        via.get_ref(),
                        known(&profiles)
                    ),
                ));
            }
            let mut seen = vec![name.as_str()];
            let mut next = Some(via.get_ref().as_str());
            while let Some(hop) = next {
                if seen.contains(&hop) {
                    seen.push(hop);
                    return Err(self.at(
                        via,
                        format!("profile {name:?}: via forms a cycle: {}", seen.join(" -> ")),
                    ));
                }
                seen.push(hop);
                next = profiles.get(hop).and_then(|p| p.via.as_deref());
            }
        }

        for profile in profiles.values() {
            if profile.duration <= daemon.min_remaining {
                let min = &daemon.min_remaining_span;
                return Err(self.error(
                    min.clone(),
                    format!(
                        "min_remaining = {} leaves nothing usable of profile {:?}, whose \
                         credentials last {}: lower min_remaining or raise the profile's duration",
                        fmt_duration(daemon.min_remaining),
                        profile.name,
                        fmt_duration(profile.duration)
                    ),
                ));
            }
        }

        if daemon.imds && daemon.follow_window < BOTOCORE_IMDS_FLOOR {
            warnings.push(format!(
                "imds = true with follow_window = {}: botocore treats IMDS credentials with less \
                 than about 25m left as an outage and keeps using them, so it follows `credd \
                 switch` late; use at least 25m",
                fmt_duration(daemon.follow_window)
            ));
        }

        let default_profile = match raw.default_profile {
            Some(d) if !profiles.contains_key(d.get_ref()) => {
                return Err(self.at(
                    &d,
                    format!(
                        "default_profile = {:?} is not a configured profile (known: {})",
                        d.get_ref(),
                        known(&profiles)
                    ),
                ));
            }
            Some(d) => Some(d.into_inner()),
            None => None,
        };

        Ok(Config {
            path: self.path.to_path_buf(),
            default_profile,
            daemon: DaemonConfig {
                listen: daemon.listen,
                imds: daemon.imds,
                imds_hop_limit: daemon.imds_hop_limit,
                min_remaining: daemon.min_remaining,
                follow_window: daemon.follow_window,
            },
            access,
            profiles,
            warnings,
        })
    }

    fn daemon(&self, raw: RawDaemon) -> Result<ValidDaemon, ConfigError> {
        let listen = match raw.listen {
            None => DEFAULT_LISTEN
                .parse()
                .expect("default listen address parses"),
            Some(l) => {
                let addr: SocketAddr = l.get_ref().trim().parse().map_err(|_| {
                    self.at(
                        &l,
                        format!(
                            "listen: expected an address and port like \"127.0.0.1:9911\", found {:?}",
                            l.get_ref()
                        ),
                    )
                })?;
                if !addr.ip().is_loopback() {
                    return Err(self.at(
                        &l,
                        format!(
                            "listen = {:?} is not a loopback address: credd serves credentials to \
                             this machine only (use 127.0.0.1 or [::1])",
                            l.get_ref()
                        ),
                    ));
                }
                addr
            }
        };
        let imds_hop_limit = match raw.imds_hop_limit {
            None => 1,
            Some(h) => u8::try_from(*h.get_ref())
                .ok()
                .filter(|h| *h >= 1)
                .ok_or_else(|| {
                    self.at(
                        &h,
                        format!("imds_hop_limit must be 1..=255, found {}", h.get_ref()),
                    )
                })?,
        };
        let (min_remaining, min_remaining_span) = match raw.min_remaining {
            None => (DEFAULT_MIN_REMAINING, None),
            Some(m) => {
                let d = self.duration(&m, "min_remaining")?;
                // SDKs start refreshing 5–15 minutes ahead; less than 5 minutes left makes them
                // refresh on every call.
                if d < Duration::from_secs(60) {
                    return Err(self.at(
                        &m,
                        format!(
                            "min_remaining must be at least 1m, found {}",
                            fmt_duration(d)
                        ),
                    ));
                }
                (d, Some(m.span()))
            }
        };
        let follow_window = match raw.follow_window {
            None => min_remaining,
            Some(f) => {
                let d = self.duration(&f, "follow_window")?;
                if d < min_remaining {
                    return Err(self.at(
                        &f,
                        format!(
                            "follow_window ({}) must be at least min_remaining ({}): SDKs must \
                             never be told credentials expire sooner than that",
                            fmt_duration(d),
                            fmt_duration(min_remaining)
                        ),
                    ));
                }
                d
            }
        };
        Ok(ValidDaemon {
            listen,
            imds: raw.imds.unwrap_or(false),
            imds_hop_limit,
            min_remaining,
            min_remaining_span,
            follow_window,
        })
    }

    fn access(&self, raw: Spanned<RawAccess>) -> Result<AccessConfig, ConfigError> {
        let raw = raw.into_inner();
        let source = match raw.source.get_ref().as_str() {
            "iam-user" => AccessSourceKind::IamUser,
            other @ ("sso" | "web-identity" | "saml") => {
                return Err(self.at(
                    &raw.source,
                    format!(
                        "source = {other:?} is not available in this build of credd yet; \
                         supported: \"iam-user\""
                    ),
                ));
            }
            other => {
                return Err(self.at(
                    &raw.source,
                    format!(
                        "source: expected one of \"iam-user\", \"sso\", \"web-identity\", \
                         \"saml\", found {other:?}"
                    ),
                ));
            }
        };
        let aws_profile = match raw.aws_profile {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(self.at(&p, "aws_profile must not be empty"));
            }
            Some(p) => p.into_inner(),
            None => "default".to_owned(),
        };
        let mfa_serial = match raw.mfa_serial {
            Some(m) => {
                check_mfa_serial(m.get_ref())
                    .map_err(|msg| self.at(&m, format!("mfa_serial: {msg}")))?;
                Some(m.into_inner())
            }
            None => None,
        };
        let session_duration = match raw.session_duration {
            Some(d) => self.duration_in(&d, "session_duration", SESSION_MIN, SESSION_MAX)?,
            None => DEFAULT_SESSION_DURATION,
        };
        let regions = match raw.regions {
            None => vec![DEFAULT_REGION.to_owned()],
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.at(&list, "regions must name at least one STS region"));
                }
                let mut out: Vec<String> = Vec::new();
                for r in list.into_inner() {
                    check_region(r.get_ref())
                        .map_err(|msg| self.at(&r, format!("regions: {msg}")))?;
                    if out.contains(r.get_ref()) {
                        return Err(
                            self.at(&r, format!("regions: {:?} is listed twice", r.get_ref()))
                        );
                    }
                    out.push(r.into_inner());
                }
                out
            }
        };
        Ok(AccessConfig {
            source,
            aws_profile,
            mfa_serial,
            session_duration,
            regions,
            sso: None,
        })
    }

    fn profile(
        &self,
        name: &str,
        raw: Spanned<RawProfile>,
        warnings: &mut Vec<String>,
    ) -> Result<Profile, ConfigError> {
        let raw = raw.into_inner();
        let ctx = |what: &str| format!("profile {name:?}: {what}");
        let account_id = parse_role_arn(raw.role_arn.get_ref())
            .map_err(|msg| self.at(&raw.role_arn, ctx(&format!("role_arn: {msg}"))))?;
        let region = match raw.region {
            Some(r) => {
                check_region(r.get_ref())
                    .map_err(|msg| self.at(&r, ctx(&format!("region: {msg}"))))?;
                Some(r.into_inner())
            }
            None => None,
        };
        let via = raw.via.as_ref().map(|v| v.get_ref().clone());
        if via.as_deref() == Some(name) {
            let v = raw.via.as_ref().expect("via is set");
            return Err(self.at(v, ctx("via names the profile itself")));
        }
        let mut duration = match &raw.duration {
            Some(d) => self.duration_in(d, &ctx("duration"), ASSUME_ROLE_MIN, ASSUME_ROLE_MAX)?,
            None => ASSUME_ROLE_DEFAULT,
        };
        if via.is_some() && duration > CHAINED_ROLE_MAX {
            warnings.push(format!(
                "profile {name:?}: duration {} capped at 1h, the STS limit for chained roles",
                fmt_duration(duration)
            ));
            duration = CHAINED_ROLE_MAX;
        }
        let text_field = |field: &Option<Spanned<String>>,
                          what: &str,
                          min: usize,
                          max: usize,
                          extra: &str|
         -> Result<Option<String>, ConfigError> {
            let Some(v) = field else { return Ok(None) };
            check_sts_text(v.get_ref(), min, max, extra)
                .map_err(|msg| self.at(v, ctx(&format!("{what}: {msg}"))))?;
            Ok(Some(v.get_ref().clone()))
        };
        let external_id = text_field(&raw.external_id, "external_id", 2, 1224, ":/")?;
        let session_name = text_field(&raw.session_name, "session_name", 2, 64, "")?;
        let source_identity = text_field(&raw.source_identity, "source_identity", 2, 64, "")?;

        if raw.tags.len() > 50 {
            let first = raw.tags.keys().next().expect("more than 50 tags");
            return Err(self.at(first, ctx("at most 50 session tags are allowed")));
        }
        let mut tags = BTreeMap::new();
        for (k, v) in raw.tags {
            check_tag(k.get_ref(), 1, 128)
                .map_err(|msg| self.at(&k, ctx(&format!("tag key {:?}: {msg}", k.get_ref()))))?;
            check_tag(v.get_ref(), 0, 256)
                .map_err(|msg| self.at(&v, ctx(&format!("tag {:?}: {msg}", k.get_ref()))))?;
            tags.insert(k.into_inner(), v.into_inner());
        }

        Ok(Profile {
            name: name.to_owned(),
            kind: ProfileKind::AssumeRole {
                role_arn: raw.role_arn.into_inner(),
            },
            account_id,
            region,
            via,
            external_id,
            duration,
            session_name,
            source_identity,
            tags,
        })
    }
}

struct ValidDaemon {
    listen: SocketAddr,
    imds: bool,
    imds_hop_limit: u8,
    min_remaining: Duration,
    min_remaining_span: Option<Range<usize>>,
    follow_window: Duration,
}

fn known(profiles: &BTreeMap<String, Profile>) -> String {
    if profiles.is_empty() {
        "none".to_owned()
    } else {
        profiles
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
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

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Profile names appear in URLs and shell variables, so keep them plain.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return Err("use letters, digits, '-', '_' and '.' (not first)".into());
    }
    Ok(())
}

fn is_sts_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// Returns the role's account ID.
fn parse_role_arn(arn: &str) -> Result<String, String> {
    let expected = "expected arn:aws:iam::123456789012:role/NAME (optionally role/PATH/NAME)";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(format!("{expected}, found {arn:?}"));
    };
    if prefix != "arn" || !partition.starts_with("aws") || service != "iam" || !region.is_empty() {
        return Err(format!("{expected}, found {arn:?}"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the account ID must be 12 digits, found {account:?}"
        ));
    }
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(format!(
            "{expected}: the resource must start with role/, found {resource:?}"
        ));
    };
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_sts_word) {
        return Err(format!(
            "role name {name:?} must be 1 to 64 of letters, digits and +=,.@_-"
        ));
    }
    Ok(account.to_owned())
}

fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a region like \"us-east-1\", found {region:?}"
        ))
    }
}

fn check_mfa_serial(serial: &str) -> Result<(), String> {
    let ok = (9..=256).contains(&serial.len())
        && serial
            .chars()
            .all(|c| is_sts_word(c) || matches!(c, ':' | '/'));
    if !ok {
        return Err(format!(
            "expected an MFA device ARN like arn:aws:iam::111111111111:mfa/alice, found {serial:?}"
        ));
    }
    Ok(())
}

fn check_sts_text(value: &str, min: usize, max: usize, extra: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters, found {len}"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !is_sts_word(*c) && !extra.contains(*c))
    {
        return Err(format!(
            "character {bad:?} is not allowed (letters, digits, +=,.@_-{extra})"
        ));
    }
    Ok(())
}

fn check_tag(value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters, found {len}"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(*c)))
    {
        return Err(format!("character {bad:?} is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default_profile = "staging"

[daemon]
listen = "127.0.0.1:0"
min_remaining = "30m"

[access]
source = "iam-user"
aws_profile = "access"
mfa_serial = "arn:aws:iam::111111111111:mfa/alice"
regions = ["us-east-1", "us-west-2"]

[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
region = "us-west-2"

[profiles.prod-audit]
role_arn = "arn:aws:iam::333333333333:role/ops/Auditor"
via = "staging"
duration = "4h"
tags = { team = "sre" }
"#;

    fn err(text: &str) -> ConfigError {
        parse(Path::new("/c.toml"), text).expect_err("config should be refused")
    }

    #[test]
    fn good_config_loads_with_defaults_and_caps() {
        let c = parse(Path::new("/c.toml"), GOOD).unwrap();
        assert_eq!(c.default_profile.as_deref(), Some("staging"));
        assert_eq!(c.access.session_duration, DEFAULT_SESSION_DURATION);
        assert_eq!(c.profiles["staging"].account_id, "222222222222");
        assert_eq!(c.profiles["staging"].duration, ASSUME_ROLE_DEFAULT);
        assert_eq!(c.profiles["prod-audit"].duration, CHAINED_ROLE_MAX);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = err(&GOOD.replace("role/Administrator", "user/alice"));
        assert_eq!((e.line, e.col), (Some(15), Some(12)), "{e}");
        assert!(
            e.to_string()
                .starts_with("/c.toml:15:12: profile \"staging\": role_arn"),
            "{e}"
        );
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
    fn via_must_exist_and_not_loop() {
        let e = err(&GOOD.replace("via = \"staging\"", "via = \"nope\""));
        assert!(e.msg.contains("not a configured profile"), "{e}");
        let looped = GOOD.replace(
            "region = \"us-west-2\"\n\n[profiles.prod",
            "region = \"us-west-2\"\nvia = \"prod-audit\"\n\n[profiles.prod",
        );
        assert!(err(&looped).msg.contains("cycle"), "{}", err(&looped));
    }

    #[test]
    fn listen_must_be_loopback() {
        let e = err(&GOOD.replace("127.0.0.1:0", "0.0.0.0:9911"));
        assert!(e.msg.contains("not a loopback address"), "{e}");
        assert!(parse(Path::new("c"), &GOOD.replace("127.0.0.1:0", "[::1]:9911")).is_ok());
    }

    #[test]
    fn durations_within_sts_limits() {
        let e = err(&GOOD.replace("duration = \"4h\"", "duration = \"13h\""));
        assert!(e.msg.contains("between 15m and 12h"), "{e}");
        let e = err(&GOOD.replace("duration = \"4h\"", "duration = \"soon\""));
        assert!(e.msg.contains("expected a duration"), "{e}");
        let e = err(&GOOD.replace("min_remaining = \"30m\"", "min_remaining = \"2h\""));
        assert!(e.msg.contains("leaves nothing usable"), "{e}");
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
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
