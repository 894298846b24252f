//! What a login shows: the pending authorization (for people, or one JSON line for a program),
//! the browser opened where that helps, and the summary of the session it made.

use credd_proto::{AccessInfo, Authorization, LoginMethod};

use super::Options;
use super::console::Console;
use crate::browser;
use crate::output::{relative, when};

/// Tells the user what to approve where, and opens the browser when that helps.
pub(super) fn show(auth: &Authorization, opts: &Options, display: bool, console: &mut Console) {
    let open_here = !opts.no_open
        && match auth.method {
            LoginMethod::Browser => true,
            // An SSH user opens the device URL elsewhere; a browser here would be unseen.
            LoginMethod::Device => display,
            LoginMethod::Command => false,
        };
    let opened = open_here && browser::open(&auth.url);
    if console.json {
        eprintln!("{}", authorization_line(auth, opened));
    } else {
        console.say(&describe(auth, opts, opened));
    }
}

/// The text `credd login` shows for a pending authorization.
fn describe(auth: &Authorization, opts: &Options, opened: bool) -> String {
    let mut out = String::new();
    if auth.joined {
        out.push_str("This joins a login already under way (another `credd login` started it).\n");
        if let Some(note) = mismatch(auth, opts) {
            out.push_str(&note);
            out.push('\n');
        }
    }
    let until = when(auth.expires_at);
    match auth.method {
        LoginMethod::Browser => {
            out.push_str(&format!(
                "Waiting for you to sign in to {} in your browser, until {until}.\n",
                auth.provider
            ));
            if opened {
                out.push_str(
                    "Your browser was opened. If it shows no sign-in page, open this URL in a \
                     browser on this machine:\n",
                );
            } else {
                out.push_str("Open this URL in a browser on this machine to sign in:\n");
            }
            out.push_str(&format!("\n    {}\n\n", auth.url));
        }
        LoginMethod::Device => {
            out.push_str(&format!(
                "To sign in to {}, open this URL on any device{}:\n\n    {}\n\n",
                auth.provider,
                if opened {
                    " (opened in your browser)"
                } else {
                    ""
                },
                auth.url
            ));
            if let Some(code) = &auth.user_code {
                out.push_str(&format!("and enter this code there:\n\n    {code}\n\n"));
            }
            out.push_str(&format!("Waiting for approval until {until}.\n"));
        }
        LoginMethod::Command => {
            out.push_str(&format!(
                "credd-daemon is running {} for a SAML assertion:\n\n    {}\n\nWaiting for it \
                 until {until}.\n",
                auth.provider, auth.url
            ));
        }
    }
    out.push_str("Ctrl-C cancels.\n");
    out
}

/// When a joined authorization is not what this `login` asked for, says so and how to get that.
fn mismatch(auth: &Authorization, opts: &Options) -> Option<String> {
    let mut differs = Vec::new();
    if let Some(method) = opts.method.filter(|m| *m != auth.method) {
        differs.push(format!(
            "it uses {} rather than {}",
            method_name(auth.method),
            method_name(method)
        ));
    }
    if let (Some(region), Some(theirs)) = (opts.region.as_deref(), auth.region.as_deref())
        && region != theirs
    {
        differs.push(format!("it authorizes {theirs} rather than {region}"));
    }
    if differs.is_empty() {
        return None;
    }
    Some(format!(
        "Note: {}; run `credd login --cancel` first to start the login you asked for.",
        differs.join(" and ")
    ))
}

fn method_name(method: LoginMethod) -> &'static str {
    match method {
        LoginMethod::Browser => "the browser sign-in",
        LoginMethod::Device => "a device code",
        LoginMethod::Command => "assertion_command",
    }
}

/// `--json`: the authorization as one JSON line on stderr, for a program that shows the URL and
/// code itself. Neither carries a secret: the PKCE verifier and every token stay in the daemon.
fn authorization_line(auth: &Authorization, browser_opened: bool) -> String {
    let mut value = serde_json::to_value(auth).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("kind".into(), "authorization_pending".into());
        map.insert("browser_opened".into(), browser_opened.into());
    }
    value.to_string()
}

/// What a login made, for people: who, until when, and how many profiles are ready.
pub(super) fn summary(info: &AccessInfo, ready: usize, total: usize) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    match &info.sso {
        Some(sso) => {
            line(format!(
                "logged in to IAM Identity Center {} ({}) in {}",
                sso.session_name, sso.start_url, sso.region
            ));
            if let Some(t) = sso.session_ends_at.or(info.expires_at) {
                line(format!(
                    "session ends {}; until then the access token is refreshed in the background",
                    when(t)
                ));
            }
        }
        None => {
            let mut who = info
                .identity
                .as_deref()
                .unwrap_or("(identity unknown)")
                .to_owned();
            if let Some(user) = info.federation.as_ref().and_then(|f| f.who.as_deref()) {
                who = format!("{who} ({user})");
            }
            match (info.expires_at, &info.renews) {
                (Some(t), Some(how)) => line(format!(
                    "logged in as {who}; the session is renewed {how} (this one ends {})",
                    relative(t)
                )),
                (Some(t), None) if info.federation.is_some() => line(format!(
                    "logged in as {who}; session ends {}: run `credd login` again then",
                    relative(t)
                )),
                (Some(t), None) => {
                    line(format!("logged in as {who}; session ends {}", relative(t)))
                }
                (None, _) => line(format!("logged in as {who}")),
            }
        }
    }
    if ready < total {
        line(format!(
            "{ready} of {total} profiles ready; `credd status` shows why the others are not (still fetching, or failing)"
        ));
    } else if total > 0 {
        line(format!(
            "{} ready",
            credd_proto::human::count(total, "profile", "profiles")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output;

    fn device(joined: bool) -> Authorization {
        Authorization {
            method: LoginMethod::Device,
            url: "https://device.sso.us-east-1.amazonaws.com/".into(),
            user_code: Some("ABCD-EFGH".into()),
            provider: "IAM Identity Center (us-east-1)".into(),
            region: Some("us-east-1".into()),
            expires_at: output::now() + 600,
            joined,
        }
    }

    #[test]
    fn device_login_shows_url_and_code_prominently() {
        let text = describe(&device(false), &Options::default(), false);
        assert!(
            text.contains("\n    https://device.sso.us-east-1.amazonaws.com/\n"),
            "{text}"
        );
        assert!(text.contains("\n    ABCD-EFGH\n"), "{text}");
        assert!(text.contains("(us-east-1)"), "{text}");
        assert!(text.contains("until "), "{text}");
        assert!(!text.contains("joins"), "{text}");
        assert!(text.ends_with("Ctrl-C cancels.\n"), "{text}");
    }

    #[test]
    fn browser_login_says_what_it_waits_for_and_gives_the_url() {
        let auth = Authorization {
            method: LoginMethod::Browser,
            url: "http://127.0.0.1:41234/oauth/start".into(),
            user_code: None,
            provider: "IAM Identity Center (eu-west-1)".into(),
            region: Some("eu-west-1".into()),
            expires_at: output::now() + 600,
            joined: false,
        };
        let opened = describe(&auth, &Options::default(), true);
        assert!(
            opened.contains("sign in to IAM Identity Center (eu-west-1) in your browser, until")
        );
        assert!(opened.contains("Your browser was opened"));
        assert!(opened.contains(&auth.url));
        let not_opened = describe(&auth, &Options::default(), false);
        assert!(not_opened.contains("Open this URL in a browser on this machine"));
    }

    #[test]
    fn a_joined_login_says_so_and_what_differs_from_the_request() {
        let asked = Options {
            method: Some(LoginMethod::Browser),
            region: Some("us-west-2".into()),
            ..Options::default()
        };
        let text = describe(&device(true), &asked, false);
        assert!(
            text.starts_with("This joins a login already under way"),
            "{text}"
        );
        assert!(
            text.contains(
                "it uses a device code rather than the browser sign-in and it authorizes \
                 us-east-1 rather than us-west-2; run `credd login --cancel` first"
            ),
            "{text}"
        );
        let same = Options {
            method: Some(LoginMethod::Device),
            ..Options::default()
        };
        assert_eq!(mismatch(&device(true), &same), None);
    }

    #[test]
    fn json_line_is_one_line_with_the_authorization() {
        let line = authorization_line(&device(false), true);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "authorization_pending");
        assert_eq!(v["method"], "device");
        assert_eq!(v["user_code"], "ABCD-EFGH");
        assert_eq!(v["browser_opened"], true);
        assert_eq!(v["joined"], false);
    }

    #[test]
    fn the_summary_says_who_until_when_and_how_many_profiles_are_ready() {
        let info = AccessInfo {
            source: "iam-user".into(),
            logged_in: true,
            identity: Some("arn:aws:iam::111111111111:user/alice".into()),
            expires_at: Some(output::now() + 3 * 3600 + 20),
            mfa_serial: None,
            sts_region: None,
            warning: None,
            last_error: None,
            session_storage: None,
            sso: None,
            federation: None,
            pending: None,
            key: None,
            renews: None,
        };
        assert_eq!(
            summary(&info, 2, 2),
            "logged in as arn:aws:iam::111111111111:user/alice; session ends in 3h\n\
             2 profiles ready\n"
        );
        assert!(summary(&info, 1, 1).ends_with("\n1 profile ready\n"));
        assert!(summary(&info, 1, 2).contains("1 of 2 profiles ready"));
    }
}
