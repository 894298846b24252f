//! The config as a user edits it: a valid edit saved the way editors save (new file renamed over
//! the old) is applied live; an invalid one is reported with `file:line:col` and what was
//! expected, in `credd status`, `credd reload` and the log, while the last good config stays in
//! force; and the daemon refuses to start on an invalid config, saying exactly where.
//!
//! No STS is needed: the worlds hold no access key, so the daemon never calls one.

use std::fs;
use std::path::Path;
use std::time::Duration;

use credd_tests::wait_until;
use credd_tests::world::World;

use credd_tests::stack::OFFLINE_CONFIG as CONFIG;

/// The watcher debounces for 200 ms; generous for a loaded 2-core machine.
const APPLY_DEADLINE: Duration = Duration::from_secs(10);

fn running_world() -> World {
    let mut world = World::new();
    world.write_config(CONFIG);
    world.start_daemon();
    world
}

/// Saves `text` as editors do: write a new file beside the config, then rename it over.
fn save_like_an_editor(world: &World, text: &str) {
    let tmp = world.config_path.with_extension("toml.swp");
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, &world.config_path)
        .unwrap_or_else(|e| panic!("rename over {}: {e}", world.config_path.display()));
}

/// `path:line:col:` as config errors start: where `|` stands in `needle`, at the first place
/// `needle` (without the `|`) occurs in `text`; line and column are 1-based, the column counts
/// characters.
fn location(path: &Path, text: &str, needle: &str) -> String {
    let mark = needle.find('|').unwrap_or(0);
    let plain = needle.replacen('|', "", 1);
    let offset = text
        .find(&plain)
        .unwrap_or_else(|| panic!("{plain:?} is not in the config"))
        + mark;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{}:{line}:{col}:", path.display())
}

fn profile_names(world: &World) -> Vec<String> {
    let out = world.credd(&["--json", "profiles"]);
    out.assert_success().json()["profiles"]
        .as_array()
        .unwrap_or_else(|| panic!("profiles is not a list: {out}"))
        .iter()
        .map(|p| p["name"].as_str().expect("a profile has a name").to_owned())
        .collect()
}

fn config_error(world: &World) -> Option<String> {
    let status = world.credd(&["--json", "status"]);
    status.assert_success().json()["config"]["error"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn edit_saved_by_renaming_over_the_config_is_applied_without_reload() {
    let world = running_world();
    assert_eq!(profile_names(&world), ["prod-audit", "staging"]);
    let edited = format!(
        "{CONFIG}\n[profiles.sandbox]\nrole_arn = \"arn:aws:iam::444444444444:role/Dev\"\n"
    );
    save_like_an_editor(&world, &edited);
    wait_until(APPLY_DEADLINE, "the new profile to be listed", || {
        profile_names(&world).contains(&"sandbox".to_owned())
    });
    world.credd(&["switch", "sandbox"]).assert_success();
    assert_eq!(config_error(&world), None);
    assert!(
        world.daemon_log().contains("config applied"),
        "{}",
        world.daemon_log()
    );
}

#[test]
fn edit_written_in_place_is_applied_too() {
    let world = running_world();
    assert_eq!(profile_names(&world), ["prod-audit", "staging"]);
    world.write_config(&CONFIG.replace("[profiles.prod-audit]", "[profiles.prod-readonly]"));
    wait_until(APPLY_DEADLINE, "the renamed profile to be listed", || {
        profile_names(&world) == ["prod-readonly", "staging"]
    });
}

#[test]
fn edit_saved_while_the_daemon_starts_is_not_missed() {
    // Saved as soon as the socket accepts connections: after start-up read the config, and
    // possibly before the watch began.
    let world = running_world();
    world.write_config(&CONFIG.replace("[profiles.prod-audit]", "[profiles.prod-readonly]"));
    wait_until(APPLY_DEADLINE, "the renamed profile to be listed", || {
        profile_names(&world) == ["prod-readonly", "staging"]
    });
}

#[test]
fn invalid_edit_is_reported_and_last_good_config_stays() {
    let world = running_world();
    let bad = CONFIG.replace("222222222222:role/Administrator", "2222:role/Administrator");
    let at = location(&world.config_path, &bad, "role_arn = |\"arn:aws:iam::2222:");
    save_like_an_editor(&world, &bad);

    wait_until(APPLY_DEADLINE, "status to report the rejected edit", || {
        config_error(&world).is_some()
    });
    let error = config_error(&world).expect("reported");
    assert!(error.starts_with(&at), "expected {at} ..., got {error}");
    assert!(
        error.contains("role_arn") && error.contains("12 digits"),
        "{error}"
    );

    let text = world.credd(&["status"]);
    assert!(text.assert_success().stdout.contains("REJECTED"), "{text}");
    assert!(text.stdout.contains(&at), "{text}");

    let reload = world.credd(&["reload"]);
    reload.assert_code(1);
    assert!(reload.stderr.contains(&at), "{reload}");
    assert!(
        reload.stderr.contains("previous config stays in force"),
        "{reload}"
    );

    // The last good config is still the one in force.
    assert_eq!(profile_names(&world), ["prod-audit", "staging"]);
    world.credd(&["switch", "prod-audit"]).assert_success();
    let log = world.daemon_log();
    assert!(log.contains("config edit rejected"), "{log}");
    assert!(log.contains(&at), "{log}");
}

#[test]
fn fixing_a_rejected_edit_applies_it_and_clears_the_error() {
    let world = running_world();
    save_like_an_editor(
        &world,
        &CONFIG.replace("via = \"staging\"", "via = \"stagign\""),
    );
    wait_until(APPLY_DEADLINE, "the typo to be reported", || {
        config_error(&world).is_some_and(|e| e.contains("\"stagign\" is not a configured profile"))
    });
    let fixed = CONFIG.replace("[profiles.prod-audit]", "[profiles.prod]");
    save_like_an_editor(&world, &fixed);
    wait_until(APPLY_DEADLINE, "the fixed config to be applied", || {
        config_error(&world).is_none() && profile_names(&world) == ["prod", "staging"]
    });
}

#[test]
fn reload_applies_an_edit_at_once_and_reports_the_profile_count() {
    let world = running_world();
    let edited = CONFIG.replace("[profiles.prod-audit]", "[profiles.prod]");
    save_like_an_editor(&world, &edited);
    let reload = world.credd(&["--json", "reload"]);
    let answer = reload.assert_success().json();
    assert_eq!(answer["profiles"], 2, "{reload}");
    assert_eq!(
        answer["path"].as_str(),
        Some(world.config_path.display().to_string().as_str())
    );
    assert_eq!(profile_names(&world), ["prod", "staging"]);
}

#[test]
fn removing_the_current_profile_falls_back_to_the_default_profile() {
    let world = running_world();
    world.credd(&["switch", "prod-audit"]).assert_success();
    let without = CONFIG.replace("[profiles.prod-audit]", "[profiles.other]");
    save_like_an_editor(&world, &without);
    world.credd(&["reload"]).assert_success();
    let profiles = world.credd(&["--json", "profiles"]);
    assert_eq!(
        profiles.assert_success().json()["current"].as_str(),
        Some("staging"),
        "{profiles}"
    );
}

/// Each case: what is wrong, the bad config, where the error points (see [`location`]), words
/// the message must hold.
struct BadConfig {
    what: &'static str,
    text: String,
    at: &'static str,
    says: &'static [&'static str],
}

fn bad_configs() -> Vec<BadConfig> {
    let case = |what, text: String, at, says| BadConfig {
        what,
        text,
        at,
        says,
    };
    vec![
        case(
            "a role ARN of a user",
            CONFIG.replace("role/Administrator", "user/alice"),
            "\"arn:aws:iam::222222222222:user/alice\"",
            &["role_arn", "role/"],
        ),
        case(
            "an unknown via target",
            CONFIG.replace("via = \"staging\"", "via = \"nope\""),
            "\"nope\"",
            &["via = \"nope\" is not a configured profile", "staging"],
        ),
        case(
            "a via cycle",
            CONFIG.replace(
                "region = \"us-west-2\"",
                "region = \"us-west-2\"\nvia = \"prod-audit\"",
            ),
            "[profiles.prod-audit]\nrole_arn = \"arn:aws:iam::333333333333:role/Auditor\"\nvia = |\"staging\"",
            &["cycle", "prod-audit -> staging -> prod-audit"],
        ),
        case(
            "a duration beyond the STS limit",
            CONFIG.replace(
                "region = \"us-west-2\"",
                "region = \"us-west-2\"\nduration = \"13h\"",
            ),
            "\"13h\"",
            &["duration", "between 15m and 12h"],
        ),
        case(
            "a listen address that is not loopback",
            CONFIG.replace("127.0.0.1:0", "0.0.0.0:9911"),
            "\"0.0.0.0:9911\"",
            &["not a loopback address"],
        ),
        case(
            "an unknown key",
            CONFIG.replace("region = \"us-west-2\"", "regoin = \"us-west-2\""),
            "regoin",
            &["unknown field", "regoin"],
        ),
        case(
            "a TOML syntax error",
            CONFIG.replace("[access]", "[access"),
            "[access|\n",
            &["expected `]`"],
        ),
        case(
            "a default profile that is not configured",
            CONFIG.replace(
                "default_profile = \"staging\"",
                "default_profile = \"prod\"",
            ),
            "\"prod\"",
            &["default_profile", "prod-audit, staging"],
        ),
        case(
            "a profile that goes via itself",
            CONFIG.replace("via = \"staging\"", "via = \"prod-audit\""),
            "via = |\"prod-audit\"",
            &["via names the profile itself"],
        ),
        case(
            "a session beyond GetSessionToken's limit",
            CONFIG.replace(
                "aws_profile = \"access\"",
                "aws_profile = \"access\"\nsession_duration = \"37h\"",
            ),
            "\"37h\"",
            &["session_duration", "between 15m and 1day 12h"],
        ),
        case(
            "a min_remaining no credential outlives",
            CONFIG.replace(
                "listen = \"127.0.0.1:0\"",
                "listen = \"127.0.0.1:0\"\nmin_remaining = \"2h\"",
            ),
            "\"2h\"",
            &["leaves nothing usable", "lower min_remaining"],
        ),
    ]
}

#[test]
fn daemon_refuses_to_start_on_an_invalid_config_naming_file_line_col() {
    for case in bad_configs() {
        let mut world = World::new();
        world.write_config(&case.text);
        let at = location(&world.config_path, &case.text, case.at);
        let failed = world
            .try_start_daemon(&[])
            .expect_err(&format!("the daemon started despite {}", case.what));
        assert_eq!(
            failed.status.and_then(|s| s.code()),
            Some(1),
            "{}: {failed}",
            case.what
        );
        let line = failed
            .log
            .lines()
            .find(|l| l.starts_with("credd-daemon: "))
            .unwrap_or_else(|| panic!("{}: no error line in {failed}", case.what));
        assert!(
            line.starts_with(&format!("credd-daemon: {at}")),
            "{}: expected {at}, got {line}",
            case.what
        );
        for word in case.says {
            assert!(line.contains(word), "{}: {word:?} not in {line}", case.what);
        }
        assert!(
            !world.socket_path().exists(),
            "{}: a socket was left",
            case.what
        );
    }
}

#[test]
fn invalid_edit_of_each_kind_is_kept_out_of_a_running_daemon() {
    let world = running_world();
    for case in bad_configs() {
        save_like_an_editor(&world, &case.text);
        let at = location(&world.config_path, &case.text, case.at);
        let reload = world.credd(&["reload"]);
        reload.assert_code(1);
        assert!(
            reload.stderr.contains(&at),
            "{}: expected {at}: {reload}",
            case.what
        );
        assert_eq!(
            profile_names(&world),
            ["prod-audit", "staging"],
            "{}",
            case.what
        );
    }
}

#[test]
fn missing_config_refuses_start_saying_where_it_was_looked_for() {
    let mut world = World::new();
    let failed = world
        .try_start_daemon(&[])
        .expect_err("no config, no daemon");
    assert!(
        failed.log.contains(&format!(
            "{}: no config file here",
            world.config_path.display()
        )),
        "{failed}"
    );
}

#[test]
fn config_flag_overrides_the_environment() {
    let mut world = World::new();
    let elsewhere = world.root.join("elsewhere.toml");
    fs::write(
        &elsewhere,
        CONFIG.replace("[profiles.prod-audit]", "[profiles.flagged]"),
    )
    .expect("write the other config");
    let arg = elsewhere.display().to_string();
    world
        .try_start_daemon(&["--config", &arg])
        .unwrap_or_else(|failed| panic!("{failed}"));
    // The clients from here on name the daemon's file (a client naming another is refused).
    world.set_env("CREDD_CONFIG", &arg);
    assert_eq!(profile_names(&world), ["flagged", "staging"]);
    let status = world.credd(&["--json", "status"]);
    assert_eq!(
        status.assert_success().json()["paths"]["config"].as_str(),
        Some(arg.as_str())
    );
}

#[test]
fn edit_of_a_symlinked_config_in_a_dotfiles_dir_is_applied_live() {
    let mut world = World::new();
    let dotfiles = world.root.join("dotfiles");
    fs::create_dir_all(&dotfiles).expect("create the dotfiles dir");
    let target = dotfiles.join("credd.toml");
    fs::write(&target, CONFIG).expect("write the real config");
    fs::create_dir_all(world.config_path.parent().expect("config dir")).expect("config dir");
    std::os::unix::fs::symlink(&target, &world.config_path).expect("symlink the config");
    world.start_daemon();

    let tmp = dotfiles.join("credd.toml.swp");
    fs::write(
        &tmp,
        CONFIG.replace("[profiles.prod-audit]", "[profiles.prod]"),
    )
    .expect("write the edit");
    fs::rename(&tmp, &target).expect("rename over the real config");
    wait_until(
        APPLY_DEADLINE,
        "the edit behind the symlink to be applied",
        || profile_names(&world) == ["prod", "staging"],
    );
}

#[test]
fn deleting_the_config_keeps_the_last_good_one_and_says_so() {
    let world = running_world();
    fs::remove_file(&world.config_path).expect("delete the config");
    wait_until(APPLY_DEADLINE, "status to report the missing file", || {
        config_error(&world).is_some_and(|e| e.contains("the config file is gone"))
    });
    assert_eq!(profile_names(&world), ["prod-audit", "staging"]);
    // Putting it back is an edit like any other.
    save_like_an_editor(&world, CONFIG);
    wait_until(APPLY_DEADLINE, "the error to clear", || {
        config_error(&world).is_none()
    });
}

#[test]
fn a_config_dir_deleted_and_made_again_is_watched_again_and_applied() {
    let world = running_world();
    let dir = world.config_path.parent().expect("the config's dir");
    fs::remove_dir_all(dir).expect("delete the config dir");
    wait_until(APPLY_DEADLINE, "status to say the config is gone", || {
        config_error(&world).is_some_and(|e| e.contains("the config file is gone"))
    });
    let error = config_error(&world).expect("reported");
    assert!(
        error.contains("stays in force until a valid one is back"),
        "{error}"
    );
    // The last good config is still the one in force.
    assert_eq!(profile_names(&world), ["prod-audit", "staging"]);
    world.credd(&["switch", "prod-audit"]).assert_success();

    fs::create_dir(dir).expect("make the config dir again");
    let edited = format!(
        "{CONFIG}\n[profiles.sandbox]\nrole_arn = \"arn:aws:iam::444444444444:role/Dev\"\n"
    );
    world.write_config(&edited);
    wait_until(APPLY_DEADLINE, "the recreated config to be applied", || {
        profile_names(&world).contains(&"sandbox".to_owned())
    });
    assert_eq!(config_error(&world), None);
    let status = world.credd(&["status"]);
    assert!(
        status.assert_success().stdout.contains("sandbox"),
        "{status}"
    );
    // And the new dir is watched too: a further edit there is applied.
    save_like_an_editor(&world, CONFIG);
    wait_until(APPLY_DEADLINE, "the next edit in the new dir", || {
        !profile_names(&world).contains(&"sandbox".to_owned())
    });
}

#[test]
fn an_unknown_profile_names_the_rejected_edit_that_adds_it() {
    let world = running_world();
    let bad =
        format!("{CONFIG}\n[profiles.sandbox]\nrol_arn = \"arn:aws:iam::444444444444:role/Dev\"\n");
    save_like_an_editor(&world, &bad);
    wait_until(APPLY_DEADLINE, "status to report the rejected edit", || {
        config_error(&world).is_some()
    });
    let rejected = config_error(&world).expect("reported");
    let switch = world.credd(&["switch", "sandbox"]);
    switch.assert_code(1);
    assert!(
        switch
            .stderr
            .contains("unknown profile \"sandbox\": the config's last edit was rejected"),
        "{switch}"
    );
    assert!(switch.stderr.contains(&rejected), "{switch}");
    // The HTTP API's 404 says the same.
    let url = world.status()["url"]
        .as_str()
        .expect("serving HTTP")
        .to_owned();
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let token = world.http_token();
    let reply = credd_tests::http::request(
        addr,
        "GET",
        "/v1/credentials/sandbox",
        &[("Authorization", &token)],
    );
    assert_eq!(reply.assert_error(404), "UnknownProfile");
    let message = reply.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains(&rejected), "{message}");
}

#[test]
fn a_typo_among_many_profiles_gets_a_suggestion_and_a_short_list() {
    let mut world = World::new();
    let many: String = (0..150)
        .map(|i| {
            format!(
                "[profiles.account-{i:03}]\nrole_arn = \"arn:aws:iam::222222222222:role/R{i}\"\n"
            )
        })
        .collect();
    world.write_config(&format!(
        "{CONFIG}\n{many}[profiles.prod]\nrole_arn = \"arn:aws:iam::333333333333:role/Deployer\"\n"
    ));
    world.start_daemon();
    let switch = world.credd(&["switch", "prdo"]);
    switch.assert_code(1);
    assert!(switch.stderr.contains("did you mean \"prod\"?"), "{switch}");
    assert!(
        switch
            .stderr
            .contains("and 143 more (`credd profiles` lists them)"),
        "{switch}"
    );
    assert!(
        switch.stderr.len() < 400,
        "{} bytes: {switch}",
        switch.stderr.len()
    );
}

#[test]
fn reading_the_config_is_not_taken_for_an_edit() {
    let mut world = World::new();
    world.set_env("CREDD_LOG", "info,credd_daemon=debug");
    world.write_config(CONFIG);
    world.start_daemon();
    world.credd(&["reload"]).assert_success();
    // Every reload reads the file. Were that taken for a change, the daemon would reload every
    // debounce period (200 ms) forever: watch several periods for it (absence has no event
    // to wait for).
    std::thread::sleep(Duration::from_millis(1500));
    let changes = world.daemon_log().matches("config file changed").count();
    assert!(
        changes <= 1,
        "the daemon re-read its config {changes} times by itself:\n{}",
        world.daemon_log()
    );
}
