//! `credd console`: the browser is handed the daemon's one-shot page, not the sign-in URL; the
//! page's address is in the browser's argv, which every local user can read, so another user
//! tries it first.

use std::time::Duration;

use super::as_attacker;
use crate::console::{
    assert_used_up, login_query, only_request_since, page_of, recording_browser, start,
};
use credd_tests::http;
use credd_tests::stack::{Access, READY_DEADLINE};
use credd_tests::system_python;
use credd_tests::wait_until;

const FETCH: &str = include_str!("scripts/fetch.py");

#[test]
fn another_user_who_reads_the_browsers_argv_gets_no_answer_from_the_console_page() {
    credd_tests::require_root("acting as another user");
    let (mut stack, federation) = start(Access::Key);
    let opened = recording_browser(&mut stack);
    stack.wait_all_fresh(READY_DEADLINE);
    let world = &stack.world;
    world.credd(&["console", "staging"]).assert_success();
    wait_until(Duration::from_secs(10), "the browser to be started", || {
        opened.exists()
    });
    let handed = std::fs::read_to_string(&opened).expect("the browser's argv");
    let (page, path) = page_of(&handed);

    // The attacker, with the address from /proc/PID/cmdline, before the owner's browser.
    let out = as_attacker(system_python())
        .args(["-c", FETCH])
        .arg(page.ip().to_string())
        .arg(page.port().to_string())
        .arg(&path)
        .arg("Sec-Fetch-Site: none")
        .output()
        .expect("run the attacker's request");
    let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(got.starts_with("no answer"), "the attacker got: {got}");

    // The owner's browser still gets its one redirect.
    let reply = http::request(page, "GET", &path, &[("Sec-Fetch-Site", "none")]);
    assert_eq!(reply.status, 303, "{reply:?}");
    let request = only_request_since(&federation, 0);
    let query = login_query(&federation, reply.header("location").expect("a Location"));
    assert_eq!(query[3].1, request.token.expect("a token"));
    assert_used_up(page, &path);
}
