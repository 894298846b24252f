//! The control protocol between the `credd` client and `credd-daemon`.
//!
//! Every exchange over the Unix socket is one [`Request`] frame answered by one [`Response`] frame;
//! the whole conversation is the two enums below. A frame is a 4-byte big-endian length followed by
//! that many bytes of JSON: `{"version":1,"software":"credd 0.1.0","request":{...}}`.
//! The version is read before anything else, so a mismatch is reported as such, never as a decode
//! error. Secret-carrying fields use [`Secret`], which wipes itself and never prints.

pub mod audit;
pub mod checks;
pub mod docker;
mod frame;
/// Fuzz entry points (`tests/fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod human;
pub mod paths;
mod secret;
pub mod state;

use serde::{Deserialize, Serialize};

pub use frame::{
    Frame, HEADER_LEN, MAX_FRAME, ProtoError, decode_request, decode_request_with_config,
    decode_response, encode_request, encode_request_with_config, encode_response, frame_len,
    read_frame, write_frame,
};
pub use secret::Secret;

/// Bumped whenever a message changes shape. Client and daemon must agree exactly.
pub const PROTOCOL_VERSION: u32 = 9;

/// One variant per `credd` verb that talks to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status,
    Profiles,
    Switch {
        profile: String,
    },
    Reload,
    /// Without a code the daemon answers [`Response::MfaRequired`] when it needs one. A source
    /// that logs in through a browser (Identity Center) answers [`Response::AuthorizationPending`]
    /// at once; the client shows it and then sends [`Request::LoginWait`].
    Login {
        mfa_code: Option<Secret>,
        #[serde(default)]
        browser: BrowserLogin,
    },
    /// Waits for the pending browser or device authorization to end: answers `LoggedIn`, or an
    /// error when it was refused, expired or cancelled.
    LoginWait,
    /// Abandons the pending authorization (the user pressed Ctrl-C).
    LoginCancel,
    /// `credd import --sso`: a profile for every account and role Identity Center offers the
    /// logged-in user, named and checked by the daemon against the config it has loaded.
    SsoImport,
    Logout,
    /// A profile's credentials (`None`: the current profile), for `credential-process`.
    Credentials {
        profile: Option<String>,
    },
    /// Where to reach the HTTP API for a profile (`None`: the following route).
    Endpoint {
        profile: Option<String>,
    },
    /// Replace the HTTP API token: every holder of the old one is locked out.
    ResetToken,
    /// `credd key add`: check this IAM user key with STS, then store it in the OS keychain
    /// (replacing the one there).
    KeyAdd {
        access_key_id: String,
        secret_access_key: Secret,
    },
    /// `credd key import`: move the key of `profile` (`None`: the config's `aws_profile`, else
    /// `default`) in the shared credentials file into the OS keychain; with `delete_from_file`,
    /// then remove it from the file (only once the keychain holds it and gives it back).
    KeyImport {
        profile: Option<String>,
        delete_from_file: bool,
    },
    /// `credd key rotate`: create a new key (iam:CreateAccessKey), check it, store it, and only
    /// then delete the old one (iam:DeleteAccessKey).
    KeyRotate,
    /// `credd key remove`: forget the key the OS keychain holds.
    KeyRemove,
    /// `credd console`: a sign-in URL for the AWS console (see [`ConsoleRequest`]).
    Console(ConsoleRequest),
    /// `credd refresh`: fetch new credentials now for `profile` (`None`: the current profile),
    /// or for every profile with `all`; answered with each one's outcome ([`Response::Refreshed`]).
    /// Never asks the user: a refresh that needs a login says so.
    Refresh {
        profile: Option<String>,
        #[serde(default)]
        all: bool,
    },
    /// `credd stop`: end the daemon cleanly; answered before it goes ([`Response::Stopping`]).
    Stop,
    /// `credd doctor`: the daemon's live posture checks ([`Response::Doctor`]). Never asks the
    /// user and never logs in; every call it makes is bounded ([`DOCTOR_WAIT_SECS`]).
    Doctor,
    /// `credd docker run` / `credd docker env`: a grant for containers to take a profile's
    /// credentials ([`Response::DockerGrant`]).
    DockerGrant(docker::GrantRequest),
    /// `credd docker revoke`, and `credd docker run` dropping the grant no container took.
    DockerRevoke(docker::RevokeRequest),
}

impl Request {
    /// The verb, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Profiles => "profiles",
            Request::Switch { .. } => "switch",
            Request::Reload => "reload",
            Request::Login { .. } => "login",
            Request::LoginWait => "login-wait",
            Request::LoginCancel => "login-cancel",
            Request::SsoImport => "sso-import",
            Request::Logout => "logout",
            Request::Credentials { .. } => "credentials",
            Request::Endpoint { .. } => "endpoint",
            Request::ResetToken => "reset-token",
            Request::KeyAdd { .. } => "key-add",
            Request::KeyImport { .. } => "key-import",
            Request::KeyRotate => "key-rotate",
            Request::KeyRemove => "key-remove",
            Request::Console(_) => "console",
            Request::Refresh { .. } => "refresh",
            Request::Stop => "stop",
            Request::Doctor => "doctor",
            Request::DockerGrant(_) => "docker-grant",
            Request::DockerRevoke(_) => "docker-revoke",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Status(Box<StatusReport>),
    Profiles {
        current: Option<String>,
        profiles: Vec<ProfileInfo>,
    },
    Switched {
        previous: Option<String>,
        current: String,
    },
    Reloaded {
        path: String,
        profiles: usize,
        /// Valid but noteworthy, e.g. a setting that needs a restart.
        warnings: Vec<String>,
    },
    /// `login` needs a one-time code for this MFA device; ask the user and send `Login` again.
    MfaRequired {
        serial: String,
    },
    /// The user must approve the login in a browser: open `url` (or show it, and `user_code`).
    /// Every `credd login` that asks meanwhile gets this same authorization.
    AuthorizationPending(Authorization),
    /// `LoginCancel`: whether there was an authorization to cancel.
    LoginCancelled {
        cancelled: bool,
    },
    /// `SsoImport`: what to do with each account role, in the order to show them.
    SsoImport {
        /// How many accounts Identity Center offers.
        accounts: usize,
        entries: Vec<SsoImportEntry>,
    },
    LoggedIn {
        access: Box<AccessInfo>,
        /// Profiles with fresh credentials when the login answered (it waits a few seconds).
        profiles_ready: usize,
        profiles: usize,
    },
    LoggedOut {
        forgotten: usize,
    },
    Credentials(Credentials),
    Endpoint(EndpointInfo),
    /// The HTTP API token was replaced; the new one is in `<runtime dir>/http.token`.
    TokenReset,
    /// `KeyAdd`, `KeyImport`, `KeyRotate`: the key the keychain now holds.
    KeyStored(KeyReport),
    /// `KeyRemove`: whether there was a key to forget, and where.
    KeyRemoved {
        removed: bool,
        keychain: String,
    },
    /// `Console`: the sign-in URL (a secret) and what it signs in to.
    Console(ConsoleSignin),
    /// `Refresh`: one outcome per profile asked for, in name order.
    Refreshed {
        outcomes: Vec<RefreshOutcome>,
    },
    /// `Stop`: what the daemon does about it.
    Stopping(StopReport),
    /// `Doctor`: the daemon's findings, in the order it checked.
    Doctor(DoctorReport),
    /// `DockerGrant`: what the container needs (its secret included).
    DockerGrant(docker::Grant),
    /// `DockerRevoke`: the grants revoked, and the containers they cut off.
    DockerRevoked {
        grants: Vec<String>,
        containers: usize,
    },
    Error(ErrorReply),
}

/// What a `credd key` verb did. No secret: the access key ID only names the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReport {
    /// The key now stored.
    pub access_key_id: String,
    /// Whose key it is, as STS answered (`arn:aws:iam::111111111111:user/alice`).
    pub identity: String,
    /// Where it is stored, e.g. `Secret Service (login collection): credd/aws-access-key`.
    pub keychain: String,
    /// `KeyRotate`: the key that was deleted in IAM; `KeyAdd`: the key the keychain held before.
    pub previous: Option<String>,
    /// `KeyImport`: the file the key came from, and whether it was deleted from it.
    pub imported_from: Option<String>,
    pub deleted_from_file: bool,
    /// Something went half-way and needs the user, e.g. the old key could not be deleted.
    pub warning: Option<String>,
}

/// A failure the client prints; `code` is stable for scripts, `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    VersionMismatch,
    MalformedRequest,
    FrameTooLarge,
    UnknownProfile,
    LoginRequired,
    InvalidMfaCode,
    ConfigInvalid,
    Sts,
    Unavailable,
    /// The identity provider, or the command configured to ask it, refused or failed.
    IdentityProvider,
    Internal,
    /// The OS keychain is locked, missing, or refused (the message says how to fix it).
    Keychain,
    /// The client named a config file other than the one the running daemon uses.
    ConfigMismatch,
    /// A value in the request is not acceptable (the message says which and why).
    InvalidArgument,
    /// The AWS federation endpoint (console sign-in) refused, failed or could not be reached.
    Federation,
    /// The Docker engine refused, failed or could not be reached (`credd docker`).
    Docker,
    /// A code this client does not know yet (a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
        }
    }
}

/// What `credd login` asks of a browser-based source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserLogin {
    /// `None`: the config's `sso_login` decides (`auto`: the browser when `display` is true).
    pub method: Option<LoginMethod>,
    /// Whether the client can open a browser here (a desktop session, not SSH).
    pub display: bool,
    /// Authorize this Region (a multi-Region replica) instead of the home Region.
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// Authorization code with PKCE and a loopback redirect: open `url` in a browser here.
    Browser,
    /// The device grant: open `url` anywhere and confirm `user_code`.
    Device,
    /// The daemon runs the configured command (`url` is its command line), e.g. SAML's
    /// `assertion_command`, which may itself ask the user.
    Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub method: LoginMethod,
    /// What to open, never a secret of the login (a URL handed to a browser is in its argv, which
    /// every local user can read): the daemon's loopback page that sends the browser on to the
    /// authorize URL, or the device verification URL without the code.
    pub url: String,
    /// The device grant's code, for the user to enter at `url`; shown in the terminal only.
    pub user_code: Option<String>,
    /// Who is asked, for the user: `IAM Identity Center (us-east-1)`, `your identity provider
    /// (https://login.acme.example)`, or `assertion_command`.
    pub provider: String,
    /// Identity Center: the Region being authorized.
    pub region: Option<String>,
    /// When the authorization lapses unless approved.
    pub expires_at: UnixTime,
    /// Whether this `login` joined an authorization another one started.
    pub joined: bool,
}

/// An account Identity Center offers the logged-in user, with the roles (permission sets) the user
/// may take in it: what the daemon names the imported profiles from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoAccount {
    pub account_id: String,
    pub account_name: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
}

/// One account role of `credd import --sso`, and what the import does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoImportEntry {
    pub account_id: String,
    pub account_name: String,
    pub role_name: String,
    #[serde(flatten)]
    pub proposal: ImportProposal,
}

/// What the daemon proposes for one imported profile, by its own rules and the config it has
/// loaded; the client still adds nothing its file already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "proposal", rename_all = "snake_case")]
pub enum ImportProposal {
    /// Add `[profiles.<profile>]` with these keys and (string) values, in this order.
    Add {
        profile: String,
        fields: Vec<(String, String)>,
    },
    /// It is a profile already, under this name.
    AlreadyConfigured { profile: String },
    /// The name it would get is a configured profile of something else.
    NameTaken { profile: String },
    /// Another entry of this import, `with` (`ACCOUNT/ROLE`), gets the same name.
    NameClash { profile: String, with: String },
    /// The profile would not be a valid one (`why`, by the config's own checks): an account ID
    /// or role name Identity Center should never send.
    Invalid { profile: String, why: String },
}

/// Seconds since the Unix epoch; every timestamp on the wire is one.
pub type UnixTime = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub daemon_version: String,
    pub pid: u32,
    pub started_at: UnixTime,
    pub paths: PathsInfo,
    /// `http://127.0.0.1:PORT` once the HTTP API listens.
    pub url: Option<String>,
    pub config: ConfigInfo,
    pub access: AccessInfo,
    pub current_profile: Option<String>,
    pub profiles: Vec<ProfileStatus>,
    /// Containers' grants (`credd docker`); `None` until the first grant.
    pub docker: Option<docker::DockerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathsInfo {
    pub config: String,
    pub runtime_dir: String,
    pub socket: String,
    pub token_file: String,
    pub state_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigInfo {
    pub path: String,
    pub loaded_at: UnixTime,
    /// The last edit that was rejected (the config in force is the previous good one).
    pub error: Option<String>,
    /// Valid but noteworthy: a capped duration, a change that applies only after a restart.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessInfo {
    pub source: String,
    pub logged_in: bool,
    /// The access identity's ARN (e.g. `arn:aws:iam::111111111111:user/alice`).
    pub identity: Option<String>,
    pub expires_at: Option<UnixTime>,
    pub mfa_serial: Option<String>,
    /// The STS region that answered the login.
    pub sts_region: Option<String>,
    /// Something the user should act on soon (e.g. the session ends in 20 minutes).
    pub warning: Option<String>,
    pub last_error: Option<String>,
    /// Where a daemon restart finds the session again, e.g. `memory only: ... is not tmpfs`;
    /// `None` when there is nothing to keep (a long-lived key needs no login).
    pub session_storage: Option<String>,
    /// Identity Center's side of the session, for `source = "sso"`.
    pub sso: Option<SsoInfo>,
    /// The identity provider's side, for `source = "web-identity"` and `"saml"`.
    pub federation: Option<FederationInfo>,
    /// A browser or device authorization waiting for the user.
    pub pending: Option<Authorization>,
    /// `iam-user`: the long-lived key and where it is kept.
    pub key: Option<KeyInfo>,
    /// How the session renews itself without the user (web identity's refresh token, an
    /// iam-user's `mfa_command`); `None`: only `credd login` renews it.
    pub renews: Option<String>,
}

/// The IAM user's long-lived key, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// `keychain: Secret Service (login collection): credd/aws-access-key`, or
    /// `file: /home/alice/.aws/credentials [default]`.
    pub stored_in: String,
    /// Once the daemon has read it.
    pub access_key_id: Option<String>,
    /// When IAM created it (iam:ListAccessKeys, where the user may call it).
    pub created_at: Option<UnixTime>,
    /// e.g. the key is 120 days old: run `credd key rotate`.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationInfo {
    /// Where the token or assertion comes from: the OpenID issuer, `token_file PATH`,
    /// `token_command PROGRAM` or `assertion_command PROGRAM`.
    pub provider: String,
    /// The access account's role the token or assertion is traded for (SAML without `role_arn`:
    /// the one the assertion offers, once logged in).
    pub role_arn: Option<String>,
    /// Who the identity provider says the user is: `alice@acme.example at ISSUER`, or the SAML
    /// NameID; while logged in.
    pub who: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoInfo {
    pub session_name: String,
    pub start_url: String,
    /// The Region in use: the home Region, or a replica while the home Region is down.
    pub region: String,
    /// When the current 1-hour access token expires (it is refreshed in the background).
    pub token_expires_at: Option<UnixTime>,
    /// When the organization's session length ends the session (login time plus the configured
    /// `session_duration`): then a new `credd login` is needed.
    pub session_ends_at: Option<UnixTime>,
    /// The AWS CLI token cache file credd shares.
    pub cache_file: String,
    /// The home Region first, then the replicas, each with whether it holds an authorization.
    pub regions: Vec<SsoRegionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoRegionInfo {
    pub region: String,
    pub start_url: String,
    pub authorized: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: String,
    /// The role assumed (AssumeRole), or `None` for an Identity Center profile.
    pub role_arn: Option<String>,
    /// `ACCOUNT/ROLE_NAME` of an Identity Center profile (GetRoleCredentials).
    pub sso_role: Option<String>,
    pub via: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileStatus {
    pub name: String,
    pub role_arn: Option<String>,
    pub sso_role: Option<String>,
    pub via: Option<String>,
    pub state: ProfileState,
    pub expires_at: Option<UnixTime>,
    pub last_refresh: Option<UnixTime>,
    /// The next refresh: the scheduled one, or the next retry ([`ProfileStatus::retry_at`]).
    pub next_refresh: Option<UnixTime>,
    pub last_error: Option<String>,
    /// The STS region that answered the last refresh.
    pub sts_region: Option<String>,
    /// The assumed-role ARN of the cached credentials.
    pub assumed_arn: Option<String>,
    /// The profile's own `region` (what `credd env` exports as `AWS_REGION`).
    pub region: Option<String>,
    /// While the refreshes fail: when the backoff ends and the next one is tried (also while
    /// credentials cached earlier are still served).
    pub retry_at: Option<UnixTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    /// Nothing cached (not logged in, or not yet fetched).
    Cold,
    /// Cached with at least `min_remaining` left.
    Fresh,
    /// The last refresh failed; retrying with backoff.
    Failing,
}

/// Role credentials as the daemon hands them to `credential-process`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub profile: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: UnixTime,
    pub account_id: Option<String>,
}

/// The token file is not here on purpose: the client derives its path itself, so nothing a
/// daemon says can make an SDK send a file of the daemon's choosing as its `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The profile pinned by the URL, or `None` for the following (current) route.
    pub profile: Option<String>,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub url: String,
    /// `AWS_REGION` for the profile, when one is configured.
    pub region: Option<String>,
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, when IMDS is on.
    pub imds_url: Option<String>,
    /// The access session is missing or over and only the user can make it (`credd login`):
    /// `credd exec` and `credd env` log in first when there is a terminal to ask on.
    pub needs_login: bool,
}

// --- `credd refresh` and `credd stop` (issue 20) ---

/// How long the daemon waits for a `credd refresh` it asked for (past the STS client's own
/// timeouts and its fallback through every configured region) before it answers that the refresh
/// goes on in the background; the client waits a little longer for that answer.
pub const REFRESH_WAIT_SECS: u64 = 90;

/// One profile's `credd refresh`: new credentials, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshOutcome {
    pub profile: String,
    /// When the new credentials expire; `None` when the refresh failed.
    pub expires_at: Option<UnixTime>,
    /// The STS region that answered.
    pub sts_region: Option<String>,
    /// Why it failed: `LoginRequired` when only `credd login` can help.
    pub error: Option<ErrorReply>,
}

/// What the daemon does about `credd stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReport {
    pub pid: u32,
    /// `systemd` or `launchd` when that service manager runs the daemon: it does not stop
    /// itself then (the manager would start it again), the client stops it through the manager.
    pub managed_by: Option<String>,
    /// Whether the daemon is shutting down now.
    pub stopping: bool,
}

// ---- `credd doctor` (issue 21) ---------------------------------------------------------------

/// How long the daemon's doctor may take at most: each check that reaches out has a few seconds
/// of its own and they run side by side; a check that runs out of time is a finding, never a
/// failed doctor.
pub const DOCTOR_WAIT_SECS: u64 = 30;

/// What `credd doctor` found in the daemon: every check's finding, in the order it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The daemon's version (the client compares it with its own).
    pub daemon_version: String,
    pub findings: Vec<Finding>,
}

/// How bad a finding is; ordered, `Critical` the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Checked, and as it should be.
    Ok,
    /// Worth knowing, or a check that could not run (`found` says why).
    Info,
    /// A weakness to fix.
    Warning,
    /// Fix it first: e.g. the access account is the organization's management account.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One check's verdict. Never holds a secret: key IDs, ARNs, paths and AWS's messages only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable, for scripts: `management-account`, `mfa`, `key-age`, `unassumable-role`, ...
    pub check: String,
    pub severity: Severity,
    /// What was found, one line.
    pub found: String,
    /// Why it matters.
    pub why: Option<String>,
    /// How to fix it.
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(check: &str, severity: Severity, found: impl Into<String>) -> Finding {
        Finding {
            check: check.to_owned(),
            severity,
            found: found.into(),
            why: None,
            fix: None,
        }
    }

    pub fn ok(check: &str, found: impl Into<String>) -> Finding {
        Finding::new(check, Severity::Ok, found)
    }

    pub fn info(check: &str, found: impl Into<String>) -> Finding {
        Finding::new(check, Severity::Info, found)
    }

    pub fn warning(check: &str, found: impl Into<String>) -> Finding {
        Finding::new(check, Severity::Warning, found)
    }

    pub fn critical(check: &str, found: impl Into<String>) -> Finding {
        Finding::new(check, Severity::Critical, found)
    }

    pub fn why(mut self, why: impl Into<String>) -> Finding {
        self.why = Some(why.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

// ---- `credd console` ------------------------------------------------------------------------

/// `credd console [profile]`: what to sign in as, and where to land.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleRequest {
    /// The profile (`None`: the current one); ignored with `access`.
    pub profile: Option<String>,
    /// Sign in as the access session itself (an IAM user through GetFederationToken, or a
    /// federated access role) instead of a profile.
    #[serde(default)]
    pub access: bool,
    /// The console Region (`None`: the profile's `region`, else the partition's first Region).
    pub region: Option<String>,
    /// A service path (`s3`, `ec2/home#Instances:`) or a full console URL (`None`: the console
    /// home page).
    pub destination: Option<String>,
    /// The console session's length in seconds (900 to 43200); only a federation-token sign-in
    /// (the IAM user's own) can choose it.
    pub duration_secs: Option<u64>,
    /// The client opens a browser here: also serve the URL from a one-shot loopback page
    /// ([`ConsoleSignin::page`]), so that the browser's command line holds no sign-in.
    #[serde(default)]
    pub browser: bool,
}

/// A console sign-in URL. `url` is a bearer secret: whoever opens it is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSignin {
    pub url: Secret,
    /// The profile signed in as; `None`: the access session itself.
    pub profile: Option<String>,
    /// Who the console session is (`arn:aws:sts::222222222222:assumed-role/Admin/alice`).
    pub identity: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    pub region: String,
    /// The console page the sign-in lands on.
    pub destination: String,
    /// When the console session ends at the latest.
    pub expires_at: Option<UnixTime>,
    /// Whether the console session carries an MFA sign-in (a federation token never does).
    pub mfa_authenticated: bool,
    /// What the user should know, e.g. why `duration_secs` did not apply.
    pub notes: Vec<String>,
    /// With [`ConsoleRequest::browser`]: the daemon's one-shot loopback page
    /// (`http://127.0.0.1:PORT/console/NONCE`) that redirects the owner's browser to `url` once.
    /// No secret: it answers no other user and only once.
    pub page: Option<String>,
}

#[cfg(test)]
mod console_tests {
    use super::*;

    #[test]
    fn a_sign_in_url_never_shows_in_debug() {
        let signin = ConsoleSignin {
            url: Secret::new("https://signin.aws.amazon.com/federation?SigninToken=SECRETTOKEN"),
            profile: None,
            identity: "arn:aws:sts::1:federated-user/alice".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
            destination: "https://console.aws.amazon.com/".into(),
            expires_at: None,
            mfa_authenticated: false,
            notes: vec![],
            page: None,
        };
        let shown = format!("{:?}", Response::Console(signin));
        assert!(!shown.contains("SECRETTOKEN"), "{shown}");
        assert!(shown.contains("url: ***"), "{shown}");
    }
}
