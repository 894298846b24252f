//! A shell that knows credd: profile names completing in real bash, zsh and fish (asked of the
//! daemon, or read from the config file when none runs), the picker of a bare `credd switch` on
//! a terminal, `credd prompt`, the region hook of `credd env --hook` in interactive shells on a
//! pseudo-terminal, `credd env` that never logs in, `credd exec` as a shell runs commands, and
//! `--json` errors.

use std::time::Duration;

use credd_tests::bins::client_bin;
use credd_tests::moto::venv_python;
use credd_tests::proxy::ProxyMode;
use credd_tests::shells::shell;
use credd_tests::stack::{ADMIN, Access, PROMPT_DEADLINE, STAGING_AND_AUDIT, Stack, Toml};
use credd_tests::terminal::Terminal;
use credd_tests::wait_until;
use credd_tests::world::{CmdOutput, Running, World};

use crate::http_support::{DEPLOY_REGION, STAGING_REGION, offline, served};

/// An interactive shell's start, a completion, a prompt hook: each well under this.
const SHOWN: Duration = Duration::from_secs(30);

/// PATH with the `credd` under test first, as an installed one would be.
fn with_credd_on_path(world: &mut World) {
    let bin = client_bin();
    let dir = bin.parent().expect("credd is in a directory");
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
    world.set_env("PATH", &format!("{}:{path}", dir.display()));
}

/// What bash completes for the words of `line` (the last one being completed), with the script
/// of `credd completions bash` loaded, as Tab would ask for it.
fn bash_completes(world: &World, line: &str) -> Vec<String> {
    let script = r#"
        source <(credd completions bash)
        read -r -a COMP_WORDS <<< "$1"
        case "$1" in *" ") COMP_WORDS+=("") ;; esac
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="$1" COMP_POINT=${#1} COMP_TYPE=9
        _clap_complete_credd credd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let bash = shell("bash").display().to_string();
    let out = world.run(&bash, &["-c", script, "bash", line], None);
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What fish completes for `line`, with `credd completions fish` sourced (`complete -C`: the
/// candidates Tab would offer, each `NAME\tDESCRIPTION`): the names.
fn fish_completes(world: &World, line: &str) -> Vec<String> {
    let fish = shell("fish").display().to_string();
    let script = r#"credd completions fish | source; complete -C "$argv[1]""#;
    let out = world.run(&fish, &["--no-config", "-c", script, line], None);
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

/// An interactive shell on a terminal, killed when dropped.
struct Interactive(std::process::Child);

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program ARGS` on `terminal` (its controlling terminal, stdin, stdout and stderr), as a
/// person runs an interactive shell; the test reads the screen.
fn interactive(world: &World, terminal: &Terminal, program: &str, args: &[&str]) -> Interactive {
    let mut command = world.command(program);
    command.args(args).env("TERM", "xterm");
    terminal.attach(&mut command);
    command.stdout(terminal.stdio()).stderr(terminal.stdio());
    Interactive(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    )
}

/// Types `command` into the shell on `terminal` and waits until it printed `marker` (built so
/// that the echo of what was typed does not show it, e.g. with `$((1+1))`).
#[track_caller]
fn at_prompt(terminal: &Terminal, command: &str, marker: &str) {
    terminal.type_line(command);
    terminal.wait_for(marker, SHOWN);
}

#[test]
fn profile_names_complete_in_bash_zsh_and_fish_from_the_daemon_then_from_the_config_file() {
    let mut stack = offline("");
    with_credd_on_path(&mut stack.world);
    let world = &stack.world;

    for verb in ["switch", "env", "exec", "credential-process"] {
        assert_eq!(
            bash_completes(world, &format!("credd {verb} st")),
            ["staging"],
            "bash, {verb}"
        );
    }
    let mut both = bash_completes(world, "credd switch ");
    both.retain(|c| !c.starts_with('-'));
    both.sort();
    assert_eq!(both, ["deploy", "staging"]);
    assert_eq!(fish_completes(world, "credd switch st"), ["staging"]);
    assert_eq!(fish_completes(world, "credd exec de"), ["deploy"]);

    // zsh's completion system only runs in its line editor: a real interactive zsh, a real Tab.
    let zsh = shell("zsh").display().to_string();
    let terminal = Terminal::open();
    let _zsh = interactive(world, &terminal, &zsh, &["-f", "-i"]);
    at_prompt(
        &terminal,
        "autoload -Uz compinit && compinit -u && source <(credd completions zsh) && echo ready-$((1+1))",
        "ready-2",
    );
    // Tab completes the line; Ctrl-A and `echo ` make the shell print the completed line.
    terminal.type_keys("credd switch st\t");
    terminal.wait_for("aging", SHOWN);
    terminal.type_keys("\x01echo completed-$((3)): \r");
    terminal.wait_for("completed-3: credd switch staging", SHOWN);

    // No daemon: the names come from the config file (and no daemon is started for a Tab).
    stack.world.stop_daemon();
    let world = &stack.world;
    assert_eq!(
        bash_completes(world, "credd switch st"),
        ["staging"],
        "from the config file"
    );
    assert_eq!(fish_completes(world, "credd exec de"), ["deploy"]);
    assert!(!world.daemon_running(), "a Tab started no daemon");
}

#[test]
fn a_bare_switch_on_a_terminal_picks_with_fuzzy_filtering_and_without_one_is_the_usage_error() {
    let stack = offline("");
    let terminal = Terminal::open();
    let mut command = stack.world.command(client_bin());
    command.arg("switch").env("CREDD_NO_AUTOSTART", "1");
    terminal.attach(&mut command);
    let picker = Running::start(command, "credd switch (on a terminal)".into());
    terminal.wait_for("staging (current)", PROMPT_DEADLINE);
    terminal.type_keys("dpl");
    terminal.wait_for("dpl", SHOWN);
    terminal.type_keys("\r");
    let out = picker.wait(SHOWN);
    out.assert_success();
    assert_eq!(out.stdout, "current profile: deploy\n", "{out}");
    assert_eq!(stack.world.credd(&["prompt"]).stdout, "deploy\n");

    // Esc leaves without switching.
    let terminal = Terminal::open();
    let mut command = stack.world.command(client_bin());
    command.arg("switch").env("CREDD_NO_AUTOSTART", "1");
    terminal.attach(&mut command);
    let picker = Running::start(command, "credd switch (on a terminal)".into());
    terminal.wait_for("deploy (current)", PROMPT_DEADLINE);
    terminal.type_keys("\x1b");
    let out = picker.wait(SHOWN);
    out.assert_code(130);
    assert_eq!(stack.world.credd(&["prompt"]).stdout, "deploy\n");

    // No terminal: the usage error, exactly as ever.
    let out = stack.world.credd_without_terminal(&["switch"], None);
    out.assert_code(2);
    assert_eq!(
        out.stderr,
        "error: the following required arguments were not provided:\n  <PROFILE>\n\n\
         Usage: credd switch <PROFILE>\n\nFor more information, try '--help'.\n"
    );
}

#[test]
fn credd_prompt_prints_the_current_profile_from_the_state_file_and_nothing_when_there_is_none() {
    let world = World::new();
    // No state at all: nothing, exit 0, and no daemon started.
    let out = world.credd_autostart(&["prompt"]);
    out.assert_success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    world.credd(&["prompt", "--region"]).assert_code(1);
    assert!(!world.daemon_running());
    drop(world);

    let mut stack = offline("");
    let world = &stack.world;
    // The daemon wrote its default when it started (the harness finds the socket as soon as
    // it is bound; the daemon answers once it has started).
    world.status();
    assert_eq!(world.credd(&["prompt"]).stdout, "staging\n");
    assert_eq!(
        world.credd(&["prompt", "--region"]).stdout,
        format!("{STAGING_REGION}\n")
    );
    world.credd(&["switch", "deploy"]).assert_success();
    assert_eq!(world.credd(&["prompt"]).stdout, "deploy\n");
    let json = world.credd(&["prompt", "--json"]).assert_success().json();
    assert_eq!(
        json,
        serde_json::json!({"profile": "deploy", "region": DEPLOY_REGION})
    );
    // What the daemon will serve when it is started again.
    stack.world.stop_daemon();
    let out = stack.world.credd(&["prompt"]);
    out.assert_success();
    assert_eq!(out.stdout, "deploy\n");
}

/// `eval "$(credd env --hook SHELL)"` (fish: `| source`) in an interactive shell on a
/// terminal; then `credd switch deploy`; the next prompt has deploy's region, and boto3 takes it.
fn the_region_follows_a_switch_at_the_next_prompt(shell_name: &str, args: &[&str], hook: &str) {
    let mut stack = offline("");
    with_credd_on_path(&mut stack.world);
    stack
        .world
        .set_env("PY", &venv_python().display().to_string());
    let program = shell(shell_name).display().to_string();
    let terminal = Terminal::open();
    let _shell = interactive(&stack.world, &terminal, &program, args);
    // Typed `region-$((N))` (fish: `(math N)`), shown `region-N`: the echo of the typing never
    // matches.
    let fish = shell_name == "fish";
    let region = |n: u32| {
        let ask = match fish {
            true => format!(r#"echo "region-"(math {n})"=<$AWS_REGION>""#),
            false => format!(r#"echo "region-$(({n}))=<$AWS_REGION>""#),
        };
        (ask, format!("region-{n}=<"))
    };
    let ready = match fish {
        true => "echo ready-(math 1+1)",
        false => "echo ready-$((1+1))",
    };
    at_prompt(&terminal, ready, "ready-2");
    at_prompt(&terminal, hook, "");
    let (ask, shown) = region(1);
    at_prompt(&terminal, &ask, &format!("{shown}{STAGING_REGION}>"));
    at_prompt(&terminal, "credd switch deploy", "current profile: deploy");
    let (ask, shown) = region(2);
    at_prompt(&terminal, &ask, &format!("{shown}{DEPLOY_REGION}>"));
    // boto3 (and so the AWS CLI) reads it from there.
    at_prompt(
        &terminal,
        r#"$PY -c 'import boto3; print("boto3-%s" % boto3.session.Session().region_name)'"#,
        &format!("boto3-{DEPLOY_REGION}"),
    );
}

#[test]
fn in_bash_the_region_follows_a_switch_at_the_next_prompt() {
    the_region_follows_a_switch_at_the_next_prompt(
        "bash",
        &["--norc", "--noprofile", "-i"],
        r#"eval "$(credd env --hook bash)""#,
    );
}

#[test]
fn in_zsh_the_region_follows_a_switch_at_the_next_prompt() {
    the_region_follows_a_switch_at_the_next_prompt(
        "zsh",
        &["-f", "-i"],
        r#"eval "$(credd env --hook zsh)""#,
    );
}

#[test]
fn in_fish_the_region_follows_a_switch_at_the_next_prompt() {
    the_region_follows_a_switch_at_the_next_prompt(
        "fish",
        &["--no-config", "-i"],
        "credd env --hook fish | source",
    );
}

#[test]
fn a_hooked_shell_pinned_to_a_profile_keeps_its_region() {
    let mut stack = offline("");
    with_credd_on_path(&mut stack.world);
    let bash = shell("bash").display().to_string();
    let terminal = Terminal::open();
    let _bash = interactive(
        &stack.world,
        &terminal,
        &bash,
        &["--norc", "--noprofile", "-i"],
    );
    at_prompt(&terminal, "echo ready-$((1+1))", "ready-2");
    at_prompt(&terminal, r#"eval "$(credd env --hook bash)""#, "");
    at_prompt(
        &terminal,
        r#"eval "$(credd env deploy --shell bash)" && echo pinned-$((1))"#,
        "pinned-1",
    );
    at_prompt(
        &terminal,
        "credd switch staging",
        "current profile: staging",
    );
    at_prompt(
        &terminal,
        r#"echo "region-$((2))=<$AWS_REGION>""#,
        &format!("region-2=<{DEPLOY_REGION}>"),
    );
}

#[test]
fn credd_env_in_an_rc_file_never_logs_in_and_still_prints_the_exports() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    // On a terminal, where it used to ask for the MFA code.
    let terminal = Terminal::open();
    let mut command = stack.world.command(client_bin());
    command
        .args(["env", "--shell", "sh"])
        .env("CREDD_NO_AUTOSTART", "1");
    terminal.attach(&mut command);
    let out = Running::start(command, "credd env (on a terminal)".into()).wait(SHOWN);
    assert_env_without_login(&out);
    assert!(
        !terminal.screen().contains("MFA code"),
        "{}",
        terminal.screen()
    );
    // And without one.
    let out = stack
        .world
        .credd_without_terminal(&["env", "--shell", "sh"], None);
    assert_env_without_login(&out);
    assert_eq!(stack.proxy().calls("GetSessionToken"), 0);
}

#[track_caller]
fn assert_env_without_login(out: &CmdOutput) {
    out.assert_success();
    assert_eq!(
        out.stderr, "credd: not logged in: run `credd login`\n",
        "{out}"
    );
    assert!(
        out.stdout
            .contains("export AWS_CONTAINER_CREDENTIALS_FULL_URI="),
        "{out}"
    );
}

#[test]
fn exec_runs_a_command_as_a_shell_does_with_credd_profile_set() {
    let served = served("");
    let world = &served.world;
    let script = r#"echo "$CREDD_PROFILE $AWS_REGION $1""#;
    for args in [
        &["exec", "deploy", "sh", "-c", script, "sh", "--json"][..],
        &["exec", "deploy", "--", "sh", "-c", script, "sh", "--json"][..],
    ] {
        let out = world.credd(args);
        out.assert_success();
        assert_eq!(
            out.stdout,
            format!("deploy {DEPLOY_REGION} --json\n"),
            "{out}"
        );
    }

    let out = world.credd(&["exec", "deploy", "no-such-command-anywhere", "-x"]);
    out.assert_code(127);
    assert_eq!(
        out.stderr,
        "credd: cannot run no-such-command-anywhere: command not found\n"
    );
    let out = world.credd(&["--json", "exec", "deploy", "no-such-command-anywhere"]);
    out.assert_code(127);
    let e: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(e["code"], "Exec", "{out}");
    let script = world.home.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    let out = world.credd(&["exec", "deploy", "./not-executable.sh"]);
    out.assert_code(126);
    assert!(
        out.stderr
            .starts_with("credd: cannot run ./not-executable.sh: Permission denied")
            && out.stderr.lines().count() == 1,
        "{out}"
    );
}

/// `credd exec PROFILE touch FILE` fails (exit 1) with `reason` in its message, and FILE is not
/// there: the command never ran.
#[track_caller]
fn exec_refused(stack: &Stack, profile: &str, reason: &str) {
    let marker = stack.world.home.join("ran");
    let out = stack
        .world
        .credd(&["exec", profile, "touch", &marker.display().to_string()]);
    out.assert_code(1);
    assert!(
        out.stderr.starts_with(&format!(
            "credd: profile {profile} has no credentials to give: "
        )) && out.stderr.contains(reason)
            && out.stderr.lines().count() == 1,
        "{out}"
    );
    assert!(!marker.exists(), "the command never ran: {out}");
}

#[test]
fn exec_of_a_failing_profile_fails_with_its_reason_before_running_the_command() {
    // A profile whose refresh fails (STS answers 503): its own error.
    let stack = Stack::staging_and_audit(Access::Key);
    stack
        .world
        .wait_profile_state("staging", "fresh", PROMPT_DEADLINE);
    stack.proxy().set_mode(ProxyMode::Down);
    stack.write_config(Toml {
        profiles: &format!(
            "{STAGING_AND_AUDIT}\n[profiles.ops]\nrole_arn = \"{ADMIN}\"\nsession_name = \"ops\"\n"
        ),
        ..Toml::default()
    });
    stack.world.credd(&["reload"]).assert_success();
    stack
        .world
        .wait_profile_state("ops", "failing", PROMPT_DEADLINE);
    exec_refused(&stack, "ops", "ServiceUnavailable");
    stack
        .world
        .credd(&["exec", "staging", "true"])
        .assert_success();

    // The access session failing (the key refused, here STS down): every profile says so.
    let mut stack = Stack::builder()
        .toml(Toml {
            profiles: STAGING_AND_AUDIT,
            ..Toml::default()
        })
        .build();
    stack.proxy().set_mode(ProxyMode::Down);
    stack.world.start_daemon();
    wait_until(PROMPT_DEADLINE, "the access session to fail", || {
        stack.world.status()["access"]["last_error"].is_string()
    });
    exec_refused(
        &stack,
        "staging",
        "the access session failed: STS in us-east-1",
    );
}

#[test]
fn with_json_every_error_is_json_on_stderr_with_the_same_exit_code() {
    let stack = offline("");
    let world = &stack.world;
    let json_error = |out: &CmdOutput| -> serde_json::Value {
        assert_eq!(out.stdout, "", "{out}");
        serde_json::from_str(out.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not one JSON document ({e}): {out}"))
    };
    let out = world.credd(&["--json", "switch", "nope"]);
    out.assert_code(1);
    let e = json_error(&out);
    assert_eq!(e["code"], "UnknownProfile");
    assert!(e["message"].as_str().unwrap().contains("staging"), "{e}");

    let out = world.credd_without_terminal(&["--json", "switch"], None);
    out.assert_code(2);
    assert_eq!(
        json_error(&out),
        serde_json::json!({
            "code": "Usage",
            "message": "the following required arguments were not provided: <PROFILE>"
        })
    );

    let nobody = World::new();
    let out = nobody.credd(&["--json", "status"]);
    out.assert_code(1);
    let e = json_error(&out);
    assert_eq!(e["code"], "NotRunning");
    assert!(
        e["message"].as_str().unwrap().contains("cannot reach"),
        "{e}"
    );
}
