//! `credd import` from `~/.aws/config`: the real client imports a chain of `role_arn` profiles
//! into the config a running daemon reads, the daemon takes the edit by itself, and the chained
//! profile's credentials are moto's real ones for the role at the end of the chain.

use credd_tests::bins::client_bin;
use credd_tests::stack::{
    ADMIN, AUDITOR, Access, READY_DEADLINE, Stack, Toml, USER, assumed_role_arn,
};
use credd_tests::terminal::Terminal;
use credd_tests::wait_until;

/// aws-vault style: the access profile's key is in the shared credentials file (the stack writes
/// alice's there as `[access]`), each role assumed from the one before.
fn aws_config() -> String {
    format!(
        "# mine, for the AWS CLI\n[profile access]\nregion = us-east-1\noutput = json\n\n\
         [profile staging]\nrole_arn = {ADMIN}\nsource_profile = access\nregion = us-west-2\n\n\
         [profile prod-audit]\nrole_arn = {AUDITOR}\nsource_profile = staging\n\
         duration_seconds = 3600\n\n[profile tool]\ncredential_process = /usr/bin/false\n"
    )
}

#[test]
fn an_imported_chain_serves_the_last_roles_credentials() {
    // The hand-written config: the port, and the key read from the shared credentials file.
    let stack = Stack::start(Access::Key, Toml::default());
    stack.world.write_aws_config(&aws_config());
    let before = std::fs::read_to_string(&stack.world.config_path).unwrap();

    let dry = stack.world.credd(&["import", "--dry-run"]);
    dry.assert_success();
    assert_eq!(
        std::fs::read_to_string(&stack.world.config_path).unwrap(),
        before,
        "--dry-run writes nothing"
    );
    assert!(dry.stdout.contains("+[profiles.prod-audit]"), "{dry}");

    let out = stack.world.credd(&["--json", "import"]);
    out.assert_success();
    let report = out.json();
    assert_eq!(report["written"], true, "{report}");
    assert_eq!(report["access"]["status"], "kept", "{report}");
    let added: Vec<&str> = report["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["staging", "prod-audit"], "{report}");
    assert_eq!(report["added"][1]["via"], "staging", "{report}");
    assert_eq!(report["skipped"][0]["profile"], "tool", "{report}");
    let after = std::fs::read_to_string(&stack.world.config_path).unwrap();
    assert!(
        after.starts_with(&before),
        "the hand-written part is kept: {after}"
    );

    // The daemon reloads by itself; the chained profile serves the Auditor role's credentials.
    wait_until(READY_DEADLINE, "the imported profiles", || {
        stack.world.status()["profiles"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    });
    assert_eq!(
        stack.served_identity("prod-audit"),
        Ok(assumed_role_arn(AUDITOR, USER))
    );
    assert_eq!(stack.world.profile_status("prod-audit")["via"], "staging");

    // Again: nothing changes.
    stack.world.credd(&["import"]).assert_success();
    assert_eq!(
        std::fs::read_to_string(&stack.world.config_path).unwrap(),
        after
    );
}

#[test]
fn import_sso_under_another_source_says_which_and_what_to_run_instead() {
    let stack = Stack::start(Access::Key, Toml::default());
    let out = stack.world.credd(&["import", "--sso"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("the access source is an IAM user's key (source = \"iam-user\""),
        "{out}"
    );
    assert!(
        out.stderr.contains("run `credd import` (without --sso)"),
        "{out}"
    );
    assert!(!out.stderr.contains("retrying"), "{out}");
}

#[test]
fn key_add_without_a_config_stops_before_asking_for_the_key() {
    let world = credd_tests::world::World::new();
    let out = world.credd_stdin(&["key", "add"], "AKIAIOSFODNN7EXAMPLE\nnot-asked-for\n");
    out.assert_code(1);
    assert!(
        out.stderr.contains("there is no credd config at") && out.stderr.contains("write it first"),
        "{out}"
    );
}

#[test]
fn a_newcomer_imports_moves_the_key_into_the_keychain_and_gets_the_chained_profile() {
    let mut stack = Stack::builder().access(Access::Key).direct().build();
    let _keyring = credd_tests::keyring::Keyring::start(&mut stack.world);
    let secret = stack.user().secret_access_key.clone();
    // Nothing of credd's yet but the port (a test world cannot take the default one).
    let mine = "[daemon]\nlisten = \"127.0.0.1:0\"\n";
    stack.world.write_config(mine);
    stack.world.write_aws_config(&aws_config());

    let out = stack.world.credd(&["import"]);
    out.assert_success();
    let written = std::fs::read_to_string(&stack.world.config_path).unwrap();
    assert!(written.starts_with(mine), "{written}");
    assert!(
        written.contains("[access]\nsource = \"iam-user\"\nregions = [\"us-east-1\"]\n"),
        "{written}"
    );
    assert!(
        out.stdout
            .contains("\n  credd key import --profile access --delete\n"),
        "{out}"
    );
    assert!(
        !out.stdout.contains(&secret) && !written.contains(&secret),
        "{out}"
    );

    // The command the report gave, on a terminal: it says what it stored where, then asks
    // whether to delete the file's copy.
    stack.world.start_daemon();
    let terminal = Terminal::open();
    let mut command = stack.world.command(client_bin());
    command
        .args(["key", "import", "--profile", "access"])
        .env("CREDD_NO_AUTOSTART", "1")
        .stdout(terminal.stdio())
        .stderr(terminal.stdio());
    terminal.attach(&mut command);
    let mut key_import = command.spawn().expect("credd key import");
    let question = "delete it from there? [Y/n] ";
    let screen = terminal.wait_for(question, READY_DEADLINE);
    let stored = format!(
        "imported key {} of {}",
        stack.user().access_key_id,
        stack.user().arn
    );
    let (told, _) = screen.split_once(question).unwrap();
    assert!(
        told.contains(&stored) && told.contains("Secret Service"),
        "what was stored where comes before the question: {screen}"
    );
    terminal.type_line("y");
    let status = wait_for_exit(&mut key_import);
    assert!(status.success(), "{}", terminal.screen());
    terminal.wait_for("deleted it from ", READY_DEADLINE);
    assert!(
        !std::fs::read_to_string(stack.world.credentials_file())
            .unwrap_or_default()
            .contains(&secret)
    );
    stack.wait_logged_in(READY_DEADLINE);
    wait_until(READY_DEADLINE, "the imported profiles", || {
        stack.world.status()["profiles"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    });
    assert_eq!(
        stack.served_identity("prod-audit"),
        Ok(assumed_role_arn(AUDITOR, USER))
    );
}

/// Waits for `child` to end (a test's deadline is the harness's own).
fn wait_for_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    wait_until(READY_DEADLINE, "credd key import to end", || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    child.wait().expect("its exit status")
}
