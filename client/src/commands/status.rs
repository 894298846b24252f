//! `credd status`: the daemon, the access session (with Identity Center's side of it and any
//! sign-in waiting for approval), each profile's state, and the paths in use.

use std::fmt::Write;
use std::io::Write as _;
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};

use credd_proto::docker::{ContainerGrant, DockerStatus};
use credd_proto::paths::Paths;
use credd_proto::{
    Authorization, FederationInfo, KeyInfo, LoginMethod, ProfileState, ProfileStatus, Request,
    Response, SsoInfo, StatusReport,
};

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output::{self, relative, when};

pub fn run(paths: &Paths, json: bool, all: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Status;
    let report = match ask(paths, &request)? {
        Response::Status(report) => report,
        other => return Err(unexpected(&request, other)),
    };
    if json {
        output::json(&report);
    } else {
        // Coloured on a terminal only: anstream strips the styles for a pipe, a file, NO_COLOR
        // (and honours CLICOLOR_FORCE).
        let view = if all { View::All } else { View::Compact };
        let _ = anstream::stdout().write_all(render_view(&report, view).as_bytes());
    }
    Ok(ExitCode::SUCCESS)
}

const FRESH: Style = AnsiColor::Green.on_default();
const FAILING: Style = AnsiColor::Red.on_default().bold();
/// Credentials or a session that end soon (or are served while their refresh fails).
const EXPIRING: Style = AnsiColor::Yellow.on_default();
const QUIET: Style = Style::new().dimmed();

/// Fresh credentials with less than this left are shown as expiring (the SDKs refresh 15 minutes
/// ahead; credd refreshes well before).
const EXPIRING_SOON: u64 = 15 * 60;

/// More profiles than this (about a screenful) are summed up unless `--all` is given.
pub const COMPACT_PAST: usize = 20;
/// The most profiles the compact view lists (those that need attention first).
const COMPACT_LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Every profile up to [`COMPACT_PAST`]; past it, counts and the ones that need attention.
    Compact,
    /// Every profile.
    All,
}

#[cfg(test)]
fn render(r: &StatusReport) -> String {
    render_view(r, View::Compact)
}

// Writing into a String cannot fail; `writeln!` results are ignored below.
fn render_view(r: &StatusReport, view: View) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "credd-daemon {} (pid {}), up {}",
        r.daemon_version,
        r.pid,
        output::span(output::now().saturating_sub(r.started_at))
    );
    let a = &r.access;
    let who = a.identity.as_deref().unwrap_or("identity unknown");
    if a.logged_in {
        let until = a
            .expires_at
            .map(|t| format!(", session ends {}", relative(t)))
            .unwrap_or_default();
        let region = a
            .sts_region
            .as_deref()
            .map(|r| format!(" [STS {r}]"))
            .unwrap_or_default();
        let _ = writeln!(o, "access:   {} {who}{until}{region}", a.source);
    } else {
        let why = a
            .last_error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        let todo = if a.pending.is_some() {
            "a sign-in waits for approval (pending, below)"
        } else {
            "run `credd login`"
        };
        let _ = writeln!(o, "access:   {}: not logged in{why}: {todo}", a.source);
    }
    if let Some(w) = &a.warning {
        let _ = writeln!(o, "warning:  {}", output::paint(EXPIRING, w));
    }
    if let Some(sso) = &a.sso {
        sso_block(o, sso);
    }
    if let Some(f) = &a.federation {
        federation_block(o, f, a.renews.as_deref(), a.logged_in);
    }
    // Otherwise (an MFA session with mfa_command) on a line of its own.
    if a.federation.is_none()
        && a.logged_in
        && let Some(how) = &a.renews
    {
        let _ = writeln!(o, "renewal:  renewed {how}, in the background");
    }
    if let Some(key) = &a.key {
        key_block(o, key);
    }
    if let Some(pending) = &a.pending {
        let _ = writeln!(o, "pending:  {}", describe_pending(pending));
    }
    if let Some(kept) = &a.session_storage {
        let _ = writeln!(o, "session:  kept in {kept}");
    }
    let _ = writeln!(
        o,
        "current:  {}",
        r.current_profile
            .as_deref()
            .unwrap_or("none (credd switch <profile>)")
    );
    let _ = writeln!(
        o,
        "url:      {}",
        r.url.as_deref().unwrap_or("not serving HTTP")
    );
    for w in &r.config.warnings {
        let _ = writeln!(o, "config:   {w}");
    }
    if let Some(e) = &r.config.error {
        let _ = writeln!(
            o,
            "config:   {}:\n          {e}",
            output::paint(FAILING, "last edit REJECTED (previous config in force)")
        );
    }
    let now = output::now();
    let shown = shown_profiles(o, r, view, now);
    let width = shown.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let region_width = shown
        .iter()
        .map(|p| p.region.as_deref().unwrap_or(NO_REGION).len())
        .max()
        .unwrap_or(0);
    for p in &shown {
        let (state, style) = state_of(p, now);
        let mark = if r.current_profile.as_deref() == Some(&p.name) {
            "*"
        } else {
            " "
        };
        let left = p.expires_at.map(|t| t.saturating_sub(now));
        let region = p.region.as_deref().unwrap_or(NO_REGION);
        // Padded before painting: the escape codes take no room on the screen.
        let mut line = format!(
            "  {mark} {:width$}  {}  {region:region_width$}",
            p.name,
            output::paint(style, &format!("{state:8}"))
        );
        if let Some(t) = p.expires_at {
            let expires = if t <= now {
                format!("expired {}", relative(t))
            } else {
                format!("expires {}", relative(t))
            };
            // Credentials still served while their refresh fails run out: say so in colour.
            let expires = match p.state {
                ProfileState::Fresh if left.is_some_and(|l| l >= EXPIRING_SOON) => expires,
                _ => output::paint(EXPIRING, &expires),
            };
            line.push_str(&format!("  {expires}"));
        }
        if let Some(t) = p.last_refresh {
            line.push_str(&format!("  refreshed {}", relative(t)));
        }
        if let Some(t) = p.retry_at {
            let retry = if t <= now {
                "retrying now".to_owned()
            } else {
                format!("next retry {}", when(t))
            };
            line.push_str(&format!("  {retry}"));
        }
        if let Some(via) = &p.via {
            line.push_str(&format!("  via {via}"));
        }
        if let Some(sso) = &p.sso_role {
            line.push_str(&format!("  Identity Center {sso}"));
        }
        if let Some(sts) = &p.sts_region {
            line.push_str(&format!("  [STS {sts}]"));
        }
        let _ = writeln!(o, "{}", line.trim_end());
        if let Some(e) = &p.last_error {
            let _ = writeln!(o, "      last error: {e}");
        }
    }
    if let Some(docker) = &r.docker {
        docker_block(o, docker);
    }
    let _ = writeln!(o, "paths:");
    let _ = writeln!(o, "  config   {}", r.paths.config);
    let _ = writeln!(o, "  socket   {}", r.paths.socket);
    let _ = writeln!(o, "  token    {}", r.paths.token_file);
    let _ = writeln!(o, "  state    {}", r.paths.state_file);
    out
}

/// What a profile's state is shown as, and in what colour.
fn state_of(p: &ProfileStatus, now: u64) -> (&'static str, Style) {
    let left = p.expires_at.map(|t| t.saturating_sub(now));
    match p.state {
        ProfileState::Fresh if left.is_some_and(|l| l < EXPIRING_SOON) => ("expiring", EXPIRING),
        ProfileState::Fresh => ("fresh", FRESH),
        // Still valid but under min_remaining: served while the late refresh comes.
        ProfileState::Cold if left.is_some_and(|l| l > 0) => ("expiring", EXPIRING),
        ProfileState::Cold => ("cold", QUIET),
        ProfileState::Failing => ("failing", FAILING),
    }
}

/// Writes the `profiles:` heading and picks the profiles to list: every one, or past
/// [`COMPACT_PAST`] (unless [`View::All`]) a count per state, then the current profile and those
/// that need attention (failing, expiring, cold, in that order), at most [`COMPACT_LINES`].
fn shown_profiles<'r>(
    o: &mut String,
    r: &'r StatusReport,
    view: View,
    now: u64,
) -> Vec<&'r ProfileStatus> {
    if r.profiles.is_empty() {
        return Vec::new();
    }
    if view == View::All || r.profiles.len() <= COMPACT_PAST {
        let _ = writeln!(o, "profiles:");
        return r.profiles.iter().collect();
    }
    const ORDER: [&str; 4] = ["failing", "expiring", "cold", "fresh"];
    let mut counts = [0usize; 4];
    let rank = |p: &ProfileStatus| {
        let (state, _) = state_of(p, now);
        ORDER.iter().position(|s| *s == state).unwrap_or(3)
    };
    for p in &r.profiles {
        counts[rank(p)] += 1;
    }
    let summary: Vec<String> = ORDER
        .iter()
        .zip(counts)
        .rev()
        .filter(|(_, n)| *n > 0)
        .map(|(state, n)| {
            let style = match *state {
                "fresh" => FRESH,
                "failing" => FAILING,
                "expiring" => EXPIRING,
                _ => QUIET,
            };
            output::paint(style, &format!("{n} {state}"))
        })
        .collect();
    let _ = writeln!(
        o,
        "profiles: {} ({}); `credd status --all` lists every one",
        r.profiles.len(),
        summary.join(", ")
    );
    let current = r.current_profile.as_deref();
    let mut attention: Vec<&ProfileStatus> = r
        .profiles
        .iter()
        .filter(|p| rank(p) < 3 || current == Some(p.name.as_str()))
        .collect();
    // The current profile first, then the worst first; names in order within a state.
    attention.sort_by_key(|p| (current != Some(p.name.as_str()), rank(p)));
    let more = attention.len().saturating_sub(COMPACT_LINES);
    attention.truncate(COMPACT_LINES);
    if more > 0 {
        let _ = writeln!(
            o,
            "  ({} shown of {} that need attention)",
            COMPACT_LINES,
            COMPACT_LINES + more
        );
    }
    attention
}

/// The region column of a profile with no `region` of its own (the SDK's default applies).
const NO_REGION: &str = "-";

/// Identity Center's side of the session: which instance, the token the daemon keeps fresh, when
/// the organization ends the session, and which Regions could take over.
fn sso_block(o: &mut String, sso: &SsoInfo) {
    let _ = writeln!(o, "identity center:");
    let _ = writeln!(o, "  session  {}  {}", sso.session_name, sso.start_url);
    let _ = writeln!(o, "  region   {}", sso.region);
    let token = match sso.token_expires_at {
        Some(t) => format!("expires {}, refreshed in the background", when(t)),
        None => "none (`credd login`)".to_owned(),
    };
    let _ = writeln!(o, "  token    {token}");
    if let Some(t) = sso.session_ends_at {
        let _ = writeln!(
            o,
            "  ends     {}: your organization's session length; then `credd login` again",
            when(t)
        );
    }
    let _ = writeln!(o, "  cache    {}", sso.cache_file);
    let width = sso
        .regions
        .iter()
        .map(|r| r.region.len())
        .max()
        .unwrap_or(0);
    for (i, r) in sso.regions.iter().enumerate() {
        let label = if i == 0 { "regions" } else { "" };
        let mut line = format!("  {label:8} {:width$}  ", r.region);
        if r.authorized {
            line.push_str("authorized");
        } else {
            line.push_str(&format!(
                "not authorized: `credd login --region {}`",
                r.region
            ));
        }
        if r.region == sso.region {
            line.push_str(" (in use)");
        }
        if r.start_url != sso.start_url {
            line.push_str(&format!("  {}", r.start_url));
        }
        let _ = writeln!(o, "{line}");
    }
}

/// The identity provider's side of a `web-identity` or `saml` session: where the token or
/// assertion comes from, the role it is traded for, who the user is, and whether the session
/// renews itself.
fn federation_block(o: &mut String, f: &FederationInfo, renews: Option<&str>, logged_in: bool) {
    let _ = writeln!(o, "identity provider:");
    let _ = writeln!(o, "  from     {}", f.provider);
    if let Some(role) = &f.role_arn {
        let _ = writeln!(o, "  role     {role}");
    }
    if let Some(who) = &f.who {
        let _ = writeln!(o, "  user     {who}");
    }
    if logged_in {
        let renews = match renews {
            Some(how) => format!("renewed {how}, in the background"),
            None => "only by `credd login`, before the session ends".to_owned(),
        };
        let _ = writeln!(o, "  renewal  {renews}");
    }
}

/// The IAM user's long-lived key: where it is kept, which one, how old, and what to do about it.
fn key_block(o: &mut String, key: &KeyInfo) {
    let _ = writeln!(o, "key:");
    let _ = writeln!(o, "  stored   {}", key.stored_in);
    let id = key
        .access_key_id
        .as_deref()
        .unwrap_or("not read yet (read at the next login)");
    let _ = writeln!(o, "  id       {id}");
    if let Some(t) = key.created_at {
        let age = output::now().saturating_sub(t);
        let _ = writeln!(o, "  age      {} (created {})", key_age(age), when(t));
    }
    if let Some(w) = &key.warning {
        let _ = writeln!(o, "  warning  {w}");
    }
}

/// `credd docker`: the engine the daemon asks, where containers reach credd, each container
/// that holds a grant now, the grants no container holds (yet), and why containers cannot be
/// served when they cannot.
fn docker_block(o: &mut String, d: &DockerStatus) {
    let _ = writeln!(o, "containers:");
    let _ = writeln!(o, "  engine   {}", d.engine);
    if let Some(e) = &d.error {
        let _ = writeln!(o, "  error    {}", output::paint(FAILING, e));
    }
    let listens = match d.endpoints.as_slice() {
        [] => "not yet (on a network's gateway from its first grant)".to_owned(),
        endpoints => endpoints.join("  "),
    };
    let _ = writeln!(o, "  listens  {listens}");
    let width = |cell: fn(&ContainerGrant) -> &str| {
        d.containers
            .iter()
            .map(|c| cell(c).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (name_w, image_w, profile_w) = (
        width(|c| &c.name),
        width(|c| &c.image),
        width(|c| &c.profile),
    );
    for (i, c) in d.containers.iter().enumerate() {
        let label = if i == 0 { "running" } else { "" };
        let _ = writeln!(
            o,
            "  {label:8} {:name_w$}  {}  {:image_w$}  {:profile_w$}  grant {}  {}  since {}",
            c.name,
            output::short_id(&c.id),
            c.image,
            c.profile,
            c.grant,
            c.address,
            when(c.since)
        );
    }
    let waiting = d.grants.iter().filter(|g| g.containers == 0);
    for (i, g) in waiting.enumerate() {
        let label = if i == 0 { "waiting" } else { "" };
        let (kind, for_whom) = if g.standing {
            ("standing", "any container started with it")
        } else {
            ("one-shot", "the container `credd docker run` starts")
        };
        let _ = writeln!(
            o,
            "  {label:8} grant {}  {}  {kind}, made {}: for {for_whom}",
            g.id,
            g.profile,
            relative(g.created_at)
        );
    }
}

/// `12 days`, `1 day`, or the hours and minutes of a key made today.
fn key_age(secs: u64) -> String {
    match secs / 86_400 {
        0 => output::span(secs),
        1 => "1 day".to_owned(),
        days => format!("{days} days"),
    }
}

/// `device sign-in to us-east-1 waits until 14:40 (in 8m): open URL, code ABCD-EFGH`.
fn describe_pending(p: &Authorization) -> String {
    let until = when(p.expires_at);
    match p.method {
        LoginMethod::Device => {
            let code = p
                .user_code
                .as_deref()
                .map(|c| format!(" and check the code {c}"))
                .unwrap_or_default();
            format!(
                "device sign-in to {} waits until {until}: open {}{code}; `credd login --cancel` \
                 abandons it",
                p.provider, p.url
            )
        }
        LoginMethod::Browser => format!(
            "browser sign-in to {} waits until {until}; `credd login` shows it again, `credd \
             login --cancel` abandons it",
            p.provider
        ),
        LoginMethod::Command => format!(
            "{} `{}` runs until {until} at the latest; `credd login --cancel` stops it",
            p.provider, p.url
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::{AccessInfo, ConfigInfo, PathsInfo, ProfileStatus, SsoRegionInfo};

    /// What a pipe, a file or NO_COLOR gets.
    fn plain(r: &StatusReport) -> String {
        anstream::adapter::strip_str(&render(r)).to_string()
    }

    fn report(access: AccessInfo) -> StatusReport {
        StatusReport {
            daemon_version: "0.1.0".into(),
            pid: 42,
            started_at: output::now() - 60,
            paths: PathsInfo {
                config: "/c/config.toml".into(),
                runtime_dir: "/r".into(),
                socket: "/r/control.sock".into(),
                token_file: "/r/http.token".into(),
                state_file: "/s/state.json".into(),
            },
            url: Some("http://127.0.0.1:9911".into()),
            config: ConfigInfo {
                path: "/c/config.toml".into(),
                loaded_at: 0,
                error: None,
                warnings: vec![],
            },
            access,
            current_profile: None,
            profiles: vec![],
            docker: None,
        }
    }

    fn sso_access(logged_in: bool) -> AccessInfo {
        let now = output::now();
        AccessInfo {
            source: "sso".into(),
            logged_in,
            identity: Some("acme (https://acme.awsapps.com/start)".into()),
            expires_at: Some(now + 8 * 3600),
            mfa_serial: None,
            sts_region: None,
            warning: Some("the Identity Center session ends in 50m: run `credd login`".into()),
            last_error: None,
            session_storage: None,
            federation: None,
            key: None,
            renews: None,
            sso: Some(SsoInfo {
                session_name: "acme".into(),
                start_url: "https://acme.awsapps.com/start".into(),
                region: "us-east-1".into(),
                token_expires_at: Some(now + 1800),
                session_ends_at: Some(now + 3000),
                cache_file: "/home/alice/.aws/sso/cache/0123.json".into(),
                regions: vec![
                    SsoRegionInfo {
                        region: "us-east-1".into(),
                        start_url: "https://acme.awsapps.com/start".into(),
                        authorized: true,
                    },
                    SsoRegionInfo {
                        region: "eu-west-1".into(),
                        start_url: "https://acme-eu.awsapps.com/start".into(),
                        authorized: false,
                    },
                ],
            }),
            pending: None,
        }
    }

    #[test]
    fn identity_center_block_says_what_is_kept_fresh_and_what_ends() {
        let mut report = report(sso_access(true));
        report.current_profile = Some("staging".into());
        report.profiles = vec![ProfileStatus {
            role_arn: None,
            sso_role: Some("222222222222/AdministratorAccess".into()),
            ..profile("staging", ProfileState::Fresh)
        }];
        let text = plain(&report);
        for expected in [
            "warning:  the Identity Center session ends in 50m: run `credd login`\n",
            "identity center:\n  session  acme  https://acme.awsapps.com/start\n",
            "  region   us-east-1\n",
            "  token    expires ",
            ", refreshed in the background\n",
            "  ends     ",
            "then `credd login` again\n",
            "  cache    /home/alice/.aws/sso/cache/0123.json\n",
            "  regions  us-east-1  authorized (in use)\n",
            "  * staging  fresh     -  Identity Center 222222222222/AdministratorAccess\n",
            "           eu-west-1  not authorized: `credd login --region eu-west-1`  \
             https://acme-eu.awsapps.com/start\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
        assert!(!text.contains("pending"), "{text}");
    }

    #[test]
    fn a_pending_device_sign_in_shows_where_to_approve_it() {
        let mut access = sso_access(false);
        access.pending = Some(Authorization {
            method: LoginMethod::Device,
            url: "https://device.sso.us-east-1.amazonaws.com/?user_code=ABCD-EFGH".into(),
            user_code: Some("ABCD-EFGH".into()),
            provider: "IAM Identity Center (us-east-1)".into(),
            region: Some("us-east-1".into()),
            expires_at: output::now() + 500,
            joined: false,
        });
        let text = plain(&report(access));
        assert!(
            text.contains("access:   sso: not logged in: a sign-in waits for approval"),
            "{text}"
        );
        assert!(
            text.contains(
                "pending:  device sign-in to IAM Identity Center (us-east-1) waits until "
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "open https://device.sso.us-east-1.amazonaws.com/?user_code=ABCD-EFGH and check \
                 the code ABCD-EFGH; `credd login --cancel` abandons it\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_iam_user_key_shows_where_it_is_kept_its_age_and_what_to_do() {
        let mut access = sso_access(true);
        access.source = "iam-user".into();
        access.sso = None;
        access.warning = None;
        access.key = Some(KeyInfo {
            stored_in: "keychain: Secret Service (login collection): credd/aws-access-key".into(),
            access_key_id: Some("AKIAOLDKEY".into()),
            created_at: Some(output::now() - 120 * 86_400 - 60),
            warning: Some("the key is 120 days old: run `credd key rotate`".into()),
        });
        let text = plain(&report(access.clone()));
        for expected in [
            "key:\n  stored   keychain: Secret Service (login collection): credd/aws-access-key\n",
            "  id       AKIAOLDKEY\n",
            "  age      120 days (created ",
            "  warning  the key is 120 days old: run `credd key rotate`\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
        access.key = Some(KeyInfo {
            stored_in: "file: /home/alice/.aws/credentials [access]".into(),
            access_key_id: None,
            created_at: None,
            warning: None,
        });
        let text = plain(&report(access));
        assert!(
            text.contains("key:\n  stored   file: /home/alice/.aws/credentials [access]\n  id       not read yet"),
            "{text}"
        );
        assert!(!text.contains("  age "), "{text}");
        assert_eq!(key_age(3 * 3600 + 60), "3h 1m");
        assert_eq!(key_age(86_400 + 5), "1 day");
    }

    #[test]
    fn an_mfa_session_with_mfa_command_says_it_renews_itself() {
        let mut access = sso_access(true);
        access.source = "iam-user".into();
        access.sso = None;
        access.warning = None;
        access.renews = Some("with mfa_command ykman".into());
        let text = plain(&report(access.clone()));
        assert!(
            text.contains("\nrenewal:  renewed with mfa_command ykman, in the background\n"),
            "{text}"
        );
        access.logged_in = false;
        assert!(!plain(&report(access)).contains("renewal:"));
    }

    #[test]
    fn an_iam_user_status_has_no_identity_center_block() {
        let mut access = sso_access(true);
        access.source = "iam-user".into();
        access.sso = None;
        access.warning = None;
        let text = plain(&report(access));
        assert!(!text.contains("identity center"), "{text}");
        assert!(
            text.starts_with("credd-daemon 0.1.0 (pid 42), up 1m\n"),
            "{text}"
        );
    }

    fn profile(name: &str, state: ProfileState) -> ProfileStatus {
        ProfileStatus {
            name: name.into(),
            role_arn: Some("arn:aws:iam::222222222222:role/Administrator".into()),
            sso_role: None,
            via: None,
            state,
            expires_at: None,
            last_refresh: None,
            next_refresh: None,
            last_error: None,
            sts_region: None,
            assumed_arn: None,
            region: None,
            retry_at: None,
        }
    }

    #[test]
    fn each_profile_shows_its_region_and_the_sts_region_labelled_as_such() {
        let mut access = sso_access(true);
        access.source = "iam-user".into();
        access.sso = None;
        access.warning = None;
        access.sts_region = Some("us-east-1".into());
        let mut r = report(access);
        let now = output::now();
        let mut staging = profile("staging", ProfileState::Fresh);
        staging.region = Some("eu-west-1".into());
        staging.sts_region = Some("us-east-1".into());
        staging.expires_at = Some(now + 3000);
        let prod = profile("prod", ProfileState::Cold);
        r.profiles = vec![prod, staging];
        let text = plain(&r);
        assert!(text.contains("[STS us-east-1]\n"), "{text}");
        assert!(
            text.contains("    staging  fresh     eu-west-1  expires in 50m  [STS us-east-1]\n"),
            "{text}"
        );
        assert!(text.contains("    prod     cold      -\n"), "{text}");
    }

    #[test]
    fn a_failing_profile_shows_when_it_is_retried() {
        let mut r = report(sso_access(true));
        let now = output::now();
        let mut p = profile("prod", ProfileState::Failing);
        p.next_refresh = Some(now + 125);
        p.retry_at = Some(now + 125);
        p.expires_at = Some(now + 600);
        p.last_error = Some("STS in us-east-1: AccessDenied: no (failing for 5m 2s)".into());
        r.profiles = vec![p];
        let text = plain(&r);
        assert!(text.contains("  prod  failing   -  expires in "), "{text}");
        assert!(text.contains("  next retry "), "{text}");
        assert!(
            text.contains("(in 2m 5s)") || text.contains("(in 2m 4s)"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n      last error: STS in us-east-1: AccessDenied: no (failing for 5m 2s)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn containers_show_under_their_names_with_their_grants_and_the_grants_waiting() {
        use credd_proto::docker::GrantStatus;
        let mut r = report(sso_access(true));
        assert!(
            !plain(&r).contains("containers:"),
            "no section before a grant"
        );
        let now = output::now();
        let container = |name: &str, image: &str, profile: &str| ContainerGrant {
            id: "4f0d1c0e9b8a7f6e5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0".into(),
            name: name.into(),
            image: image.into(),
            profile: profile.into(),
            grant: "3f2a9c".into(),
            address: "172.17.0.2".into(),
            since: now - 600,
        };
        r.docker = Some(DockerStatus {
            engine: "unix:///var/run/docker.sock".into(),
            endpoints: vec![
                "http://172.17.0.1:9912/".into(),
                "http://172.18.0.1:9912/".into(),
            ],
            grants: vec![
                GrantStatus {
                    id: "3f2a9c".into(),
                    profile: "staging".into(),
                    standing: true,
                    created_at: now - 3600,
                    containers: 2,
                },
                GrantStatus {
                    id: "77aa01".into(),
                    profile: "prod".into(),
                    standing: false,
                    created_at: now - 5,
                    containers: 0,
                },
            ],
            containers: vec![
                container("web", "python:3.12", "staging"),
                container("worker-1", "amazon/aws-cli", "staging"),
            ],
            error: None,
        });
        let text = plain(&r);
        for expected in [
            "containers:\n  engine   unix:///var/run/docker.sock\n",
            "  listens  http://172.17.0.1:9912/  http://172.18.0.1:9912/\n",
            "  running  web       4f0d1c0e9b8a  python:3.12     staging  grant 3f2a9c  172.17.0.2  \
             since ",
            "\n           worker-1  4f0d1c0e9b8a  amazon/aws-cli  staging  grant 3f2a9c  ",
            "(10m ago)\n",
            "  waiting  grant 77aa01  prod  one-shot, made 5s ago: for the container `credd docker \
             run` starts\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
        assert!(!text.contains("grant 3f2a9c  staging  standing"), "{text}");
        assert!(text.find("containers:") < text.find("paths:"), "{text}");
        let docker = r.docker.as_mut().unwrap();
        docker.error = Some("cannot reach the Docker engine: permission denied".into());
        docker.endpoints.clear();
        docker.containers.clear();
        let raw = render(&r);
        assert!(
            raw.contains(&output::paint(
                FAILING,
                "cannot reach the Docker engine: permission denied"
            )),
            "{raw:?}"
        );
        assert!(
            plain(&r)
                .contains("  listens  not yet (on a network's gateway from its first grant)\n")
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["docker"]["grants"][1]["id"], "77aa01", "and in --json");
    }

    #[test]
    fn states_are_coloured_and_the_colour_strips_cleanly() {
        let mut r = report(sso_access(true));
        let now = output::now();
        let mut fresh = profile("a", ProfileState::Fresh);
        fresh.expires_at = Some(now + 3000);
        let mut expiring = profile("b", ProfileState::Fresh);
        expiring.expires_at = Some(now + 300);
        let failing = profile("c", ProfileState::Failing);
        let mut late = profile("d", ProfileState::Cold);
        late.expires_at = Some(now + 600);
        r.profiles = vec![fresh, expiring, failing, late];
        let raw = render(&r);
        assert!(raw.contains(&output::paint(FRESH, "fresh   ")), "{raw:?}");
        assert!(
            raw.contains(&output::paint(EXPIRING, "expiring")),
            "{raw:?}"
        );
        assert!(raw.contains(&output::paint(FAILING, "failing ")), "{raw:?}");
        let text = plain(&r);
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(text.contains("    b  expiring  -  expires in "), "{text}");
        assert!(text.contains("    d  expiring  -  expires in "), "{text}");
    }

    #[test]
    fn past_a_screenful_only_counts_the_current_profile_and_those_that_need_attention_are_shown() {
        let mut r = report(sso_access(true));
        let now = output::now();
        r.profiles = (0..500)
            .map(|i| {
                let mut p = profile(&format!("p{i:03}"), ProfileState::Fresh);
                p.expires_at = Some(now + 3000);
                p
            })
            .collect();
        r.profiles[7].state = ProfileState::Failing;
        r.profiles[9].state = ProfileState::Cold;
        r.profiles[9].expires_at = None;
        r.profiles[3].state = ProfileState::Failing;
        r.current_profile = Some("p250".into());
        let text = plain(&r);
        assert!(
            text.contains(
                "profiles: 500 (497 fresh, 1 cold, 2 failing); `credd status --all` lists every one\n"
            ),
            "{text}"
        );
        let listed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains(" p"))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('p')))
            .collect();
        assert_eq!(listed, ["p250", "p003", "p007", "p009"], "{text}");
        assert!(text.lines().count() < 30, "{text}");
        let all = anstream::adapter::strip_str(&render_view(&r, View::All)).to_string();
        assert!(all.contains("profiles:\n"), "{all}");
        assert_eq!(all.matches("  fresh  ").count(), 497, "{all}");
        // A screenful or less is listed in full.
        r.profiles.truncate(COMPACT_PAST);
        assert!(plain(&r).contains("profiles:\n"));
        // Hundreds that all need attention: the first 20, and how many there are.
        r.profiles = (0..300)
            .map(|i| profile(&format!("q{i:03}"), ProfileState::Cold))
            .collect();
        let text = plain(&r);
        assert!(text.contains("profiles: 300 (300 cold)"), "{text}");
        assert!(
            text.contains("  (20 shown of 300 that need attention)\n"),
            "{text}"
        );
        assert_eq!(text.matches("  cold  ").count(), 20, "{text}");
    }
}
