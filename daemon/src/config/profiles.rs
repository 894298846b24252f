//! `[profiles.NAME]`: the roles the daemon keeps credentials for, and how each is reached
//! (from the access session, or `via` another profile — never in a loop).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{check_name, check_region, check_sts_text, check_tag, parse_role_arn};
use super::daemon::ValidDaemon;
use super::{ConfigError, Validator, fmt_duration};

/// STS AssumeRole limits; a chained role (assumed from role credentials) is capped at one hour.
pub const ASSUME_ROLE_MIN: Duration = Duration::from_secs(900);
pub const ASSUME_ROLE_MAX: Duration = Duration::from_secs(43_200);
pub const CHAINED_ROLE_MAX: Duration = Duration::from_secs(3_600);
/// STS's own default when DurationSeconds is omitted.
pub const ASSUME_ROLE_DEFAULT: Duration = Duration::from_secs(3_600);

/// Where a profile's credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileKind {
    /// sts:AssumeRole, signed by the access session, the access role, or the `via` profile.
    AssumeRole { role_arn: String },
    /// Identity Center's GetRoleCredentials for an account and permission set.
    Sso(super::SsoRole),
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
            ProfileKind::Sso(r) => Some(r.to_string()),
            ProfileKind::AssumeRole { .. } => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
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

pub(super) type RawProfiles = BTreeMap<Spanned<String>, Spanned<RawProfile>>;

impl Validator<'_> {
    /// Every profile, then the links between them (`via`) and their lifetimes against
    /// `min_remaining`.
    pub(super) fn profiles(
        &self,
        raw: RawProfiles,
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
            let profile = self.profile(name.get_ref(), raw_profile, warnings)?;
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
            Some(d) => self.duration_in(
                d,
                &ctx("duration"),
                (ASSUME_ROLE_MIN, ASSUME_ROLE_MAX),
                "STS",
            )?,
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

/// The configured names, for errors that name an unknown one.
pub(super) fn known(profiles: &BTreeMap<String, Profile>) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{GOOD, err};

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
}
