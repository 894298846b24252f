//! `credd login`: asks the daemon to log in. When it answers that an MFA code is needed, asks the
//! user (on the terminal, never echoing into logs) and tries again. When it answers with a browser
//! or device authorization (Identity Center, the company's OpenID provider), shows it, opens the
//! browser where that makes sense, and waits for the daemon to see it approved; when it answers
//! that it runs the SAML `assertion_command`, waits for that. Ctrl-C abandons either.
//!
//! Progress goes to stderr, the result to stdout, so `credd login --json > result.json` works.
//!
//! The same flow runs on demand ([`on_demand`]) when `credd exec`, `credd env` or
//! `credd credential-process` find the access session missing or over: then the prompts, the
//! instructions and the result all go to the controlling terminal, because stdout and stderr
//! belong to the caller (botocore reads `credential_process`'s stdout as JSON).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{
    AccessInfo, Authorization, BrowserLogin, LoginMethod, Request, Response, Secret,
};
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;
use zeroize::Zeroizing;

use super::{ask, ask_within, unexpected};
use crate::browser;
use crate::error::ClientError;
use crate::output::{self, relative, when};
use crate::terminal::Terminal;

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
    let mut console = Console {
        terminal: Terminal::controlling(),
        progress_on_terminal: false,
        json,
    };
    let (access, profiles_ready, profiles) = match log_in(paths, &opts, code, &mut console)? {
        Ended::LoggedIn {
            access,
            profiles_ready,
            profiles,
        } => (access, profiles_ready, profiles),
        Ended::Stopped(code) => return Ok(code),
    };
    if json {
        output::json(&serde_json::json!({
            "access": access,
            "profiles_ready": profiles_ready,
            "profiles": profiles,
        }));
    } else {
        print!("{}", summary(&access, profiles_ready, profiles));
        if let Some(w) = &access.warning {
            eprintln!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A login on demand, for `credd exec`, `credd env` and `credd credential-process` (`verb`, as
/// the user typed it) when the access session is missing or over: the flow of `credd login`, its
/// prompts, instructions and result on the controlling terminal. `Ok(None)`: logged in (or
/// another `credd` did meanwhile), go on; `Ok(Some(code))`: interrupted, exit with `code`.
/// Without a terminal it fails at once, never waits: with `reason` (the daemon's
/// `LoginRequired` message; `None`: asked of the daemon) and the instruction to run
/// `credd login`.
pub fn on_demand(
    paths: &Paths,
    verb: &str,
    reason: Option<String>,
) -> Result<Option<ExitCode>, ClientError> {
    match Terminal::controlling() {
        Some(terminal) => on_terminal(paths, verb, terminal),
        None => Err(ClientError::LoginNoTerminal {
            reason: reason.unwrap_or_else(|| why_logged_out(paths)),
        }),
    }
}

/// [`on_demand`] with `terminal` to talk on. Logins on demand take turns (a file lock in the
/// runtime dir): `make -j` or Terraform starting several `credd` at once gets one MFA prompt, and
/// those that waited go on with the session it made.
fn on_terminal(
    paths: &Paths,
    verb: &str,
    terminal: Terminal,
) -> Result<Option<ExitCode>, ClientError> {
    let mut console = Console {
        terminal: Some(terminal),
        progress_on_terminal: true,
        json: false,
    };
    let _turn = take_turn(paths, &mut console)?;
    if !still_needed(paths)? {
        return Ok(None);
    }
    console.say(&format!(
        "credd: {verb} needs the access session, which is missing or over: logging in.\n"
    ));
    match log_in(paths, &Options::default(), None, &mut console)? {
        Ended::LoggedIn {
            access,
            profiles_ready,
            profiles,
        } => {
            console.say(&summary(&access, profiles_ready, profiles));
            if let Some(w) = &access.warning {
                console.say(&format!("warning: {w}\n"));
            }
            Ok(None)
        }
        Ended::Stopped(code) => Ok(Some(code)),
    }
}

/// Waits for the login on demand another `credd` is making, then holds the turn until dropped
/// (the lock goes with the process: a killed `credd` never leaves it held). The holder writes its
/// session ID in the file: one that shares it shares the terminal (a terminal belongs to one
/// session), where the prompt is already showing; any other says what it waits for.
fn take_turn(paths: &Paths, console: &mut Console) -> Result<File, ClientError> {
    let path = paths.runtime_dir.join(TURN_FILE);
    let turn_error = |source| ClientError::LoginTurn {
        path: path.clone(),
        source,
    };
    // Private, and never through a link: the runtime dir is checked as ours, this is belt and
    // braces for a file that outlives any one `credd`.
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(turn_error)?;
    // One an older credd made with the umask's mode.
    let _ = file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    // SAFETY: getsid(0) asks about this process; it cannot fail for it.
    let session = unsafe { libc::getsid(0) }.to_string();
    if file.try_lock().is_err() {
        let holder = holder_session(&mut file);
        if holder.is_some_and(|holder| holder != session) {
            console.say("credd: waiting for the login under way in another terminal.\n");
        }
        file.lock().map_err(turn_error)?;
    }
    // Only a hint for the next waiter: a failure to write it costs a message, nothing more.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all_at(session.as_bytes(), 0));
    Ok(file)
}

/// The session ID the turn's holder wrote, once it has (it takes the lock first, then writes):
/// `None` when it has not within a moment, and then nothing is said.
fn holder_session(file: &mut File) -> Option<String> {
    for _ in 0..20 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        if !holder.is_empty() {
            return Some(holder);
        }
        std::thread::sleep(Duration::from_millis(10));
        let _ = std::io::Seek::rewind(file);
    }
    None
}

/// Whether the daemon still waits for the user (the `credd` that had the turn before may have
/// logged in).
fn still_needed(paths: &Paths) -> Result<bool, ClientError> {
    let request = Request::Endpoint { profile: None };
    match ask(paths, &request)? {
        Response::Endpoint(info) => Ok(info.needs_login),
        other => Err(unexpected(&request, other)),
    }
}

/// Why there is no session, as the daemon's `LoginRequired` says it: ``not logged in (the
/// access session has expired): run `credd login` ``.
fn why_logged_out(paths: &Paths) -> String {
    let detail = match ask(paths, &Request::Status) {
        Ok(Response::Status(report)) => report.access.last_error,
        _ => None,
    };
    match detail {
        Some(d) => format!("not logged in ({d}): run `credd login`"),
        None => "not logged in: run `credd login`".to_owned(),
    }
}

/// In the runtime dir: held by the login on demand under way.
const TURN_FILE: &str = "login-on-demand.lock";

/// How a login ended.
enum Ended {
    LoggedIn {
        access: Box<AccessInfo>,
        profiles_ready: usize,
        profiles: usize,
    },
    /// Ctrl-C: what happened was said; exit with this code.
    Stopped(ExitCode),
}

/// The login itself, for `credd login` and the logins on demand: asks the daemon; asks the user
/// for an MFA code when the daemon needs one; shows a browser or device authorization, or the
/// SAML command the daemon runs, and waits for it to end.
fn log_in(
    paths: &Paths,
    opts: &Options,
    code: Option<Secret>,
    console: &mut Console,
) -> Result<Ended, ClientError> {
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
        let code = console.ask_code(serial)?;
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
            show(&authorization, opts, display, console);
            match wait(paths, &authorization, interrupts)? {
                Some(answer) => answer,
                // A login that joined another one's authorization only stops waiting: the
                // `credd login` that started it is still waiting for the user.
                None if authorization.joined => {
                    console.say(
                        "stopped waiting; the login started elsewhere goes on (`credd login \
                         --cancel` ends it)\n",
                    );
                    return Ok(Ended::Stopped(ExitCode::from(EXIT_CANCELLED)));
                }
                None => return Ok(Ended::Stopped(cancel_after_interrupt(paths, console))),
            }
        }
        other => other,
    };
    match answer {
        Response::LoggedIn {
            access,
            profiles_ready,
            profiles,
        } => Ok(Ended::LoggedIn {
            access,
            profiles_ready,
            profiles,
        }),
        other => Err(unexpected(&request, other)),
    }
}

/// Where a login talks with the user.
struct Console {
    /// Where an MFA code is asked for; `None`: there is no terminal to ask on.
    terminal: Option<Terminal>,
    /// The instructions and progress go to the terminal (a login on demand), else to stderr.
    progress_on_terminal: bool,
    /// `credd login --json`: a pending authorization is one JSON line on stderr instead.
    json: bool,
}

impl Console {
    fn say(&mut self, text: &str) {
        match &mut self.terminal {
            Some(terminal) if self.progress_on_terminal => terminal.say(text),
            _ => eprint!("{text}"),
        }
    }

    fn ask_code(&mut self, serial: &str) -> Result<Secret, ClientError> {
        match &mut self.terminal {
            Some(terminal) => terminal.ask_code(serial),
            // A script without one must pass `--mfa-code -`.
            None => Err(ClientError::MfaNoTerminal {
                serial: serial.to_owned(),
            }),
        }
    }
}

impl Terminal {
    fn ask_code(&mut self, serial: &str) -> Result<Secret, ClientError> {
        self.say(&format!("MFA code for {serial}: "));
        read_code_line(&mut self.input)
    }
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

/// Ctrl-C while waiting: tell the daemon on a fresh connection (the waiting one is busy); the
/// exit code of an interrupted program.
fn cancel_after_interrupt(paths: &Paths, console: &mut Console) -> ExitCode {
    match send_cancel(paths) {
        Ok(true) => console.say("login cancelled\n"),
        // It ended just before the cancel arrived (approved, refused or expired).
        Ok(false) => console
            .say("login cancelled (it had already ended; `credd status` shows the session)\n"),
        Err(e) => {
            console.say(&format!(
                "login cancelled here, but telling credd-daemon failed: {e}\n"
            ));
        }
    }
    ExitCode::from(EXIT_CANCELLED)
}

/// Tells the user what to approve where, and opens the browser when that helps.
fn show(auth: &Authorization, opts: &Options, display: bool, console: &mut Console) {
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

/// What a login made, for people: who, until when, and how many profiles are ready.
fn summary(info: &AccessInfo, ready: usize, total: usize) -> String {
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
        line(format!("{total} profiles ready"));
    }
    out
}

/// The longest line read as an MFA code (codes are 6 digits; the rest is slack for spaces).
const MAX_CODE_LINE: usize = 64;

/// One line of `input`, the MFA code, kept only in buffers wiped on drop: read a byte at a time
/// into room reserved beforehand, so neither a reader's buffer nor a reallocation leaves a copy.
fn read_code_line(input: &mut impl Read) -> Result<Secret, ClientError> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_CODE_LINE));
    let mut byte = Zeroizing::new([0u8; 1]);
    loop {
        match input.read(&mut byte[..]) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() < MAX_CODE_LINE => line.push(byte[0]),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ClientError::MfaCodeUnreadable(e)),
        }
    }
    // Not UTF-8 is not a code: the daemon refuses the replacement characters as such.
    let code = Secret::new(String::from_utf8_lossy(&line).trim());
    if code.is_empty() {
        return Err(ClientError::MfaCodeEmpty);
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A terminal whose keyboard types `typed` and whose screen is shared with the test.
    fn terminal(typed: &str) -> (Terminal, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Screen(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Screen {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let screen = Screen(Default::default());
        let shown = screen.0.clone();
        let keyboard = std::io::Cursor::new(typed.as_bytes().to_vec());
        (Terminal::new(keyboard, screen), shown)
    }

    #[test]
    fn the_code_is_asked_and_read_on_the_terminal_one_line_at_a_time() {
        let (terminal, screen) = terminal("123456\r\nnext line\n");
        let mut console = Console {
            terminal: Some(terminal),
            progress_on_terminal: true,
            json: false,
        };
        console.say("logging in.\n");
        let code = console.ask_code("arn:aws:iam::1:mfa/alice").unwrap();
        assert_eq!(code.expose(), "123456");
        let shown = String::from_utf8(screen.lock().unwrap().clone()).unwrap();
        assert_eq!(
            shown,
            "logging in.\nMFA code for arn:aws:iam::1:mfa/alice: "
        );
        // Only the code's line was read: what follows is left to whoever reads next.
        let Some(terminal) = console.terminal.as_mut() else {
            unreachable!()
        };
        let mut rest = String::new();
        terminal.input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "next line\n");
    }

    #[test]
    fn an_empty_or_endless_line_is_no_code_and_no_terminal_says_how_to_pass_one() {
        let (terminal, _) = terminal("\n");
        let mut console = Console {
            terminal: Some(terminal),
            progress_on_terminal: false,
            json: false,
        };
        assert!(matches!(
            console.ask_code("s"),
            Err(ClientError::MfaCodeEmpty)
        ));
        // Ctrl-D at the prompt.
        assert!(matches!(
            read_code_line(&mut std::io::empty()),
            Err(ClientError::MfaCodeEmpty)
        ));
        let long = format!("{}\n", "9".repeat(10_000));
        let code = read_code_line(&mut long.as_bytes()).unwrap();
        assert_eq!(code.expose().len(), MAX_CODE_LINE, "capped, never grown");
        let mut console = Console {
            terminal: None,
            progress_on_terminal: false,
            json: false,
        };
        let e = console.ask_code("arn:aws:iam::1:mfa/alice").unwrap_err();
        assert!(e.to_string().contains("--mfa-code -"), "{e}");
    }

    #[test]
    fn the_summary_says_who_until_when_and_how_many_profiles_are_ready() {
        let info = AccessInfo {
            source: "iam-user".into(),
            logged_in: true,
            identity: Some("arn:aws:iam::111111111111:user/alice".into()),
            expires_at: Some(output::now() + 3 * 3600 + 30),
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
            "logged in as arn:aws:iam::111111111111:user/alice; session ends in 3h0m\n\
             2 profiles ready\n"
        );
        assert!(summary(&info, 1, 2).contains("1 of 2 profiles ready"));
    }

    #[test]
    fn the_wait_outlasts_the_authorization() {
        assert_eq!(wait_timeout(1_000 + 600, 1_000), Duration::from_secs(660));
        // Already expired (or a clock step): still the margin, never an underflow.
        assert_eq!(wait_timeout(1_000, 2_000), WAIT_MARGIN);
    }
}
