//! `credd docker run|env|revoke|setup`: credentials for local containers. The daemon makes a
//! grant (a random capability) pinned to a profile and serves a container on its network's
//! gateway only while the engine says that container's own environment holds a live grant; this
//! side hands the grant to docker through docker's environment (never a command line), runs it,
//! and revokes a grant no container took. `env` prints a standing grant as an env file for
//! compose and devcontainers.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

use credd_proto::docker::{DEFAULT_PORT, GRANT_ENV, Grant, GrantRequest, RevokeRequest};
use credd_proto::paths::Paths;
use credd_proto::{ErrorCode, Request, Response};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::env::endpoint;
use super::{ask, login, unexpected};
use crate::error::ClientError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Run a container (`docker run ARGS`) that gets PROFILE's credentials, and only it.
    ///
    /// Everything after credd's own options is `docker run`'s: its options, the image, the
    /// command (`--` before them is optional). The daemon makes a one-shot grant pinned to
    /// `--profile` (default: the current profile, as it is now: `credd switch` later changes
    /// nothing inside), and credd runs `docker run -e CREDD_GRANT -e
    /// AWS_EC2_METADATA_SERVICE_ENDPOINT=... ARGS` with the grant in docker's own environment,
    /// never on a command line. The first container that presents the grant takes it; its SDKs
    /// reach credd's IMDS endpoint on the network's gateway (http://172.17.0.1:9912/ on the
    /// default bridge), which answers no other container and no program on the host. When the
    /// container stops, its grant is gone.
    ///
    /// `--network NAME` (or `--net`) among docker's options picks the network whose gateway
    /// serves the container; `host`, `none` and `container:...` are refused (exit 2), saying
    /// what to do instead. The docker program is $CREDD_DOCKER (e.g. `podman`), else `docker`
    /// on PATH; DOCKER_HOST is passed on to the daemon, so that it asks the same engine.
    ///
    /// Ctrl-C and Ctrl-\ go to docker (which passes them to the container), not to credd. When
    /// docker ends, a grant no container took is revoked (a `-d` container keeps its own).
    /// Without an access session, logs in first on the terminal, as `credd exec` does.
    ///
    /// Exit codes: docker's own (128+N when signal N ended it), 1 the daemon refused or could
    /// not be reached, 2 usage (a refused network), 126 docker cannot run, 127 docker not found.
    #[command(verbatim_doc_comment, disable_version_flag = true)]
    Run {
        /// The profile the container gets (default: the current one, pinned as it is now).
        #[arg(long, value_name = "PROFILE")]
        profile: Option<String>,
        /// `docker run`'s options, the image and the container's command.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "DOCKER_RUN_ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Print an env file that gives containers PROFILE's credentials (a standing grant).
    ///
    /// For `docker run --env-file FILE`, compose's `env_file:` and devcontainer.json's
    /// `"runArgs": ["--env-file", "FILE"]`: every container started with it gets PROFILE's
    /// credentials (default: the current profile, pinned as it is now) while it runs, until
    /// `credd docker revoke ID` (the file's first lines give the ID). `--network NAME`: the
    /// Docker network those containers join (default: the default bridge); its gateway is
    /// where they reach credd.
    ///
    /// The file holds the grant (CREDD_GRANT), a secret: write it where only you can read it,
    /// `(umask 077; credd docker env PROFILE > .credd.env)`, and keep it out of version
    /// control. `--json` prints the grant: {"secret", "id", "profile", "endpoint", "network",
    /// "region", "standing", "environment": {NAME: VALUE}} (CREDD_GRANT included).
    #[command(verbatim_doc_comment)]
    Env {
        /// The profile the containers get (default: the current one, pinned as it is now).
        profile: Option<String>,
        /// The Docker network the containers join (default: the default bridge).
        #[arg(long, value_name = "NAME")]
        network: Option<String>,
    },
    /// Revoke a grant (or every one, `--all`) and cut off the containers holding it.
    ///
    /// ID is the grant's, as `credd status` and the env file name it. `--json` prints
    /// {"grants": [ID...], "containers": N}.
    #[command(
        verbatim_doc_comment,
        group = clap::ArgGroup::new("which").required(true).args(["id", "all"])
    )]
    Revoke {
        /// The grant to revoke.
        id: Option<String>,
        /// Every grant, standing and one-shot.
        #[arg(long)]
        all: bool,
    },
    /// Check that credd can serve containers, and say where they reach it.
    ///
    /// Checks that the Docker engine answers (the daemon's view once it has made a grant; before
    /// that, its socket from DOCKER_HOST, else /var/run/docker.sock, tried from here) and that
    /// the docker program is there; prints where credd listens for containers; and prints the
    /// one-time root step the container-credentials route (169.254.170.2) would take, which
    /// credd does not need: containers reach it through the IMDS endpoint, without root.
    /// `--json` prints {"engine", "engine_error", "endpoints", "docker", "docker_error",
    /// "container_route"}.
    ///
    /// Exit codes: 0 ready, 1 the engine cannot be reached or docker is missing.
    #[command(verbatim_doc_comment)]
    Setup,
}

pub fn run(paths: &Paths, json: bool, action: Action) -> Result<ExitCode, ClientError> {
    match action {
        Action::Run { profile, args } => run_container(paths, profile, args),
        Action::Env { profile, network } => env(paths, json, profile, network),
        Action::Revoke { id, all } => revoke(paths, json, id, all),
        Action::Setup => setup(paths, json),
    }
}

// ---- run ---------------------------------------------------------------------------------

fn run_container(
    paths: &Paths,
    profile: Option<String>,
    args: Vec<OsString>,
) -> Result<ExitCode, ClientError> {
    // Refused before the daemon is asked for anything.
    let network = match network(&args) {
        Network::Default => None,
        Network::Named(name) => Some(name),
        Network::Unservable(network) => {
            return Err(ClientError::DockerNetwork { network, profile });
        }
        Network::NoValue(flag) => return Err(ClientError::DockerNetworkMissing { flag }),
    };
    // A container that finds no credentials fails in ways that do not say why: log in first.
    if needs_login(paths, &profile)?
        && let Some(code) = login::on_demand(paths, "`credd docker run`", None)?
    {
        return Ok(code);
    }
    let grant = ask_grant(paths, &grant_request(profile, network, false))?;
    let program = docker_program();
    let mut cmd = Command::new(&program);
    cmd.args(docker_args(&grant, &args));
    // `-e CREDD_GRANT` without a value: docker copies it from its own environment.
    cmd.env(GRANT_ENV, grant.secret.expose());
    let interrupts = Interrupts::ignore();
    interrupts.restore_in(&mut cmd);
    let status = cmd.spawn().map(|mut child| child.wait());
    // credd's own dispositions back before the revoke: one that hangs can be interrupted.
    drop(interrupts);
    revoke_unclaimed(paths, &grant.id);
    match status {
        Ok(Ok(status)) => Ok(ExitCode::from(exit_code(status))),
        Ok(Err(source)) => Err(ClientError::Wait { program, source }),
        Err(source) => Err(ClientError::Exec { program, source }),
    }
}

/// What `docker run`'s arguments say about the container's network.
#[derive(Debug, PartialEq, Eq)]
pub enum Network {
    /// No `--network`: the engine's default bridge.
    Default,
    Named(String),
    /// `host`, `none`, `container:NAME` (podman's `ns:PATH` too): no address of the container's
    /// own behind a Docker gateway, nothing credd could serve it on.
    Unservable(String),
    /// `--network` (or `--net`, as typed) with nothing after it.
    NoValue(String),
}

/// `docker run`'s (and `podman run`'s) options that take no value. Any other option takes one:
/// `--opt=VALUE`, or the next argument unless that is an option itself. A scan that knows which
/// is which finds the image, where docker's options end.
const FLAGS: &[&str] = &[
    "detach",
    "disable-content-trust",
    "help",
    "init",
    "interactive",
    "no-healthcheck",
    "oom-kill-disable",
    "privileged",
    "publish-all",
    "quiet",
    "read-only",
    "rm",
    "sig-proxy",
    "tty",
    // podman's own
    "env-host",
    "http-proxy",
    "no-hosts",
    "passwd",
    "read-only-tmpfs",
    "replace",
    "rmi",
    "rootfs",
    "tls-verify",
];

/// The one-letter options that take a value (`-e`, `-v`, `-p`...); the others (`-d`, `-i`,
/// `-t`, `-P`, `-q`) are flags, and may be grouped (`-it`, `-dp 80:80`).
const SHORT_WITH_VALUE: &str = "acehlmpuvw";

/// The network `docker run ARGS` puts the container on: the first `--network X`,
/// `--network=X`, `--net X` or `--net=X` among docker's options. The scan ends at the image (the
/// first argument that is neither an option nor an option's value) or at `--`: what follows is
/// the container's command and its arguments, never docker's.
pub fn network<S: AsRef<OsStr>>(args: &[S]) -> Network {
    let args: Vec<Cow<str>> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    let is_option = |arg: &str| arg.len() > 1 && arg.starts_with('-');
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "--" || !is_option(arg) {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            if name == "network" || name == "net" {
                let value = inline.or_else(|| {
                    args.get(i)
                        .map(|next| next.as_ref())
                        .filter(|next| !is_option(next))
                });
                return named(&format!("--{name}"), value);
            }
            if inline.is_none()
                && !FLAGS.contains(&name)
                && args.get(i).is_some_and(|next| !is_option(next))
            {
                i += 1;
            }
        } else {
            // `-it`, `-e X`, `-eX`, `-dp 80:80`: the first letter that takes a value takes the
            // rest of the group, or else the next argument.
            let letters = &arg[1..];
            if let Some(at) = letters.find(|c| SHORT_WITH_VALUE.contains(c))
                && at + 1 == letters.len()
                && args.get(i).is_some_and(|next| !is_option(next))
            {
                i += 1;
            }
        }
    }
    Network::Default
}

/// The network `flag`'s `value` names: a name, or docker's `name=NAME,alias=...` form.
fn named(flag: &str, value: Option<&str>) -> Network {
    let name = match value {
        Some(value) if value.contains('=') => value
            .split(',')
            .find_map(|field| field.strip_prefix("name=")),
        value => value,
    };
    match name {
        None | Some("") => Network::NoValue(flag.to_owned()),
        Some("default") => Network::Default,
        Some(name @ ("host" | "none")) => Network::Unservable(name.to_owned()),
        Some(name) if name.starts_with("container:") || name.starts_with("ns:") => {
            Network::Unservable(name.to_owned())
        }
        Some(name) => Network::Named(name.to_owned()),
    }
}

/// `docker run -e CREDD_GRANT -e NAME=VALUE... ARGS`: the grant by name only, its value in
/// docker's environment; the other variables are not secret.
pub fn docker_args(grant: &Grant, args: &[OsString]) -> Vec<OsString> {
    let mut all: Vec<OsString> = vec!["run".into(), "-e".into(), GRANT_ENV.into()];
    for (name, value) in grant.environment() {
        all.push("-e".into());
        all.push(format!("{name}={value}").into());
    }
    all.extend(args.iter().cloned());
    all
}

/// `$CREDD_DOCKER` (`podman`), else `docker` on PATH.
fn docker_program() -> OsString {
    std::env::var_os("CREDD_DOCKER")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "docker".into())
}

/// The engine the user's docker talks to, for the daemon to ask the same one.
fn docker_host() -> Option<String> {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty())
}

/// docker's exit code as a shell reports it: its own, or 128+N when signal N ended it.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

/// SIGINT and SIGQUIT ignored in credd while docker runs, as system(3) does: Ctrl-C at the
/// terminal reaches docker (which passes it on to the container) and credd stays to revoke the
/// grant afterwards. docker starts with the dispositions credd had (an ignored SIGINT would
/// otherwise stay ignored across exec); dropping this gives them back to credd too. Whole
/// `sigaction`s are kept, not just handlers: a login on demand may have left signal-hook's
/// SA_SIGINFO handler on SIGINT.
struct Interrupts {
    previous: [(libc::c_int, libc::sigaction); 2],
}

impl Interrupts {
    fn ignore() -> Interrupts {
        let ignore_one = |signal| {
            // SAFETY: plain sigaction(2) calls on zeroed structs; SIG_IGN is a valid
            // disposition for both signals. On failure `previous` stays zeroed: SIG_DFL.
            unsafe {
                let mut ignore: libc::sigaction = std::mem::zeroed();
                ignore.sa_sigaction = libc::SIG_IGN;
                let mut previous: libc::sigaction = std::mem::zeroed();
                libc::sigaction(signal, &ignore, &mut previous);
                (signal, previous)
            }
        };
        Interrupts {
            previous: [ignore_one(libc::SIGINT), ignore_one(libc::SIGQUIT)],
        }
    }

    /// Has `cmd`'s child take the dispositions credd had before [`Interrupts::ignore`].
    fn restore_in(&self, cmd: &mut Command) {
        let previous = self.previous;
        // SAFETY: only sigaction(2), which is async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for (signal, action) in &previous {
                    libc::sigaction(*signal, action, std::ptr::null_mut());
                }
                Ok(())
            });
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for (signal, action) in &self.previous {
            // SAFETY: the dispositions `ignore` found, given back as they were.
            unsafe { libc::sigaction(*signal, action, std::ptr::null_mut()) };
        }
    }
}

/// Drops the grant of `credd docker run` unless a container took it (a `-d` container keeps
/// running with its own). A failure is only said: docker's exit code is what the caller wants.
fn revoke_unclaimed(paths: &Paths, id: &str) {
    let request = Request::DockerRevoke(RevokeRequest {
        id: Some(id.to_owned()),
        all: false,
        unclaimed_only: true,
    });
    match ask(paths, &request) {
        Ok(Response::DockerRevoked { .. }) => {}
        Ok(other) => eprintln!("credd: {}", unexpected(&request, other)),
        Err(e) => eprintln!(
            "credd: could not revoke the grant docker did not use ({e}); `credd docker revoke \
             {id}` does"
        ),
    }
}

/// Whether the access session is missing or over and only the user can make it, as `credd
/// exec` asks. The loopback HTTP API not running (its port taken) says nothing about that, and
/// containers do not use it: then the grant goes ahead.
fn needs_login(paths: &Paths, profile: &Option<String>) -> Result<bool, ClientError> {
    match endpoint(paths, profile.clone()) {
        Ok(info) => Ok(info.needs_login),
        Err(ClientError::Daemon(e)) if e.code == ErrorCode::Unavailable => Ok(false),
        Err(e) => Err(e),
    }
}

/// A grant for `profile` (`None`: the current one) on `network` (`None`: the default bridge).
fn grant_request(profile: Option<String>, network: Option<String>, standing: bool) -> Request {
    Request::DockerGrant(GrantRequest {
        profile,
        network,
        standing,
        docker_host: docker_host(),
    })
}

fn ask_grant(paths: &Paths, request: &Request) -> Result<Grant, ClientError> {
    match ask(paths, request)? {
        Response::DockerGrant(grant) => Ok(grant),
        other => Err(unexpected(request, other)),
    }
}

// ---- env ---------------------------------------------------------------------------------

fn env(
    paths: &Paths,
    json: bool,
    profile: Option<String>,
    network: Option<String>,
) -> Result<ExitCode, ClientError> {
    if needs_login(paths, &profile)? {
        // The file works once `credd login` has run: say so, and print it all the same.
        eprintln!("credd: not logged in: run `credd login`");
    }
    let shown_network = network.as_ref().map(|n| format!(" --network {n}"));
    let request = grant_request(profile, network, true);
    let grant = ask_grant(paths, &request)?;
    if json {
        output::json(&GrantJson {
            grant: &grant,
            environment: Environment(&grant),
        });
        return Ok(ExitCode::SUCCESS);
    }
    let Some(file) = env_file(&grant) else {
        return Err(unexpected(&request, Response::DockerGrant(grant)));
    };
    if std::io::stdout().is_terminal() {
        let network = shown_network.unwrap_or_default();
        eprintln!(
            "credd: this holds a secret (CREDD_GRANT): write it to a file only you can read, and \
             keep it out of version control:\n  (umask 077; credd docker env {}{network} > \
             .credd.env)    # mode 0600 from the start, or chmod 600 .credd.env at once",
            grant.profile
        );
    }
    print!("{}", file.as_str());
    Ok(ExitCode::SUCCESS)
}

/// `--json`: the grant, and the whole environment a container needs.
#[derive(Serialize)]
struct GrantJson<'a> {
    #[serde(flatten)]
    grant: &'a Grant,
    environment: Environment<'a>,
}

/// Every variable a container needs, [`GRANT_ENV`] included, as a JSON object written straight
/// from the grant (no map of copies of the secret to drop unwiped).
struct Environment<'a>(&'a Grant);

impl Serialize for Environment<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let vars = self.0.environment();
        let mut map = serializer.serialize_map(Some(vars.len() + 1))?;
        for (name, value) in &vars {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry(GRANT_ENV, self.0.secret.expose())?;
        map.end()
    }
}

/// The env file of a standing grant: what it is, its ID and how to revoke it in `#` comments,
/// then `NAME=VALUE` lines as `docker run --env-file` and compose read them (no quoting: the
/// value is the rest of the line). `None` when a value cannot be written so (a line break).
pub fn env_file(grant: &Grant) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::new());
    let o = &mut *out;
    let kind = if grant.standing {
        "Any number of containers may use it"
    } else {
        "One container may use it"
    };
    // Writing into a String cannot fail.
    let _ = writeln!(
        o,
        "# credd docker env: containers started with this file get profile {}'s credentials from \
         credd,\n# on Docker network {} ({}). For `docker run --env-file`, compose's `env_file:`, \
         devcontainer.json's\n# \"runArgs\": [\"--env-file\", ...].\n# Grant {}. {kind} until \
         `credd docker revoke {}`.\n# {GRANT_ENV} is a secret: keep this file mode 0600 and out of \
         version control.",
        grant.profile, grant.network, grant.endpoint, grant.id, grant.id
    );
    let secret = (GRANT_ENV, grant.secret.expose());
    let vars = grant.environment();
    for (name, value) in vars.iter().map(|(n, v)| (*n, v.as_str())).chain([secret]) {
        if value.contains(['\n', '\r', '\0']) {
            return None;
        }
        let _ = writeln!(o, "{name}={value}");
    }
    Some(out)
}

// ---- revoke ------------------------------------------------------------------------------

fn revoke(
    paths: &Paths,
    json: bool,
    id: Option<String>,
    all: bool,
) -> Result<ExitCode, ClientError> {
    let request = Request::DockerRevoke(RevokeRequest {
        id: id.clone(),
        all,
        unclaimed_only: false,
    });
    let (grants, containers) = match ask(paths, &request)? {
        Response::DockerRevoked { grants, containers } => (grants, containers),
        other => return Err(unexpected(&request, other)),
    };
    if json {
        output::json(&json!({ "grants": grants, "containers": containers }));
    } else {
        println!("{}", revoked(&grants, containers, id.as_deref()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `revoked grant 3f2a9c; 2 containers cut off`, `no grant to revoke`.
pub fn revoked(grants: &[String], containers: usize, asked: Option<&str>) -> String {
    let what = match (grants, asked) {
        ([], Some(id)) => return format!("no grant {id} to revoke"),
        ([], None) => return "no grant to revoke".to_owned(),
        ([one], _) => format!("revoked grant {one}"),
        (many, _) => format!("revoked {} grants: {}", many.len(), many.join(", ")),
    };
    let cut = match (containers, grants.len()) {
        (0, 1) => "no container held it".to_owned(),
        (0, _) => "no container held them".to_owned(),
        (n, _) => format!(
            "{} cut off",
            credd_proto::human::count(n, "container", "containers")
        ),
    };
    format!("{what}; {cut}")
}

// ---- setup -------------------------------------------------------------------------------

/// The engine's socket when neither the daemon's `[docker] socket` nor DOCKER_HOST says.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The link-local address the SDKs accept plain http on for the container-credentials route.
const CONTAINER_ROUTE_ADDRESS: &str = "169.254.170.2";

fn setup(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Status;
    let report = match ask(paths, &request)? {
        Response::Status(report) => report,
        other => return Err(unexpected(&request, other)),
    };
    // The daemon's own view once it has asked the engine; until its first grant, the socket it
    // would ask, tried from here (as the same user).
    let (engine, engine_error, asked_by_daemon) = match &report.docker {
        Some(docker) => (docker.engine.clone(), docker.error.clone(), true),
        None => {
            let socket = engine_socket(docker_host().as_deref());
            let error = probe(&socket).err();
            (socket.display().to_string(), error, false)
        }
    };
    let endpoints = report
        .docker
        .as_ref()
        .map(|d| d.endpoints.clone())
        .unwrap_or_default();
    let program = docker_program();
    let docker = find_program(&program);
    let listener = endpoints
        .iter()
        .find_map(|e| listener_of(e))
        .map_or_else(|| format!("172.17.0.1:{DEFAULT_PORT}"), str::to_owned);
    let route = container_route_step(&listener);
    let ready = engine_error.is_none() && docker.is_some();
    if json {
        output::json(&json!({
            "engine": engine,
            "engine_error": engine_error,
            "endpoints": endpoints,
            "docker": docker,
            "docker_error": docker.is_none().then(|| missing_program(&program)),
            "container_route": route,
        }));
    } else {
        let mut o = String::new();
        let _ = match &engine_error {
            None if asked_by_daemon => writeln!(o, "engine:   {engine}: answers"),
            None => writeln!(
                o,
                "engine:   {engine}: answers (tried from here; the daemon asks it at the first grant)"
            ),
            Some(e) => writeln!(
                o,
                "engine:   {engine}: {}",
                output::paint(FAILING, &format!("cannot be reached: {e}"))
            ),
        };
        let _ = match &docker {
            Some(path) => writeln!(o, "docker:   {}", path.display()),
            None => writeln!(
                o,
                "docker:   {}",
                output::paint(FAILING, &missing_program(&program))
            ),
        };
        if endpoints.is_empty() {
            let _ = writeln!(
                o,
                "listens:  on each Docker network's gateway, port {DEFAULT_PORT} unless `[docker] port` says, from \
                 the network's first grant"
            );
        }
        for (i, endpoint) in endpoints.iter().enumerate() {
            let label = if i == 0 { "listens:" } else { "" };
            let _ = writeln!(o, "{label:9} {endpoint}");
        }
        let _ = writeln!(
            o,
            "\nContainers reach credd through the IMDS endpoint on their network's gateway \
             (AWS_EC2_METADATA_SERVICE_ENDPOINT, set by `credd docker run` and `credd docker \
             env`): nothing needs root.\n\nThe container-credentials route \
             (AWS_CONTAINER_CREDENTIALS_FULL_URI) would need {CONTAINER_ROUTE_ADDRESS}, port \
             80, sent on to credd's listener, since the SDKs take plain http only to loopback \
             and the ECS/EKS addresses; and credd would have to serve that route there. credd \
             does not use that route and needs no such root step; it would take:"
        );
        for line in &route {
            let _ = writeln!(o, "  {line}");
        }
        let _ = std::io::Write::write_all(&mut anstream::stdout(), o.as_bytes());
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

const FAILING: anstyle::Style = anstyle::AnsiColor::Red.on_default().bold();

/// The engine's API socket as the daemon picks it without `[docker] socket`: DOCKER_HOST's when
/// it is `unix://PATH`, else [`DEFAULT_SOCKET`].
pub fn engine_socket(docker_host: Option<&str>) -> PathBuf {
    docker_host
        .and_then(|host| host.strip_prefix("unix://"))
        .filter(|path| !path.is_empty())
        .unwrap_or(DEFAULT_SOCKET)
        .into()
}

/// Connects to the engine's socket, as the daemon would; why not, for a person.
fn probe(socket: &Path) -> Result<(), String> {
    let is_socket = std::fs::metadata(socket).is_ok_and(|m| m.file_type().is_socket());
    match UnixStream::connect(socket) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(
            "permission denied: add yourself to the docker group (`sudo usermod -aG docker \
             $USER`, then log in again), or point DOCKER_HOST at a socket of your own (rootless \
             Docker, Podman)"
                .to_owned(),
        ),
        Err(_) if !is_socket => Err(
            "no socket there: is the engine running? (Podman: `systemctl --user enable --now \
             podman.socket`, then DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock)"
                .to_owned(),
        ),
        Err(e) => Err(format!(
            "nothing answers there ({e}): is the engine running?"
        )),
    }
}

/// `program` as a shell would find it: a path as it is, a name on PATH.
fn find_program(program: &OsStr) -> Option<PathBuf> {
    let program = Path::new(program);
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn missing_program(program: &OsStr) -> String {
    format!(
        "{} not found: install it, or set CREDD_DOCKER to the program to run (e.g. podman)",
        program.to_string_lossy()
    )
}

/// `172.17.0.1:9912` of `http://172.17.0.1:9912/`.
fn listener_of(endpoint: &str) -> Option<&str> {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let host_port = rest.split('/').next()?;
    host_port
        .rsplit_once(':')?
        .1
        .parse::<u16>()
        .is_ok()
        .then_some(host_port)
}

/// What serving the container-credentials route would take: the address on this machine (a
/// container's packets to it are routed to the host) and ECS's port 80 sent on to credd's.
pub fn container_route_step(listener: &str) -> Vec<String> {
    vec![format!(
        "sudo iptables -t nat -A PREROUTING -d {CONTAINER_ROUTE_ADDRESS}/32 -p tcp --dport 80 \
         -j DNAT --to-destination {listener}"
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::Secret;

    const SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";

    fn grant(standing: bool) -> Grant {
        Grant {
            secret: Secret::new(SECRET),
            id: "3f2a9c".into(),
            profile: "staging".into(),
            endpoint: "http://172.17.0.1:9912/".into(),
            network: "bridge".into(),
            region: Some("eu-west-1".into()),
            standing,
        }
    }

    fn net(args: &str) -> Network {
        network(&args.split_whitespace().collect::<Vec<_>>())
    }

    fn named(name: &str) -> Network {
        Network::Named(name.to_owned())
    }

    #[test]
    fn the_network_is_found_in_each_of_its_spellings() {
        assert_eq!(net("--network=dev img"), named("dev"));
        assert_eq!(net("--network dev img"), named("dev"));
        assert_eq!(net("--net dev img"), named("dev"));
        assert_eq!(net("--net=dev img"), named("dev"));
        assert_eq!(net("--network name=dev,alias=web img"), named("dev"));
        assert_eq!(net("--network alias=web,name=dev img"), named("dev"));
        assert_eq!(
            net("--network dev --network other img"),
            named("dev"),
            "the first"
        );
        assert_eq!(net("img"), Network::Default);
        assert_eq!(net("--network default img"), Network::Default);
        assert_eq!(net("--network-alias web --rm img"), Network::Default);
        assert_eq!(net("--network-alias=web --net dev img"), named("dev"));
    }

    #[test]
    fn host_none_and_another_containers_network_are_refused() {
        let refused = |name: &str| Network::Unservable(name.to_owned());
        assert_eq!(net("-it --rm --network host img"), refused("host"));
        assert_eq!(net("--net=none img"), refused("none"));
        assert_eq!(net("--network container:web img"), refused("container:web"));
        assert_eq!(
            net("--network=ns:/run/netns/x img"),
            refused("ns:/run/netns/x")
        );
        assert_eq!(net("--network name=host img"), refused("host"));
    }

    #[test]
    fn a_network_flag_without_a_value_is_said() {
        assert_eq!(net("--network"), Network::NoValue("--network".into()));
        assert_eq!(net("--net= img"), Network::NoValue("--net".into()));
        assert_eq!(
            net("--network --rm img"),
            Network::NoValue("--network".into())
        );
        assert_eq!(
            net("--network alias=web img"),
            Network::NoValue("--network".into())
        );
    }

    #[test]
    fn the_scan_ends_at_the_image_and_skips_option_values() {
        assert_eq!(
            net("img --network host"),
            Network::Default,
            "the command's own"
        );
        assert_eq!(net("-it img sh -c --network=host"), Network::Default);
        assert_eq!(
            net("-- img --network host"),
            Network::Default,
            "docker's `--`"
        );
        assert_eq!(net("--rm -- --network host"), Network::Default);
        // Values that do not start with `-` are skipped, whatever they look like.
        assert_eq!(net("-e FOO=1 --network dev img"), named("dev"));
        assert_eq!(net("--name web --network dev img"), named("dev"));
        assert_eq!(net("-v /a:/b -w /src --net dev img"), named("dev"));
        assert_eq!(
            net("-dp 80:80 --network=host img"),
            Network::Unservable("host".into())
        );
        assert_eq!(
            net("-eFOO=1 --network dev img"),
            named("dev"),
            "a value in the group"
        );
        assert_eq!(net("-it -u 1000 --network dev img"), named("dev"));
        // A flag is not given the image as a value.
        assert_eq!(net("--rm img --network host"), Network::Default);
        assert_eq!(
            net("--init --privileged -it img --net host"),
            Network::Default
        );
        assert_eq!(net("--sig-proxy=false --network dev img"), named("dev"));
        // `-` alone is an argument, not an option.
        assert_eq!(net("- --network host"), Network::Default);
    }

    #[test]
    fn docker_gets_the_grant_by_name_and_the_rest_by_value() {
        let args: Vec<OsString> = vec!["-it".into(), "img".into()];
        let all: Vec<String> = docker_args(&grant(false), &args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            all,
            [
                "run",
                "-e",
                "CREDD_GRANT",
                "-e",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://172.17.0.1:9912/",
                "-e",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv4",
                "-e",
                "AWS_EC2_METADATA_DISABLED=false",
                "-e",
                "AWS_REGION=eu-west-1",
                "-e",
                "AWS_DEFAULT_REGION=eu-west-1",
                "-it",
                "img"
            ]
        );
        assert!(!all.iter().any(|a| a.contains(SECRET)));
    }

    #[test]
    fn the_env_file_says_what_it_is_then_holds_every_variable() {
        let file = env_file(&grant(true)).unwrap();
        let lines: Vec<&str> = file.lines().collect();
        assert!(lines[..5].iter().all(|l| l.starts_with("# ")), "{lines:#?}");
        let comment = lines[..5].join("\n");
        for said in [
            "profile staging's credentials",
            "Docker network bridge (http://172.17.0.1:9912/)",
            "--env-file",
            "env_file:",
            "runArgs",
            "Grant 3f2a9c. Any number of containers",
            "`credd docker revoke 3f2a9c`",
            "CREDD_GRANT is a secret",
        ] {
            assert!(comment.contains(said), "{said:?} in:\n{comment}");
        }
        assert!(!comment.contains(SECRET));
        assert_eq!(
            lines[5..],
            [
                "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://172.17.0.1:9912/",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv4",
                "AWS_EC2_METADATA_DISABLED=false",
                "AWS_REGION=eu-west-1",
                "AWS_DEFAULT_REGION=eu-west-1",
                &format!("CREDD_GRANT={SECRET}"),
            ]
        );
        let mut no_region = grant(true);
        no_region.region = None;
        assert!(!env_file(&no_region).unwrap().contains("REGION"));
        let mut broken = grant(true);
        broken.endpoint = "http://x/\nAWS_PROFILE=evil".into();
        assert!(
            env_file(&broken).is_none(),
            "a line break would make a line"
        );
    }

    #[test]
    fn the_json_grant_has_the_whole_environment() {
        let g = grant(true);
        let value = serde_json::to_value(GrantJson {
            grant: &g,
            environment: Environment(&g),
        })
        .unwrap();
        assert_eq!(value["id"], "3f2a9c");
        assert_eq!(value["secret"], SECRET);
        assert_eq!(value["environment"]["CREDD_GRANT"], SECRET);
        assert_eq!(value["environment"]["AWS_REGION"], "eu-west-1");
        assert_eq!(value["environment"].as_object().unwrap().len(), 6);
    }

    #[test]
    fn the_grant_never_shows_in_debug_or_an_error() {
        let g = grant(false);
        let request = grant_request(Some("staging".into()), None, false);
        let e = unexpected(&request, Response::DockerGrant(g.clone()));
        for shown in [format!("{g:?}"), e.to_string(), e.to_json().to_string()] {
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }

    #[test]
    fn exit_codes_are_dockers_or_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(125 << 8)), 125);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGINT)), 130);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }

    #[test]
    fn revocations_say_what_was_cut_off() {
        assert_eq!(
            revoked(&["3f2a9c".into()], 2, Some("3f2a9c")),
            "revoked grant 3f2a9c; 2 containers cut off"
        );
        assert_eq!(
            revoked(&["a".into(), "b".into()], 0, None),
            "revoked 2 grants: a, b; no container held them"
        );
        assert_eq!(
            revoked(&["a".into()], 1, None),
            "revoked grant a; 1 container cut off"
        );
        assert_eq!(revoked(&[], 0, None), "no grant to revoke");
        assert_eq!(revoked(&[], 0, Some("x")), "no grant x to revoke");
    }

    #[test]
    fn setup_finds_the_engine_socket_and_the_port() {
        assert_eq!(engine_socket(None), Path::new("/var/run/docker.sock"));
        assert_eq!(
            engine_socket(Some("unix:///run/user/1000/docker.sock")),
            Path::new("/run/user/1000/docker.sock")
        );
        assert_eq!(
            engine_socket(Some("tcp://10.0.0.1:2375")),
            Path::new("/var/run/docker.sock")
        );
        assert_eq!(
            listener_of("http://172.17.0.1:9912/"),
            Some("172.17.0.1:9912")
        );
        assert_eq!(
            listener_of("http://172.18.0.1:10000"),
            Some("172.18.0.1:10000")
        );
        assert_eq!(listener_of("http://172.18.0.1/"), None);
        let step = container_route_step("172.17.0.1:9912");
        assert!(
            step[0].ends_with(
                "-d 169.254.170.2/32 -p tcp --dport 80 -j DNAT --to-destination 172.17.0.1:9912"
            ),
            "{}",
            step[0]
        );
    }

    #[test]
    fn a_missing_socket_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = probe(&dir.path().join("docker.sock")).unwrap_err();
        assert!(e.starts_with("no socket there"), "{e}");
        let socket = dir.path().join("live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(probe(&socket), Ok(()));
    }
}
