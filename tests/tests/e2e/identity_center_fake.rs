//! The Identity Center fake is faithful: AWS's own Python SDK (botocore's `sso-oidc` and `sso`
//! clients, its `SSOTokenProvider` and boto3's Identity Center profiles) logs in through it, reads
//! and refreshes an AWS CLI token cache with it, gets role credentials that moto (auth on)
//! accepts, pages through its listings, and meets each error as the modeled exception it expects.
//! Each test has its own fake and its own temp home; `tests/py/identity_center_client.py` drives
//! botocore.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use credd_tests::identity_center::{
    ACCESS_ACCOUNT, ACCESS_ROLE, ADMIN_ROLE, Grant, IdentityCenter, Op, Options, Outage,
    PROD_ACCOUNT, READ_ONLY_ROLE, STAGING_ACCOUNT, assumed_role_arn,
};
use credd_tests::moto::venv_python;
use credd_tests::stack::{Access, SSO_PROFILES, SSO_SESSION, Stack, Toml};
use credd_tests::world::World;

/// The `sso_session` of the scenarios (the cache file is named after its SHA-1).
const SESSION: &str = SSO_SESSION;
/// A profile on [`ADMIN_ROLE`] in [`STAGING_ACCOUNT`].
const PROFILE: &str = "dev";

/// botocore in a temp home, pointed at one fake (and at moto for STS).
struct Botocore {
    fake: IdentityCenter,
    world: World,
}

impl Botocore {
    fn new(options: Options) -> Botocore {
        let fake = IdentityCenter::start(options);
        let mut world = World::new();
        for (key, value) in fake.env() {
            world.set_env(&key, &value);
        }
        world.set_env("AWS_ENDPOINT_URL_STS", &fake.moto().endpoint());
        // One attempt per call: a test sees what each request got, and an outage fails fast.
        world.set_env("AWS_MAX_ATTEMPTS", "1");
        Botocore { fake, world }
    }

    #[track_caller]
    fn run(&self, scenario: &str, args: Value) -> Value {
        run_script(&self.world, &self.fake, scenario, args)
    }

    /// `login` with [`PROFILE`]: a device login written to the AWS CLI cache and config.
    #[track_caller]
    fn login(&self) -> Value {
        self.run(
            "login",
            json!({
                "start_url": self.fake.start_url(),
                "session": SESSION,
                "profiles": {PROFILE: {"account": STAGING_ACCOUNT, "role": ADMIN_ROLE}},
            }),
        )
    }

    #[track_caller]
    fn role_credentials(&self, account: &str, role: &str) -> Value {
        self.run(
            "role-credentials",
            json!({"session": SESSION, "account": account, "role": role}),
        )
    }
}

/// Runs a scenario of `tests/py/identity_center_client.py` in `world` and returns its findings;
/// panics with its output and the fake's request log when it fails.
#[track_caller]
pub(crate) fn run_script(
    world: &World,
    fake: &IdentityCenter,
    scenario: &str,
    args: Value,
) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("identity_center_client.py");
    let script = script.display().to_string();
    let args = args.to_string();
    let out = world.run(venv_python(), &[&script, scenario, &args], None);
    assert!(
        out.success(),
        "{scenario} failed: {out}\n--- the fake's log ---\n{}",
        fake.log()
    );
    out.json()
}

/// Asserts an error as botocore saw it: the class it raised (generated from the model, unless
/// `modeled` is false), the code and the HTTP status.
#[track_caller]
fn assert_error(facts: &Value, code: &str, status: u16, modeled: bool) {
    assert_eq!(facts["code"], code, "{facts:#}");
    assert_eq!(facts["status"], status, "{facts:#}");
    assert_eq!(facts["modeled"], modeled, "{facts:#}");
    let class = if modeled { code } else { "ClientError" };
    assert_eq!(facts["class"], class, "{facts:#}");
}

/// [`assert_error`] for an SSO OIDC error, which also carries its OAuth code.
#[track_caller]
fn assert_oidc_error(facts: &Value, code: &str, status: u16, oauth: &str) {
    assert_error(facts, code, status, true);
    assert_eq!(facts["error"], oauth, "{facts:#}");
    assert!(
        facts["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{facts:#}"
    );
}

#[test]
fn botocore_device_flow_is_pending_then_too_fast_then_approved_once() {
    let botocore = Botocore::new(Options::default());
    let fake = &botocore.fake;
    let out = botocore.run("device-flow", json!({"start_url": fake.start_url()}));

    assert_eq!(out["secret_lifetime"], 90 * 24 * 3600);
    assert_oidc_error(
        &out["wrong_start_url"],
        "InvalidRequestException",
        400,
        "invalid_request",
    );
    assert_oidc_error(
        &out["wrong_secret"],
        "InvalidClientException",
        401,
        "invalid_client",
    );
    let device = &out["device"];
    assert_eq!(
        (device["expiresIn"].as_u64(), device["interval"].as_u64()),
        (Some(600), Some(1))
    );
    let shown = fake
        .last_device_authorization()
        .expect("the fake recorded the device authorization");
    assert_eq!(device["userCode"], shown.user_code.as_str());
    assert_eq!(device["verificationUri"], format!("{}/device", fake.url()));
    assert_eq!(
        device["verificationUriComplete"],
        shown.verification_uri_complete.as_str()
    );

    assert_oidc_error(
        &out["pending"],
        "AuthorizationPendingException",
        400,
        "authorization_pending",
    );
    assert_oidc_error(&out["slow_down"], "SlowDownException", 400, "slow_down");
    assert_eq!(out["approval_status"], 200);
    assert_eq!(
        out["token"],
        json!({"tokenType": "Bearer", "expiresIn": 3600, "has_refresh_token": true,
               "access_token_prefix": "aoa"})
    );
    assert_oidc_error(
        &out["reused"],
        "InvalidGrantException",
        400,
        "invalid_grant",
    );

    assert_eq!(fake.calls(Op::RegisterClient), 1);
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 3);
    assert_eq!(fake.succeeded(Op::StartDeviceAuthorization), 1);
    assert_eq!(fake.calls(Op::CreateToken(Grant::DeviceCode)), 4);
    assert_eq!(fake.succeeded(Op::CreateToken(Grant::DeviceCode)), 1);
    assert_eq!(fake.sessions_started(), 1);
}

#[test]
fn botocore_pkce_flow_goes_through_a_scripted_browser_to_a_loopback_callback() {
    let botocore = Botocore::new(Options::default());
    let fake = &botocore.fake;
    let start_url = fake.start_url();
    let out = botocore.run("pkce", json!({"start_url": start_url}));

    assert_oidc_error(
        &out["wrong_issuer"],
        "InvalidRequestException",
        400,
        "invalid_request",
    );
    assert_oidc_error(
        &out["device_grant_refused"],
        "UnauthorizedClientException",
        400,
        "unauthorized_client",
    );
    assert_eq!(out["browser"]["exit"], 0, "{out:#}");
    assert_eq!(out["browser"]["final_status"], "200", "{out:#}");
    assert_eq!(out["callback_received"], true, "{out:#}");
    assert_eq!(out["callback_keys"], json!(["code", "state"]));
    assert_eq!(out["state_matches"], true);
    assert_oidc_error(
        &out["wrong_verifier"],
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
    assert_eq!(out["token"]["expiresIn"], 3600);
    assert_eq!(out["token"]["has_refresh_token"], true);
    assert_oidc_error(
        &out["code_reused"],
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
    assert_eq!(out["refreshed"]["has_refresh_token"], true);
    assert_eq!(out["refresh_rotated"], true);
    assert_eq!(fake.succeeded(Op::Authorize), 1);
    assert_eq!(fake.succeeded(Op::CreateToken(Grant::AuthorizationCode)), 1);
    assert_eq!(fake.succeeded(Op::CreateToken(Grant::RefreshToken)), 1);

    // A user who says no: the browser lands on the callback with the error, and no code.
    fake.set_authorize_denies(true);
    let out = botocore.run("pkce", json!({"start_url": start_url}));
    assert_eq!(out["callback_received"], true, "{out:#}");
    assert_eq!(out["callback_keys"], json!(["error", "state"]));
    assert_eq!(out["callback_error"], "access_denied");
    assert_eq!(out["state_matches"], true);
}

#[test]
fn botocore_token_provider_refreshes_the_cli_cache_and_writes_the_rotated_token_back() {
    // A 2-minute access token is always inside botocore's 15-minute refresh window.
    let botocore = Botocore::new(Options {
        access_token_ttl: Duration::from_secs(120),
        ..Options::default()
    });
    let fake = &botocore.fake;
    let login = botocore.login();
    assert_eq!(login["expiresIn"], 120);
    let out = botocore.run(
        "refresh-cache",
        json!({"session": SESSION, "profile": PROFILE}),
    );
    assert_eq!(out["token_changed"], true, "{out:#}");
    assert_eq!(out["cache_has_the_new_token"], true, "{out:#}");
    assert_eq!(out["refresh_rotated"], true, "{out:#}");
    assert_eq!(
        out["written_keys"],
        json!([
            "accessToken",
            "clientId",
            "clientSecret",
            "expiresAt",
            "refreshToken",
            "region",
            "registrationExpiresAt",
            "startUrl"
        ])
    );
    assert!(
        out["kept"]
            .as_object()
            .is_some_and(|kept| kept.values().all(|v| v == true)),
        "{out:#}"
    );
    let expires_at = out["expiresAt"].as_str().unwrap_or_default();
    assert!(
        credd_tests::http::parse_utc(expires_at).is_some(),
        "expiresAt {expires_at:?} is not RFC 3339 UTC"
    );
    let left = out["expiration_in"].as_f64().unwrap_or_default();
    assert!((100.0..=121.0).contains(&left), "{out:#}");
    assert_eq!(out["mode"], "0o600");
    assert_oidc_error(
        &out["old_refresh_token"],
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
    assert_eq!(fake.succeeded(Op::CreateToken(Grant::RefreshToken)), 1);
    assert_eq!(fake.calls(Op::CreateToken(Grant::RefreshToken)), 2);
    assert_eq!(fake.sessions_started(), 1, "a refresh is no new sign-in");
}

#[test]
fn boto3_profile_credentials_pass_moto_and_lost_access_raises_the_modeled_errors() {
    let botocore = Botocore::new(Options::default());
    let fake = &botocore.fake;
    botocore.login();
    let identity = json!(["profile-identity", {"profile": PROFILE}]);
    let credentials = |account: &str, role: &str| json!(["role-credentials", {"session": SESSION, "account": account, "role": role}]);

    let out = botocore.run(
        "batch",
        json!([
            identity,
            credentials(ACCESS_ACCOUNT, ACCESS_ROLE),
            // A role the user was never given.
            credentials(PROD_ACCOUNT, ADMIN_ROLE),
            ["role-credentials", {"session": SESSION, "account": STAGING_ACCOUNT,
                                  "role": READ_ONLY_ROLE, "token": "aoa-not-a-token"}],
        ]),
    );
    assert_eq!(
        out[0]["arn"],
        assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE),
        "{out:#}"
    );
    assert_eq!(out[0]["method"], "sso");
    assert_eq!(
        out[1]["keys"],
        json!([
            "accessKeyId",
            "expiration",
            "secretAccessKey",
            "sessionToken"
        ])
    );
    let left = out[1]["expires_in"].as_f64().unwrap_or_default();
    assert!(
        (3000.0..=3601.0).contains(&left),
        "epoch milliseconds: {out:#}"
    );
    // 403, which the model does not name: botocore raises a plain ClientError.
    assert_error(&out[2], "ForbiddenException", 403, false);
    assert_eq!(out[2]["message"], "No access");
    assert_error(&out[3], "UnauthorizedException", 401, true);
    assert_eq!(out[3]["message"], "Session token not found or invalid");
    assert_eq!(fake.succeeded(Op::GetRoleCredentials), 2);

    // A role taken away: the profile on it fails with the 403.
    fake.revoke_role(STAGING_ACCOUNT, ADMIN_ROLE);
    let out = botocore.run(
        "batch",
        json!([credentials(STAGING_ACCOUNT, ADMIN_ROLE), identity]),
    );
    assert_error(&out[0], "ForbiddenException", 403, false);
    assert_eq!(out[1]["credentials_error"], "ClientError", "{out:#}");

    // Every session revoked: 401, which botocore's provider turns into its "log in again"
    // error, and the refresh token is refused.
    fake.grant_role(STAGING_ACCOUNT, ADMIN_ROLE);
    fake.revoke_all();
    let out = botocore.run(
        "batch",
        json!([
            credentials(STAGING_ACCOUNT, READ_ONLY_ROLE),
            identity,
            ["refresh-cached", {"session": SESSION}],
        ]),
    );
    assert_error(&out[0], "UnauthorizedException", 401, true);
    assert_eq!(
        out[1]["credentials_error"], "UnauthorizedSSOTokenError",
        "{out:#}"
    );
    assert_oidc_error(&out[2], "InvalidGrantException", 400, "invalid_grant");
}

#[test]
fn botocore_sees_an_expired_device_code_as_expired_token_exception() {
    let botocore = Botocore::new(Options {
        device_code_ttl: Duration::from_millis(300),
        ..Options::default()
    });
    let out = botocore.run(
        "expired-device-code",
        json!({"start_url": botocore.fake.start_url()}),
    );
    assert_eq!(out["expiresIn"], 1, "{out:#}");
    assert_oidc_error(&out["last"], "ExpiredTokenException", 400, "expired_token");
}

#[test]
fn botocore_paginators_list_every_account_and_role() {
    let botocore = Botocore::new(Options::default());
    let fake = &botocore.fake;
    botocore.login();
    let out = botocore.run("paginate", json!({"session": SESSION}));
    let ids: Vec<&str> = out["accounts"]
        .as_array()
        .map(|all| all.iter().filter_map(|a| a["accountId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids,
        [ACCESS_ACCOUNT, STAGING_ACCOUNT, PROD_ACCOUNT],
        "{out:#}"
    );
    assert_eq!(
        out["accounts"][1],
        json!({"accountId": STAGING_ACCOUNT, "accountName": "staging",
               "emailAddress": "staging@example.com"})
    );
    // Pages of two: three accounts take two pages.
    assert_eq!(out["account_pages"], 2);
    assert_eq!(
        out["roles"],
        json!({ACCESS_ACCOUNT: [ACCESS_ROLE], STAGING_ACCOUNT: [ADMIN_ROLE, READ_ONLY_ROLE],
               PROD_ACCOUNT: [READ_ONLY_ROLE]})
    );
    assert_eq!(out["max_results_1"], 1);
    assert_error(&out["bad_next_token"], "InvalidRequestException", 400, true);
    assert_eq!(fake.calls(Op::ListAccounts), 4);
    assert_eq!(fake.calls(Op::ListAccountRoles), 3);
}

#[test]
fn an_outage_answers_503_or_refuses_and_botocore_fails_cleanly() {
    let botocore = Botocore::new(Options::default());
    let fake = &botocore.fake;
    botocore.login();
    fake.set_down(true);
    let out = botocore.role_credentials(STAGING_ACCOUNT, ADMIN_ROLE);
    assert_error(&out, "ServiceUnavailableException", 503, false);
    fake.set_outage(Outage::Refused);
    let out = botocore.run("profile-identity", json!({"profile": PROFILE}));
    assert!(
        out["credentials_error"]
            .as_str()
            .is_some_and(|class| class.contains("Connection") || class.contains("Endpoint")),
        "{out:#}"
    );
    fake.set_down(false);
    assert_eq!(
        botocore.role_credentials(STAGING_ACCOUNT, ADMIN_ROLE)["class"],
        Value::Null
    );
    // The refused connection never got as far as a request.
    assert_eq!(fake.calls(Op::GetRoleCredentials), 2);
    assert_eq!(fake.succeeded(Op::GetRoleCredentials), 1);
}

#[test]
fn an_sso_stack_configures_the_daemon_for_the_fake_and_shares_the_cli_token_cache() {
    let stack = Stack::builder()
        .access(Access::SSO_DEVICE)
        .toml(Toml {
            profiles: SSO_PROFILES,
            ..Toml::default()
        })
        .build();
    let fake = stack.identity_center();
    let config = std::fs::read_to_string(&stack.world.config_path).expect("the config");
    let access = format!(
        "[access]\nsource = \"sso\"\nsso_session = \"acme\"\nsso_start_url = \"{}\"\n\
         sso_region = \"us-east-1\"\nsso_login = \"device\"\n\
         sso_account_id = \"{ACCESS_ACCOUNT}\"\nsso_role_name = \"{ACCESS_ROLE}\"\n",
        fake.start_url()
    );
    assert!(config.contains(&access), "{config}");
    assert!(config.contains(SSO_PROFILES), "{config}");
    assert!(!stack.world.credentials_file().exists(), "no IAM user key");
    let env = stack.world.env();
    for name in ["AWS_ENDPOINT_URL_SSO_OIDC", "AWS_ENDPOINT_URL_SSO"] {
        assert!(
            env.iter().any(|(k, v)| k == name && *v == fake.url()),
            "{name} in {env:?}"
        );
    }

    // The AWS CLI's cache file (botocore's name for it) is where the stack says.
    run_script(
        &stack.world,
        fake,
        "login",
        json!({"start_url": fake.start_url(), "session": SSO_SESSION}),
    );
    let cached: Value = serde_json::from_str(
        &std::fs::read_to_string(stack.sso_cache_file()).expect("the token cache file"),
    )
    .expect("JSON");
    assert_eq!(cached["startUrl"], fake.start_url().as_str());

    // The scripted browser opens what it is given.
    let browser = stack.scripted_browser().display().to_string();
    let url = format!("{}/authorize?client_id=nobody", fake.url());
    stack.world.run(&browser, &[&url], None).assert_success();
    assert_eq!(fake.calls(Op::Authorize), 1);
}
