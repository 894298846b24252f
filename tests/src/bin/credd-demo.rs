//! `credd-demo`: credd end to end, offline, in throwaway worlds.
//!
//! Starts the local STS emulator (moto, installed into target/moto-venv on first run) with
//! request authentication on, an IAM user with a key, two roles in two accounts; then the real
//! `credd-daemon` and `credd` binaries; then boto3 gets its credentials through credd and proves
//! them on STS. Then the same with IAM Identity Center as the way in (the tests' stand-in for it,
//! with role credentials from moto): one browser login (a scripted browser approves it), and
//! boto3 served an Identity Center profile and a role assumed from the access role. Everything
//! is removed at the end.

use std::process::ExitCode;

use credd_tests::moto::{Auth, Moto, SeedSpec};
use credd_tests::stack::{Access, SsoLogin, Stack, Toml};
use credd_tests::wait_until;
use credd_tests::world::World;

const ADMIN: &str = "arn:aws:iam::222222222222:role/Administrator";
const AUDITOR: &str = "arn:aws:iam::333333333333:role/Auditor";

const WHOAMI: &str =
    "import boto3; print('   boto3 says:', boto3.client('sts').get_caller_identity()['Arn'])";

fn step(text: &str) {
    println!("\n== {text}");
}

fn show(cmd: &str, out: &str) {
    println!("$ {cmd}");
    for line in out.lines() {
        println!("   {line}");
    }
}

fn main() -> ExitCode {
    step("Starting the local STS emulator (moto; first run installs it, about a minute)");
    let moto = Moto::shared(Auth::On);
    let seeded = moto.seed(&SeedSpec::new().user("alice").role(ADMIN).role(AUDITOR));
    let alice = seeded.user("alice");
    println!(
        "   STS at {} with request signing enforced",
        moto.endpoint()
    );
    println!("   IAM user {} with a long-lived key", alice.arn);

    let mut world = World::new();
    world.write_shared_credentials("access", &alice.access_key_id, &alice.secret_access_key);
    world.set_env("AWS_ENDPOINT_URL_STS", &moto.endpoint());
    world.set_env("AWS_ENDPOINT_URL_IAM", &moto.endpoint());
    world.write_config(&format!(
        r#"default_profile = "staging"

[daemon]
listen = "127.0.0.1:0"

[access]
source = "iam-user"
aws_profile = "access"

[profiles.staging]
role_arn = "{ADMIN}"
region = "us-east-1"

[profiles.audit]
role_arn = "{AUDITOR}"
via = "staging"
region = "us-east-1"
"#
    ));
    step(&format!("A config at {}", world.config_path.display()));
    print!(
        "{}",
        std::fs::read_to_string(&world.config_path).unwrap_or_default()
    );

    step("Starting credd-daemon and waiting for both profiles to be fresh");
    world.start_daemon();
    wait_until(std::time::Duration::from_secs(20), "profiles fresh", || {
        let status = world.credd(&["status", "--json"]);
        status.success()
            && status.json()["profiles"]
                .as_array()
                .is_some_and(|ps| ps.iter().all(|p| p["state"] == "fresh"))
    });
    show("credd status", &world.credd(&["status"]).stdout);

    step("An SDK (boto3) in a shell that ran `eval \"$(credd env)\"`");
    let env = world.credd(&["env", "--shell", "sh"]);
    show("credd env", &env.stdout);
    let python = moto.python();
    let script = format!(
        "eval \"$({} env --shell sh)\"; AWS_ENDPOINT_URL_STS={} '{}' -c \"{WHOAMI}\"",
        credd_tests::bins::client_bin().display(),
        moto.endpoint(),
        python.display()
    );
    let run = world.run("sh", &["-c", &script], None);
    print!("{}{}", run.stdout, run.stderr);

    step("`credd switch audit`: new processes get the chained role at once");
    show(
        "credd switch audit",
        &world.credd(&["switch", "audit"]).stdout,
    );
    let run = world.run("sh", &["-c", &script], None);
    print!("{}{}", run.stdout, run.stderr);

    step("`credd exec staging -- ...` pins a profile for one command");
    let exec = format!(
        "AWS_ENDPOINT_URL_STS={} {} exec staging -- '{}' -c \"{WHOAMI}\"",
        moto.endpoint(),
        credd_tests::bins::client_bin().display(),
        python.display()
    );
    let run = world.run("sh", &["-c", &exec], None);
    print!("{}{}", run.stdout, run.stderr);

    step("Any HTTP client too: curl on the container route, with the token from its file");
    let url = world.credd(&["status", "--json"]).json()["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let curl = format!(
        "curl -s -o /dev/null -w '%{{http_code}}\\n' -H \"Authorization: $(cat '{}')\" {url}/v1/credentials",
        world.token_file().display()
    );
    show(
        &curl.replace(&url, "$URL"),
        &world.run("sh", &["-c", &curl], None).stdout,
    );

    step("`credd audit`: which program took which profile, and how");
    // The daemon writes its audit log within a second.
    wait_until(std::time::Duration::from_secs(10), "the audit log", || {
        let lines = world.credd(&["audit", "--json"]);
        lines.success() && lines.json().as_array().is_some_and(|l| l.len() >= 4)
    });
    show("credd audit", &world.credd(&["audit"]).stdout);
    let log = world.paths().audit_log();
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    show(
        &format!("tail -1 {}", log.display()),
        lines.lines().last().unwrap_or_default(),
    );

    world.stop_daemon();
    identity_center(moto);
    step("Done; the demo worlds are removed. For real use:");
    println!("{QUICKSTART}");
    ExitCode::SUCCESS
}

/// The same with IAM Identity Center as the way in.
fn identity_center(moto: &Moto) {
    step("IAM Identity Center as the way in (a local stand-in for it; roles from the emulator)");
    let mut stack = Stack::builder()
        .access(Access::Sso {
            login: Some(SsoLogin::Browser),
            access_role: true,
        })
        .toml(Toml {
            profiles: &format!(
                "[profiles.sso-admin]\nsso_account_id = \"222222222222\"\n\
                 sso_role_name = \"AdministratorAccess\"\nregion = \"us-east-1\"\n\n\
                 [profiles.admin-from-access]\nrole_arn = \"{ADMIN}\"\nregion = \"us-east-1\"\n"
            ),
            ..Toml::default()
        })
        .build();
    let browser = stack.scripted_browser();
    stack
        .world
        .set_env("BROWSER", &browser.display().to_string());
    print!(
        "{}",
        std::fs::read_to_string(&stack.world.config_path).unwrap_or_default()
    );
    stack.world.start_daemon();
    step("`credd login`: one browser login (here a script plays the browser and approves)");
    let login = stack.world.credd(&["login"]);
    show("credd login", &format!("{}{}", login.stderr, login.stdout));
    show("credd status", &stack.world.credd(&["status"]).stdout);
    step("boto3 pinned to an Identity Center profile, then to a role assumed from the access role");
    for profile in ["sso-admin", "admin-from-access"] {
        let exec = format!(
            "AWS_ENDPOINT_URL_STS={} {} exec {profile} -- '{}' -c \"{WHOAMI}\"",
            moto.endpoint(),
            credd_tests::bins::client_bin().display(),
            moto.python().display()
        );
        let run = stack.world.run("sh", &["-c", &exec], None);
        print!(
            "$ credd exec {profile} -- python ...\n{}{}",
            run.stdout, run.stderr
        );
    }
    println!(
        "   The token is refreshed in the background for the organization's session length, and \
         shared with the AWS CLI ({}).",
        stack.sso_cache_file().display()
    );
    stack.world.stop_daemon();
}

const QUICKSTART: &str = r#"
  IAM Identity Center: write ~/.config/credd/config.toml (see the README's config reference):
       default_profile = "staging"
       [access]
       source = "sso"
       sso_session = "acme"
       sso_start_url = "https://acme.awsapps.com/start"
       sso_region = "us-east-1"
       [profiles.staging]
       sso_account_id = "222222222222"
       sso_role_name = "AdministratorAccess"
       region = "us-east-1"           # exported by `credd exec`/`env`: the CLI needs one
     then `credd login` (a browser tab; --device-code on SSH) and `credd import --sso`.

  Your company's OpenID or SAML identity provider: source = "web-identity" (oidc_issuer,
  oidc_client_id, role_arn) or "saml" (assertion_command); the README's quickstarts show both,
  with the role's trust policy.

  Profiles in ~/.aws/config already (aws-vault, Granted, aws-sso-cli)? `credd import --dry-run`,
  then `credd import`: it writes the config below from them.

  An IAM user's key instead:
  1. Write ~/.config/credd/config.toml (see the README's config reference):
       default_profile = "staging"
       [access]
       source = "iam-user"            # the key from the keychain
       mfa_serial = "arn:aws:iam::111111111111:mfa/you"
       # mfa_command = ["ykman", "oath", "accounts", "code", "-s", "aws"]
       [profiles.staging]
       role_arn = "arn:aws:iam::222222222222:role/Administrator"
       region = "eu-west-1"
  2. credd key add                    # the key into the OS keychain (or `credd key import`
                                      # to move it out of ~/.aws/credentials)
  3. credd login                      # asks for the MFA code once (exec asks itself too)
  4. eval "$(credd env --hook bash)"  # in your shell rc: every SDK now uses credd
  5. credd switch prod / credd status / credd exec prod -- terraform plan
  6. credd service install            # run it as a systemd/launchd user service
  7. credd key rotate                 # every 90 days; `credd status` reminds you
"#;
