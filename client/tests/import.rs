//! `credd import --sso` against a scripted daemon: which file it edits, what it writes, and that
//! `--dry-run` writes nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{FakeDaemon, access, text};
use credd_proto::{
    ConfigInfo, ImportProposal, PathsInfo, Request, Response, SsoImportEntry, StatusReport,
};

const CONFIG: &str = r#"# my credd config
[access]
source = "sso"   # Identity Center
sso_session = "acme"
sso_start_url = "https://acme.awsapps.com/start"
sso_region = "us-east-1"

[profiles.audit]
sso_account_id = "111111111111"
sso_role_name = "Auditor"
"#;

/// A daemon logged in to Identity Center that reads `config`, which has `audit`: of the three
/// account roles Identity Center offers, it proposes the two others. It never reloads, so a second
/// import gets the same proposals.
fn daemon(config: &Path) -> FakeDaemon {
    let config = config.display().to_string();
    FakeDaemon::start(move |request, _| match request {
        Request::Status => Response::Status(Box::new(status(&config))),
        Request::SsoImport => Response::SsoImport {
            accounts: 2,
            entries: vec![
                entry(
                    "111111111111",
                    "Audit",
                    "Auditor",
                    ImportProposal::AlreadyConfigured {
                        profile: "audit".into(),
                    },
                ),
                entry(
                    "222222222222",
                    "Staging",
                    "AdministratorAccess",
                    add(
                        "staging-AdministratorAccess",
                        "222222222222",
                        "AdministratorAccess",
                    ),
                ),
                entry(
                    "222222222222",
                    "Staging",
                    "ReadOnly",
                    add("staging-ReadOnly", "222222222222", "ReadOnly"),
                ),
            ],
        },
        other => panic!("unexpected request {other:?}"),
    })
}

fn entry(id: &str, name: &str, role: &str, proposal: ImportProposal) -> SsoImportEntry {
    SsoImportEntry {
        account_id: id.into(),
        account_name: name.into(),
        role_name: role.into(),
        proposal,
    }
}

fn add(profile: &str, id: &str, role: &str) -> ImportProposal {
    ImportProposal::Add {
        profile: profile.into(),
        fields: vec![
            ("sso_account_id".into(), id.into()),
            ("sso_role_name".into(), role.into()),
        ],
    }
}

fn status(config: &str) -> StatusReport {
    StatusReport {
        daemon_version: "0.1.0".into(),
        pid: 1,
        started_at: 0,
        paths: PathsInfo {
            config: config.into(),
            runtime_dir: "/run/credd".into(),
            socket: "/run/credd/control.sock".into(),
            token_file: "/run/credd/http.token".into(),
            state_file: "/state/credd/state.json".into(),
        },
        url: None,
        config: ConfigInfo {
            path: config.into(),
            loaded_at: 0,
            error: None,
            warnings: vec![],
        },
        access: access("sso"),
        current_profile: None,
        profiles: vec![],
        docker: None,
    }
}

fn config_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, CONFIG).unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600)).unwrap();
    path
}

#[test]
fn import_edits_the_file_the_daemon_reads() {
    let files = tempfile::tempdir().unwrap();
    let config = config_file(files.path());
    let daemon = daemon(&config);
    let elsewhere = files.path().join("other.toml");
    let out = daemon
        .credd(
            &[
                "import",
                "--sso",
                "--config",
                &elsewhere.display().to_string(),
            ],
            &[],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: credd-daemon reads {}, not {}",
            config.display(),
            elsewhere.display()
        )),
        "{stderr}"
    );
    assert!(!elsewhere.exists());

    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.starts_with(CONFIG),
        "the old text is kept as it was:\n{written}"
    );
    assert_eq!(
        &written[CONFIG.len()..],
        "\n# Staging (222222222222), from IAM Identity Center\n\
         [profiles.staging-AdministratorAccess]\n\
         sso_account_id = \"222222222222\"\n\
         sso_role_name = \"AdministratorAccess\"\n\
         \n# Staging (222222222222), from IAM Identity Center\n\
         [profiles.staging-ReadOnly]\n\
         sso_account_id = \"222222222222\"\n\
         sso_role_name = \"ReadOnly\"\n"
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(stdout.starts_with("added 2 profiles to "), "{stdout}");
    assert!(
        stdout.contains("111111111111/Auditor (Audit): already configured as profile audit"),
        "{stdout}"
    );
    assert!(stdout.contains("reloads the config by itself"), "{stdout}");

    // Again, before the daemon reloaded: what the file has now is left alone, nothing written.
    let again = daemon
        .credd(&["import", "--sso", "--json"], &[])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["added"].as_array().unwrap().len(), 0);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 3);
    assert_eq!(v["skipped"][0]["reason"], "already_configured");
    assert_eq!(v["skipped"][1]["reason"], "already_in_file");
    assert_eq!(v["accounts"], 2);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let files = tempfile::tempdir().unwrap();
    let config = config_file(files.path());
    let daemon = daemon(&config);
    let out = daemon
        .credd(
            &["import", "--sso", "--dry-run"],
            &[("CREDD_CONFIG", &config.display().to_string())],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), CONFIG);
    let name = config.display();
    assert!(
        stdout.starts_with(&format!("--- {name}\n+++ {name}\n@@ ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "\n+[profiles.staging-AdministratorAccess]\n+sso_account_id = \"222222222222\"\n"
        ),
        "{stdout}"
    );
    let changed: Vec<&str> = stdout
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert!(changed.iter().all(|l| l.starts_with('+')), "{stdout}");
    assert!(
        stderr.contains("dry run: would add 2 profiles") && stderr.contains("nothing was written"),
        "{stderr}"
    );
}

// `credd import` without `--sso`: from ~/.aws/config.

const AWS_CONFIG: &str = "[profile access]\nmfa_serial = arn:aws:iam::111111111111:mfa/alice\n\n\
[profile staging]\nrole_arn = arn:aws:iam::222222222222:role/Admin\nsource_profile = access\n\
region = eu-west-1\n\n[profile prod]\nrole_arn = arn:aws:iam::333333333333:role/Deploy\n\
source_profile = staging\n\n[profile tool]\ncredential_process = /bin/tool\n";
const AWS_CREDENTIALS: &str =
    "[access]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = s3cr3tEXAMPLE\n";

/// A home with ~/.aws/config and ~/.aws/credentials, and a runtime dir where no daemon runs.
fn newcomer() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/config"), AWS_CONFIG).unwrap();
    std::fs::write(home.path().join(".aws/credentials"), AWS_CREDENTIALS).unwrap();
    let run = home.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, PermissionsExt::from_mode(0o700)).unwrap();
    home
}

fn credd_at_home(home: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_credd"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("CREDD_RUNTIME_DIR", home.join("run"))
        .env("CREDD_STATE_DIR", home.join("state"))
        .env("CREDD_NO_AUTOSTART", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_newcomer_gets_a_config_from_aws_config_and_a_second_run_changes_nothing() {
    let home = newcomer();
    let config = home.path().join(".config/credd/config.toml");

    let dry = credd_at_home(home.path(), &["import", "--dry-run"]);
    let (stdout, stderr) = (text(&dry.stdout), text(&dry.stderr));
    assert!(dry.status.success(), "{stderr}");
    assert!(!config.exists(), "--dry-run writes nothing");
    assert!(stdout.contains("+[profiles.prod]\n"), "{stdout}");
    assert!(stdout.contains("+via = \"staging\"\n"), "{stdout}");
    assert!(stderr.contains("dry run: nothing was written"), "{stderr}");

    let out = credd_at_home(home.path(), &["import"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let written = std::fs::read_to_string(&config).unwrap();
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        written.starts_with("# the access account: the IAM user key of [access]"),
        "{written}"
    );
    assert!(written.contains("[access]\nsource = \"iam-user\"\nmfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n"), "{written}");
    assert!(stdout.contains("added 2 profiles to"), "{stdout}");
    assert!(
        stdout.contains("[tool]: credential_process: its credentials come from a program"),
        "{stdout}"
    );
    // The key stays where it is; the report says how to move it, and never shows the secret.
    assert!(
        stdout.contains("credd key import --profile access --delete"),
        "{stdout}"
    );
    for shown in [&stdout, &stderr, &written] {
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
    assert_eq!(
        std::fs::read_to_string(home.path().join(".aws/credentials")).unwrap(),
        AWS_CREDENTIALS
    );

    let again = credd_at_home(home.path(), &["--json", "import"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["written"], false, "{report}");
    assert_eq!(report["added"], serde_json::json!([]), "{report}");
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["access"]["status"], "kept", "{report}");
    assert_eq!(report["skipped"][0]["profile"], "tool", "{report}");
    assert_eq!(
        report["key"]["command"],
        "credd key import --profile access --delete"
    );
}

#[test]
fn import_edits_the_running_daemons_config_keeping_what_is_there_and_asks_it_to_reload() {
    let home = newcomer();
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("config.toml");
    let mine = "# mine\n[access]\nsource = \"iam-user\"\n\n[profiles.prod]\nrole_arn = \"arn:aws:iam::222222222222:role/ReadOnly\"\n";
    std::fs::write(&path, mine).unwrap();
    let reported = path.display().to_string();
    let daemon = FakeDaemon::start(move |request, _| match request {
        Request::Status => Response::Status(Box::new(StatusReport {
            access: access("iam-user"),
            ..status(&reported)
        })),
        Request::Reload => Response::Reloaded {
            path: reported.clone(),
            profiles: 1,
            warnings: vec![],
        },
        other => panic!("unexpected request {other:?}"),
    });
    let aws = home.path().join(".aws");
    let out = daemon
        .credd(
            &["import"],
            &[
                ("AWS_CONFIG_FILE", &aws.join("config").display().to_string()),
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    &aws.join("credentials").display().to_string(),
                ),
            ],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with(mine),
        "hand-written part kept: {written}"
    );
    assert!(
        stdout.contains("the credd config has a profile prod already, for something else"),
        "{stdout}"
    );
    assert_eq!(written.matches("[profiles.prod]").count(), 1, "{written}");
    assert!(written.contains("\n[profiles.staging]\n"), "{written}");
    assert!(
        stdout.contains("[access] (source = \"iam-user\") is already in"),
        "{stdout}"
    );
    assert!(stdout.contains("credd-daemon loaded it"), "{stdout}");
    assert!(daemon.seen.requests().contains(&Request::Reload));
}
