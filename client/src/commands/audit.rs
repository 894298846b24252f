//! `credd audit`: who took which credentials, from the audit log the daemon keeps
//! (`<state dir>/credd/audit.jsonl`, and `audit.jsonl.1` before its last rotation). It reads the
//! files directly, so it works with the daemon stopped; a line it cannot read is skipped and
//! counted, never a failure.
//!
//! The table groups the lines by program and profile (a person asks "what took prod?"), a
//! container `credd docker` served by its container ID, most recently used first; `--json` gives the lines themselves; `--follow` prints new lines as the
//! daemon appends them, across rotations, until Ctrl-C.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use credd_proto::audit::{AuditEntry, AuditRoute, rfc3339::unix};
use credd_proto::human;
use credd_proto::paths::Paths;

use crate::error::ClientError;
use crate::output;

/// How often `--follow` looks at the file.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// `--follow` starts with this many of the latest lines.
const FOLLOW_BACKLOG: usize = 10;

/// The routes as `credd audit` shows them: `env` and `exec` are the container route taken by a
/// program started so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RouteFilter {
    Container,
    Imds,
    CredentialProcess,
    Env,
    Exec,
    Console,
    Docker,
}

impl RouteFilter {
    fn name(self) -> &'static str {
        match self {
            RouteFilter::Container => "container",
            RouteFilter::Imds => "imds",
            RouteFilter::CredentialProcess => "credential-process",
            RouteFilter::Env => "env",
            RouteFilter::Exec => "exec",
            RouteFilter::Console => "console",
            RouteFilter::Docker => "docker",
        }
    }
}

pub struct Options {
    pub since: Option<Duration>,
    pub profile: Option<glob::Pattern>,
    pub route: Option<RouteFilter>,
    pub follow: bool,
}

/// `--profile`: a profile name or a glob (`prod*`).
pub fn parse_glob(text: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(text)
        .map_err(|e| format!("not a profile name or glob like \"prod*\": {}", e.msg))
}

/// `--since`: `1h`, `30m`, `2d`.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("expected a duration like \"1h\", \"30m\" or \"2d\" ({e})"))
}

/// The route as the table shows it: `env`/`exec` in place of `container` for a program that
/// `credd env` or `credd exec` set up.
pub fn shown_route(entry: &AuditEntry) -> &'static str {
    match (entry.route, entry.via) {
        (AuditRoute::Container, Some(via)) => via.name(),
        (route, _) => route.name(),
    }
}

impl Options {
    fn keeps(&self, entry: &AuditEntry, now: SystemTime) -> bool {
        if let Some(since) = self.since
            && entry.last < now.checked_sub(since).unwrap_or(SystemTime::UNIX_EPOCH)
        {
            return false;
        }
        if let Some(pattern) = &self.profile
            && !pattern.matches(&entry.profile)
        {
            return false;
        }
        self.route.is_none_or(|r| r.name() == shown_route(entry))
    }
}

pub fn run(paths: &Paths, json: bool, opts: Options) -> Result<ExitCode, ClientError> {
    let files = [paths.audit_log_rotated(), paths.audit_log()];
    let mut skipped = 0;
    let mut all = Vec::new();
    for file in &files {
        all.extend(read_lines(file, &mut skipped));
    }
    if skipped > 0 {
        eprintln!(
            "credd: skipped {} that could not be read in {}",
            human::count(skipped, "line", "lines"),
            paths.audit_log().display()
        );
    }
    let now = SystemTime::now();
    let recorded = all.len();
    let kept: Vec<AuditEntry> = all.into_iter().filter(|e| opts.keeps(e, now)).collect();
    if opts.follow {
        let backlog = &kept[kept.len().saturating_sub(FOLLOW_BACKLOG)..];
        for entry in backlog {
            print_followed(entry, json);
        }
        return follow(&paths.audit_log(), &opts, json);
    }
    if json {
        output::json(&kept);
        return Ok(ExitCode::SUCCESS);
    }
    if recorded == 0 {
        println!(
            "No credentials recorded yet. The audit log is {} (`[audit] enabled` in the config \
             turns it on or off).",
            shorten_home(&paths.audit_log().display().to_string())
        );
        return Ok(ExitCode::SUCCESS);
    }
    if kept.is_empty() {
        println!("No credentials taken match (of {recorded} lines recorded).");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&kept, now));
    println!(
        "{}, {}, in {}",
        human::count(
            kept.iter().map(|e| e.count).sum::<u64>() as usize,
            "credential taken",
            "credentials taken"
        ),
        span(&kept),
        shorten_home(&paths.audit_log().display().to_string()),
    );
    Ok(ExitCode::SUCCESS)
}

/// The entries of `path`; `skipped` counts the lines that are not entries.
fn read_lines(path: &Path, skipped: &mut usize) -> Vec<AuditEntry> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { break };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<AuditEntry>(&line) {
            Ok(entry) => entries.push(entry),
            Err(_) => *skipped += 1,
        }
    }
    entries
}

/// The program as a person reads it: its path (`~` for the home dir), or who ran it when the
/// system did not say; where it ran when that is not here (a container, another network). A
/// container `credd docker` served is named as docker would: `name (image, id12)`.
pub fn program(entry: &AuditEntry) -> String {
    if entry.route == AuditRoute::Docker {
        return container(entry);
    }
    let mut name = match (&entry.exe, entry.uid) {
        (Some(exe), _) => shorten_home(exe),
        (None, Some(uid)) => format!("unknown (uid {uid})"),
        (None, None) => "unknown".to_owned(),
    };
    if let Some(id) = &entry.container {
        name.push_str(&format!(" [container {}]", output::short_id(id)));
    } else if let Some(netns) = &entry.netns {
        name.push_str(&format!(" [{netns}]"));
    }
    name
}

/// `web (python:3.12, 4f0d1c0e9b8a)`: the name, image and short ID the engine gave the daemon,
/// with what it did not left out.
fn container(entry: &AuditEntry) -> String {
    let details: Vec<&str> = [
        entry.image.as_deref(),
        entry.container.as_deref().map(output::short_id),
    ]
    .into_iter()
    .flatten()
    .collect();
    let name = entry
        .container_name
        .as_deref()
        .unwrap_or("unnamed container");
    match details.as_slice() {
        [] => name.to_owned(),
        details => format!("{name} ({})", details.join(", ")),
    }
}

/// What the table groups a line under: on the docker route the container, by its ID (one
/// renamed is still the same container), else the program.
fn group(entry: &AuditEntry) -> String {
    match (entry.route, &entry.container) {
        (AuditRoute::Docker, Some(id)) => format!("docker {id}"),
        _ => program(entry),
    }
}

fn shorten_home(path: &str) -> String {
    let home = directories::BaseDirs::new().map(|b| b.home_dir().display().to_string());
    match home.filter(|h| h.len() > 1) {
        Some(home) if path.starts_with(&format!("{home}/")) => format!("~{}", &path[home.len()..]),
        _ => path.to_owned(),
    }
}

struct Row {
    /// The program or container, as its latest line names it.
    name: String,
    routes: Vec<&'static str>,
    count: u64,
    first: SystemTime,
    last: SystemTime,
}

fn table(entries: &[AuditEntry], now: SystemTime) -> String {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for e in entries {
        let row = rows
            .entry((group(e), e.profile.clone()))
            .or_insert_with(|| Row {
                name: program(e),
                routes: Vec::new(),
                count: 0,
                first: e.time,
                last: e.last,
            });
        if e.last > row.last {
            row.name = program(e);
        }
        let route = shown_route(e);
        if !row.routes.contains(&route) {
            row.routes.push(route);
        }
        row.count += e.count;
        row.first = row.first.min(e.time);
        row.last = row.last.max(e.last);
    }
    let mut rows: Vec<_> = rows
        .into_iter()
        .map(|((_, profile), row)| (profile, row))
        .collect();
    rows.sort_by(|a, b| {
        (b.1.last.cmp(&a.1.last))
            .then_with(|| a.1.name.cmp(&b.1.name))
            .then_with(|| a.0.cmp(&b.0))
    });
    // A line stamped after `now` (a clock step) reads as now, not as the future.
    let ago = |t: SystemTime| output::relative_at(unix(t).min(unix(now)), unix(now));
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|(profile, row)| {
            [
                row.name.clone(),
                profile.clone(),
                row.routes.join(","),
                row.count.to_string(),
                ago(row.first),
                ago(row.last),
            ]
        })
        .collect();
    let header = ["PROGRAM", "PROFILE", "ROUTE", "COUNT", "FIRST", "LAST"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            // COUNT is right-aligned.
            let padded = if i == 3 {
                format!("{cell:>w$}")
            } else {
                format!("{cell:<w$}")
            };
            line.push_str(&padded);
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2026-12-06 09:12 to 10:03 (51m)`; `2026-12-06 10:03` within a minute; both dates across
/// days.
fn span(entries: &[AuditEntry]) -> String {
    let first = entries
        .iter()
        .map(|e| e.time)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let last = entries.iter().map(|e| e.last).max().unwrap_or(first);
    let (from, to) = (local(first), local(last));
    let lasted = last.duration_since(first).unwrap_or_default().as_secs();
    match (from, to) {
        (Some(from), Some(to))
            if from.strftime("%F %H:%M").to_string() == to.strftime("%F %H:%M").to_string() =>
        {
            from.strftime("%Y-%m-%d %H:%M").to_string()
        }
        (Some(from), Some(to)) if from.date() == to.date() => format!(
            "{} to {} ({})",
            from.strftime("%Y-%m-%d %H:%M"),
            to.strftime("%H:%M"),
            human::duration(lasted)
        ),
        (Some(from), Some(to)) => format!(
            "{} to {} ({})",
            from.strftime("%Y-%m-%d %H:%M"),
            to.strftime("%Y-%m-%d %H:%M"),
            human::duration(lasted)
        ),
        _ => format!(
            "{} to {}",
            humantime::format_rfc3339_seconds(first),
            humantime::format_rfc3339_seconds(last)
        ),
    }
}

/// `t` in the local time zone.
fn local(t: SystemTime) -> Option<jiff::ZonedDateTime> {
    output::local_time(unix(t), &jiff::tz::TimeZone::system())
}

fn print_followed(entry: &AuditEntry, json: bool) {
    if json {
        match serde_json::to_string(entry) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("credd: cannot print JSON: {e}"),
        }
        return;
    }
    let at = local(entry.last)
        .map(|t| t.strftime("%H:%M:%S").to_string())
        .unwrap_or_default();
    let pid = entry.pid.map(|p| format!("  pid {p}")).unwrap_or_default();
    println!(
        "{at}  {}  {}  {}  ×{}{pid}",
        program(entry),
        entry.profile,
        shown_route(entry),
        entry.count
    );
}

/// Prints the lines appended to `path` from now on; reopens it when it was rotated (another
/// inode), after reading what the old one still had.
fn follow(path: &Path, opts: &Options, json: bool) -> Result<ExitCode, ClientError> {
    let mut current = open_at_end(path);
    let mut partial = Vec::new();
    loop {
        if let Some((file, _)) = &mut current {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            partial.extend_from_slice(&bytes);
            while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                if let Ok(entry) = serde_json::from_slice::<AuditEntry>(&line)
                    && opts.keeps(&entry, SystemTime::now())
                {
                    print_followed(&entry, json);
                }
            }
        }
        let inode = std::fs::metadata(path).ok().map(|m| m.ino());
        let shrunk = match &current {
            Some((file, _)) => {
                let at = file_position(file);
                std::fs::metadata(path).is_ok_and(|m| m.len() < at)
            }
            None => false,
        };
        if inode.is_some() && (inode != current.as_ref().map(|c| c.1) || shrunk) {
            current = File::open(path).ok().map(|f| {
                let ino = f.metadata().map(|m| m.ino()).unwrap_or_default();
                (f, ino)
            });
            partial.clear();
            continue;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn open_at_end(path: &Path) -> Option<(File, u64)> {
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::End(0)).ok()?;
    let ino = file.metadata().ok()?.ino();
    Some((file, ino))
}

fn file_position(mut file: &File) -> u64 {
    file.stream_position().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::audit::AuditVia;

    fn entry(
        exe: Option<&str>,
        profile: &str,
        ago_secs: u64,
        count: u64,
        now: SystemTime,
    ) -> AuditEntry {
        let t = now - Duration::from_secs(ago_secs);
        AuditEntry {
            time: t,
            last: t,
            count,
            route: AuditRoute::Container,
            via: None,
            profile: profile.into(),
            current: true,
            account: "222222222222".into(),
            expires: now,
            uid: Some(1000),
            pid: Some(42),
            exe: exe.map(String::from),
            cmdline: None,
            client_pid: None,
            cgroup: None,
            container: None,
            container_name: None,
            image: None,
            grant: None,
            netns: None,
        }
    }

    #[test]
    fn the_table_groups_by_program_and_profile_most_recent_first() {
        let now = SystemTime::now();
        let mut exec = entry(Some("/usr/bin/curl"), "staging", 30, 2, now);
        exec.via = Some(AuditVia::Exec);
        let mut imds = entry(Some("/usr/bin/python3"), "prod", 5, 1, now);
        imds.route = AuditRoute::Imds;
        let entries = vec![
            entry(Some("/usr/bin/curl"), "staging", 600, 3, now),
            exec,
            entry(None, "staging", 120, 1, now),
            imds,
        ];
        let shown = table(&entries, now);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 4, "{shown}");
        assert!(lines[0].starts_with("PROGRAM"), "{shown}");
        assert!(lines[1].starts_with("/usr/bin/python3    prod "), "{shown}");
        assert!(lines[1].contains("imds"), "{shown}");
        assert!(lines[2].starts_with("/usr/bin/curl"), "{shown}");
        assert!(
            lines[2].contains("container,exec") && lines[2].contains(" 5  10m ago  30s ago"),
            "{shown}"
        );
        assert!(lines[3].starts_with("unknown (uid 1000)"), "{shown}");
    }

    #[test]
    fn filters_by_time_profile_glob_and_shown_route() {
        let now = SystemTime::now();
        let mut env = entry(Some("/bin/sh"), "prod-eu", 60, 1, now);
        env.via = Some(AuditVia::Env);
        let old = entry(Some("/bin/sh"), "staging", 7200, 1, now);
        let opts = |since, profile: Option<&str>, route| Options {
            since,
            profile: profile.map(|p| parse_glob(p).unwrap()),
            route,
            follow: false,
        };
        assert!(opts(Some(Duration::from_secs(3600)), None, None).keeps(&env, now));
        assert!(!opts(Some(Duration::from_secs(3600)), None, None).keeps(&old, now));
        assert!(opts(None, Some("prod*"), None).keeps(&env, now));
        assert!(!opts(None, Some("prod*"), None).keeps(&old, now));
        assert!(opts(None, None, Some(RouteFilter::Env)).keeps(&env, now));
        assert!(!opts(None, None, Some(RouteFilter::Container)).keeps(&env, now));
        assert!(opts(None, None, Some(RouteFilter::Container)).keeps(&old, now));
        assert!(parse_glob("[prod").is_err());
        assert!(parse_since("1h").is_ok() && parse_since("soon").is_err());
    }

    #[test]
    fn a_malformed_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let now = SystemTime::now();
        let good = serde_json::to_string(&entry(Some("/bin/sh"), "prod", 0, 1, now)).unwrap();
        std::fs::write(
            &path,
            format!("{good}\n{{\"time\": 1}}\nnot json\n\n{good}\n{{\"cut"),
        )
        .unwrap();
        let mut skipped = 0;
        assert_eq!(read_lines(&path, &mut skipped).len(), 2);
        assert_eq!(skipped, 3);
    }

    fn docker(id: &str, name: &str, ago_secs: u64, now: SystemTime) -> AuditEntry {
        AuditEntry {
            route: AuditRoute::Docker,
            uid: None,
            pid: None,
            container: Some(id.into()),
            container_name: Some(name.into()),
            image: Some("amazon/aws-cli".into()),
            grant: Some("3f2a9c".into()),
            ..entry(None, "staging", ago_secs, 1, now)
        }
    }

    #[test]
    fn containers_on_the_docker_route_are_grouped_by_id_and_named_as_docker_would() {
        let now = SystemTime::now();
        let web = "4f0d1c0e9b8a7f6e5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0";
        let other = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let entries = vec![
            docker(web, "web", 600, now),
            // Renamed since: still the same container, under its latest name.
            docker(web, "web-2", 60, now),
            docker(other, "web", 30, now),
            entry(Some("/usr/bin/python3"), "staging", 5, 1, now),
        ];
        let shown = table(&entries, now);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 4, "{shown}");
        assert!(lines[1].starts_with("/usr/bin/python3  "), "{shown}");
        assert!(
            lines[2].starts_with("web (amazon/aws-cli, 0123456789ab)    staging  docker  "),
            "{shown}"
        );
        assert!(
            lines[3].starts_with("web-2 (amazon/aws-cli, 4f0d1c0e9b8a)  staging  docker         2"),
            "{shown}"
        );
        let mut bare = docker(web, "x", 0, now);
        bare.container_name = None;
        bare.image = None;
        assert_eq!(program(&bare), "unnamed container (4f0d1c0e9b8a)");
        let opts = Options {
            since: None,
            profile: None,
            route: Some(RouteFilter::Docker),
            follow: false,
        };
        assert!(opts.keeps(&entries[0], now));
        assert!(!opts.keeps(&entries[3], now));
        let json = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(json["container_name"], "web");
        assert_eq!(json["route"], "docker");
    }

    #[test]
    fn programs_name_where_they_ran_when_not_here() {
        let now = SystemTime::now();
        let mut e = entry(Some("/usr/bin/curl"), "prod", 0, 1, now);
        e.netns = Some("net:[4026532481]".into());
        assert_eq!(program(&e), "/usr/bin/curl [net:[4026532481]]");
        e.container =
            Some("4f0d1c0e9b8a7f6e5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0".into());
        assert_eq!(program(&e), "/usr/bin/curl [container 4f0d1c0e9b8a]");
        e.exe = None;
        e.uid = None;
        assert!(program(&e).starts_with("unknown ["), "{}", program(&e));
    }
}
