//! The audit log's record: one JSON line per group of credentials that left the daemon
//! (`<state dir>/credd/audit.jsonl`, rotated to `audit.jsonl.1`). The daemon writes it, `credd
//! audit` reads the files directly (also with the daemon stopped), so the shape lives here.
//!
//! What took the credentials, when, which profile and account, on which route: never a secret.
//! The program's details are what the OS tells the daemon (`None` where it does not: macOS, a
//! process that exited before it was looked at, another user's process).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Where a credential left the daemon, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditRoute {
    /// `/v1/credentials[/PROFILE]` (what `credd env` and `credd exec` point SDKs at).
    Container,
    /// `/latest/meta-data/iam/security-credentials[-extended]/{name}`.
    Imds,
    /// `credd credential-process` over the control socket.
    CredentialProcess,
    /// `credd console`: the credentials went to the AWS federation endpoint for a sign-in URL.
    Console,
    /// The IMDS routes on a Docker network's gateway, to a container granted by `credd docker`.
    Docker,
}

impl AuditRoute {
    pub fn name(self) -> &'static str {
        match self {
            AuditRoute::Container => "container",
            AuditRoute::Imds => "imds",
            AuditRoute::CredentialProcess => "credential-process",
            AuditRoute::Console => "console",
            AuditRoute::Docker => "docker",
        }
    }
}

/// How the program came to use the container route, from the `CREDD_VIA` its environment holds:
/// `credd exec` sets it for the command it runs, `credd env` exports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditVia {
    Exec,
    Env,
}

impl AuditVia {
    /// The variable `credd exec` and `credd env` set, and its values.
    pub const ENV: &'static str = "CREDD_VIA";

    pub fn name(self) -> &'static str {
        match self {
            AuditVia::Exec => "exec",
            AuditVia::Env => "env",
        }
    }

    /// `CREDD_VIA`'s value as a marker; anything else is none.
    pub fn from_value(value: &[u8]) -> Option<AuditVia> {
        match value {
            b"exec" => Some(AuditVia::Exec),
            b"env" => Some(AuditVia::Env),
            _ => None,
        }
    }
}

/// One line of the audit log: `count` credentials of one profile taken by one program on one
/// route, the first at `time`, the last at `last` (the daemon groups what one program takes
/// within a second into one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    #[serde(with = "rfc3339")]
    pub last: SystemTime,
    pub count: u64,
    pub route: AuditRoute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<AuditVia>,
    /// The profile; `(access session)` for `credd console --access`.
    pub profile: String,
    /// The current profile was served (the caller named none).
    pub current: bool,
    pub account: String,
    /// The expiry the caller was told.
    #[serde(with = "rfc3339")]
    pub expires: SystemTime,
    /// The program's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The program: the caller itself, or for `credential-process` the program that ran `credd
    /// credential-process` (the AWS CLI, boto3...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Its arguments, each cut to [`MAX_ARG`] bytes and all to [`MAX_CMDLINE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Vec<String>>,
    /// `credd credential-process` itself, whose parent is the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_pid: Option<u32>,
    /// Its cgroup: the cgroup v2 line of `/proc/PID/cgroup` (`0::/user.slice/...`), else the
    /// first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// A container ID recognised in the cgroup (Docker, containerd, Podman, CRI-O).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The container's name and image, for a container served by `credd docker` (its ID is
    /// `container`, as the engine told it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The `credd docker` grant it held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Its network namespace (`net:[4026532481]`), only when it is not the daemon's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

/// Other programs' command lines are not ours to keep whole: each argument is cut to this many
/// bytes...
pub const MAX_ARG: usize = 256;
/// ... and all of them to this many.
pub const MAX_CMDLINE: usize = 1024;

/// `args` cut as [`AuditEntry::cmdline`] keeps them: an argument longer than [`MAX_ARG`] bytes
/// ends in `…` where a character ends, and once [`MAX_CMDLINE`] bytes are kept the rest is one
/// `…`.
pub fn truncate_cmdline<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut total = 0;
    for arg in args {
        let arg = arg.as_ref();
        let budget = MAX_ARG.min(MAX_CMDLINE.saturating_sub(total));
        if budget == 0 {
            kept.push("…".to_owned());
            break;
        }
        let cut = cut(arg, budget);
        total += cut.len();
        kept.push(cut);
    }
    kept
}

/// `text` in at most `max` bytes; cut text ends in `…` (counted).
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…'.len_utf8();
    let mut end = max.saturating_sub(ellipsis);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// RFC 3339 in UTC to the millisecond, as the log's times are written.
pub mod rfc3339 {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text)
            .or_else(|_| humantime::parse_rfc3339(&text))
            .map_err(serde::de::Error::custom)
    }

    /// Seconds since the epoch (0 before it).
    pub fn unix(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_leaves_out_what_the_os_did_not_tell() {
        let t = humantime::parse_rfc3339("2026-12-06T10:00:00.250Z").unwrap();
        let entry = AuditEntry {
            time: t,
            last: t,
            count: 1,
            route: AuditRoute::CredentialProcess,
            via: None,
            profile: "prod".into(),
            current: false,
            account: "333333333333".into(),
            expires: t,
            uid: Some(1000),
            pid: None,
            exe: None,
            cmdline: None,
            client_pid: None,
            cgroup: None,
            container: None,
            container_name: None,
            image: None,
            grant: None,
            netns: None,
        };
        let line = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-12-06T10:00:00.250Z","last":"2026-12-06T10:00:00.250Z","count":1,"route":"credential-process","profile":"prod","current":false,"account":"333333333333","expires":"2026-12-06T10:00:00.250Z","uid":1000}"#
        );
        assert_eq!(serde_json::from_str::<AuditEntry>(&line).unwrap(), entry);
        let with_via = line.replace(r#""count":1,"#, r#""count":1,"via":"exec","#);
        let read: AuditEntry = serde_json::from_str(&with_via).unwrap();
        assert_eq!(read.via, Some(AuditVia::Exec));
    }

    #[test]
    fn command_lines_are_cut_per_argument_and_in_total() {
        assert_eq!(truncate_cmdline(&["curl", "-s"]), ["curl", "-s"]);
        let long = "é".repeat(200); // 400 bytes
        let cut = &truncate_cmdline(&[long.as_str()])[0];
        assert!(cut.len() <= MAX_ARG && cut.ends_with('…'), "{cut}");
        assert!(cut.starts_with("éé"));
        let many: Vec<String> = (0..20).map(|i| format!("{i}{}", "x".repeat(200))).collect();
        let kept = truncate_cmdline(&many);
        let bytes: usize = kept.iter().map(String::len).sum();
        assert!(bytes <= MAX_CMDLINE + '…'.len_utf8(), "{bytes}");
        assert_eq!(kept.last().map(String::as_str), Some("…"));
        assert_eq!(kept[0], many[0], "whole while it fits");
    }

    #[test]
    fn via_is_exec_or_env_and_nothing_else() {
        assert_eq!(AuditVia::from_value(b"exec"), Some(AuditVia::Exec));
        assert_eq!(AuditVia::from_value(b"env"), Some(AuditVia::Env));
        assert_eq!(AuditVia::from_value(b"execx"), None);
        assert_eq!(AuditVia::from_value(b""), None);
    }
}
