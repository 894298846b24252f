//! `credd login` against a scripted stand-in for the daemon: the Identity Center flow as the
//! client sees it (pending authorization, `LoginWait`, Ctrl-C → `LoginCancel`), without AWS.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::{FakeDaemon, Seen, access, now, text};
use credd_proto::{
    AccessInfo, Authorization, LoginMethod, Request, Response, SsoInfo, SsoRegionInfo,
};

/// How the fake answers `LoginWait`.
#[derive(Clone, Copy)]
enum Approval {
    /// At once, logged in.
    Approved,
    /// Only when `LoginCancel` arrives, with the error a cancelled authorization gets.
    Never,
}

/// A daemon in the middle of an Identity Center login.
fn daemon(pending: Authorization, approval: Approval) -> FakeDaemon {
    FakeDaemon::start(move |request, seen: &Seen| match request {
        Request::Login { .. } => Response::AuthorizationPending(pending.clone()),
        Request::LoginWait => match approval {
            Approval::Approved => logged_in(),
            Approval::Never => {
                seen.wait_until(|r| r.contains(&Request::LoginCancel));
                Response::Error(credd_proto::ErrorReply::new(
                    credd_proto::ErrorCode::LoginRequired,
                    "the login was cancelled",
                ))
            }
        },
        Request::LoginCancel => Response::LoginCancelled { cancelled: true },
        other => panic!("unexpected request {other:?}"),
    })
}

fn device() -> Authorization {
    Authorization {
        method: LoginMethod::Device,
        url: "https://device.sso.us-east-1.amazonaws.com/".into(),
        user_code: Some("ABCD-EFGH".into()),
        provider: "IAM Identity Center (us-east-1)".into(),
        region: Some("us-east-1".into()),
        expires_at: now() + 600,
        joined: false,
    }
}

fn logged_in() -> Response {
    let start_url = "https://acme.awsapps.com/start".to_owned();
    Response::LoggedIn {
        access: Box::new(AccessInfo {
            identity: Some(format!("acme ({start_url})")),
            expires_at: Some(now() + 8 * 3600),
            sso: Some(SsoInfo {
                session_name: "acme".into(),
                start_url: start_url.clone(),
                region: "us-east-1".into(),
                token_expires_at: Some(now() + 3600),
                session_ends_at: Some(now() + 8 * 3600),
                cache_file: "/home/alice/.aws/sso/cache/0123.json".into(),
                regions: vec![SsoRegionInfo {
                    region: "us-east-1".into(),
                    start_url,
                    authorized: true,
                }],
            }),
            ..access("sso")
        }),
        profiles_ready: 2,
        profiles: 2,
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn device_login_over_ssh_shows_url_and_code_then_the_session() {
    let daemon = daemon(device(), Approval::Approved);
    let out = daemon
        .credd(&["login", "--device-code"], &[("SSH_TTY", "/dev/pts/3")])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("    https://device.sso.us-east-1.amazonaws.com/\n"),
        "{stderr}"
    );
    assert!(stderr.contains("    ABCD-EFGH\n"), "{stderr}");
    assert!(
        !stderr.contains("opened"),
        "no display, no browser: {stderr}"
    );
    assert!(
        stdout.starts_with(
            "logged in to IAM Identity Center acme (https://acme.awsapps.com/start) in us-east-1\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("session ends "), "{stdout}");
    assert!(stdout.contains("2 profiles ready"), "{stdout}");

    let requests = daemon.seen.requests();
    let Request::Login { mfa_code, browser } = &requests[0] else {
        panic!("{requests:?}");
    };
    assert_eq!(mfa_code, &None);
    assert_eq!(browser.method, Some(LoginMethod::Device));
    assert!(!browser.display, "no DISPLAY on Linux: {browser:?}");
    assert_eq!(requests[1], Request::LoginWait);
}

#[test]
fn browser_login_starts_the_browser_variable_with_the_url() {
    let auth = Authorization {
        method: LoginMethod::Browser,
        url: "http://127.0.0.1:41234/oauth/start".into(),
        user_code: None,
        ..device()
    };
    let daemon = daemon(auth.clone(), Approval::Approved);
    let opened = daemon.dir.path().join("opened");
    let script = daemon.dir.path().join("browser.sh");
    std::fs::write(
        &script,
        // Written whole, then renamed: the test never reads it half written.
        format!(
            "#!/bin/sh\nprintf '%s' \"$2\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            opened.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, PermissionsExt::from_mode(0o755)).unwrap();
    let browser = format!("/nonexistent/browser:{} --new-tab %s", script.display());
    let out = daemon
        .credd(
            &["login", "--browser", "--region", "us-east-1", "--json"],
            &[("DISPLAY", ":0"), ("BROWSER", &browser)],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");

    // stderr: the authorization as one JSON line; stdout: one JSON document, the result.
    let line: serde_json::Value = serde_json::from_str(stderr.trim()).expect(&stderr);
    assert_eq!(line["kind"], "authorization_pending");
    assert_eq!(line["url"], auth.url.as_str());
    assert_eq!(line["browser_opened"], true);
    let result: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(result["access"]["sso"]["session_name"], "acme");
    assert_eq!(result["profiles_ready"], 2);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !opened.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&opened).unwrap(), auth.url);

    let Request::Login { browser, .. } = &daemon.seen.requests()[0] else {
        panic!();
    };
    assert_eq!(browser.method, Some(LoginMethod::Browser));
    assert!(browser.display);
    assert_eq!(browser.region.as_deref(), Some("us-east-1"));
}

#[test]
fn ctrl_c_while_waiting_cancels_the_login_and_exits_130() {
    let daemon = daemon(device(), Approval::Never);
    let child = daemon.credd(&["login"], &[]).spawn().unwrap();
    assert!(
        daemon
            .seen
            .poll(|r| r.contains(&Request::LoginWait), Duration::from_secs(10)),
        "the client never sent LoginWait"
    );
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill has no memory preconditions; pid is our own child, still unreaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).ends_with("login cancelled\n"),
        "{}",
        text(&out.stderr)
    );
    assert!(daemon.seen.requests().contains(&Request::LoginCancel));
}

#[test]
fn cancel_flag_abandons_a_pending_login() {
    let daemon = daemon(device(), Approval::Never);
    let out = daemon.credd(&["login", "--cancel"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "login cancelled\n");
    assert_eq!(daemon.seen.requests(), vec![Request::LoginCancel]);
}
