//! The Identity Center's bookkeeping, without HTTP: client registrations, device authorizations,
//! authorization codes, sign-in sessions with their access and refresh tokens, and the user's
//! assignments. Every rule takes `now`, so expiry, polling pace and rotation are unit-tested
//! without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};

use super::codec::{
    base64url, decode_page_token, encode_page_token, parse_loopback, redirect_matches, s256,
    with_query,
};
use super::errors::{ApiError, ErrorKind};
use super::{
    AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT, DeviceAuthorization, Options, REFRESH_TOKEN_GRANT,
    SSO_SCOPE,
};

/// How long an authorization code from `/authorize` may wait for its CreateToken.
const AUTH_CODE_TTL: Duration = Duration::from_secs(300);

/// A poll this much sooner than `interval` after the previous one is still on time: the client
/// waited the interval after its last answer, and the clocks of two processes never agree to
/// the microsecond.
const POLL_SLACK: Duration = Duration::from_millis(50);

/// The letters of user codes: no vowels (no words), no look-alikes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

pub(super) struct State {
    pub options: Options,
    /// `/authorize` answers `error=access_denied` instead of a code.
    pub deny_authorize: bool,
    pub last_device: Option<DeviceAuthorization>,
    clients: HashMap<String, Client>,
    /// By device code.
    devices: HashMap<String, Device>,
    /// By authorization code.
    codes: HashMap<String, AuthCode>,
    sessions: Vec<Session>,
    access_tokens: HashMap<String, AccessGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    random: SystemRandom,
}

struct Client {
    secret: String,
    secret_expires: Instant,
    scopes: Vec<String>,
    /// Empty: registered without grantTypes (the device-code clients of the CLI), which may use
    /// the device code and refresh grants.
    grant_types: Vec<String>,
    redirect_uris: Vec<String>,
}

impl Client {
    fn allows(&self, grant: &str) -> bool {
        if self.grant_types.is_empty() {
            grant == DEVICE_CODE_GRANT || grant == REFRESH_TOKEN_GRANT
        } else {
            self.grant_types.iter().any(|g| g == grant)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved,
    Denied,
    Redeemed,
}

struct Device {
    client_id: String,
    user_code: String,
    expires: Instant,
    last_poll: Option<Instant>,
    state: DeviceState,
}

struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    expires: Instant,
    used: bool,
}

/// One sign-in of the user: what every token of it lives within.
struct Session {
    ends: Instant,
    revoked: bool,
    /// Registered with `sso:account:access`: 1-hour access tokens and refresh tokens. Without
    /// (the legacy form), one access token for the whole session and no refresh token.
    refreshable: bool,
}

impl Session {
    fn live(&self, now: Instant) -> bool {
        !self.revoked && now < self.ends
    }
}

struct AccessGrant {
    session: usize,
    expires: Instant,
}

struct RefreshGrant {
    session: usize,
    client_id: String,
    rotated: bool,
}

/// RegisterClient's input (JSON members of the same names).
#[derive(Debug, Default, Clone)]
pub(super) struct Registration {
    pub client_name: Option<String>,
    pub client_type: Option<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub issuer_url: Option<String>,
}

pub(super) struct Registered {
    pub client_id: String,
    pub client_secret: String,
    pub issued_at: u64,
    pub secret_expires_at: u64,
}

pub(super) struct DeviceStarted {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// CreateToken's input (JSON members of the same names).
#[derive(Debug, Default, Clone)]
pub(super) struct TokenRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub grant_type: Option<String>,
    pub device_code: Option<String>,
    pub code: Option<String>,
    pub refresh_token: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

pub(super) struct Tokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
}

/// `/authorize`'s query.
#[derive(Debug, Default, Clone)]
pub(super) struct AuthorizeRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge_method: Option<String>,
    pub code_challenge: Option<String>,
}

/// What `/authorize` does.
pub(super) enum Authorized {
    /// 302 to this URL (the redirect URI with `code` and `state`, or `error` and `state`).
    Redirect(String),
    /// No redirect (unknown client, unregistered redirect URI): a 400 page saying why.
    Refuse(String),
}

/// One page of a listing and the token of the next.
pub(super) type Page<T> = (Vec<T>, Option<String>);

impl State {
    pub fn new(options: Options) -> State {
        State {
            options,
            deny_authorize: false,
            last_device: None,
            clients: HashMap::new(),
            devices: HashMap::new(),
            codes: HashMap::new(),
            sessions: Vec::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            random: SystemRandom::new(),
        }
    }

    // ---- Controls ------------------------------------------------------------------------

    pub fn revoke_all(&mut self) {
        for session in &mut self.sessions {
            session.revoked = true;
        }
    }

    pub fn end_sessions(&mut self, now: Instant) {
        for session in &mut self.sessions {
            session.ends = session.ends.min(now);
        }
    }

    pub fn expire_access_tokens(&mut self, now: Instant) {
        for grant in self.access_tokens.values_mut() {
            grant.expires = grant.expires.min(now);
        }
    }

    pub fn expire_device_codes(&mut self, now: Instant) {
        for device in self.devices.values_mut() {
            device.expires = device.expires.min(now);
        }
    }

    /// Sessions signed in so far (by either grant), live or not.
    pub fn sessions_started(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions neither over nor revoked.
    pub fn live_sessions(&self, now: Instant) -> usize {
        self.sessions.iter().filter(|s| s.live(now)).count()
    }

    /// Every secret handed out so far, each with what it is: client secrets, device codes,
    /// authorization codes, access and refresh tokens (rotated and revoked ones too).
    pub fn issued_secrets(&self) -> Vec<(&'static str, String)> {
        let clients = self
            .clients
            .values()
            .map(|c| ("a client secret", &c.secret));
        let devices = self.devices.keys().map(|k| ("a device code", k));
        let codes = self.codes.keys().map(|k| ("an authorization code", k));
        let access = self.access_tokens.keys().map(|k| ("an access token", k));
        let refresh = self.refresh_tokens.keys().map(|k| ("a refresh token", k));
        clients
            .chain(devices)
            .chain(codes)
            .chain(access)
            .chain(refresh)
            .map(|(what, secret)| (what, secret.clone()))
            .collect()
    }

    // ---- Helpers -------------------------------------------------------------------------

    fn client(&self, client_id: &str, secret: &str, now: Instant) -> Result<&Client, ApiError> {
        let invalid = |why: &str| ApiError::new(ErrorKind::InvalidClient, why);
        let client = self
            .clients
            .get(client_id)
            .ok_or_else(|| invalid("Invalid client provided"))?;
        if client.secret != secret {
            return Err(invalid("Invalid client provided"));
        }
        if now >= client.secret_expires {
            return Err(invalid("the client secret has expired"));
        }
        Ok(client)
    }

    fn knows_start_url(&self, url: &str) -> bool {
        self.options.start_urls.iter().any(|u| u == url)
    }

    fn random_bytes(&self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.random
            .fill(&mut bytes)
            .expect("the system's random source works");
        bytes
    }

    /// `prefix` + `len` random bytes, base64url.
    fn random_token(&self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", base64url(&self.random_bytes(len)))
    }

    /// `XXXX-XXXX`, unique among this fake's device authorizations.
    fn user_code(&self) -> String {
        loop {
            let letters: String = self
                .random_bytes(8)
                .iter()
                .map(|b| USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()] as char)
                .collect();
            let code = format!("{}-{}", &letters[..4], &letters[4..]);
            if !self.devices.values().any(|d| d.user_code == code) {
                return code;
            }
        }
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Whole seconds, rounded up: a client told `expiresIn` never waits past the real expiry by
/// rounding, and a sub-second lifetime (tests) is still 1.
fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

mod oidc;
mod portal;
#[cfg(test)]
mod tests;
