//! `credd doctor`'s verdicts: pure functions from what a check saw (an STS answer's `Date`, what
//! DescribeOrganization said, the configured Regions) to a [`Finding`] with what it found, why it
//! matters and how to fix it. The engine ([`crate::engine::Engine::doctor`]) makes the calls; the
//! sources judge their own config ([`crate::access::source::Source::checks`]).

pub mod organizations;

use std::time::{Duration, SystemTime};

use credd_proto::Finding;
use credd_proto::human::duration as span;

use crate::sts::ClockProbe;
use organizations::{Membership, OrganizationsError};

/// A clock this far off STS's is warned about: signatures still pass, but credentials look
/// fresher or staler than they are to every SDK on the machine.
pub const SKEW_WARNING: Duration = Duration::from_secs(60);
/// SigV4 refuses a request signed more than 5 minutes away from AWS's clock: every call fails.
pub const SKEW_CRITICAL: Duration = Duration::from_secs(5 * 60);

/// How far the daemon's clock is off STS's: `Some((d, true))` ahead, `(d, false)` behind. The
/// `Date` header has whole seconds and was written somewhere between `sent` and `received`, so
/// only what lies outside that window (and its second) counts.
pub fn skew(sent: SystemTime, received: SystemTime, server: SystemTime) -> (Duration, bool) {
    let server_end = server + Duration::from_secs(1);
    if let Ok(ahead) = sent.duration_since(server_end) {
        (ahead, true)
    } else if let Ok(behind) = server.duration_since(received) {
        (behind, false)
    } else {
        (Duration::ZERO, true)
    }
}

/// `clock-skew` from one GetCallerIdentity's answer.
pub fn clock_finding(probe: &ClockProbe) -> Finding {
    const CHECK: &str = "clock-skew";
    let Some(server) = probe.server_date else {
        let why = match &probe.caller {
            Err(f) => f.to_string(),
            Ok(_) => "STS's answer had no Date header".to_owned(),
        };
        return Finding::info(CHECK, format!("not checked: {why}"));
    };
    let (off, ahead) = skew(probe.sent, probe.received, server);
    let how = if ahead { "ahead of" } else { "behind" };
    let found = format!(
        "this machine's clock is {} {how} STS's (in {})",
        span(off.as_secs()),
        probe.region
    );
    let fix = "turn on time synchronisation (e.g. `timedatectl set-ntp true`, or Date & Time \
               settings: set automatically)";
    if off > SKEW_CRITICAL {
        Finding::critical(CHECK, found)
            .why("AWS refuses requests signed more than 5 minutes off its clock: every STS call fails")
            .fix(fix)
    } else if off > SKEW_WARNING {
        Finding::warning(CHECK, found)
            .why(
                "credentials look fresher or staler than they are, and past 5 minutes AWS \
                 refuses every signed request",
            )
            .fix(fix)
    } else if off.is_zero() {
        Finding::ok(
            CHECK,
            format!(
                "this machine's clock agrees with STS's (in {})",
                probe.region
            ),
        )
    } else {
        Finding::ok(CHECK, found)
    }
}

/// `management-account`: whether `account` (the access identity's) manages its organization.
pub fn organization_finding(
    account: &str,
    answer: Result<Membership, OrganizationsError>,
) -> Finding {
    const CHECK: &str = "management-account";
    match answer {
        Ok(Membership::None) => Finding::ok(
            CHECK,
            format!("the access account {account} is not in an organization"),
        ),
        Ok(Membership::Organization {
            id,
            management_account,
        }) if management_account == account => Finding::critical(
            CHECK,
            format!(
                "the access account {account} is the management account of organization {id}"
            ),
        )
        .why(
            "any principal in the management account that may call sts:AssumeRole can assume \
             OrganizationAccountAccessRole in every account organizations:CreateAccount made, \
             and service control policies do not restrict the management account: a leaked \
             access session is the whole organization",
        )
        .fix(
            "make a member account the access account: create one (e.g. `identity`), move the \
             IAM users (or the Identity Center access role, or the identity provider's role) \
             there, point [access] at it, and keep the management account for billing and \
             Organizations only",
        ),
        Ok(Membership::Organization {
            id,
            management_account,
        }) => Finding::ok(
            CHECK,
            format!(
                "the access account {account} is a member of organization {id} (managed by \
                 {management_account})"
            ),
        ),
        Err(OrganizationsError::AccessDenied { message }) => Finding::info(
            CHECK,
            format!("not checked: the access identity may not call organizations:DescribeOrganization ({message})"),
        )
        .fix(
            "allow organizations:DescribeOrganization to the access identity (it reveals only \
             the organization's ID and management account), then run `credd doctor` again",
        ),
        Err(e) => Finding::info(CHECK, format!("could not check: {e}")),
    }
}

/// `regions`: the STS Regions credd tries in turn.
pub fn regions_finding(regions: &[String]) -> Finding {
    const CHECK: &str = "regions";
    match regions {
        [only] => Finding::warning(CHECK, format!("one STS Region: {only}"))
            .why(format!(
                "while STS in {only} is down no profile can be refreshed, and every credential \
                 ends within the hour"
            ))
            .fix(format!(
                "list a second Region to fall back to, e.g. `regions = [\"{only}\", \"{}\"]` \
                 in [access]",
                if only == "us-west-2" {
                    "us-east-1"
                } else {
                    "us-west-2"
                }
            )),
        _ => Finding::ok(
            CHECK,
            format!("STS Regions, in order: {}", regions.join(", ")),
        ),
    }
}

/// A check that needs what is missing (`why`, e.g. the access session).
pub fn not_run(check: &str, why: &str) -> Finding {
    Finding::info(check, format!("not checked: {why}"))
}

/// The account of an ARN (`arn:aws:iam::111111111111:user/alice` → `111111111111`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use credd_proto::Severity;

    use super::*;
    use crate::sts::{FailureKind, StsFailure};

    const T: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn probe(sent: u64, received: u64, server: Option<u64>) -> ClockProbe {
        ClockProbe {
            sent: at(sent),
            received: at(received),
            server_date: server.map(at),
            region: "us-east-1".into(),
            caller: Ok(("111111111111".into(), "arn".into())),
        }
    }

    #[test]
    fn skew_counts_only_what_lies_outside_the_round_trip() {
        assert_eq!(skew(at(T), at(T + 2), at(T + 1)), (Duration::ZERO, true));
        // The header's second covers [T-1, T): a request sent at T is not ahead.
        assert_eq!(skew(at(T), at(T), at(T - 1)), (Duration::ZERO, true));
        assert_eq!(
            skew(at(T), at(T + 1), at(T - 90)),
            (Duration::from_secs(89), true)
        );
        assert_eq!(
            skew(at(T), at(T + 1), at(T + 400)),
            (Duration::from_secs(399), false)
        );
    }

    #[test]
    fn skew_thresholds_one_and_five_minutes() {
        let severity = |server| clock_finding(&probe(T, T, Some(server))).severity;
        assert_eq!(severity(T), Severity::Ok);
        assert_eq!(severity(T + 60), Severity::Ok);
        assert_eq!(severity(T + 61), Severity::Warning);
        assert_eq!(severity(T - 62), Severity::Warning);
        assert_eq!(severity(T + 300), Severity::Warning);
        assert_eq!(severity(T + 301), Severity::Critical);
        assert_eq!(severity(T - 3600), Severity::Critical);
        let behind = clock_finding(&probe(T, T, Some(T + 400)));
        assert_eq!(
            behind.found,
            "this machine's clock is 6m 40s behind STS's (in us-east-1)"
        );
        assert!(behind.why.is_some_and(|w| w.contains("5 minutes")));
    }

    #[test]
    fn no_date_is_not_checked_with_the_reason() {
        let mut p = probe(T, T, None);
        p.caller = Err(StsFailure {
            kind: FailureKind::Outage,
            region: "us-east-1".into(),
            code: "ConnectionFailed".into(),
            message: "refused".into(),
        });
        let f = clock_finding(&p);
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(
            f.found,
            "not checked: STS in us-east-1: ConnectionFailed: refused"
        );
    }

    #[test]
    fn the_management_account_is_critical_and_a_member_is_not() {
        let org = |m: &str| {
            Ok(Membership::Organization {
                id: "o-abc".into(),
                management_account: m.into(),
            })
        };
        let managing = organization_finding("111111111111", org("111111111111"));
        assert_eq!(managing.severity, Severity::Critical);
        assert!(
            managing
                .found
                .contains("is the management account of organization o-abc")
        );
        assert!(
            managing
                .why
                .is_some_and(|w| w.contains("OrganizationAccountAccessRole"))
        );
        assert!(managing.fix.is_some_and(|f| f.contains("member account")));
        let member = organization_finding("111111111111", org("999999999999"));
        assert_eq!(member.severity, Severity::Ok);
        assert_eq!(
            organization_finding("111111111111", Ok(Membership::None)).severity,
            Severity::Ok
        );
        let denied = organization_finding(
            "111111111111",
            Err(OrganizationsError::AccessDenied {
                message: "no".into(),
            }),
        );
        assert_eq!(denied.severity, Severity::Info);
        assert!(
            denied
                .fix
                .is_some_and(|f| f.contains("organizations:DescribeOrganization"))
        );
    }

    #[test]
    fn one_region_gets_the_regional_outage_advice() {
        let one = regions_finding(&["us-east-1".into()]);
        assert_eq!(one.severity, Severity::Warning);
        assert!(
            one.fix
                .is_some_and(|f| f.contains("\"us-east-1\", \"us-west-2\""))
        );
        let two = regions_finding(&["us-east-1".into(), "us-west-2".into()]);
        assert_eq!(two.severity, Severity::Ok);
    }

    #[test]
    fn an_arn_names_its_account() {
        assert_eq!(
            account_of("arn:aws:iam::111111111111:user/alice"),
            Some("111111111111")
        );
        assert_eq!(
            account_of("arn:aws:sts::222222222222:assumed-role/A/b"),
            Some("222222222222")
        );
        assert_eq!(account_of("acme (https://x)"), None);
    }
}
