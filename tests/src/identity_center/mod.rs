//! A fake IAM Identity Center on one loopback port: SSO OIDC (RegisterClient,
//! StartDeviceAuthorization, CreateToken, and the browser's `/authorize`) and the portal
//! (GetRoleCredentials, ListAccounts, ListAccountRoles, Logout) as the botocore models describe
//! them, so the daemon, botocore and the Rust SDKs all talk to it as to AWS. The role credentials
//! it hands out are real ones from moto's AssumeRole (auth on), so whatever uses them is checked.
//!
//! Point clients at it with `AWS_ENDPOINT_URL_SSO_OIDC` and `AWS_ENDPOINT_URL_SSO` (both
//! [`IdentityCenter::url`], see [`IdentityCenter::env`]). Tests steer it (approve a device code,
//! revoke sessions or a role, take the Region down) and read what it was asked
//! ([`IdentityCenter::calls`], [`IdentityCenter::log`]).

mod codec;
mod errors;
mod state;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::moto::{Auth, AwsKeys, Moto, SeedSpec};
use crate::server::{ServerThread, bind, lock};
use crate::wait_until;

pub use codec::{base64url, s256};
pub use errors::ErrorKind;

/// The start URL the fake knows unless told otherwise.
pub const START_URL: &str = "https://credd-test.awsapps.com/start";
/// The Region the fake plays (only names things: it answers whatever Region is asked for).
pub const SSO_REGION: &str = "us-east-1";
/// The registration scope that makes sessions refreshable.
pub const SSO_SCOPE: &str = "sso:account:access";
/// The user every session belongs to: the RoleSessionName of its role credentials.
pub const SSO_USER: &str = "alice";

/// The account of the default access role ([`ACCESS_ROLE`]).
pub const ACCESS_ACCOUNT: &str = "111111111111";
/// A permission set in [`ACCESS_ACCOUNT`], for the daemon's `[access]` role.
pub const ACCESS_ROLE: &str = "CreddAccess";
/// The account of [`ADMIN_ROLE`] and [`READ_ONLY_ROLE`] (the accounts of stack's `role_arn`s).
pub const STAGING_ACCOUNT: &str = "222222222222";
/// A third account, with [`READ_ONLY_ROLE`] only.
pub const PROD_ACCOUNT: &str = "333333333333";
pub const ADMIN_ROLE: &str = "AdministratorAccess";
pub const READ_ONLY_ROLE: &str = "ReadOnlyAccess";

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";

/// The IAM role behind a permission set in an account: what the fake assumes in moto.
pub fn role_arn(account_id: &str, role_name: &str) -> String {
    format!("arn:aws:iam::{account_id}:role/{role_name}")
}

/// The caller ARN of credentials from GetRoleCredentials for `role_name` in `account_id`.
pub fn assumed_role_arn(account_id: &str, role_name: &str) -> String {
    format!("arn:aws:sts::{account_id}:assumed-role/{role_name}/{SSO_USER}")
}

/// An AWS account the user is assigned to, and the permission sets (roles) there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
}

impl Account {
    /// No roles yet; the email is `NAME@example.com`.
    pub fn new(id: &str, name: &str) -> Account {
        Account {
            id: id.to_owned(),
            name: name.to_owned(),
            email: format!("{name}@example.com"),
            roles: Vec::new(),
        }
    }

    pub fn role(mut self, role_name: &str) -> Account {
        self.roles.push(role_name.to_owned());
        self
    }
}

/// How the fake behaves. `Options { page_size: 1, ..Options::default() }`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The instances' start URLs (StartDeviceAuthorization refuses others; RegisterClient's
    /// issuerUrl must be one). Default: [`START_URL`].
    pub start_urls: Vec<String>,
    /// The user's assignments. Default: [`ACCESS_ACCOUNT`] with [`ACCESS_ROLE`],
    /// [`STAGING_ACCOUNT`] with [`ADMIN_ROLE`] and [`READ_ONLY_ROLE`], [`PROD_ACCOUNT`] with
    /// [`READ_ONLY_ROLE`].
    pub accounts: Vec<Account>,
    /// Access tokens of refreshable sessions (clients registered with [`SSO_SCOPE`]); never past
    /// the session's end. Default 1 h.
    pub access_token_ttl: Duration,
    /// The organization's session length: refresh is refused after it, and the legacy form's
    /// single token lasts exactly this. Default 8 h.
    pub session_length: Duration,
    /// How long a device code can be redeemed. Default 600 s (sent as whole seconds, rounded up).
    pub device_code_ttl: Duration,
    /// The device-code poll interval (whole seconds on the wire, rounded up). Default 1 s; a poll
    /// sooner than this after the previous one (pending or too fast) is a SlowDownException. The
    /// first poll is never too fast.
    pub poll_interval: Duration,
    /// clientSecretExpiresAt - clientIdIssuedAt. Default 90 days.
    pub client_secret_lifetime: Duration,
    /// Items per page of ListAccounts / ListAccountRoles (and at most the request's max_result).
    /// Default 2, so every client of the fake meets pagination.
    pub page_size: usize,
    /// The DurationSeconds of the AssumeRole behind GetRoleCredentials. Default 1 h.
    pub role_credentials_ttl: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            start_urls: vec![START_URL.to_owned()],
            accounts: vec![
                Account::new(ACCESS_ACCOUNT, "identity").role(ACCESS_ROLE),
                Account::new(STAGING_ACCOUNT, "staging")
                    .role(ADMIN_ROLE)
                    .role(READ_ONLY_ROLE),
                Account::new(PROD_ACCOUNT, "production").role(READ_ONLY_ROLE),
            ],
            access_token_ttl: Duration::from_secs(3600),
            session_length: Duration::from_secs(8 * 3600),
            device_code_ttl: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            client_secret_lifetime: Duration::from_secs(90 * 24 * 3600),
            page_size: 2,
            role_credentials_ttl: Duration::from_secs(3600),
        }
    }
}

/// The operations, for [`IdentityCenter::calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    RegisterClient,
    StartDeviceAuthorization,
    /// The browser's `GET /authorize`.
    Authorize,
    /// The browser's `GET /device` (the verification URI): with a user code, the approval.
    DevicePage,
    CreateToken(Grant),
    GetRoleCredentials,
    ListAccounts,
    ListAccountRoles,
    Logout,
    /// A request for no known operation.
    Unknown,
}

/// CreateToken's `grantType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    DeviceCode,
    AuthorizationCode,
    RefreshToken,
    /// Missing or unsupported.
    Other,
}

impl Grant {
    fn of(grant_type: Option<&str>) -> Grant {
        match grant_type {
            Some(DEVICE_CODE_GRANT) => Grant::DeviceCode,
            Some(AUTHORIZATION_CODE_GRANT) => Grant::AuthorizationCode,
            Some(REFRESH_TOKEN_GRANT) => Grant::RefreshToken,
            _ => Grant::Other,
        }
    }
}

/// How the Region is (not) answering. See [`IdentityCenter::set_outage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Everything answers.
    None,
    /// Every request gets 503 `ServiceUnavailableException`, as AWS's front ends answer when a
    /// service behind them is down: SDKs retry it as a transient error, then fail.
    Unavailable,
    /// Connections are closed without an answer (new and kept-alive ones).
    Refused,
}

/// The last StartDeviceAuthorization's answer, as the user would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
}

/// What the server thread shares with the test.
struct Shared {
    state: Mutex<state::State>,
    outage: Mutex<Outage>,
    /// Per operation: (requests, successful answers).
    counts: Mutex<HashMap<Op, (usize, usize)>>,
    log: Mutex<Vec<String>>,
    /// Where role credentials come from.
    moto: &'static Moto,
    /// The fake's own IAM user in moto, which assumes the roles.
    signer: AwsKeys,
    base_url: String,
}

impl Shared {
    fn record(&self, op: Op, ok: bool, line: String) {
        let mut counts = lock(&self.counts);
        let entry = counts.entry(op).or_default();
        entry.0 += 1;
        entry.1 += usize::from(ok);
        drop(counts);
        lock(&self.log).push(line);
    }
}

/// A running fake; dropping it stops the server and its runtime thread.
pub struct IdentityCenter {
    shared: Arc<Shared>,
    server: ServerThread,
}

impl IdentityCenter {
    /// A fake with `options`, its roles seeded into the shared moto with auth on.
    pub fn start(options: Options) -> IdentityCenter {
        IdentityCenter::start_with_moto(options, Moto::shared(Auth::On))
    }

    /// A fake with [`Options::default`].
    pub fn start_default() -> IdentityCenter {
        IdentityCenter::start(Options::default())
    }

    /// A fake whose role credentials come from `moto`: its own IAM user (in an account of its
    /// own) is seeded there, and every role of `options`.
    pub fn start_with_moto(options: Options, moto: &'static Moto) -> IdentityCenter {
        assert!(
            !options.start_urls.is_empty(),
            "the fake needs at least one start URL"
        );
        let mut spec = SeedSpec::new().user("identity-center");
        for account in &options.accounts {
            for role in &account.roles {
                spec = spec.role(&role_arn(&account.id, role));
            }
        }
        let signer = moto.seed(&spec).user("identity-center").keys();

        let listener = bind("Identity Center fake");
        let addr = listener
            .local_addr()
            .expect("the Identity Center fake's address");
        let shared = Arc::new(Shared {
            state: Mutex::new(state::State::new(options)),
            outage: Mutex::new(Outage::None),
            counts: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            moto,
            signer,
            base_url: format!("http://{addr}"),
        });
        let state = shared.clone();
        let server = ServerThread::start("identity-center", listener, move |listener, stop| {
            wire::serve(listener, state, stop)
        });
        IdentityCenter { shared, server }
    }

    /// `http://127.0.0.1:PORT`: both services' endpoint.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The first start URL of the options.
    pub fn start_url(&self) -> String {
        self.state().options.start_urls[0].clone()
    }

    /// `AWS_ENDPOINT_URL_SSO_OIDC` and `AWS_ENDPOINT_URL_SSO`, both [`IdentityCenter::url`].
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL_SSO_OIDC".to_owned(), self.url()),
            ("AWS_ENDPOINT_URL_SSO".to_owned(), self.url()),
        ]
    }

    /// The moto the role credentials come from.
    pub fn moto(&self) -> &'static Moto {
        self.shared.moto
    }

    // ---- The user ------------------------------------------------------------------------

    /// The user approves the device authorization with this user code (as a GET of its
    /// verificationUriComplete does). Panics unless it is pending.
    #[track_caller]
    pub fn approve(&self, user_code: &str) {
        if let Err(why) = self.state().decide_device(user_code, true, Instant::now()) {
            panic!("approve: {why}");
        }
    }

    /// The user denies it: polls get AccessDeniedException. Panics unless it is pending.
    #[track_caller]
    pub fn deny(&self, user_code: &str) {
        if let Err(why) = self.state().decide_device(user_code, false, Instant::now()) {
            panic!("deny: {why}");
        }
    }

    /// `/authorize` denies (redirects with `error=access_denied`) instead of approving.
    pub fn set_authorize_denies(&self, deny: bool) {
        self.state().deny_authorize = deny;
    }

    /// The last StartDeviceAuthorization's user code and verification URIs.
    pub fn last_device_authorization(&self) -> Option<DeviceAuthorization> {
        self.state().last_device.clone()
    }

    /// Waits for a StartDeviceAuthorization (the `after`-th and later: pass
    /// `calls(Op::StartDeviceAuthorization)` taken before) and returns what the user sees.
    #[track_caller]
    pub fn wait_device_authorization(
        &self,
        after: usize,
        deadline: Duration,
    ) -> DeviceAuthorization {
        wait_until(deadline, "a StartDeviceAuthorization", || {
            self.succeeded(Op::StartDeviceAuthorization) > after
        });
        self.last_device_authorization()
            .expect("a device authorization was recorded")
    }

    // ---- The organization ----------------------------------------------------------------

    /// An administrator revokes every sign-in session: access tokens get UnauthorizedException,
    /// refresh tokens InvalidGrantException. New logins work.
    pub fn revoke_all(&self) {
        self.state().revoke_all();
    }

    /// Every session reaches its configured length now (same effect as revoking, by time).
    pub fn end_sessions(&self) {
        self.state().end_sessions(Instant::now());
    }

    /// Every access token issued so far expires now; their sessions (and refresh tokens) live on.
    pub fn expire_access_tokens(&self) {
        self.state().expire_access_tokens(Instant::now());
    }

    /// Every device code issued so far expires now.
    pub fn expire_device_codes(&self) {
        self.state().expire_device_codes(Instant::now());
    }

    /// The user loses `role_name` in `account_id`: GetRoleCredentials answers
    /// ForbiddenException and ListAccountRoles stops listing it (an account with no role left
    /// leaves ListAccounts).
    pub fn revoke_role(&self, account_id: &str, role_name: &str) {
        let mut state = self.state();
        let account = state
            .options
            .accounts
            .iter_mut()
            .find(|a| a.id == account_id)
            .unwrap_or_else(|| panic!("revoke_role: no account {account_id}"));
        account.roles.retain(|r| r != role_name);
    }

    /// The user gets `role_name` in `account_id` (a new account if needed), seeded in moto.
    pub fn grant_role(&self, account_id: &str, role_name: &str) {
        self.moto()
            .seed(&SeedSpec::new().role(&role_arn(account_id, role_name)));
        let mut state = self.state();
        let accounts = &mut state.options.accounts;
        let index = match accounts.iter().position(|a| a.id == account_id) {
            Some(i) => i,
            None => {
                accounts.push(Account::new(account_id, &format!("account-{account_id}")));
                accounts.len() - 1
            }
        };
        if !accounts[index].roles.iter().any(|r| r == role_name) {
            accounts[index].roles.push(role_name.to_owned());
        }
    }

    /// [`Outage::Unavailable`] when `down`, else [`Outage::None`].
    pub fn set_down(&self, down: bool) {
        self.set_outage(if down {
            Outage::Unavailable
        } else {
            Outage::None
        });
    }

    /// Applies to every request from now on, kept-alive connections included.
    pub fn set_outage(&self, outage: Outage) {
        *lock(&self.shared.outage) = outage;
    }

    // ---- Observations --------------------------------------------------------------------

    /// Requests for `op` so far, whatever they were answered.
    pub fn calls(&self, op: Op) -> usize {
        lock(&self.shared.counts).get(&op).map_or(0, |c| c.0)
    }

    /// Requests for `op` answered with success (2xx, or the 302 of `/authorize`).
    pub fn succeeded(&self, op: Op) -> usize {
        lock(&self.shared.counts).get(&op).map_or(0, |c| c.1)
    }

    /// CreateToken requests of any grant type.
    pub fn create_token_calls(&self) -> usize {
        lock(&self.shared.counts)
            .iter()
            .filter(|(op, _)| matches!(op, Op::CreateToken(_)))
            .map(|(_, c)| c.0)
            .sum()
    }

    /// Sign-ins so far (successful device code or authorization code redemptions).
    pub fn sessions_started(&self) -> usize {
        self.state().sessions_started()
    }

    /// Sessions neither ended nor revoked.
    pub fn live_sessions(&self) -> usize {
        self.state().live_sessions(Instant::now())
    }

    /// Every secret the fake handed out so far (client secrets, device and authorization codes,
    /// access and refresh tokens, rotated and revoked ones too), each with what it is: for "this
    /// never leaks" checks.
    pub fn issued_secrets(&self) -> Vec<(&'static str, String)> {
        self.state().issued_secrets()
    }

    /// One line per request: method, path, operation, and the answer (no token, code or secret).
    pub fn log(&self) -> String {
        lock(&self.shared.log).join("\n")
    }

    /// Forgets the counts and the log (not the state).
    pub fn reset_counts(&self) {
        lock(&self.shared.counts).clear();
        lock(&self.shared.log).clear();
    }

    fn state(&self) -> MutexGuard<'_, state::State> {
        lock(&self.shared.state)
    }
}

/// Milliseconds since the epoch (GetRoleCredentials' `expiration`).
fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
