//! `credd-demo`: credd end to end, offline, in a throwaway world.
//!
//! Starts the local STS emulator (moto, installed into target/moto-venv on first run) with
//! request authentication on, an IAM user with a key, two roles in two accounts; then the real
//! `credd-daemon` and `credd` binaries; then boto3 gets its credentials through credd and proves
//! them on STS. Everything is removed at the end.

use std::process::ExitCode;

use credd_tests::moto::{Auth, Moto, SeedSpec};
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
    let moto = Moto::start(Auth::On);
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

    world.stop_daemon();
    step("Done; the demo world is removed. For real use:");
    println!("{QUICKSTART}");
    ExitCode::SUCCESS
}

const QUICKSTART: &str = r#"
  1. Put your IAM user's key in ~/.aws/credentials under [access].
  2. Write ~/.config/credd/config.toml (see the README's config reference):
       default_profile = "staging"
       [access]
       source = "iam-user"
       aws_profile = "access"
       mfa_serial = "arn:aws:iam::111111111111:mfa/you"
       [profiles.staging]
       role_arn = "arn:aws:iam::222222222222:role/Administrator"
       region = "eu-west-1"
  3. credd login                      # asks for the MFA code once
  4. eval "$(credd env)"              # in your shell rc: every SDK now uses credd
  5. credd switch prod / credd status / credd exec prod -- terraform plan
  6. credd service install            # run it as a systemd/launchd user service
"#;
