//! `[profiles.NAME]`: the roles the daemon keeps credentials for, and how each is reached.
//!
//! A profile is one of two kinds: `role_arn` (sts:AssumeRole from the access session, the
//! Identity Center access role, or `via` another profile — never in a loop), or `sso_account_id`
//! + `sso_role_name` (an Identity Center permission set, straight from the login).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{
    check_account_id, check_name, check_region, check_sso_role_name, check_sts_text, check_tag,
    parse_role_arn,
};
use super::daemon::ValidDaemon;
use super::{AccessConfig, AccessSourceKind, ConfigError, SsoRole, Validator, fmt_duration};

/// STS AssumeRole limits; a chained role (assumed from role credentials) is capped at one hour.
pub const ASSUME_ROLE_MIN: Duration = Duration::from_secs(900);
pub const ASSUME_ROLE_MAX: Duration = Duration::from_secs(43_200);
pub const CHAINED_ROLE_MAX: Duration = Duration::from_secs(3_600);
/// STS's own default when DurationSeconds is omitted.
pub const ASSUME_ROLE_DEFAULT: Duration = Duration::from_secs(3_600);

/// Where a profile's credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileKind {
    /// sts:AssumeRole (`role_arn`), signed by the `via` profile's credentials if it has one, else
    /// by the access session (`iam-user`) or the access role (`sso`, `[access] sso_account_id` +
    /// `sso_role_name`).
    AssumeRole { role_arn: String },
    /// Identity Center's GetRoleCredentials for an account and permission set (`sso_account_id`
    /// + `sso_role_name`); only with `source = "sso"`, never `via` anything.
    Sso(SsoRole),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub kind: ProfileKind,
    /// The role's account (from `role_arn`), or `sso_account_id`.
    pub account_id: String,
    pub region: Option<String>,
    /// AssumeRole profiles only: the profile whose credentials sign this one's AssumeRole.
    pub via: Option<String>,
    pub external_id: Option<String>,
    /// Requested DurationSeconds, already capped at 1 h for chained profiles: those with `via`,
    /// and under `source = "sso"` every `role_arn` profile (the access role's credentials are
    /// role credentials too). Identity Center profiles carry [`ASSUME_ROLE_DEFAULT`], unused:
    /// the permission set decides their lifetime, known only once issued.
    pub duration: Duration,
    pub session_name: Option<String>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Profile {
    /// An Identity Center profile (GetRoleCredentials), not an AssumeRole one.
    pub fn is_sso(&self) -> bool {
        matches!(self.kind, ProfileKind::Sso(_))
    }

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
            ProfileKind::Sso(r) => Some(r.to_string()),
            ProfileKind::AssumeRole { .. } => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    // one kind or the other
    role_arn: Option<Spanned<String>>,
    sso_account_id: Option<Spanned<String>>,
    sso_role_name: Option<Spanned<String>>,
    // both kinds
    region: Option<Spanned<String>>,
    // AssumeRole only
    via: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    source_identity: Option<Spanned<String>>,
    tags: Option<Spanned<RawTags>>,
}

type RawTags = BTreeMap<Spanned<String>, Spanned<String>>;

impl RawProfile {
    /// The first of `sso_account_id`, `sso_role_name` in the file.
    fn sso_key(&self) -> Option<(&'static str, Range<usize>)> {
        let mut keys = [
            (
                "sso_account_id",
                self.sso_account_id.as_ref().map(Spanned::span),
            ),
            (
                "sso_role_name",
                self.sso_role_name.as_ref().map(Spanned::span),
            ),
        ]
        .into_iter()
        .filter_map(|(key, span)| Some((key, span?)))
        .collect::<Vec<_>>();
        keys.sort_by_key(|(_, span)| span.start);
        keys.into_iter().next()
    }

    /// The AssumeRole-only keys present, in file order.
    fn assume_role_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        fn span<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        let mut keys: Vec<_> = [
            ("via", span(&self.via)),
            ("external_id", span(&self.external_id)),
            ("duration", span(&self.duration)),
            ("session_name", span(&self.session_name)),
            ("source_identity", span(&self.source_identity)),
            ("tags", span(&self.tags)),
        ]
        .into_iter()
        .filter_map(|(key, span)| Some((key, span?)))
        .collect();
        keys.sort_by_key(|(_, span)| span.start);
        keys
    }
}

pub(super) type RawProfiles = BTreeMap<Spanned<String>, Spanned<RawProfile>>;

impl Validator<'_> {
    /// Every profile, then the links between them (`via`) and their lifetimes against
    /// `min_remaining`.
    pub(super) fn profiles(
        &self,
        raw: RawProfiles,
        access: &AccessConfig,
        daemon: &ValidDaemon,
        warnings: &mut Vec<String>,
    ) -> Result<BTreeMap<String, Profile>, ConfigError> {
        let mut profiles = BTreeMap::new();
        let mut via_spans = BTreeMap::new();
        for (name, raw_profile) in raw {
            check_name(name.get_ref()).map_err(|msg| {
                self.at(&name, format!("profile name {:?}: {msg}", name.get_ref()))
            })?;
            if let Some(via) = &raw_profile.get_ref().via {
                via_spans.insert(name.get_ref().clone(), via.clone());
            }
            let profile = self.profile(&name, raw_profile, access, warnings)?;
            profiles.insert(profile.name.clone(), profile);
        }

        // `via` must name a known profile and never loop back.
        for (name, via) in &via_spans {
            if !profiles.contains_key(via.get_ref()) {
                return Err(self.at(
                    via,
                    format!(
                        "profile {name:?}: via = {:?} is not a configured profile{}",
                        via.get_ref(),
                        known(&profiles, via.get_ref())
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

        // An Identity Center profile's lifetime is the permission set's, unknown until issued.
        for profile in profiles.values().filter(|p| !p.is_sso()) {
            let min_remaining = daemon.config.min_remaining;
            if profile.duration <= min_remaining {
                return Err(self.error(
                    daemon.min_remaining_span.clone(),
                    format!(
                        "min_remaining = {} leaves nothing usable of profile {:?}, whose \
                         credentials last {}: lower min_remaining or raise the profile's duration",
                        fmt_duration(min_remaining),
                        profile.name,
                        fmt_duration(profile.duration)
                    ),
                ));
            }
        }
        Ok(profiles)
    }

    fn profile(
        &self,
        name: &Spanned<String>,
        raw: Spanned<RawProfile>,
        access: &AccessConfig,
        warnings: &mut Vec<String>,
    ) -> Result<Profile, ConfigError> {
        let mut raw = raw.into_inner();
        let name_span = name.span();
        let name = name.get_ref().as_str();
        let ctx = |what: &str| format!("profile {name:?}: {what}");
        let sso_key = raw.sso_key();
        let role_arn = match (raw.role_arn.take(), sso_key) {
            (None, Some((key, span))) => {
                return self.sso_profile(name, key, span, raw, access);
            }
            (Some(role_arn), None) => role_arn,
            (Some(_), Some((key, span))) => {
                return Err(self.at_key(
                    span,
                    key,
                    ctx(&format!(
                        "role_arn and {key} are two kinds of profile: keep either role_arn \
                         (sts:AssumeRole) or sso_account_id + sso_role_name (an Identity Center \
                         permission set), not both"
                    )),
                ));
            }
            (None, None) => {
                return Err(self.error(
                    Some(name_span),
                    ctx(
                        "needs either role_arn = \"arn:aws:iam::123456789012:role/NAME\" \
                         (sts:AssumeRole) or sso_account_id + sso_role_name (an Identity Center \
                         permission set)",
                    ),
                ));
            }
        };
        let account_id = parse_role_arn(role_arn.get_ref())
            .map_err(|msg| self.at(&role_arn, ctx(&format!("role_arn: {msg}"))))?;
        let region = self.profile_region(name, raw.region)?;
        let via = raw.via.as_ref().map(|v| v.get_ref().clone());
        if via.as_deref() == Some(name) {
            let v = raw.via.as_ref().expect("via is set");
            return Err(self.at(v, ctx("via names the profile itself")));
        }
        // Under sso, a profile without `via` is assumed with the access role's credentials: role
        // credentials, so role chaining just as with `via`.
        // Under sso, web-identity and saml, a profile without `via` is assumed with role
        // credentials (the access role's): role chaining just as with `via`.
        let from_access_role = via.is_none() && access.signs_with_role_credentials();
        if from_access_role
            && access.kind() == AccessSourceKind::Sso
            && access.sso_access_role().is_none()
        {
            return Err(self.at(
                &role_arn,
                ctx(
                    "under source = \"sso\", a role_arn profile without via is assumed with the \
                     access role's credentials: set sso_account_id and sso_role_name in [access], \
                     or via = \"<an Identity Center profile>\"",
                ),
            ));
        }
        let mut duration = match &raw.duration {
            Some(d) => self.duration_in(
                d,
                &ctx("duration"),
                (ASSUME_ROLE_MIN, ASSUME_ROLE_MAX),
                "STS",
            )?,
            None => ASSUME_ROLE_DEFAULT,
        };
        if (via.is_some() || from_access_role) && duration > CHAINED_ROLE_MAX {
            let why = match access.kind() {
                _ if !from_access_role => "",
                AccessSourceKind::Sso => {
                    " (it is assumed from the Identity Center access role's credentials)"
                }
                _ => " (it is assumed from the access role's credentials)",
            };
            warnings.push(format!(
                "profile {name:?}: duration {} capped at 1h, the STS limit for chained roles{why}",
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

        let raw_tags = raw.tags.map(Spanned::into_inner).unwrap_or_default();
        if raw_tags.len() > 50 {
            let first = raw_tags.keys().next().expect("more than 50 tags");
            return Err(self.at(first, ctx("at most 50 session tags are allowed")));
        }
        let mut tags = BTreeMap::new();
        for (k, v) in raw_tags {
            check_tag(k.get_ref(), 1, 128)
                .map_err(|msg| self.at(&k, ctx(&format!("tag key {:?}: {msg}", k.get_ref()))))?;
            check_tag(v.get_ref(), 0, 256)
                .map_err(|msg| self.at(&v, ctx(&format!("tag {:?}: {msg}", k.get_ref()))))?;
            tags.insert(k.into_inner(), v.into_inner());
        }

        Ok(Profile {
            name: name.to_owned(),
            kind: ProfileKind::AssumeRole {
                role_arn: role_arn.into_inner(),
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

    /// `sso_account_id` + `sso_role_name`: GetRoleCredentials, which takes nothing else.
    fn sso_profile(
        &self,
        name: &str,
        first_key: &str,
        first_span: Range<usize>,
        raw: RawProfile,
        access: &AccessConfig,
    ) -> Result<Profile, ConfigError> {
        let ctx = |what: &str| format!("profile {name:?}: {what}");
        if access.kind() != AccessSourceKind::Sso {
            return Err(self.at_key(
                first_span,
                first_key,
                ctx(&format!(
                    "Identity Center profiles need [access] source = \"sso\" (this config has \
                     source = {:?}); use role_arn for sts:AssumeRole instead",
                    access.kind().as_str()
                )),
            ));
        }
        if let Some((key, span)) = raw.assume_role_keys().into_iter().next() {
            return Err(self.at_key(span, key, ctx(&not_for_sso(key))));
        }
        let (Some(account_id), Some(role_name)) = (raw.sso_account_id, raw.sso_role_name) else {
            // Only one of the two: `first_key` is the one written.
            let other = if first_key == "sso_account_id" {
                "sso_role_name"
            } else {
                "sso_account_id"
            };
            return Err(self.at_key(
                first_span,
                first_key,
                ctx(&format!(
                    "{first_key} needs {other} too: an Identity Center profile names an account \
                     and a permission set in it"
                )),
            ));
        };
        check_account_id(account_id.get_ref())
            .map_err(|msg| self.at(&account_id, ctx(&format!("sso_account_id: {msg}"))))?;
        check_sso_role_name(role_name.get_ref())
            .map_err(|msg| self.at(&role_name, ctx(&format!("sso_role_name: {msg}"))))?;
        let region = self.profile_region(name, raw.region)?;
        let role = SsoRole {
            account_id: account_id.into_inner(),
            role_name: role_name.into_inner(),
        };
        Ok(Profile {
            name: name.to_owned(),
            account_id: role.account_id.clone(),
            kind: ProfileKind::Sso(role),
            region,
            via: None,
            external_id: None,
            duration: ASSUME_ROLE_DEFAULT,
            session_name: None,
            source_identity: None,
            tags: BTreeMap::new(),
        })
    }

    /// `region`, for either kind: what `credd env` exports and IMDS serves.
    fn profile_region(
        &self,
        name: &str,
        region: Option<Spanned<String>>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(r) = region else { return Ok(None) };
        check_region(r.get_ref())
            .map_err(|msg| self.at(&r, format!("profile {name:?}: region: {msg}")))?;
        Ok(Some(r.into_inner()))
    }
}

/// Why an AssumeRole-only key has no place in an Identity Center profile.
fn not_for_sso(key: &str) -> String {
    let why = match key {
        "via" => "its credentials come from the Identity Center login itself \
                  (GetRoleCredentials), not from another profile"
            .to_owned(),
        "duration" => "the permission set's session duration, set in Identity Center, decides \
                       how long its credentials last"
            .to_owned(),
        _ => {
            let what = match key {
                "external_id" => "external ID",
                "session_name" => "session name",
                "source_identity" => "source identity",
                _ => "session tags",
            };
            format!(
                "GetRoleCredentials takes no {what} (an sts:AssumeRole setting, for role_arn \
                 profiles)"
            )
        }
    };
    format!("{key} does not apply to an Identity Center profile: {why}; remove {key}")
}

/// The configured names, for errors that name an unknown one.
/// `; did you mean "prod"? (known: ...)`, for a name that is not a configured profile.
pub(super) fn known(profiles: &BTreeMap<String, Profile>, wanted: &str) -> String {
    let names: Vec<String> = profiles.keys().cloned().collect();
    format!(
        "{} (known: {})",
        super::names::suggestion(wanted, &names),
        super::names::list(&names)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{GOOD, SSO, err, ok};

    /// `SSO` with `line` added to the Identity Center profile (as line 13).
    fn sso_profile_with(line: &str) -> String {
        SSO.replace(
            "\"AdministratorAccess\"\n",
            &format!("\"AdministratorAccess\"\n{line}\n"),
        )
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
    fn durations_within_sts_limits() {
        let e = err(&GOOD.replace("duration = \"4h\"", "duration = \"13h\""));
        assert!(e.msg.contains("between 15m and 12h"), "{e}");
        let e = err(&GOOD.replace("duration = \"4h\"", "duration = \"soon\""));
        assert!(e.msg.contains("expected a duration"), "{e}");
        let e = err(&GOOD.replace("min_remaining = \"30m\"", "min_remaining = \"2h\""));
        assert!(e.msg.contains("leaves nothing usable"), "{e}");
    }

    #[test]
    fn a_profile_is_one_kind_or_the_other() {
        let e = err(&sso_profile_with(
            "role_arn = \"arn:aws:iam::222222222222:role/Administrator\"",
        ));
        assert_eq!((e.line, e.col), (Some(11), Some(1)), "{e}");
        assert_eq!(
            e.msg,
            "profile \"staging\": role_arn and sso_account_id are two kinds of profile: keep \
             either role_arn (sts:AssumeRole) or sso_account_id + sso_role_name (an Identity \
             Center permission set), not both"
        );
        let e = err(&GOOD.replace(
            "role_arn = \"arn:aws:iam::222222222222:role/Administrator\"\n",
            "",
        ));
        assert_eq!((e.line, e.col), (Some(14), Some(11)), "{e}");
        assert_eq!(
            e.msg,
            "profile \"staging\": needs either role_arn = \
             \"arn:aws:iam::123456789012:role/NAME\" (sts:AssumeRole) or sso_account_id + \
             sso_role_name (an Identity Center permission set)"
        );
    }

    #[test]
    fn identity_center_profiles_need_source_sso() {
        let text = GOOD.replace(
            "role_arn = \"arn:aws:iam::222222222222:role/Administrator\"",
            "sso_role_name = \"AdministratorAccess\"\nsso_account_id = \"222222222222\"",
        );
        let e = err(&text);
        assert_eq!((e.line, e.col), (Some(15), Some(1)), "{e}");
        assert_eq!(
            e.msg,
            "profile \"staging\": Identity Center profiles need [access] source = \"sso\" (this \
             config has source = \"iam-user\"); use role_arn for sts:AssumeRole instead"
        );
    }

    #[test]
    fn identity_center_profiles_name_account_and_permission_set() {
        let e = err(&SSO.replace("sso_role_name = \"AdministratorAccess\"\n", ""));
        assert_eq!((e.line, e.col), (Some(11), Some(1)), "{e}");
        assert_eq!(
            e.msg,
            "profile \"staging\": sso_account_id needs sso_role_name too: an Identity Center \
             profile names an account and a permission set in it"
        );
        let e = err(&SSO.replace("sso_account_id = \"222222222222\"\n", ""));
        assert!(
            e.msg.contains("sso_role_name needs sso_account_id too"),
            "{e}"
        );
        let e = err(&SSO.replace("\"222222222222\"", "\"2222\""));
        assert_eq!((e.line, e.col), (Some(11), Some(18)), "{e}");
        assert!(
            e.msg
                .starts_with("profile \"staging\": sso_account_id: expected a 12-digit")
        );
        let e = err(&SSO.replace("\"AdministratorAccess\"", "\"Admin/Access\""));
        assert_eq!(e.line, Some(12), "{e}");
        assert!(
            e.msg
                .starts_with("profile \"staging\": sso_role_name: expected"),
            "{e}"
        );
    }

    #[test]
    fn identity_center_profiles_refuse_what_only_assume_role_takes() {
        for (line, key, why) in [
            (
                "via = \"prod\"",
                "via",
                "its credentials come from the Identity Center login",
            ),
            (
                "duration = \"2h\"",
                "duration",
                "the permission set's session duration",
            ),
            (
                "external_id = \"xyz\"",
                "external_id",
                "GetRoleCredentials takes no external ID",
            ),
            (
                "session_name = \"me\"",
                "session_name",
                "GetRoleCredentials takes no session name",
            ),
            (
                "source_identity = \"me\"",
                "source_identity",
                "GetRoleCredentials takes no source identity",
            ),
            (
                "tags = { team = \"sre\" }",
                "tags",
                "GetRoleCredentials takes no session tags",
            ),
        ] {
            let e = err(&sso_profile_with(line));
            assert_eq!((e.line, e.col), (Some(13), Some(1)), "{e}");
            let start = format!(
                "profile \"staging\": {key} does not apply to an Identity Center profile: "
            );
            assert!(e.msg.starts_with(&start), "{e}");
            assert!(e.msg[start.len()..].starts_with(why), "{e}");
            assert!(e.msg.ends_with(&format!("; remove {key}")), "{e}");
        }
        let c = ok(&sso_profile_with("region = \"eu-west-1\""));
        assert_eq!(c.profiles["staging"].region.as_deref(), Some("eu-west-1"));
        let e = err(&sso_profile_with("region = \"eu-west\""));
        assert!(
            e.msg.starts_with("profile \"staging\": region: expected"),
            "{e}"
        );
    }

    #[test]
    fn role_arn_profiles_under_sso_need_the_access_role_or_via() {
        let no_access_role = SSO
            .replace("sso_account_id = \"111111111111\"\n", "")
            .replace("sso_role_name = \"AccessAdmin\"\n", "");
        let e = err(&no_access_role);
        assert_eq!((e.line, e.col), (Some(13), Some(12)), "{e}");
        assert_eq!(
            e.msg,
            "profile \"prod\": under source = \"sso\", a role_arn profile without via is \
             assumed with the access role's credentials: set sso_account_id and sso_role_name in \
             [access], or via = \"<an Identity Center profile>\""
        );
        // `via` an Identity Center profile: chaining across kinds.
        let c =
            ok(&no_access_role
                .replace("[profiles.prod]\n", "[profiles.prod]\nvia = \"staging\"\n"));
        assert_eq!(c.profiles["prod"].via.as_deref(), Some("staging"));
        assert_eq!(
            c.profiles["prod"].role_arn(),
            Some("arn:aws:iam::333333333333:role/Deployer")
        );
    }

    #[test]
    fn role_arn_profiles_under_sso_are_chained_so_capped_at_an_hour() {
        let c = ok(&SSO.replace("role/Deployer\"", "role/Deployer\"\nduration = \"4h\""));
        assert_eq!(c.profiles["prod"].duration, CHAINED_ROLE_MAX);
        assert_eq!(
            c.warnings,
            [
                "profile \"prod\": duration 4h capped at 1h, the STS limit for chained roles (it is \
              assumed from the Identity Center access role's credentials)"
            ]
        );
        let c = ok(&SSO.replace(
            "role/Deployer\"",
            "role/Deployer\"\nvia = \"staging\"\nduration = \"2h\"",
        ));
        assert_eq!(c.profiles["prod"].duration, CHAINED_ROLE_MAX);
        assert_eq!(
            c.warnings,
            ["profile \"prod\": duration 2h capped at 1h, the STS limit for chained roles"]
        );
        let c = ok(&SSO.replace("role/Deployer\"", "role/Deployer\"\nduration = \"45m\""));
        assert_eq!(c.profiles["prod"].duration.as_secs(), 45 * 60);
        assert_eq!(c.warnings, Vec::<String>::new());
    }

    #[test]
    fn min_remaining_does_not_judge_identity_center_profiles() {
        let only_sso = format!("[daemon]\nmin_remaining = \"2h\"\n{SSO}").replace(
            "\n[profiles.prod]\nrole_arn = \"arn:aws:iam::333333333333:role/Deployer\"\n",
            "",
        );
        assert!(ok(&only_sso).profiles["staging"].is_sso());
        let e = err(&format!("[daemon]\nmin_remaining = \"2h\"\n{SSO}"));
        assert_eq!(e.line, Some(2), "{e}");
        assert!(
            e.msg.contains("leaves nothing usable of profile \"prod\""),
            "{e}"
        );
    }
}
