//! The IMDSv2-compatible routes (`imds = true`): the token PUT and its TTL, token checks,
//! the role listing and credential JSON real SDKs parse, boto3 and the AWS SDK for Rust getting
//! the current role through them, and the Linux-only refusal of other users' processes.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http_support::{
    DEPLOY_ARN, DEPLOY_REGION, STAGING_ARN, STAGING_REGION, offline, offline_on, pairs, served,
};
use credd_tests::http::{Reply, parse_utc};
use credd_tests::stack::{Stack, now_unix};
use credd_tests::system_python;
use credd_tests::wait_until;

const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "X-aws-ec2-metadata-token";
const LIST: &str = "/latest/meta-data/iam/security-credentials/";

/// A session token for `served`'s IMDS, asserting the PUT succeeds.
#[track_caller]
fn imds_token(served: &Stack) -> String {
    let reply = served.request("PUT", "/latest/api/token", &[(TTL, "21600")]);
    assert_eq!(reply.status, 200, "{reply}");
    reply.body
}

fn imds_get(served: &Stack, token: &str, path: &str) -> Reply {
    served.request("GET", path, &[(TOKEN, token)])
}

#[test]
fn the_token_ttl_must_be_1_to_21600_and_is_echoed_back() {
    let served = offline("imds = true");
    for ttl in ["1", "300", "21600"] {
        let reply = served.request("PUT", "/latest/api/token", &[(TTL, ttl)]);
        assert_eq!(reply.status, 200, "TTL {ttl}: {reply}");
        assert_eq!(reply.header(TTL), Some(ttl), "TTL {ttl} echoed: {reply}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert!(reply.body.len() >= 32, "a token of some strength: {reply}");
    }
    let first = imds_token(&served);
    assert_ne!(first, imds_token(&served), "every PUT makes a new token");

    for ttl in ["0", "21601", "-1", "abc", "", "1.5", "99999999999999999999"] {
        let reply = served.request("PUT", "/latest/api/token", &[(TTL, ttl)]);
        assert_eq!(reply.assert_error(400), "InvalidTtl", "TTL {ttl:?}");
    }
    let reply = served.request("PUT", "/latest/api/token", &[]);
    assert_eq!(reply.assert_error(400), "InvalidTtl", "no TTL header");
    let reply = served.request("GET", "/latest/api/token", &[(TTL, "60")]);
    reply.assert_error(405);
}

#[test]
fn a_token_request_through_a_proxy_is_refused() {
    let served = offline("imds = true");
    for forwarded in ["127.0.0.1", "203.0.113.9", ""] {
        let reply = served.request(
            "PUT",
            "/latest/api/token",
            &[(TTL, "60"), ("X-Forwarded-For", forwarded)],
        );
        assert_eq!(
            reply.assert_error(403),
            "Forwarded",
            "X-Forwarded-For {forwarded:?}"
        );
    }
}

#[test]
fn metadata_needs_a_live_token_and_answers_401_otherwise() {
    let served = offline("imds = true");
    let paths = [
        LIST,
        "/latest/meta-data/iam/security-credentials/staging",
        "/latest/meta-data/iam/security-credentials-extended/",
        "/latest/meta-data/iam/security-credentials-extended/staging",
        "/latest/meta-data/placement/region",
    ];
    let wrong = "0".repeat(64);
    for path in paths {
        let reply = served.request("GET", path, &[]);
        assert_eq!(
            reply.assert_error(401),
            "Unauthorized",
            "no token on {path}"
        );
        let reply = imds_get(&served, &wrong, path);
        assert_eq!(
            reply.assert_error(401),
            "Unauthorized",
            "invalid token on {path}"
        );
        // The container token is not an IMDS token.
        let reply = imds_get(&served, &served.token(), path);
        assert_eq!(
            reply.assert_error(401),
            "Unauthorized",
            "HTTP token on {path}"
        );
    }

    // A live token works; once its TTL has passed it does not.
    let short = served
        .request("PUT", "/latest/api/token", &[(TTL, "1")])
        .body;
    let reply = imds_get(&served, &short, LIST);
    assert_eq!(reply.status, 200, "{reply}");
    wait_until(
        Duration::from_secs(5),
        "the 1 s IMDS token to expire",
        || imds_get(&served, &short, LIST).status == 401,
    );
    let reply = imds_get(&served, &imds_token(&served), LIST);
    assert_eq!(reply.status, 200, "a new token works: {reply}");
}

#[test]
fn the_role_listing_credentials_and_region_are_what_sdks_parse() {
    let served = served("imds = true\nmin_remaining = \"5m\"\nfollow_window = \"10m\"");
    let token = imds_token(&served);

    for list in [LIST, "/latest/meta-data/iam/security-credentials-extended/"] {
        let reply = imds_get(&served, &token, list);
        assert_eq!(reply.status, 200, "{reply}");
        assert_eq!(
            reply.body, "staging",
            "exactly the name, no newline: {list}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let reply = imds_get(&served, &token, "/latest/meta-data/placement/region");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, STAGING_REGION),
        "{reply}"
    );

    let reply = imds_get(&served, &token, &format!("{LIST}staging"));
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["Code"], "Success");
    assert_eq!(body["Type"], "AWS-HMAC");
    for field in ["AccessKeyId", "SecretAccessKey", "Token"] {
        assert!(
            body[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {reply}"
        );
    }
    assert!(
        body.get("AccountId").is_none(),
        "AccountId only on -extended: {reply}"
    );
    let updated = parse_utc(body["LastUpdated"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("LastUpdated is not %Y-%m-%dT%H:%M:%SZ: {reply}"));
    assert!(updated <= now_unix());
    let expiration = parse_utc(body["Expiration"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("Expiration is not %Y-%m-%dT%H:%M:%SZ: {reply}"));
    assert!(
        expiration <= now_unix() + 600,
        "IMDS follows the switch: at most the follow window ahead: {reply}"
    );
    let arn = served.moto().caller_arn(
        body["AccessKeyId"].as_str().unwrap_or_default(),
        body["SecretAccessKey"].as_str().unwrap_or_default(),
        body["Token"].as_str(),
    );
    assert_eq!(arn.as_deref(), Ok(STAGING_ARN));

    let reply = imds_get(
        &served,
        &token,
        "/latest/meta-data/iam/security-credentials-extended/staging",
    );
    assert_eq!(reply.status, 200, "{reply}");
    let extended = reply.json();
    assert_eq!(extended["AccountId"], "222222222222");
    assert_eq!(extended["AccessKeyId"], body["AccessKeyId"]);
    assert_eq!(extended["Code"], "Success");

    let reply = imds_get(&served, &token, &format!("{LIST}no-such-role"));
    assert_eq!(reply.assert_error(404), "UnknownProfile");

    served.world.credd(&["switch", "deploy"]).assert_success();
    assert_eq!(imds_get(&served, &token, LIST).body, "deploy");
    let reply = imds_get(&served, &token, "/latest/meta-data/placement/region");
    assert_eq!(reply.body, DEPLOY_REGION);
}

#[test]
fn boto3_and_the_rust_sdk_get_the_current_role_through_imds_and_follow_a_switch() {
    let served = served("imds = true");
    let env = served.imds_env(STAGING_REGION);
    let imds = ["imds", served.url()];

    let boto3 = served
        .boto3(&pairs(&env))
        .unwrap_or_else(|out| panic!("boto3 through IMDS: {out}"));
    assert_eq!(boto3["arn"], STAGING_ARN);
    assert_eq!(
        boto3["method"], "iam-role",
        "botocore used its IMDS provider"
    );
    let rust = served
        .rust_sdk(&pairs(&env), &imds)
        .unwrap_or_else(|out| panic!("ImdsCredentialsProvider: {out}"));
    assert_eq!(rust["arn"], STAGING_ARN);
    let rust = served
        .rust_sdk(&pairs(&env), &["default"])
        .unwrap_or_else(|out| panic!("aws-config's default chain through IMDS: {out}"));
    assert_eq!(rust["arn"], STAGING_ARN);

    served.world.credd(&["switch", "deploy"]).assert_success();
    let boto3 = served.boto3(&pairs(&env)).expect("boto3 after the switch");
    assert_eq!(boto3["arn"], DEPLOY_ARN);
    let rust = served
        .rust_sdk(&pairs(&env), &imds)
        .unwrap_or_else(|out| panic!("ImdsCredentialsProvider after the switch: {out}"));
    assert_eq!(rust["arn"], DEPLOY_ARN);
}

/// A token PUT (with `imds_token`, a GET of the role listing) from `python3` as `uid`, or as this
/// process when `uid` is None; prints the HTTP status.
fn status_as(served: &Stack, uid: Option<u32>, imds_token: Option<&str>) -> u16 {
    const SCRIPT: &str = r#"
import sys, urllib.request, urllib.error
url, token = sys.argv[1], sys.argv[2]
if token:
    req = urllib.request.Request(url + "/latest/meta-data/iam/security-credentials/",
                                 headers={"X-aws-ec2-metadata-token": token})
else:
    req = urllib.request.Request(url + "/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
"#;
    let mut command = Command::new(system_python());
    command
        .args(["-c", SCRIPT, served.url(), imds_token.unwrap_or("")])
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let out = command.output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.trim().parse().unwrap_or_else(|_| {
        panic!(
            "python3 (uid {uid:?}) printed no status: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
#[cfg(target_os = "linux")]
fn imds_refuses_processes_of_another_user() {
    credd_tests::require_root("running a client as another user");
    let served = offline("imds = true");
    const NOBODY: u32 = 65534;
    assert_eq!(
        status_as(&served, None, None),
        200,
        "our own user gets a token"
    );
    assert_eq!(
        status_as(&served, Some(NOBODY), None),
        403,
        "nobody gets no token"
    );
    // Nor does a token obtained by our user help another one.
    let token = imds_token(&served);
    assert_eq!(status_as(&served, None, Some(&token)), 200);
    assert_eq!(status_as(&served, Some(NOBODY), Some(&token)), 403);
    let log = served.world.daemon_log();
    assert!(
        log.contains("another user"),
        "the refusal is logged:\n{log}"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn imds_on_ipv6_loopback_serves_its_own_user_and_refuses_others() {
    credd_tests::require_root("running a client as another user");
    // The owner lookup reads /proc/net/tcp6 here, with its own address layout.
    let served = offline_on("[::1]:0", "imds = true");
    assert!(
        served.url().starts_with("http://[::1]:"),
        "{}",
        served.url()
    );
    let token = imds_token(&served);
    assert_eq!(imds_get(&served, &token, LIST).body, "staging");
    assert_eq!(status_as(&served, None, None), 200);
    assert_eq!(status_as(&served, Some(65534), None), 403);
}

#[test]
fn imds_routes_do_not_exist_unless_enabled() {
    let served = offline("");
    let reply = served.request("PUT", "/latest/api/token", &[(TTL, "60")]);
    reply.assert_error(404);
    let reply = served.request("GET", LIST, &[(TOKEN, "x")]);
    reply.assert_error(404);
}
