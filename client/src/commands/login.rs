//! `credd login`: asks the daemon to log in. When it answers that an MFA code is needed, asks the
//! user (on the terminal, never echoing into logs) and tries again. When it answers with a browser
//! or device authorization (Identity Center, the company's OpenID provider), shows it, opens the
//! browser where that makes sense, and waits for the daemon to see it approved; when it answers
//! that it runs the SAML `assertion_command`, waits for that. Ctrl-C abandons either.
//!
//! Progress goes to stderr, the result to stdout, so `credd login --json > result.json` works.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{
    AccessInfo, Authorization, BrowserLogin, LoginMethod, Request, Response, Secret,
};
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;
use zeroize::Zeroize;

use super::{ask, ask_within, unexpected};
use crate::browser;
use crate::error::ClientError;
use crate::output::{self, relative, when};

/// The exit code of a login the user interrupted (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: u8 = 130;

/// `LoginWait` is answered when the authorization ends, at the latest when it expires; the wait
/// allows this much more, for the daemon's last poll and its warm-up of the profiles. With the
/// device grant's 10 minutes, the client gives up after 11.
const WAIT_MARGIN: Duration = Duration::from_secs(60);

/// What the user asked of `credd login`. No `Debug`: it holds the MFA code as typed.
#[derive(Default)]
pub struct Options {
    /// `--mfa-code`: the code, or `-` to read it from stdin.
    pub mfa_code: Option<String>,
    /// `--browser` / `--device-code`; `None`: the config's `sso_login` decides.
    pub method: Option<LoginMethod>,
    /// `--region`: authorize this replica Region instead of the home Region.
    pub region: Option<String>,
    /// `--no-open`: show the URL, never open it here.
    pub no_open: bool,
}

pub fn run(paths: &Paths, json: bool, opts: Options) -> Result<ExitCode, ClientError> {
    let code = match opts.mfa_code.as_deref() {
        Some("-") => Some(read_code_line(&mut std::io::stdin().lock())?),
        Some(c) => Some(Secret::new(c)),
        None => None,
    };
    let display = browser::can_open_here();
    let browser = BrowserLogin {
        method: opts.method,
        display,
        region: opts.region.clone(),
    };
    let request = Request::Login {
        mfa_code: code,
        browser: browser.clone(),
    };
    let mut answer = ask(paths, &request)?;
    if let Response::MfaRequired { serial } = &answer {
        let code = prompt_code(serial)?;
        answer = ask(
            paths,
            &Request::Login {
                mfa_code: Some(code),
                browser,
            },
        )?;
    }
    let answer = match answer {
        Response::AuthorizationPending(authorization) => {
            // Watched from before anything is shown: a Ctrl-C from here on cancels cleanly.
            let interrupts = Interrupts::watch()?;
            let opened = show(&authorization, &opts, display, json);
            if json {
                eprintln!("{}", authorization_line(&authorization, opened));
            }
            match wait(paths, &authorization, interrupts)? {
                Some(answer) => answer,
                // A login that joined another one's authorization only stops waiting: the
                // `credd login` that started it is still waiting for the user.
                None if authorization.joined => {
                    eprintln!(
                        "stopped waiting; the login started elsewhere goes on (`credd login --cancel` ends it)"
                    );
                    return Ok(ExitCode::from(EXIT_CANCELLED));
                }
                None => return cancel_after_interrupt(paths),
            }
        }
        other => other,
    };
    let Response::LoggedIn {
        access,
        profiles_ready,
        profiles,
    } = answer
    else {
        return Err(unexpected(&request, answer));
    };
    if json {
        output::json(&serde_json::json!({
            "access": access,
            "profiles_ready": profiles_ready,
            "profiles": profiles,
        }));
    } else {
        print(&access, profiles_ready, profiles);
    }
    Ok(ExitCode::SUCCESS)
}

/// `credd login --cancel`: abandons a pending browser or device authorization.
pub fn cancel(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let cancelled = send_cancel(paths)?;
    if json {
        output::json(&serde_json::json!({ "cancelled": cancelled }));
    } else if cancelled {
        println!("login cancelled");
    } else {
        println!("no login was waiting for approval");
    }
    Ok(ExitCode::SUCCESS)
}

fn send_cancel(paths: &Paths) -> Result<bool, ClientError> {
    let request = Request::LoginCancel;
    match ask(paths, &request)? {
        Response::LoginCancelled { cancelled } => Ok(cancelled),
        other => Err(unexpected(&request, other)),
    }
}

/// Ctrl-C while waiting: tell the daemon on a fresh connection (the waiting one is busy), then
/// exit as an interrupted program does.
fn cancel_after_interrupt(paths: &Paths) -> Result<ExitCode, ClientError> {
    match send_cancel(paths) {
        Ok(true) => eprintln!("login cancelled"),
        // It ended just before the cancel arrived (approved, refused or expired).
        Ok(false) => {
            eprintln!("login cancelled (it had already ended; `credd status` shows the session)")
        }
        Err(e) => eprintln!("login cancelled here, but telling credd-daemon failed: {e}"),
    }
    Ok(ExitCode::from(EXIT_CANCELLED))
}

/// Tells the user what to approve where (stderr), and opens the browser when that helps.
/// Returns whether a browser was started.
fn show(auth: &Authorization, opts: &Options, display: bool, json: bool) -> bool {
    let open_here = !opts.no_open
        && match auth.method {
            LoginMethod::Browser => true,
            // An SSH user opens the device URL elsewhere; a browser here would be unseen.
            LoginMethod::Device => display,
            LoginMethod::Command => false,
        };
    let opened = open_here && browser::open(&auth.url);
    if !json {
        eprint!("{}", describe(auth, opts, opened));
    }
    opened
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
                out.push_str(&format!(
                    "and check that the page shows this code:\n\n    {code}\n\n"
                ));
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

/// How long `LoginWait` may take: until the authorization expires, plus [`WAIT_MARGIN`].
fn wait_timeout(expires_at: u64, now: u64) -> Duration {
    Duration::from_secs(expires_at.saturating_sub(now)).saturating_add(WAIT_MARGIN)
}

/// SIGINT, delivered to a thread as an event instead of killing the process. A second Ctrl-C
/// (say the cancel itself hangs) ends the process the default way.
struct Interrupts {
    signals: Signals,
}

impl Interrupts {
    fn watch() -> Result<Interrupts, ClientError> {
        let signals = Signals::new([SIGINT]).map_err(ClientError::Signals)?;
        Ok(Interrupts { signals })
    }
}

/// Sends `LoginWait` from a thread and waits for whichever comes first: its answer, or a Ctrl-C
/// (`None`).
fn wait(
    paths: &Paths,
    auth: &Authorization,
    interrupts: Interrupts,
) -> Result<Option<Response>, ClientError> {
    // `Some(answer)` from the waiting thread, `None` from the signal thread.
    let (tx, rx) = mpsc::channel::<Option<Result<Response, ClientError>>>();
    let timeout = wait_timeout(auth.expires_at, output::now());
    let waiter = tx.clone();
    let paths = paths.clone();
    std::thread::spawn(move || {
        let answer = ask_within(&paths, &Request::LoginWait, timeout);
        let _ = waiter.send(Some(answer));
    });
    let mut signals = interrupts.signals;
    std::thread::spawn(move || {
        let mut pending = signals.forever();
        if pending.next().is_some() {
            let _ = tx.send(None);
        }
        if pending.next().is_some() {
            let _ = signal_hook::low_level::emulate_default_handler(SIGINT);
        }
    });
    // Both senders gone without a word cannot happen (the waiter always sends): treat it as an
    // interruption, which at worst cancels an authorization no one waits for.
    rx.recv().unwrap_or(None).transpose()
}

fn print(info: &AccessInfo, ready: usize, total: usize) {
    match &info.sso {
        Some(sso) => {
            println!(
                "logged in to IAM Identity Center {} ({}) in {}",
                sso.session_name, sso.start_url, sso.region
            );
            if let Some(t) = sso.session_ends_at.or(info.expires_at) {
                println!(
                    "session ends {}; until then the access token is refreshed in the background",
                    when(t)
                );
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
                (Some(t), Some(how)) => println!(
                    "logged in as {who}; the session is renewed {how} (this one ends {})",
                    relative(t)
                ),
                (Some(t), None) if info.federation.is_some() => println!(
                    "logged in as {who}; session ends {}: run `credd login` again then",
                    relative(t)
                ),
                (Some(t), None) => println!("logged in as {who}; session ends {}", relative(t)),
                (None, _) => println!("logged in as {who}"),
            }
        }
    }
    if ready < total {
        println!(
            "{ready} of {total} profiles ready; `credd status` shows why the others are not (still fetching, or failing)"
        );
    } else if total > 0 {
        println!("{total} profiles ready");
    }
    if let Some(w) = &info.warning {
        eprintln!("warning: {w}");
    }
}

fn read_code_line(input: &mut impl BufRead) -> Result<Secret, ClientError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(ClientError::MfaCodeUnreadable)?;
    let code = Secret::new(line.trim());
    line.zeroize();
    if code.is_empty() {
        return Err(ClientError::MfaCodeEmpty);
    }
    Ok(code)
}

/// Prompts on the controlling terminal; a script without one must pass `--mfa-code -`.
fn prompt_code(serial: &str) -> Result<Secret, ClientError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty");
    match tty {
        Ok(mut tty) if std::io::stdin().is_terminal() || tty.is_terminal() => {
            let _ = write!(tty, "MFA code for {serial}: ");
            let _ = tty.flush();
            read_code_line(&mut std::io::BufReader::new(tty))
        }
        _ => Err(ClientError::MfaNoTerminal {
            serial: serial.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(joined: bool) -> Authorization {
        Authorization {
            method: LoginMethod::Device,
            url: "https://device.sso.us-east-1.amazonaws.com/?user_code=ABCD-EFGH".into(),
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
            text.contains(
                "\n    https://device.sso.us-east-1.amazonaws.com/?user_code=ABCD-EFGH\n"
            ),
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
            url: "https://oidc.eu-west-1.amazonaws.com/authorize?response_type=code&state=s".into(),
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
    fn the_wait_outlasts_the_authorization() {
        assert_eq!(wait_timeout(1_000 + 600, 1_000), Duration::from_secs(660));
        // Already expired (or a clock step): still the margin, never an underflow.
        assert_eq!(wait_timeout(1_000, 2_000), WAIT_MARGIN);
    }
}
