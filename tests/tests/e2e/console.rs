//! `credd console`: the daemon trades a profile's role credentials (or the IAM user's federation
//! token) for a sign-in token at the federation endpoint, played by a stand-in
//! ([`FederationEndpoint`]) that records the credentials it was sent; the tests check those with
//! moto (auth on: GetCallerIdentity really verifies them), then the printed sign-in URL's parts,
//! then that neither the token nor the credentials reached the daemon's log or the disk.

use credd_tests::federation::{Answer, FederationEndpoint, Received, Session};
use credd_tests::identity_center::Op;
use credd_tests::stack::{
    ADMIN, AUDITOR, Access, DEPLOY, PROMPT_DEADLINE, READY_DEADLINE, STAGING_AND_AUDIT, Stack,
    Toml, USER, assert_secrets_nowhere, assumed_role_arn,
};
use std::net::SocketAddr;

use credd_tests::http;
use credd_tests::wait_until;
use credd_tests::world::CmdOutput;

/// A stack of `access` with [`STAGING_AND_AUDIT`], its daemon logging at trace level and
/// pointed at a federation stand-in; started.
pub(crate) fn start(access: Access) -> (Stack, FederationEndpoint) {
    start_with(access, STAGING_AND_AUDIT)
}

/// [`start`] with these `[profiles.*]` tables.
fn start_with(access: Access, profiles: &str) -> (Stack, FederationEndpoint) {
    let federation = FederationEndpoint::start();
    let mut stack = Stack::builder()
        .access(access)
        .toml(Toml {
            profiles,
            ..Toml::default()
        })
        .build();
    let (key, value) = federation.env();
    stack.world.set_env(key, &value);
    stack.world.set_env("RUST_LOG", "trace");
    stack.world.set_env("CREDD_LOG", "trace");
    stack.world.start_daemon();
    (stack, federation)
}

/// The printed sign-in URL's query, checking that it is the stand-in's `login` URL.
#[track_caller]
pub(crate) fn login_query(federation: &FederationEndpoint, url: &str) -> Vec<(String, String)> {
    let (base, query) = url
        .trim()
        .split_once('?')
        .unwrap_or_else(|| panic!("no query in the sign-in URL {url:?}"));
    assert_eq!(
        base,
        federation.url(),
        "signs in at the federation endpoint"
    );
    serde_urlencoded::from_str(query).expect("the sign-in URL's query decodes")
}

/// The one request the stand-in received since `before` requests, and the credentials it
/// carried.
#[track_caller]
pub(crate) fn only_request_since(federation: &FederationEndpoint, before: usize) -> Received {
    let received = federation.received();
    assert_eq!(
        received.len(),
        before + 1,
        "one getSigninToken request: {received:?}"
    );
    let request = received[before].clone();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/federation");
    assert_eq!(request.param("Action"), Some("getSigninToken"));
    assert!(request.session.is_some(), "a Session with three fields");
    request
}

/// Who moto (checking signatures) says the session sent for a sign-in is; `what` names it in the
/// failure.
#[track_caller]
fn moto_caller(stack: &Stack, session: &Session, what: &str) -> String {
    stack
        .moto()
        .caller_arn(
            &session.access_key_id,
            &session.secret_access_key,
            Some(&session.session_token),
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The `credd console` error's message, checking it failed with exit code 1 and printed no URL.
#[track_caller]
fn refused(out: &CmdOutput) -> String {
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "nothing on stdout: {out}");
    out.stderr.clone()
}

#[test]
fn a_profiles_sign_in_carries_the_credentials_moto_issued_for_its_role() {
    let (mut stack, federation) = start(Access::Key);
    let world = &stack.world;
    stack.wait_all_fresh(READY_DEADLINE);

    let out = world
        .credd(&[
            "console",
            "staging",
            "--print",
            "--destination",
            "ec2/home#Instances:",
        ])
        .assert_success()
        .clone();
    let request = only_request_since(&federation, 0);
    let session = request.session.clone().expect("checked");
    assert_eq!(
        request.param("SessionDuration"),
        None,
        "a role session's sign-in asks no duration"
    );
    let signed_in_as = moto_caller(
        &stack,
        &session,
        "moto accepts the credentials sent for the sign-in",
    );
    assert_eq!(signed_in_as, assumed_role_arn(ADMIN, USER));
    assert_eq!(
        stack.served_identity("staging").as_deref(),
        Ok(signed_in_as.as_str())
    );
    let token = request
        .token
        .clone()
        .expect("the stand-in answered a token");
    assert_eq!(
        login_query(&federation, &out.stdout),
        [
            ("Action".to_owned(), "login".to_owned()),
            ("Issuer".to_owned(), "credd".to_owned()),
            (
                "Destination".to_owned(),
                // staging's own region.
                "https://console.aws.amazon.com/ec2/home?region=us-west-2#Instances:".to_owned()
            ),
            ("SigninToken".to_owned(), token.clone()),
        ]
    );
    assert!(
        out.stderr.contains(&signed_in_as) && out.stderr.contains("us-west-2"),
        "says who and where: {out}"
    );

    // A chained profile, another Region, --json; --duration cannot apply and says so.
    let out = world
        .credd(&[
            "console",
            "prod-audit",
            "--print",
            "--json",
            "--region",
            "eu-central-1",
            "--duration",
            "2h",
        ])
        .assert_success()
        .clone();
    let request = only_request_since(&federation, 1);
    assert_eq!(request.param("SessionDuration"), None);
    let chained = request.session.clone().expect("checked");
    let chained_as = moto_caller(
        &stack,
        &chained,
        "moto accepts the chained role's credentials",
    );
    assert_eq!(chained_as, assumed_role_arn(AUDITOR, USER));
    let json = out.json();
    assert_eq!(json["profile"], "prod-audit");
    assert_eq!(json["identity"], chained_as.as_str());
    assert_eq!(json["partition"], "aws");
    assert_eq!(json["region"], "eu-central-1");
    assert_eq!(
        json["destination"],
        "https://console.aws.amazon.com/console/home?region=eu-central-1"
    );
    assert_eq!(json["browser_opened"], false);
    assert!(json["expires_at"].as_u64().is_some(), "{json}");
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("--duration does not apply") && notes.contains("1 hour"),
        "{notes}"
    );
    let chained_token = request.token.clone().expect("a token");
    let url = json["url"].as_str().expect("the URL, not opened");
    let query = login_query(&federation, url);
    assert_eq!(query[3], ("SigninToken".to_owned(), chained_token.clone()));

    stack.world.stop_daemon();
    let log = stack.world.daemon_log();
    for profile in ["staging", "prod-audit"] {
        assert!(
            log.lines().any(|l| l.contains("credentials vended")
                && l.contains("route=\"console\"")
                && l.contains(&format!("profile=\"{profile}\""))),
            "the vending point records {profile}'s console sign-in"
        );
    }
    assert_secrets_nowhere(
        &stack.world,
        &[
            ("a sign-in token", token),
            ("a sign-in token", chained_token),
            ("a role's secret key", session.secret_access_key),
            ("a role's session token", session.session_token),
            ("a chained role's secret key", chained.secret_access_key),
        ],
        &[],
    );
}

#[test]
fn the_iam_users_own_console_session_is_a_federation_token_signed_by_its_long_lived_key() {
    let (mut stack, federation) = start(Access::Mfa);
    let world = &stack.world;

    // Not logged in: no terminal here, so it fails at once, saying what to do.
    let message = refused(&world.credd(&["console", "--access", "--print"]));
    assert!(message.contains("credd login"), "{message}");
    assert!(federation.received().is_empty(), "nothing was sent");

    stack.login_with_mfa();
    stack.wait_logged_in(READY_DEADLINE);

    // STS refuses the federation token: said so, and nothing reaches the federation endpoint.
    let proxy = stack.proxy();
    proxy.reject_action(
        "GetFederationToken",
        403,
        "AccessDenied",
        "not authorized to perform sts:GetFederationToken",
    );
    let message = refused(&world.credd(&["console", "--access", "--print"]));
    assert!(
        message.contains("GetFederationToken") && message.contains("AccessDenied"),
        "{message}"
    );
    assert!(federation.received().is_empty(), "nothing was sent");
    proxy.pass_action("GetFederationToken");

    let out = world
        .credd(&[
            "console",
            "--access",
            "--print",
            "--duration",
            "2h",
            "--region",
            "eu-west-1",
            "--destination",
            "https://s3.console.aws.amazon.com/s3/buckets",
        ])
        .assert_success()
        .clone();
    let signers = proxy.signers("GetFederationToken");
    assert_eq!(signers.len(), 2, "the refused call and this one");
    assert!(
        signers.iter().all(|s| *s == stack.user().access_key_id),
        "GetFederationToken is signed by the long-lived key, never by the MFA session: {signers:?}"
    );
    let params = &proxy.params("GetFederationToken")[1];
    // Named after the access identity (with auth off, moto names every MFA session's caller
    // its own default user, where AWS would name alice).
    let identity = world.status()["access"]["identity"]
        .as_str()
        .expect("the access identity")
        .to_owned();
    let user_name = identity.rsplit('/').next().expect("a user ARN");
    assert_eq!(params.get("Name").map(String::as_str), Some(user_name));
    assert_eq!(
        params.get("DurationSeconds").map(String::as_str),
        Some("7200")
    );
    let policy: serde_json::Value =
        serde_json::from_str(params.get("Policy").expect("a session policy")).expect("JSON");
    assert_eq!(policy["Statement"][0]["Action"], "*", "{policy}");

    let request = only_request_since(&federation, 0);
    assert_eq!(request.param("SessionDuration"), Some("7200"));
    let session = request.session.clone().expect("checked");
    assert_ne!(
        session.access_key_id,
        stack.user().access_key_id,
        "the federation token's keys, never the long-lived key"
    );
    let mfa_session: serde_json::Value = serde_json::from_slice(
        &std::fs::read(world.runtime_dir.join("session.json")).expect("the saved MFA session"),
    )
    .expect("session.json is JSON");
    assert!(!session.session_token.is_empty());
    assert_ne!(
        Some(session.session_token.as_str()),
        mfa_session["session_token"].as_str(),
        "the federation token's session, not the MFA session"
    );
    let token = request.token.clone().expect("a token");
    let query = login_query(&federation, &out.stdout);
    assert_eq!(
        query[2],
        (
            "Destination".to_owned(),
            "https://s3.console.aws.amazon.com/s3/buckets".to_owned()
        ),
        "a full console URL is kept as given"
    );
    assert_eq!(query[3], ("SigninToken".to_owned(), token.clone()));
    assert!(
        out.stderr.contains("not MFA-authenticated"),
        "the user is told: {out}"
    );

    stack.world.stop_daemon();
    assert!(
        stack
            .world
            .daemon_log()
            .lines()
            .any(|l| l.contains("credentials vended")
                && l.contains("route=\"console\"")
                && l.contains("(access session)")),
        "the vending point records the access session's console sign-in"
    );
    assert_secrets_nowhere(
        &stack.world,
        &[
            ("a sign-in token", token),
            (
                "the federation token's session token",
                session.session_token,
            ),
        ],
        &[],
    );
    // The long-lived key is in the shared credentials file by the test's own doing: not logged.
    assert!(
        !stack
            .world
            .daemon_log()
            .contains(&stack.user().secret_access_key),
        "the IAM user's secret key is in the daemon log"
    );
}

#[test]
fn bad_input_and_a_failing_endpoint_are_told_plainly_and_the_daemon_keeps_serving() {
    let (mut stack, federation) = start(Access::Key);
    let world = &stack.world;
    stack.wait_all_fresh(READY_DEADLINE);
    let console = |args: &[&str]| {
        let mut all = vec!["console", "--print"];
        all.extend_from_slice(args);
        world.credd(&all)
    };

    // Checked before any credentials leave.
    let message = refused(&console(&[]));
    assert!(
        message.contains("no current profile") && message.contains("credd switch"),
        "{message}"
    );
    let message = refused(&console(&["nope"]));
    assert!(
        message.contains("unknown profile \"nope\"") && message.contains("staging"),
        "{message}"
    );
    for (args, says) in [
        (
            &["staging", "--destination", "https://evil.example/"][..],
            "not an AWS console host",
        ),
        (
            &["staging", "--destination", "ec2/../iam"][..],
            "a service path is like",
        ),
        (
            &["staging", "--region", "cn-north-1"][..],
            "aws-cn partition",
        ),
        (&["staging", "--region", "mars"][..], "--region \"mars\""),
        (&["--access", "--duration", "60"][..], "900 to 43200"),
    ] {
        let message = refused(&console(args));
        assert!(message.contains(says), "{args:?}: {message}");
    }
    let usage = console(&["staging", "--duration", "soon"]);
    usage.assert_code(2);
    assert!(usage.stderr.contains("`1h`"), "{usage}");
    assert!(
        federation.received().is_empty(),
        "no credentials were sent for bad input"
    );

    // The federation endpoint refuses, answers nonsense, hangs up.
    for (answer, says) in [
        (
            Answer::Status(400, "Bad Request".to_owned()),
            "refused the sign-in: HTTP 400: Bad Request",
        ),
        (
            Answer::Status(500, String::new()),
            "refused the sign-in: HTTP 500",
        ),
        (
            Answer::Malformed("<html>sign in</html>".to_owned()),
            "other than a sign-in token: not a JSON object",
        ),
        (
            Answer::Malformed(r#"{"Token":"x"}"#.to_owned()),
            "no SigninToken in it",
        ),
        (Answer::Hangup, "could not be reached"),
    ] {
        federation.answer(answer.clone());
        let message = refused(&console(&["staging"]));
        assert!(message.contains(says), "{answer:?}: {message}");
    }
    let sent = federation.received();
    let secrets: Vec<String> = sent
        .iter()
        .filter_map(|r| r.session.as_ref())
        .flat_map(|s| [s.secret_access_key.clone(), s.session_token.clone()])
        .collect();
    assert!(!secrets.is_empty());

    // A profile whose role cannot be assumed: its failure, not a sign-in.
    stack.proxy().reject_action(
        "AssumeRole",
        403,
        "AccessDenied",
        "not authorized to assume Deploy",
    );
    stack.write_config(Toml {
        profiles: &format!("{STAGING_AND_AUDIT}\n[profiles.deploy]\nrole_arn = \"{DEPLOY}\"\n"),
        ..Toml::default()
    });
    world.credd(&["reload"]).assert_success();
    world.wait_profile_state("deploy", "failing", READY_DEADLINE);
    let message = refused(&console(&["deploy"]));
    assert!(
        message.contains("\"deploy\" are not available") && message.contains("AccessDenied"),
        "{message}"
    );

    // Still serving, and signing in again once the endpoint answers.
    federation.answer(Answer::Token);
    console(&["staging"]).assert_success();
    assert!(stack.served_identity("staging").is_ok());

    stack.world.stop_daemon();
    let secrets: Vec<(&str, String)> = secrets
        .into_iter()
        .map(|s| ("credentials sent to the endpoint", s))
        .collect();
    assert_secrets_nowhere(&stack.world, &secrets, &[]);
}

#[test]
fn the_browser_is_sent_through_a_one_shot_page_and_its_command_line_holds_no_sign_in() {
    let (mut stack, federation) = start(Access::Key);
    let opened = recording_browser(&mut stack);
    stack.wait_all_fresh(READY_DEADLINE);
    let world = &stack.world;
    world.credd(&["switch", "staging"]).assert_success();

    // No profile: the current one.
    let out = world.credd(&["console"]).assert_success().clone();
    assert!(out.stdout.is_empty(), "the URL is not printed: {out}");
    assert!(
        out.stderr
            .contains("opened the AWS console in your browser for profile staging"),
        "{out}"
    );
    wait_until(READY_DEADLINE, "the browser to be started", || {
        opened.exists()
    });
    let argv_url = std::fs::read_to_string(&opened).expect("what the browser was given");
    let request = only_request_since(&federation, 0);
    let token = request.token.expect("a token");
    assert!(
        !argv_url.contains(&token) && !argv_url.contains("federation"),
        "the browser's command line holds no sign-in: {argv_url}"
    );
    let (page, path) = page_of(&argv_url);

    // What the browser does: the page sends it on to the sign-in, once.
    let reply = http::request(page, "GET", &path, &[("Sec-Fetch-Site", "none")]);
    assert_eq!(reply.status, 303, "{reply:?}");
    let location = reply.header("location").expect("a redirect").to_owned();
    let query = login_query(&federation, &location);
    assert_eq!(query[3].1, token);
    assert_eq!(
        query[2].1,
        "https://console.aws.amazon.com/console/home?region=us-west-2"
    );
    assert_used_up(page, &path);

    // --json says it opened, and leaves the URL out.
    let json = world.credd(&["console", "--json"]).assert_success().json();
    assert_eq!(json["browser_opened"], true, "{json}");
    assert_eq!(json["profile"], "staging");
    assert!(json.get("url").is_none(), "{json}");
}

#[test]
fn a_saml_access_roles_session_signs_in_as_itself_for_as_long_as_it_lasts() {
    let (stack, federation) = start(Access::Saml);
    let world = &stack.world;
    world.credd(&["login"]).assert_success();
    let identity = world.status()["access"]["identity"]
        .as_str()
        .expect("the access role's session")
        .to_owned();

    let out = world
        .credd(&["console", "--access", "--print", "--duration", "2h"])
        .assert_success()
        .clone();
    let request = only_request_since(&federation, 0);
    assert_eq!(
        request.param("SessionDuration"),
        None,
        "a role session's sign-in asks no duration"
    );
    let session = request.session.clone().expect("checked");
    let signed_in_as = moto_caller(&stack, &session, "moto accepts the access role's session");
    assert_eq!(signed_in_as, identity);
    assert!(
        out.stderr.contains("--duration does not apply") && out.stderr.contains(&identity),
        "{out}"
    );
    assert!(!out.stderr.contains("not MFA-authenticated"), "{out}");
    let query = login_query(&federation, &out.stdout);
    assert_eq!(query[3].1, request.token.expect("a token"));
}

#[test]
fn an_identity_center_profile_signs_in_and_the_bearer_access_session_cannot() {
    let profiles = format!("{}{STAGING_AND_AUDIT}", credd_tests::sso_profiles!());
    let (stack, federation) = start_with(Access::SSO_DEVICE, &profiles);
    let world = &stack.world;
    let fake = stack.identity_center();
    let before = fake.succeeded(Op::StartDeviceAuthorization);
    let login = world.spawn_credd(&["login", "--device-code"]);
    let device = fake.wait_device_authorization(before, PROMPT_DEADLINE);
    let path = device
        .verification_uri_complete
        .strip_prefix(&fake.url())
        .expect("the approval page is the fake's");
    assert_eq!(http::request(fake.addr(), "GET", path, &[]).status, 200);
    login.wait(READY_DEADLINE).assert_success();
    stack.wait_all_fresh(READY_DEADLINE);

    // A permission set's role credentials (GetRoleCredentials).
    let out = world
        .credd(&["console", "sso-admin", "--print"])
        .assert_success()
        .clone();
    let request = only_request_since(&federation, 0);
    let session = request.session.clone().expect("checked");
    let signed_in_as = moto_caller(
        &stack,
        &session,
        "moto accepts the permission set's credentials",
    );
    assert_eq!(
        stack.served_identity("sso-admin").as_deref(),
        Ok(signed_in_as.as_str())
    );
    assert_eq!(
        login_query(&federation, &out.stdout)[2].1,
        "https://console.aws.amazon.com/console/home?region=us-east-1"
    );

    // A role_arn profile, assumed with the access role's credentials: chained, and said so.
    let out = world
        .credd(&["console", "staging", "--print"])
        .assert_success()
        .clone();
    assert!(out.stderr.contains("role chaining"), "{out}");
    only_request_since(&federation, 1);

    // Identity Center's own session is bearer tokens: nothing to sign in with, and nothing sent.
    let message = refused(&world.credd(&["console", "--access", "--print"]));
    assert!(
        message.contains("no keys of its own") && message.contains("credd console PROFILE"),
        "{message}"
    );
    assert_eq!(federation.received().len(), 2);
}

/// A second visit to a console page finds it used (410) or already closed.
#[track_caller]
pub(crate) fn assert_used_up(page: SocketAddr, path: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(page) else {
        return;
    };
    stream
        .set_read_timeout(Some(http::IO_TIMEOUT))
        .expect("a read timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {page}\r\nSec-Fetch-Site: none\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(request.as_bytes());
    let mut raw = Vec::new();
    // A reset or nothing at all: the page had closed.
    if stream.read_to_end(&mut raw).is_err() || raw.is_empty() {
        return;
    }
    let reply = http::Reply::parse(&raw).expect("an HTTP answer");
    assert_eq!(reply.status, 410, "used once, then gone: {reply:?}");
}

/// Sets a `$BROWSER` (and a display) that writes down what it was asked to open, in the file
/// returned. Run by sh, not exec'd: a script written a moment ago may be busy for exec while
/// another test thread forks.
pub(crate) fn recording_browser(stack: &mut Stack) -> std::path::PathBuf {
    let opened = stack.world.root.join("opened-url");
    let script = stack.world.root.join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "printf '%s' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            opened.display()
        ),
    )
    .expect("write the browser script");
    stack
        .world
        .set_env("BROWSER", &format!("/bin/sh {} %s", script.display()));
    stack.world.set_env("DISPLAY", ":99");
    opened
}

/// `http://127.0.0.1:PORT/path` → (127.0.0.1:PORT, /path).
#[track_caller]
pub(crate) fn page_of(url: &str) -> (SocketAddr, String) {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("a loopback page: {url}"));
    let (port, path) = rest.split_once('/').expect("a path");
    let addr = format!("127.0.0.1:{port}").parse().expect("an address");
    (addr, format!("/{path}"))
}
