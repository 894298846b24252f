//! The browser login: what the browser is handed (every local user can read a process's argv),
//! and the loopback listener the identity provider redirects to, which another local user can
//! connect to and a web page in the owner's browser can send requests to. Against the Identity
//! Center stand-in, whose `/authorize` approves at once.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{ATTACKER, DescriptorWatch, as_attacker, flood, flood_stats, open_descriptors};
use credd_tests::http::{self, query_param};
use credd_tests::identity_center::Options;
use credd_tests::stack::{Access, SSO_PROFILES, SsoLogin, Stack, Toml, write_executable};
use credd_tests::system_python;
use credd_tests::wait_until;
use credd_tests::world::{Running, World};

const FETCH: &str = include_str!("scripts/fetch.py");
/// From the callback to `credd login` exiting.
pub(super) const LOGIN_DEADLINE: Duration = Duration::from_secs(20);

/// An Identity Center stack that logs in through the browser, whose `$BROWSER` only records
/// what it is handed (in the returned file); the daemon started.
pub(super) fn stack_recording_the_browser() -> (Stack, std::path::PathBuf) {
    let mut stack = Stack::builder()
        .access(Access::Sso {
            login: Some(SsoLogin::Browser),
            access_role: false,
        })
        .identity_center(Options::default())
        .toml(Toml {
            top: "default_profile = \"sso-admin\"",
            profiles: SSO_PROFILES,
            ..Toml::default()
        })
        .build();
    let argv = stack.world.root.join("browser-argv");
    let browser = stack.world.root.join("bin").join("recording-browser");
    write_executable(
        &browser,
        &format!(
            "#!/bin/sh\n# credd-tests: a browser that only records its argv.\n\
             printf '%s\\n' \"$@\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            argv.display()
        ),
    );
    stack
        .world
        .set_env("BROWSER", &browser.display().to_string());
    stack.world.set_env("DISPLAY", ":0");
    stack.world.start_daemon();
    (stack, argv)
}

/// `http://127.0.0.1:PORT/oauth/start` → 127.0.0.1:PORT.
#[track_caller]
pub(super) fn listener_of(start: &str) -> SocketAddr {
    let rest = start
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/oauth/start"))
        .unwrap_or_else(|| panic!("the browser is handed credd's start page, not {start}"));
    rest.parse()
        .unwrap_or_else(|e| panic!("{start}: not IP:PORT ({e})"))
}

/// `GET path` on the login listener from another user's program: what came back.
fn fetch_as_attacker(addr: SocketAddr, path: &str) -> String {
    let out = as_attacker(system_python())
        .args(["-c", FETCH])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(path)
        .output()
        .expect("run the attacker's request");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The owner's browser: the start page's redirect to `/authorize`, whose approval redirects to
/// the callback, which it opens; the callback's answer.
pub(super) fn owner_signs_in(start: &str) -> http::Reply {
    let listener = listener_of(start);
    let authorize = owner_authorization_url(listener);
    let (portal, path) = split(&authorize);
    let approved = http::request(portal, "GET", &path, &[]);
    assert_eq!(approved.status, 302, "{approved}");
    let callback = approved.header("location").expect("a Location").to_owned();
    let (at, path) = split(&callback);
    assert_eq!(
        at, listener,
        "the identity provider redirects to credd's listener"
    );
    http::request(at, "GET", &path, &[])
}

/// The start page's redirect, as the owner's browser gets it.
pub(super) fn owner_authorization_url(listener: SocketAddr) -> String {
    let reply = http::request(listener, "GET", "/oauth/start", &[]);
    assert_eq!(reply.status, 303, "{reply}");
    reply.header("location").expect("a Location").to_owned()
}

/// `http://IP:PORT/path?query` → (IP:PORT, /path?query).
fn split(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (authority.parse().expect("IP:PORT"), path.to_owned())
}

/// The login is still waiting for the user.
#[track_caller]
pub(super) fn assert_still_pending(world: &World, login: &mut Running) {
    assert!(!login.has_exited(), "the login ended: {}", login.stderr());
    let status = world.status();
    assert_eq!(
        status["access"]["pending"]["method"], "browser",
        "{status:#}"
    );
}

#[test]
fn another_user_can_neither_read_the_login_in_argv_nor_hijack_or_cancel_it() {
    credd_tests::require_root("acting as another user");
    let (stack, argv) = stack_recording_the_browser();
    let world = &stack.world;
    let (mut login, pending) = stack.pending_login(&["--browser"]);
    assert_eq!(pending["browser_opened"], true, "{pending}");
    let start = pending["url"].as_str().expect("a URL").to_owned();
    let listener = listener_of(&start);

    // What the browser was handed, and any local user can read in /proc/PID/cmdline: the start
    // page, nothing of the login's state, PKCE challenge or nonce.
    wait_until(Duration::from_secs(10), "the browser to be started", || {
        argv.exists()
    });
    let handed = std::fs::read_to_string(&argv).expect("the browser's argv");
    assert_eq!(handed, format!("{start}\n"));
    let authorize = owner_authorization_url(listener);
    let state = query_param(&authorize, "state");
    let challenge = query_param(&authorize, "code_challenge");
    for secret in [&state, &challenge] {
        assert!(
            !handed.contains(secret.as_str()) && !start.contains(secret.as_str()),
            "{handed}"
        );
    }

    // Another user who got the state anyway can do nothing with it: the listener does not
    // even answer them (a code of theirs would make the owner's daemon log in as them; an
    // error would cancel the owner's login).
    for path in [
        "/oauth/start".to_owned(),
        format!("/oauth/callback?state={state}&code=attackers-code"),
        format!("/oauth/callback?state={state}&error=access_denied"),
    ] {
        let got = fetch_as_attacker(listener, &path);
        assert!(got.starts_with("no answer"), "{path}: {got}");
    }
    assert_still_pending(world, &mut login);

    // A web page in the owner's browser can send the owner's requests, but not the state:
    // refused, and logged once a minute however many it sends.
    for _ in 0..200 {
        let reply = http::request(listener, "GET", "/oauth/callback?state=guess&code=x", &[]);
        assert_eq!(reply.status, 400, "{reply}");
    }
    // Nor can it start the sign-in from a page of its own.
    let framed = http::request(
        listener,
        "GET",
        "/oauth/start",
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(framed.status, 403, "{framed}");
    assert_still_pending(world, &mut login);

    // The owner signs in: the login ends as the owner's.
    let callback = owner_signs_in(&start);
    assert_eq!(callback.status, 200, "{callback}");
    login.wait(LOGIN_DEADLINE).assert_success();
    assert_eq!(world.status()["access"]["logged_in"], true);

    let log = world.daemon_log();
    let refused = log
        .matches(&format!(
            "refused login callback connections from uid {ATTACKER}: only this user is served"
        ))
        .count();
    assert_eq!(refused, 1, "once a minute, with a count: {log}");
    let wrong = log
        .matches("refused a login callback whose state is not the pending login's")
        .count();
    assert_eq!(wrong, 1, "200 wrong callbacks, one line: {log}");
    assert!(!log.contains("attackers-code"), "{log}");
}

/// A test, run from [`crate::alone`] (for its place in the run's order).
pub(crate) fn a_flood_at_the_login_listener_takes_no_descriptor_and_every_connection_ends_with_the_login()
 {
    credd_tests::require_root("acting as another user");
    let _turn = credd_tests::turns::alone();
    let (stack, _) = stack_recording_the_browser();
    let world = &stack.world;
    let (login, pending) = stack.pending_login(&["--browser", "--no-open"]);
    let start = pending["url"].as_str().expect("a URL").to_owned();
    let listener = listener_of(&start);
    let pid = world.daemon_pid().expect("the daemon runs");
    let before = open_descriptors(pid);

    // The owner's browser opens a connection early and sends nothing yet (as browsers do).
    let mut preconnect = TcpStream::connect(listener).expect("the owner connects");
    // Another user: 2,000 connections that send nothing, reopened whenever closed (the review's
    // 20,000 partial requests took every descriptor the daemon had).
    let watch = DescriptorWatch::start(pid);
    let attack = flood(listener, "idle", 2000);
    // Two seconds of it; the owner's daemon is all there meanwhile.
    std::thread::sleep(Duration::from_secs(2));
    world.credd(&["status"]).assert_success();
    let stats = flood_stats(attack);
    let most = watch.most();
    eprintln!(
        "login listener flood: daemon descriptors {before} before, at most {most} during; \
         attacker: {stats}"
    );
    assert!(
        stats["closed_by_daemon"].as_u64() > Some(0) && stats["answers"] == 0,
        "every one of the attacker's connections was refused at once: {stats}"
    );
    assert!(
        most <= before + 32,
        "the flood held daemon descriptors: {most} (from {before})"
    );

    // The owner signs in; the login's end closes the listener and the connections it held.
    assert_eq!(owner_signs_in(&start).status, 200);
    login.wait(LOGIN_DEADLINE).assert_success();
    preconnect
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let mut buf = [0u8; 64];
    let read = preconnect.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "a connection of the login's outlived it: {read:?}"
    );
    assert!(
        TcpStream::connect_timeout(&listener, Duration::from_secs(2)).is_err(),
        "the listener is closed"
    );
    wait_until(
        Duration::from_secs(10),
        "the daemon's descriptors back",
        || open_descriptors(pid) <= before,
    );
}
