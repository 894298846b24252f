//! The one seam between the engine and a way into the access account.
//!
//! A [`Source`] knows how its session is made (at once, with an MFA code, or by an
//! authorization the user completes elsewhere), whether and how it renews itself, what signs the
//! profiles' AssumeRole, where an outside login of it lives, what status shows of it, which
//! which of its own checks `credd doctor` runs, and, through [`ErrorClass`], what its errors ask of the caller.
//! The engine keeps what every source shares: single flight of logins, the pending login, the
//! logout epoch, the renewal schedule, the cache. A new source is a folder under `access/`, its
//! config section, and one line in the engine's registration
//! ([`crate::engine::Wiring`]'s `source_for`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::{Authorization, BrowserLogin, FederationInfo, Finding, Secret, SsoInfo};

use super::iam_user::IamUser;
use super::sso::{IdentityCenter, SsoToken};
use super::{AccessError, AccessSession, BoxFuture};
use crate::sts::Sts;

/// What a source's calls may use: the daemon's STS client and the Regions to try in order.
#[derive(Clone)]
pub struct Context {
    pub sts: Arc<Sts>,
    pub regions: Vec<String>,
    /// The engine's clock's reading when the call began.
    pub now: SystemTime,
}

/// A session made, and the STS Region that made it (`None`: no STS call made it).
pub struct Established {
    pub session: AccessSession,
    pub region: Option<String>,
}

/// What the sources' STS exchanges return: the session and the Region that answered.
impl From<(AccessSession, String)> for Established {
    fn from((session, region): (AccessSession, String)) -> Established {
        Established {
            session,
            region: Some(region),
        }
    }
}

/// What `credd login` asks of a source.
#[derive(Default)]
pub struct LoginRequest {
    /// The code the user typed, for a source that asks for one.
    pub mfa_code: Option<Secret>,
    /// How the user wants a browser login (method, Region, whether a browser can open).
    pub browser: BrowserLogin,
}

/// How a login started.
pub enum Login {
    /// The session is made.
    Done(Established),
    /// Only a one-time code from this MFA device makes it.
    NeedsMfa { serial: String },
    /// An authorization the user completes elsewhere (a browser, a device code, a command the
    /// user answers): `prompt` tells them what to do, `completion` ends when they did.
    Pending {
        prompt: Authorization,
        completion: BoxFuture<'static, Result<Completed, AccessError>>,
    },
}

/// How a pending login ended.
pub enum Completed {
    /// A new session.
    Session(Established),
    /// Identity Center: one Region's authorization, joined to the session's other Regions.
    Token(SsoToken),
}

/// What signs AssumeRole for a `role_arn` profile that goes `via` no other profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSigner {
    /// The session's own keys (an IAM user's key or MFA session, a federated role session).
    SessionKeys,
    /// The Identity Center access role (`[access] sso_account_id` + `sso_role_name`).
    AccessRole,
}

/// What status shows of the source, besides what every session has.
#[derive(Default)]
pub struct SourceStatus {
    pub federation: Option<FederationInfo>,
    pub sso: Option<SsoInfo>,
    /// Where a login shared with another tool is kept ([`Source::shares_login`]).
    pub shared_storage: Option<String>,
}

/// What the caller of a failed login, renewal or refresh should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Only a new login helps (`credd login`).
    LoginAgain,
    /// The config, or a file it names, must be fixed.
    FixConfig,
    /// A passing failure (unreachable, throttled, not ready yet): wait and retry.
    Retry,
    /// Refused by someone the user must listen to.
    Refused(Refuser),
}

/// Who refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refuser {
    /// STS, IAM or the Identity Center portal.
    Aws,
    /// The company's identity provider (or the command that speaks for it).
    IdentityProvider,
    /// The MFA code was wrong, malformed or missing.
    MfaCode,
    /// The OS keychain (locked, missing, empty).
    Keychain,
}

/// A way into the access account. Cheap calls are plain; calls that reach out return a future
/// that owns what it needs, so a pending login can outlive the request that started it.
pub trait Source: Send + Sync {
    /// Whether its login is an authorization the user completes elsewhere (a browser, a device
    /// code, a command that may ask them): then concurrent `credd login`s join the one under way
    /// instead of each logging in.
    fn authorizes(&self) -> bool {
        false
    }

    /// Whether the session can be had without the user (no MFA, or a command for its codes; no
    /// browser): then the daemon logs in by itself at start. By default, when it needs no
    /// authorization.
    fn is_unattended(&self) -> bool {
        !self.authorizes()
    }

    /// The MFA device `login` will ask a code for, if any.
    fn mfa_serial(&self) -> Option<&str> {
        None
    }

    /// Starts a login.
    fn login(
        self: Arc<Self>,
        cx: Context,
        request: LoginRequest,
    ) -> BoxFuture<'static, Result<Login, AccessError>>;

    /// How `session` renews itself without the user, for status (e.g. `with mfa_command
    /// ykman`); `None`: only `credd login` renews it.
    fn renewal(&self, _session: &AccessSession) -> Option<String> {
        None
    }

    /// Renews `session` without the user; `None` when it does not renew itself. Called only
    /// while [`Source::renewal`] says it does.
    fn renew(
        self: Arc<Self>,
        _cx: Context,
        _session: Arc<AccessSession>,
    ) -> Option<BoxFuture<'static, Result<Established, AccessError>>> {
        None
    }

    /// What signs AssumeRole for `role_arn` profiles.
    fn signer(&self) -> SessionSigner {
        SessionSigner::SessionKeys
    }

    /// Whether its session lives in another tool's cache (Identity Center's, in the AWS CLI's):
    /// then it is taken up from there ([`Source::adopt`]), never from credd's own store.
    fn shares_login(&self) -> bool {
        false
    }

    /// A login made outside credd that is still usable, if any.
    fn adopt(&self) -> Option<AccessSession> {
        None
    }

    /// The session is over (`credd logout`): end what the source keeps of it elsewhere.
    fn logged_out(self: Arc<Self>, _ended: &AccessSession) {}

    /// Its block in status.
    fn status(&self, _session: Option<&AccessSession>) -> SourceStatus {
        SourceStatus::default()
    }

    /// Who `session` is, for status: its identity, or (a bearer session, whose tokens name
    /// nobody) what it is, with `user` when STS told who the user is.
    fn identity(&self, session: &AccessSession, _user: Option<&str>) -> Option<String> {
        session.identity_arn.clone()
    }

    /// Its own checks for `credd doctor`, judged from its config: each a verdict with what it
    /// found, why it matters and how to fix it (e.g. an IAM user without `mfa_serial`, Identity
    /// Center without `sso_replicas`). The engine adds the live checks every source shares.
    /// Never a secret.
    fn checks(&self) -> Vec<Finding>;

    /// Identity Center, whose bearer session the engine renews token by token.
    fn identity_center(self: Arc<Self>) -> Option<Arc<IdentityCenter>> {
        None
    }

    /// The IAM user, whose long-lived key the `credd key` verbs manage.
    fn iam_user(&self) -> Option<&IamUser> {
        None
    }
}

/// At least this long before a renewal that failed with `e` is tried again.
pub fn retry_floor(e: &AccessError) -> Duration {
    match e {
        // e.g. a code already used: the command prints it again until the next step.
        AccessError::MfaCodeRefused { .. } => super::iam_user::mfa_command::TOTP_STEP,
        _ => Duration::ZERO,
    }
}

impl AccessError {
    /// What the caller should do about it.
    pub fn class(&self) -> ErrorClass {
        use ErrorClass::{FixConfig, LoginAgain, Refused};
        match self {
            AccessError::MfaRequired { .. } => LoginAgain,
            AccessError::MalformedMfaCode
            | AccessError::MfaCodeRefused { .. }
            | AccessError::MfaCommandNoCode { .. } => Refused(Refuser::MfaCode),
            AccessError::KeyFile(_) | AccessError::MfaSerialRefused { .. } => FixConfig,
            AccessError::Keychain(_) | AccessError::NoKeychainKey { .. } => {
                Refused(Refuser::Keychain)
            }
            AccessError::KeyRefused(_) | AccessError::Sts(_) | AccessError::Refused { .. } => {
                Refused(Refuser::Aws)
            }
            AccessError::Sso(e) => e.class(),
            AccessError::Oidc(e) => e.class(),
            AccessError::Saml(_) | AccessError::Command(_) | AccessError::TokenFile { .. } => {
                Refused(Refuser::IdentityProvider)
            }
        }
    }
}
