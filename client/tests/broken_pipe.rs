//! `credd … | head -1`: a reader that goes away early ends `credd` quietly, as it does every Unix
//! tool (killed by SIGPIPE, nothing on stderr), never with a panic about a broken pipe (exit 101).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use common::{FakeDaemon, text};
use credd_proto::{ProfileInfo, Request, Response};

/// A daemon with `n` profiles.
fn daemon(n: usize) -> FakeDaemon {
    FakeDaemon::start(move |request, _| match request {
        Request::Profiles => Response::Profiles {
            current: Some("profile-0".into()),
            profiles: (0..n)
                .map(|i| ProfileInfo {
                    name: format!("profile-{i}"),
                    role_arn: Some(format!("arn:aws:iam::222222222222:role/Role{i}")),
                    sso_role: None,
                    via: None,
                    region: None,
                })
                .collect(),
        },
        other => panic!("unexpected request {other:?}"),
    })
}

/// Runs `cmd` with its stdout a pipe whose reader is already gone.
fn into_a_closed_pipe(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    cmd.output().unwrap()
}

#[track_caller]
fn assert_quiet_sigpipe(out: &Output, what: &str) {
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{what}: {:?} {stderr}",
        out.status
    );
    assert_eq!(stderr, "", "{what} said something on stderr");
}

#[test]
fn profiles_and_completions_into_a_closed_pipe_end_quietly() {
    let daemon = daemon(3);
    let out = into_a_closed_pipe(daemon.credd(&["profiles"], &[]));
    assert_quiet_sigpipe(&out, "credd profiles");
    let out = into_a_closed_pipe(daemon.credd(&["--json", "profiles"], &[]));
    assert_quiet_sigpipe(&out, "credd --json profiles");
    for shell in ["zsh", "bash", "fish"] {
        let out = into_a_closed_pipe(daemon.credd(&["completions", shell], &[]));
        assert_quiet_sigpipe(&out, &format!("credd completions {shell}"));
    }
}

#[test]
fn profiles_piped_into_head_prints_one_line_and_ends_quietly() {
    // Far more than a pipe holds (64 KiB), so `credd` is still writing when `head` leaves.
    let daemon = daemon(5_000);
    let credd = daemon.credd(&["profiles"], &[]);
    let mut pipeline = Command::new("bash");
    pipeline
        .arg("-c")
        .arg(r#""$1" profiles | head -1; echo "status ${PIPESTATUS[0]}""#)
        .arg("bash")
        .arg(credd.get_program())
        .env_clear()
        .envs(credd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = pipeline.output().unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}{stderr}");
    assert!(lines[0].contains("profile-0"), "{stdout}");
    // 128 + SIGPIPE, as the shell reports a process killed by it.
    assert_eq!(
        lines[1],
        format!("status {}", 128 + libc::SIGPIPE),
        "{stderr}"
    );
    assert_eq!(stderr, "", "no panic, no message");
}
