//! moto, the local STS/IAM emulator: installs it once into `target/moto-venv`, runs it through
//! `tests/py/moto_server.py` (moto's server plus a seeding channel on its stdin), seeds users and
//! roles, and checks credentials with the Rust STS SDK (GetCallerIdentity is a real check once
//! auth is on).
//!
//! A test process shares two servers ([`Moto::shared`]), each started on first use: one with
//! request authentication on (every signature and session token is checked), one with it off (for
//! MFA logins: moto rejects the keys of its own GetSessionToken when auth is on). Tests stay
//! independent because each [`Moto::seed`] creates its users in an account of their own; roles
//! are shared. A server exits when its stdin closes, so none outlives the test process, however
//! that ends.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::install::{target_dir, venv_once};
use crate::{POLL_INTERVAL, free_port};

/// What the venv holds. Pinned so every machine runs the moto the tests were written against;
/// changing this line makes the next test run reinstall the venv.
pub const MOTO_REQUIREMENTS: &[&str] = &["moto[server]==5.2.5", "boto3==1.44.8"];

/// The region the harness's own STS calls sign for.
pub const REGION: &str = "us-east-1";

/// How long a moto server may take to answer its first request.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Attempts at starting a server: the port from [`free_port`] can be taken before moto binds it.
const START_ATTEMPTS: usize = 3;

/// How much of the end of moto's log a failure shows (the shared servers' logs grow long).
const LOG_TAIL: usize = 16 * 1024;

/// The first account [`Moto::seed`] hands out; each call takes the next one. Far from the
/// accounts the tests' roles live in (222222222222, 333333333333).
const FIRST_SEED_ACCOUNT: u64 = 400_000_000_001;

/// The next account for [`Moto::seed`], for every server of the process.
static NEXT_SEED_ACCOUNT: AtomicU64 = AtomicU64::new(FIRST_SEED_ACCOUNT);

/// The shared servers, or why one did not start (kept, so later tests fail at once).
static SHARED_AUTH_ON: OnceLock<Result<Moto, String>> = OnceLock::new();
static SHARED_AUTH_OFF: OnceLock<Result<Moto, String>> = OnceLock::new();

/// Whether moto checks requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Every request's SigV4 signature, key and session token are checked, and IAM policies
    /// (and trust policies, on chained AssumeRole) are enforced.
    On,
    /// Anything is accepted: any role ARN can be assumed; needed for GetSessionToken's keys.
    Off,
}

/// A running moto server; dropping it kills the process and waits for it.
pub struct Moto {
    port: u16,
    /// moto's stderr: a file without a name (nothing is left behind, even when the test process
    /// is killed), read with `read_at` so moto's own write offset is never moved.
    log: File,
    child: Child,
    seeding: Mutex<SeedChannel>,
}

/// The server's stdin and stdout: one JSON request line, one JSON answer line.
struct SeedChannel {
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl Moto {
    /// The test process's server with `auth`, started on first use and shared by every test
    /// after that. It is never dropped: it exits with the process (its stdin closes).
    pub fn shared(auth: Auth) -> &'static Moto {
        let cell = match auth {
            Auth::On => &SHARED_AUTH_ON,
            Auth::Off => &SHARED_AUTH_OFF,
        };
        cell.get_or_init(|| Moto::try_start(auth))
            .as_ref()
            .unwrap_or_else(|failure| panic!("the shared moto (auth {auth:?}): {failure}"))
    }

    /// A private server: installs moto if needed, then starts a fresh one (empty state) on a free
    /// port. For programs (the demo, the bench); tests use [`Moto::shared`].
    pub fn start(auth: Auth) -> Moto {
        Moto::try_start(auth).unwrap_or_else(|failure| panic!("{failure}"))
    }

    fn try_start(auth: Auth) -> Result<Moto, String> {
        ensure_venv();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let log = tempfile::tempfile().map_err(|e| format!("create moto's log: {e}"))?;
            match start_server(port, auth, &log) {
                Ok(mut child) => {
                    let seeding = SeedChannel {
                        requests: child.stdin.take().expect("moto's stdin is piped"),
                        answers: BufReader::new(
                            child.stdout.take().expect("moto's stdout is piped"),
                        ),
                    };
                    return Ok(Moto {
                        port,
                        log,
                        child,
                        seeding: Mutex::new(seeding),
                    });
                }
                Err(failure) => last_failure = failure,
            }
        }
        Err(format!(
            "moto did not start after {START_ATTEMPTS} attempts: {last_failure}"
        ))
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url` / `AWS_ENDPOINT_URL_STS`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The venv's python, which has boto3: handy for tests that drive a Python SDK.
    pub fn python(&self) -> PathBuf {
        venv_python()
    }

    /// What moto printed so far (request lines, tracebacks of its 500s).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The last [`LOG_TAIL`] bytes of [`Moto::log`], for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let mut start = log.len().saturating_sub(LOG_TAIL);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_owned()
    }

    /// Creates the users of `spec` in an account of their own (a new one on every call, so
    /// tests sharing a server never meet) and the roles of `spec` where their ARNs say, keeping
    /// roles that exist already. Works the same with auth on or off.
    pub fn seed(&self, spec: &SeedSpec) -> Seeded {
        let next_account = || format!("{:012}", NEXT_SEED_ACCOUNT.fetch_add(1, Ordering::Relaxed));
        let account = next_account();
        let (organization, management_account) = match spec.organization {
            None => (None, None),
            Some(Organization::Management) => (
                Some(serde_json::json!({ "management": true })),
                Some(account.clone()),
            ),
            Some(Organization::Member) => {
                let master = next_account();
                (
                    Some(serde_json::json!({ "member_of": master })),
                    Some(master),
                )
            }
        };
        let request = serde_json::to_string(&SeedRequest {
            account: &account,
            users: &spec.users,
            roles: &spec.roles,
            organization,
        })
        .expect("serialize the seed request");
        let answer = {
            let mut channel = self.seeding.lock().unwrap_or_else(|p| p.into_inner());
            let mut answer = String::new();
            let sent = writeln!(channel.requests, "{request}")
                .and_then(|()| channel.requests.flush())
                .and_then(|()| channel.answers.read_line(&mut answer));
            match sent {
                Ok(1..) => answer,
                Ok(0) => panic!(
                    "moto exited while seeding\n--- moto log ---\n{}",
                    self.log_tail()
                ),
                Err(e) => panic!("seeding moto: {e}\n--- moto log ---\n{}", self.log_tail()),
            }
        };
        // Not shown when it does not parse: it may hold the new users' secret keys.
        let answer: SeedAnswer = serde_json::from_str(&answer).unwrap_or_else(|e| {
            panic!(
                "moto's answer to {request} is not a seed answer ({e})\n--- moto log ---\n{}",
                self.log_tail()
            )
        });
        match answer {
            SeedAnswer::Seeded { users } => Seeded {
                account,
                users,
                management_account,
            },
            SeedAnswer::Failed { error } => panic!(
                "moto seeding failed for {request}\n{error}\n--- moto log ---\n{}",
                self.log_tail()
            ),
        }
    }

    /// GetCallerIdentity with these credentials against this moto, in us-east-1, with the SDK's
    /// default retries. Ok(the caller's ARN), or Err("Code: message").
    pub fn caller_arn(
        &self,
        access_key_id: &str,
        secret: &str,
        session_token: Option<&str>,
    ) -> Result<String, String> {
        let keys = AwsKeys {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret.to_owned(),
            session_token: session_token.map(str::to_owned),
        };
        block_on(async {
            let client = sts_client(&self.endpoint(), REGION, &keys, Retries::SdkDefault);
            caller_arn_with(&client).await
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Already gone is fine: the point is that no private server outlives its owner.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What to create in moto: users (in the account [`Moto::seed`] picks) and roles.
#[derive(Debug, Clone, Default)]
pub struct SeedSpec {
    pub users: Vec<SeedUser>,
    pub roles: Vec<SeedRole>,
    /// The users' account in an AWS Organizations organization.
    pub organization: Option<Organization>,
}

/// Where the seeded users' account stands in AWS Organizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Organization {
    /// The management account of a new organization.
    Management,
    /// A member of a new organization managed by another account (of its own).
    Member,
}

impl SeedSpec {
    pub fn new() -> SeedSpec {
        SeedSpec::default()
    }

    /// An IAM user with an access key and no MFA device.
    pub fn user(mut self, name: &str) -> SeedSpec {
        self.users.push(SeedUser {
            name: name.to_owned(),
            mfa: false,
            key_age_days: None,
            deny_assume: Vec::new(),
        });
        self
    }

    /// The seeded user `name`'s access key made `days` ago (IAM's CreateDate).
    pub fn key_age_days(mut self, name: &str, days: u32) -> SeedSpec {
        let user = self.users.iter_mut().find(|u| u.name == name);
        user.unwrap_or_else(|| panic!("seed {name:?} before backdating its key"))
            .key_age_days = Some(days);
        self
    }

    /// An identity policy of the seeded user `name` that denies sts:AssumeRole on `role_arn`:
    /// moto (auth on) then refuses it with AccessDenied, as IAM would.
    pub fn deny_assume(mut self, name: &str, role_arn: &str) -> SeedSpec {
        let user = self.users.iter_mut().find(|u| u.name == name);
        user.unwrap_or_else(|| panic!("seed {name:?} before denying it a role"))
            .deny_assume
            .push(role_arn.to_owned());
        self
    }

    /// The users' account in an organization (see [`Organization`]).
    pub fn organization(mut self, organization: Organization) -> SeedSpec {
        self.organization = Some(organization);
        self
    }

    /// An IAM user with an access key and an enabled virtual MFA device
    /// `arn:aws:iam::<account>:mfa/<name>`.
    pub fn user_with_mfa(mut self, name: &str) -> SeedSpec {
        self.users.push(SeedUser {
            name: name.to_owned(),
            mfa: true,
            key_age_days: None,
            deny_assume: Vec::new(),
        });
        self
    }

    /// A role anyone may assume, created in the account its ARN names (paths allowed), unless
    /// it exists already.
    pub fn role(mut self, arn: &str) -> SeedSpec {
        self.roles.push(SeedRole {
            arn: arn.to_owned(),
        });
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedUser {
    pub name: String,
    pub mfa: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_age_days: Option<u32>,
    /// Roles an identity policy denies the user sts:AssumeRole on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_assume: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedRole {
    pub arn: String,
}

#[derive(Serialize)]
struct SeedRequest<'a> {
    account: &'a str,
    users: &'a [SeedUser],
    roles: &'a [SeedRole],
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SeedAnswer {
    Seeded { users: BTreeMap<String, SeededUser> },
    Failed { error: String },
}

/// What seeding created: the account of the users, and each user's long-lived key.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub account: String,
    pub users: BTreeMap<String, SeededUser>,
    /// The management account of the organization [`SeedSpec::organization`] made.
    pub management_account: Option<String>,
}

impl Seeded {
    /// The seeded user `name`; panics listing the seeded ones if there is none.
    pub fn user(&self, name: &str) -> &SeededUser {
        self.users.get(name).unwrap_or_else(|| {
            panic!(
                "no seeded user {name:?} (seeded: {:?})",
                self.users.keys().collect::<Vec<_>>()
            )
        })
    }
}

#[derive(Clone, Deserialize)]
pub struct SeededUser {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub arn: String,
    pub mfa_serial: Option<String>,
}

impl SeededUser {
    pub fn keys(&self) -> AwsKeys {
        AwsKeys {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: None,
        }
    }
}

impl fmt::Debug for SeededUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededUser")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("arn", &self.arn)
            .field("mfa_serial", &self.mfa_serial)
            .finish()
    }
}

/// A set of AWS credentials, long-lived (no token) or temporary.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// GetCallerIdentity at any STS endpoint (moto, or a proxy in front of it), signed for `region`.
/// One attempt, no retries: a test sees exactly what one request did. Err is "Code: message".
pub fn sts_caller_arn(endpoint: &str, region: &str, keys: &AwsKeys) -> Result<String, String> {
    block_on(async {
        let client = sts_client(endpoint, region, keys, Retries::None);
        caller_arn_with(&client).await
    })
}

/// AssumeRole at any STS endpoint, signed for `region`, one attempt. Ok(the role's credentials).
pub fn sts_assume_role(
    endpoint: &str,
    region: &str,
    keys: &AwsKeys,
    role_arn: &str,
    session_name: &str,
) -> Result<AwsKeys, String> {
    block_on(assume_role(
        endpoint,
        region,
        keys,
        role_arn,
        session_name,
        None,
    ))
    .map(|assumed| assumed.keys)
}

/// What [`assume_role`] got: the role's credentials and when they expire.
#[derive(Debug, Clone)]
pub struct AssumedRole {
    pub keys: AwsKeys,
    pub expiration: std::time::SystemTime,
}

/// [`sts_assume_role`] for code already inside a tokio runtime (a test server's handler), with
/// an optional `DurationSeconds`. One attempt; Err is "Code: message".
pub async fn assume_role(
    endpoint: &str,
    region: &str,
    keys: &AwsKeys,
    role_arn: &str,
    session_name: &str,
    duration: Option<Duration>,
) -> Result<AssumedRole, String> {
    let client = sts_client(endpoint, region, keys, Retries::None);
    let duration = duration
        .map(|d| i32::try_from(d.as_secs()).map_err(|_| format!("duration {d:?} is too long")))
        .transpose()?;
    let out = client
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_duration_seconds(duration)
        .send()
        .await
        .map_err(describe_sdk_error)?;
    let creds = out
        .credentials()
        .ok_or_else(|| format!("AssumeRole {role_arn} returned no credentials"))?;
    let expiration = std::time::SystemTime::try_from(*creds.expiration())
        .map_err(|e| format!("AssumeRole {role_arn}: expiration out of range: {e}"))?;
    Ok(AssumedRole {
        keys: AwsKeys {
            access_key_id: creds.access_key_id().to_owned(),
            secret_access_key: creds.secret_access_key().to_owned(),
            session_token: Some(creds.session_token().to_owned()),
        },
        expiration,
    })
}

enum Retries {
    SdkDefault,
    None,
}

fn sts_client(
    endpoint: &str,
    region: &str,
    keys: &AwsKeys,
    retries: Retries,
) -> aws_sdk_sts::Client {
    let credentials = aws_credential_types::Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.clone(),
        keys.session_token.clone(),
        None,
        "credd-tests",
    );
    let retry = match retries {
        Retries::SdkDefault => aws_sdk_sts::config::retry::RetryConfig::standard(),
        Retries::None => aws_sdk_sts::config::retry::RetryConfig::disabled(),
    };
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .http_client(crate::sdk::http_client())
        .retry_config(retry)
        // A hung proxy or server must fail the test, not hang it.
        .timeout_config(
            aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

async fn caller_arn_with(client: &aws_sdk_sts::Client) -> Result<String, String> {
    let out = client
        .get_caller_identity()
        .send()
        .await
        .map_err(describe_sdk_error)?;
    out.arn()
        .map(str::to_owned)
        .ok_or_else(|| "GetCallerIdentity returned no Arn".to_owned())
}

fn describe_sdk_error<E, R>(err: aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    use aws_sdk_sts::error::ProvideErrorMetadata;
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => aws_sdk_sts::error::DisplayErrorContext(&err).to_string(),
    }
}

fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime for an STS call")
        .block_on(fut)
}

/// The harness venv's python (boto3 installed), once any moto has been started.
pub fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

fn venv_dir() -> PathBuf {
    target_dir("moto-venv")
}

/// Creates the venv unless a complete one of [`MOTO_REQUIREMENTS`] is there (see
/// [`install_once`]: test threads and test processes run this at the same time).
fn ensure_venv() {
    venv_once(&venv_dir(), MOTO_REQUIREMENTS, "bin/moto_server", "moto");
}

/// The venv's python with a minimal environment: no developer AWS settings reach boto3.
fn python_command() -> Command {
    let mut command = Command::new(venv_python());
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.env("LANG", "C.UTF-8");
    command
}

/// Spawns `moto_server.py` on `port` and waits until it answers; Err (with the log) if it exits
/// or is slow. Its stdin and stdout are the seeding channel; its stderr is the log.
fn start_server(port: u16, auth: Auth, log: &File) -> Result<Child, String> {
    let stderr = log
        .try_clone()
        .map_err(|e| format!("share moto's log: {e}"))?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("moto_server.py");
    let auth = match auth {
        Auth::On => "on",
        Auth::Off => "off",
    };
    let mut child = python_command()
        .arg(&script)
        .args(["127.0.0.1", &port.to_string(), auth])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", script.display()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "moto on port {port} exited ({status}):\n{}",
                read_log(log)
            ));
        }
        if http_status(addr, "/moto-api/") == Some(200) {
            return Ok(child);
        }
        if start.elapsed() > START_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "moto on port {port} did not answer within {START_DEADLINE:?}:\n{}",
                read_log(log)
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Everything in a server's log file so far (moto's, the SAML IdP's).
pub(crate) fn read_log(log: &File) -> String {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; log.metadata().map_or(0, |m| m.len() as usize)];
    let mut filled = 0;
    while filled < bytes.len() {
        match log.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return format!("(cannot read the log: {e})"),
        }
    }
    bytes.truncate(filled);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The status code of a plain `GET path`, or None if nothing answered.
pub(crate) fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.x NNN"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
