//! `credd doctor`'s live checks: the access session, the account it is in (the organization's
//! management account?), STS's clock, the key's age, and every profile's role assumed now through
//! its worker (one STS call each, never a prompt). Each call that reaches out is bounded and runs
//! beside the others; one that fails is a finding, never a failed doctor. The source's own checks
//! come from [`Source::checks`](crate::access::source::Source::checks).

use std::time::Duration;

use credd_proto::Finding;
use tokio::task::JoinSet;

use super::{Engine, EngineError};
use crate::access::AccessSession;
use crate::access::source::SessionSigner;
use crate::creds::AwsCredentials;
use crate::doctor::{self, account_of, not_run};

/// One profile's AssumeRole (with its failover through the configured Regions) gets this long.
const PROFILE_WAIT: Duration = Duration::from_secs(20);
/// GetCallerIdentity for the clock, then DescribeOrganization: each gets this long.
const CALL_WAIT: Duration = Duration::from_secs(12);

/// The checks that need the access session, reported as not run without one.
const LIVE_CHECKS: &[&str] = &[
    "management-account",
    "clock-skew",
    "unassumable-role",
    "key-age",
];

impl Engine {
    /// Every finding of the daemon's side of `credd doctor`, in the order checked.
    pub async fn doctor(&self) -> Vec<Finding> {
        let source = self.source();
        let config = self.config();
        let mut findings = Vec::new();
        let session = match self.session() {
            Some(s) => Some(s),
            None if self.look_for_outside_login() => self.session(),
            None => None,
        };
        let Some(session) = session else {
            let why = self
                .access_info()
                .last_error
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            findings.push(
                Finding::warning("logged-out", format!("not logged in{why}"))
                    .why(
                        "without the access session no profile's credentials are refreshed, \
                         and the live checks (organization, clock, roles, key age) cannot run",
                    )
                    .fix("run `credd login`, then `credd doctor` again"),
            );
            findings.extend(LIVE_CHECKS.iter().map(|c| not_run(c, "no access session")));
            findings.extend(source.checks());
            findings.push(doctor::regions_finding(&config.access.regions));
            return findings;
        };
        findings.push(self.session_finding());
        let (account_checks, profiles, key_age) = tokio::join!(
            self.account_checks(&session, source.signer()),
            self.profile_checks(),
            self.key_age_check(&session),
        );
        findings.extend(account_checks);
        findings.extend(profiles);
        findings.extend(key_age);
        findings.extend(source.checks());
        findings.push(doctor::regions_finding(&config.access.regions));
        findings
    }

    /// `session-ending`: status's warning when the session ends soon and renews only with the
    /// user.
    fn session_finding(&self) -> Finding {
        const CHECK: &str = "session-ending";
        let info = self.access_info();
        if let Some(warning) = info.warning {
            return Finding::warning(CHECK, warning)
                .why("when it ends, no profile's credentials are refreshed until you log in")
                .fix("run `credd login` now (or configure mfa_command to renew it unattended)");
        }
        let who = info.identity.unwrap_or_else(|| info.source.clone());
        let found = match (info.renews, info.expires_at) {
            (Some(how), _) => format!("logged in as {who}; the session renews itself {how}"),
            (None, Some(t)) => format!(
                "logged in as {who}; the session ends in {}",
                credd_proto::human::duration(t.saturating_sub(crate::clock::unix(self.now())))
            ),
            (None, None) => format!("logged in as {who}"),
        };
        Finding::ok(CHECK, found)
    }

    /// The credentials that act in the access account: the session's own keys, or the Identity
    /// Center access role's.
    fn access_credentials(
        &self,
        session: &AccessSession,
        signer: SessionSigner,
    ) -> Result<(AwsCredentials, Option<String>), String> {
        match signer {
            SessionSigner::SessionKeys => session
                .signing()
                .map(|c| (c.clone(), session.identity_arn.clone()))
                .ok_or_else(|| "the access session holds no keys".to_owned()),
            SessionSigner::AccessRole => match self.access_role() {
                None => Err(
                    "Identity Center without an access role ([access] sso_account_id \
                             and sso_role_name) holds no credentials in an access account"
                        .to_owned(),
                ),
                Some(slot) => slot
                    .cached()
                    .map(|c| (c.creds.clone(), Some(c.assumed_arn.clone())))
                    .ok_or_else(|| "the access role has no credentials yet".to_owned()),
            },
        }
    }

    /// `clock-skew` and `management-account`, both signed by the access identity.
    async fn account_checks(&self, session: &AccessSession, signer: SessionSigner) -> Vec<Finding> {
        let (creds, identity) = match self.access_credentials(session, signer) {
            Ok(found) => found,
            Err(why) => {
                return vec![
                    not_run("clock-skew", &why),
                    not_run("management-account", &why),
                ];
            }
        };
        let regions = self.config().access.regions.clone();
        let clock =
            match tokio::time::timeout(CALL_WAIT, self.inner.sts.clock_probe(&regions, &creds))
                .await
            {
                Ok(probe) => {
                    let finding = doctor::clock_finding(&probe);
                    (finding, probe.caller.ok().map(|(account, _)| account))
                }
                Err(_) => (
                    Finding::info(
                        "clock-skew",
                        format!(
                            "could not check: STS did not answer within {}s",
                            CALL_WAIT.as_secs()
                        ),
                    ),
                    None,
                ),
            };
        let (clock_finding, caller_account) = clock;
        let account = caller_account
            .filter(|a| !a.is_empty())
            .or_else(|| identity.as_deref().and_then(account_of).map(str::to_owned));
        let organization = match (&self.inner.organizations, account) {
            (None, _) => not_run("management-account", "no Organizations client"),
            (_, None) => not_run(
                "management-account",
                "STS did not say which account the access identity is in",
            ),
            (Some(org), Some(account)) => {
                let region = regions.first().map(String::as_str);
                match tokio::time::timeout(CALL_WAIT, org.membership(region, &creds)).await {
                    Ok(answer) => doctor::organization_finding(&account, answer),
                    Err(_) => Finding::info(
                        "management-account",
                        format!(
                            "could not check: AWS Organizations did not answer within {}s",
                            CALL_WAIT.as_secs()
                        ),
                    ),
                }
            }
        };
        // The management account first: it is what the doctor must say first.
        vec![organization, clock_finding]
    }

    /// `unassumable-role`: every profile refreshed now, side by side; one finding per failure
    /// and one for those that worked.
    async fn profile_checks(&self) -> Vec<Finding> {
        const CHECK: &str = "unassumable-role";
        let mut refreshes = JoinSet::new();
        for slot in self.profile_slots() {
            let engine = self.clone();
            refreshes.spawn(async move {
                let profile = slot.profile();
                let role = profile
                    .role_arn()
                    .map(str::to_owned)
                    .or_else(|| profile.sso_role())
                    .unwrap_or_default();
                let name = profile.name.clone();
                let outcome = tokio::time::timeout(PROFILE_WAIT, engine.refresh_now(&name)).await;
                (name, role, outcome)
            });
        }
        let mut outcomes = refreshes.join_all().await;
        if outcomes.is_empty() {
            return vec![Finding::info(CHECK, "no profiles configured")];
        }
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        let total = outcomes.len();
        let mut findings = Vec::new();
        for (name, role, outcome) in &outcomes {
            let error = match outcome {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {}s", PROFILE_WAIT.as_secs()),
            };
            let fix = match outcome {
                Ok(Err(EngineError::LoginRequired { .. })) => "run `credd login`".to_owned(),
                _ => format!(
                    "check that {role} exists and that its trust policy lets the access \
                     identity assume it (and the identity's policy allows sts:AssumeRole on it); \
                     `credd refresh {name}` tries again"
                ),
            };
            findings.push(
                Finding::warning(CHECK, format!("{name}: {role} cannot be assumed: {error}"))
                    .why("SDKs and tools using this profile get no credentials")
                    .fix(fix),
            );
        }
        let assumed = total - findings.len();
        if findings.is_empty() {
            findings.push(Finding::ok(
                CHECK,
                format!(
                    "{} assumed just now",
                    credd_proto::human::count(total, "profile's role", "profiles' roles")
                ),
            ));
        } else if assumed > 0 {
            findings.push(Finding::ok(
                CHECK,
                format!("{assumed} of {total} profiles' roles assumed just now"),
            ));
        }
        findings
    }

    /// `key-age`, for an IAM user.
    async fn key_age_check(&self, session: &AccessSession) -> Option<Finding> {
        let source = self.source();
        let user = source.iam_user()?;
        let config = self.config();
        let region = config.access.regions.first().map(String::as_str);
        let finding = match tokio::time::timeout(
            CALL_WAIT,
            self.inner.key.check(user, session, region, self.now()),
        )
        .await
        {
            Ok(f) => f,
            Err(_) => Finding::info(
                "key-age",
                format!(
                    "could not check: IAM did not answer within {}s",
                    CALL_WAIT.as_secs()
                ),
            ),
        };
        Some(finding)
    }
}
