//! `credd doctor`: the daemon's live posture checks (management account, MFA, key age, roles
//! that cannot be assumed, clock skew, the session's end, the source's own checks) and this
//! machine's: the runtime dir's modes, `AWS_*` variables in this shell that win over credd,
//! plain-text keys and a `[default]` key in the shared files, the service, the versions. Problems
//! first, the worst first, each with what was found, why it matters and how to fix it; the exit
//! code says the worst (0 nothing above info, 3 a warning, 4 a critical finding).

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use credd_proto::paths::{Paths, current_uid};
use credd_proto::{Finding, Request, Response, Severity};

use super::{ask, ask_within, unexpected};
use crate::error::ClientError;
use crate::output;
use crate::service_manager::{self, Manager};
use crate::shadow;

/// The daemon's own bound on its checks, and time for its answer to come back.
const WAIT: Duration = Duration::from_secs(credd_proto::DOCTOR_WAIT_SECS + 15);

/// Exit codes beyond 0 (nothing above info), 1 (doctor could not run) and 2 (usage).
pub const EXIT_WARNING: u8 = 3;
pub const EXIT_CRITICAL: u8 = 4;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Doctor;
    let daemon = ask_within(paths, &request, WAIT).and_then(|answer| match answer {
        Response::Doctor(report) => Ok(report),
        other => Err(unexpected(&request, other)),
    });
    let url = match ask(paths, &Request::Status) {
        Ok(Response::Status(status)) => status.url,
        _ => None,
    };
    let mut findings = Vec::new();
    let daemon_failed = match daemon {
        Ok(report) => {
            findings.extend(report.findings);
            findings.push(versions_finding(&report.daemon_version));
            None
        }
        Err(e) => Some(e),
    };
    let local = local_findings(paths, url.as_deref(), &findings);
    findings.extend(local);
    let findings = ordered(findings);
    let worst = findings.iter().map(|f| f.severity).max();
    if json {
        output::json(&serde_json::json!({
            "findings": findings,
            "worst": worst.map(Severity::as_str),
        }));
    } else {
        let _ = anstream::stdout().write_all(render(&findings).as_bytes());
    }
    if let Some(e) = daemon_failed {
        // Only the local checks ran: doctor could not do its job.
        return Err(e);
    }
    Ok(ExitCode::from(exit_code(worst)))
}

/// 0 nothing above info, 3 a warning, 4 a critical finding.
pub fn exit_code(worst: Option<Severity>) -> u8 {
    match worst {
        Some(Severity::Critical) => EXIT_CRITICAL,
        Some(Severity::Warning) => EXIT_WARNING,
        _ => 0,
    }
}

/// The worst first; the checks' own order within a severity.
pub fn ordered(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

const CRITICAL: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const INFO: Style = AnsiColor::Cyan.on_default();
const OK: Style = AnsiColor::Green.on_default();

fn label(severity: Severity) -> String {
    match severity {
        Severity::Critical => output::paint(CRITICAL, "CRITICAL"),
        Severity::Warning => output::paint(WARNING, "WARNING "),
        Severity::Info => output::paint(INFO, "info    "),
        Severity::Ok => output::paint(OK, "ok      "),
    }
}

// Writing into a String cannot fail; `writeln!` results are ignored below.
fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    let o = &mut out;
    for f in findings.iter().filter(|f| f.severity > Severity::Ok) {
        let _ = writeln!(o, "{} {}: {}", label(f.severity), f.check, f.found);
        if let Some(why) = &f.why {
            let _ = writeln!(o, "         why: {why}");
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(o, "         fix: {fix}");
        }
    }
    for f in findings.iter().filter(|f| f.severity == Severity::Ok) {
        let _ = writeln!(o, "{} {}: {}", label(f.severity), f.check, f.found);
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        o,
        "\n{} critical, {}, {}; {} passed",
        count(Severity::Critical),
        credd_proto::human::count(count(Severity::Warning), "warning", "warnings"),
        credd_proto::human::count(count(Severity::Info), "note", "notes"),
        count(Severity::Ok),
    );
    out
}

/// This machine's checks. `daemon` is what the daemon found (its key-storage finding already
/// names the key it reads in plain text).
fn local_findings(paths: &Paths, url: Option<&str>, daemon: &[Finding]) -> Vec<Finding> {
    let mut found = vec![runtime_dir_finding(paths), environment_finding(url)];
    found.extend(plaintext_findings(daemon));
    found.extend(shadow_findings());
    found.push(service_finding());
    found
}

fn versions_finding(daemon_version: &str) -> Finding {
    let client = env!("CARGO_PKG_VERSION");
    if daemon_version == client {
        Finding::ok(
            "versions",
            format!("credd and credd-daemon are both {client}"),
        )
    } else {
        Finding::warning(
            "versions",
            format!("credd {client} talks to credd-daemon {daemon_version}"),
        )
        .why("an upgrade replaced one but the other still runs: behaviour and fixes differ")
        .fix("restart the daemon: `credd stop` (the next credd command starts the new one)")
    }
}

/// `runtime-dir-modes`: the runtime dir 0700 and ours, the socket and the token file 0600.
fn runtime_dir_finding(paths: &Paths) -> Finding {
    const CHECK: &str = "runtime-dir-modes";
    let dir = &paths.runtime_dir;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut token_readable = false;
    match std::fs::metadata(dir) {
        Err(e) => return Finding::info(CHECK, format!("not checked: {}: {e}", dir.display())),
        Ok(m) => {
            if m.uid() != current_uid() {
                problems.push(format!("{} is owned by uid {}", dir.display(), m.uid()));
            }
            let mode = m.permissions().mode() & 0o777;
            if mode != 0o700 {
                problems.push(format!("{} is {mode:o}, not 700", dir.display()));
                fixes.push(format!("chmod 700 {}", dir.display()));
            }
        }
    }
    for (path, what) in [
        (paths.socket(), "socket"),
        (paths.token_file(), "token file"),
    ] {
        if let Some(mode) = loose_mode(&path) {
            problems.push(format!(
                "the {what} {} is {mode:o}, not 600",
                path.display()
            ));
            fixes.push(format!("chmod 600 {}", path.display()));
            token_readable |= what == "token file" && mode & 0o044 != 0;
        }
    }
    if problems.is_empty() {
        return Finding::ok(
            CHECK,
            format!("{} is 700, its socket and token file 600", dir.display()),
        );
    }
    let severity = if token_readable && problems.iter().any(|p| p.contains("not 700")) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Finding::new(CHECK, severity, problems.join("; "))
        .why(
            "the HTTP token hands out credentials and the socket drives the daemon: only you \
             may reach them",
        )
        .fix(if fixes.is_empty() {
            format!(
                "remove {} and restart the daemon (`credd stop`)",
                dir.display()
            )
        } else {
            format!("`{}`", fixes.join(" && "))
        })
}

/// The mode of `path` when others than its owner may use it.
fn loose_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// `stale-aws-env`: variables of this shell that SDKs read before credd's route.
fn environment_finding(url: Option<&str>) -> Finding {
    const CHECK: &str = "stale-aws-env";
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let mut stale: Vec<String> = super::env::CONFLICTING
        .iter()
        .filter(|k| set(k))
        .map(|k| (*k).to_owned())
        .collect();
    if let Ok(uri) = std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        && !uri.is_empty()
        && url.is_none_or(|u| !uri.starts_with(u))
    {
        stale.push(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI (points at {uri}, not credd{})",
            url.map(|u| format!("'s {u}")).unwrap_or_default()
        ));
    }
    if stale.is_empty() {
        return Finding::ok(CHECK, "no AWS_* variable in this shell overrides credd");
    }
    Finding::warning(CHECK, format!("set in this shell: {}", stale.join(", ")))
        .why("SDKs and the AWS CLI read these before credd's route, so they use other credentials (or none that work)")
        .fix("`eval \"$(credd env)\"` (it unsets them and points SDKs at credd), or remove them from your shell's startup files")
}

/// `key-plaintext`: long-lived keys in the shared credentials file (but the one the daemon
/// already named in its key-storage finding).
fn plaintext_findings(daemon: &[Finding]) -> Vec<Finding> {
    const CHECK: &str = "key-plaintext";
    let Some((file, profiles)) = shadow::plaintext_keys() else {
        return vec![Finding::ok(CHECK, "no shared credentials file")];
    };
    let said = |profile: &str| {
        let named = format!("{} [{profile}]", file.display());
        daemon
            .iter()
            .any(|f| f.check == "key-storage" && f.found.contains(&named))
    };
    let findings: Vec<Finding> = profiles
        .iter()
        .filter(|p| !said(p))
        .map(|profile| {
            Finding::warning(
                CHECK,
                format!("a long-lived key in plain text in {} [{profile}]", file.display()),
            )
            .why("any program running as you, and any backup of your home directory, can read and copy it")
            .fix(format!(
                "move the access account's key into the OS keychain: `credd key import \
                 --profile {profile} --delete`; delete any other from the file (and in IAM)"
            ))
        })
        .collect();
    if !findings.is_empty() {
        return findings;
    }
    let found = if profiles.is_empty() {
        format!("no long-lived key in {}", file.display())
    } else {
        format!("no long-lived key in {} but credd's own", file.display())
    };
    vec![Finding::ok(CHECK, found)]
}

/// `default-key-shadows`: a `[default]` profile with credentials wins over credd.
fn shadow_findings() -> Vec<Finding> {
    const CHECK: &str = "default-key-shadows";
    let found = shadow::find();
    if found.is_empty() {
        return vec![Finding::ok(CHECK, "no [default] profile holds credentials")];
    }
    found
        .into_iter()
        .map(|s| {
            Finding::warning(
                CHECK,
                format!("the [default] profile in {} holds credentials", s.file.display()),
            )
            .why("SDKs read the shared files before the container route: they use that profile, not credd")
            .fix("rename that profile (e.g. to [access]); `credd key import --profile access --delete` then moves a key into the OS keychain")
        })
        .collect()
}

/// `service`: credd installed as a user service, and enabled.
fn service_finding() -> Finding {
    const CHECK: &str = "service";
    let Some(manager) = service_manager::installed_manager() else {
        return Finding::info(CHECK, "credd is not installed as a service: each credd command starts the daemon when none runs, and it does not start at login")
            .fix("`credd service install`");
    };
    let name = match manager {
        Manager::Systemd => "systemd user service",
        Manager::Launchd => "launchd agent",
    };
    match manager.is_enabled() {
        Ok(()) => Finding::ok(CHECK, format!("installed and enabled as a {name}")),
        Err(e) => Finding::info(
            CHECK,
            format!("installed as a {name}, but not enabled (or the manager could not say: {e})"),
        )
        .fix("`credd service install` (it enables it again)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_comes_first_and_decides_the_exit_code() {
        let findings = ordered(vec![
            Finding::ok("a", "fine"),
            Finding::warning("b", "meh"),
            Finding::info("c", "note"),
            Finding::critical("d", "bad"),
            Finding::warning("e", "meh too"),
        ]);
        let order: Vec<&str> = findings.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(order, ["d", "b", "e", "c", "a"]);
        assert_eq!(exit_code(Some(Severity::Critical)), 4);
        assert_eq!(exit_code(Some(Severity::Warning)), 3);
        assert_eq!(exit_code(Some(Severity::Info)), 0);
        assert_eq!(exit_code(Some(Severity::Ok)), 0);
        assert_eq!(exit_code(None), 0);
    }

    #[test]
    fn problems_show_why_and_fix_and_passes_are_one_line() {
        let text = render(&ordered(vec![
            Finding::ok("regions", "STS Regions, in order: us-east-1, us-west-2"),
            Finding::critical(
                "management-account",
                "the access account 1 is the management account",
            )
            .why("everything")
            .fix("move"),
        ]));
        let plain = anstream::adapter::strip_str(&text).to_string();
        assert_eq!(
            plain,
            "CRITICAL management-account: the access account 1 is the management account\n\
             \x20        why: everything\n\
             \x20        fix: move\n\
             ok       regions: STS Regions, in order: us-east-1, us-west-2\n\
             \n1 critical, 0 warnings, 0 notes; 1 passed\n"
        );
    }

    #[test]
    fn versions_agree_or_say_how_to_restart() {
        assert_eq!(
            versions_finding(env!("CARGO_PKG_VERSION")).severity,
            Severity::Ok
        );
        let old = versions_finding("0.0.1");
        assert_eq!(old.severity, Severity::Warning);
        assert!(old.fix.is_some_and(|f| f.contains("credd stop")));
    }
}
