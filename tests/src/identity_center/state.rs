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
use super::{AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT, Options, REFRESH_TOKEN_GRANT, SSO_SCOPE};

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
    pub last_device: Option<super::DeviceAuthorization>,
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

    // ---- SSO OIDC ------------------------------------------------------------------------

    pub fn register_client(
        &mut self,
        request: Registration,
        now: Instant,
        wall: SystemTime,
    ) -> Result<Registered, ApiError> {
        let invalid = |message: &str| ApiError::new(ErrorKind::InvalidRequest, message);
        if request.client_name.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("clientName is required"));
        }
        match request.client_type.as_deref() {
            Some("public") => {}
            Some(_) => return Err(invalid("clientType must be public")),
            None => return Err(invalid("clientType is required")),
        }
        if let Some(scope) = request.scopes.iter().find(|s| !s.contains(':')) {
            return Err(ApiError::new(
                ErrorKind::InvalidScope,
                format!("unknown scope {scope:?}"),
            ));
        }
        let known = [
            AUTHORIZATION_CODE_GRANT,
            REFRESH_TOKEN_GRANT,
            DEVICE_CODE_GRANT,
        ];
        if let Some(grant) = request
            .grant_types
            .iter()
            .find(|g| !known.contains(&g.as_str()))
        {
            return Err(ApiError::new(
                ErrorKind::UnsupportedGrantType,
                format!("unsupported grant type {grant:?}"),
            ));
        }
        if let Some(uri) = request
            .redirect_uris
            .iter()
            .find(|u| parse_loopback(u).is_none())
        {
            return Err(ApiError::new(
                ErrorKind::InvalidRedirectUri,
                format!("redirect URI {uri:?} is not an http loopback URI"),
            ));
        }
        let wants_code = request
            .grant_types
            .iter()
            .any(|g| g == AUTHORIZATION_CODE_GRANT);
        if wants_code && request.redirect_uris.is_empty() {
            return Err(ApiError::new(
                ErrorKind::InvalidClientMetadata,
                "the authorization_code grant needs redirectUris",
            ));
        }
        if let Some(issuer) = &request.issuer_url
            && !self.knows_start_url(issuer)
        {
            return Err(invalid("issuerUrl is not this instance's start URL"));
        }
        if wants_code && request.issuer_url.is_none() {
            return Err(invalid("the authorization_code grant needs issuerUrl"));
        }
        let client_id = self.random_token("", 16);
        let client_secret = self.random_token("", 48);
        let lifetime = self.options.client_secret_lifetime;
        self.clients.insert(
            client_id.clone(),
            Client {
                secret: client_secret.clone(),
                secret_expires: now + lifetime,
                scopes: request.scopes,
                grant_types: request.grant_types,
                redirect_uris: request.redirect_uris,
            },
        );
        let issued_at = unix_seconds(wall);
        Ok(Registered {
            client_id,
            client_secret,
            issued_at,
            secret_expires_at: issued_at + lifetime.as_secs(),
        })
    }

    pub fn start_device_authorization(
        &mut self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        start_url: Option<&str>,
        now: Instant,
    ) -> Result<DeviceStarted, ApiError> {
        let client_id = required(client_id, "clientId")?;
        let client = self.client(client_id, required(client_secret, "clientSecret")?, now)?;
        let start_url = required(start_url, "startUrl")?;
        if !client.allows(DEVICE_CODE_GRANT) {
            return Err(ApiError::new(
                ErrorKind::UnauthorizedClient,
                "the client is not registered for the device code grant",
            ));
        }
        if !self.knows_start_url(start_url) {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                "the start URL is not an Identity Center instance's",
            ));
        }
        let device_code = self.random_token("", 64);
        let user_code = self.user_code();
        let ttl = self.options.device_code_ttl;
        self.devices.insert(
            device_code.clone(),
            Device {
                client_id: client_id.to_owned(),
                user_code: user_code.clone(),
                expires: now + ttl,
                last_poll: None,
                state: DeviceState::Pending,
            },
        );
        Ok(DeviceStarted {
            device_code,
            user_code,
            expires_in: ceil_seconds(ttl),
            interval: self.options.poll_interval.as_secs(),
        })
    }

    /// The user approves (or, with `approve` false, denies) a pending device authorization.
    pub fn decide_device(
        &mut self,
        user_code: &str,
        approve: bool,
        now: Instant,
    ) -> Result<(), String> {
        let device = self
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code)
            .ok_or_else(|| format!("no device authorization has user code {user_code:?}"))?;
        if now >= device.expires {
            return Err(format!("the device authorization {user_code} has expired"));
        }
        if device.state != DeviceState::Pending {
            return Err(format!(
                "the device authorization {user_code} is no longer pending ({:?})",
                device.state
            ));
        }
        device.state = if approve {
            DeviceState::Approved
        } else {
            DeviceState::Denied
        };
        Ok(())
    }

    pub fn authorize(&mut self, request: AuthorizeRequest, now: Instant) -> Authorized {
        let Some(client_id) = request.client_id.as_deref() else {
            return Authorized::Refuse("client_id is missing".into());
        };
        let Some(client) = self.clients.get(client_id) else {
            return Authorized::Refuse("unknown client_id".into());
        };
        let Some(redirect_uri) = request.redirect_uri.clone() else {
            return Authorized::Refuse("redirect_uri is missing".into());
        };
        if !client
            .redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, &redirect_uri))
        {
            return Authorized::Refuse("redirect_uri is not registered for this client".into());
        }
        let state = request.state.clone().unwrap_or_default();
        let back = |pairs: &[(&str, &str)]| Authorized::Redirect(with_query(&redirect_uri, pairs));
        if request.response_type.as_deref() != Some("code") {
            return back(&[("error", "unsupported_response_type"), ("state", &state)]);
        }
        if !client.allows(AUTHORIZATION_CODE_GRANT) {
            return back(&[("error", "unauthorized_client"), ("state", &state)]);
        }
        let challenge = match (
            request.code_challenge_method.as_deref(),
            request.code_challenge,
        ) {
            (Some("S256"), Some(challenge)) if !challenge.is_empty() => challenge,
            _ => return back(&[("error", "invalid_request"), ("state", &state)]),
        };
        if self.deny_authorize {
            return back(&[("error", "access_denied"), ("state", &state)]);
        }
        let code = self.random_token("", 32);
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.clone(),
                challenge,
                expires: now + AUTH_CODE_TTL,
                used: false,
            },
        );
        back(&[("code", &code), ("state", &state)])
    }

    pub fn create_token(
        &mut self,
        request: TokenRequest,
        now: Instant,
    ) -> Result<Tokens, ApiError> {
        let client_id = required(request.client_id.as_deref(), "clientId")?.to_owned();
        let secret = required(request.client_secret.as_deref(), "clientSecret")?;
        let grant = required(request.grant_type.as_deref(), "grantType")?;
        let client = self.client(&client_id, secret, now)?;
        let known = [
            DEVICE_CODE_GRANT,
            AUTHORIZATION_CODE_GRANT,
            REFRESH_TOKEN_GRANT,
        ];
        if !known.contains(&grant) {
            return Err(ApiError::new(
                ErrorKind::UnsupportedGrantType,
                format!("unsupported grant type {grant:?}"),
            ));
        }
        if !client.allows(grant) {
            return Err(ApiError::new(
                ErrorKind::UnauthorizedClient,
                format!("the client is not registered for the {grant} grant"),
            ));
        }
        let refreshable = client.scopes.iter().any(|s| s == SSO_SCOPE);
        match grant {
            DEVICE_CODE_GRANT => {
                let code = required(request.device_code.as_deref(), "deviceCode")?;
                self.redeem_device_code(&client_id, code, refreshable, now)
            }
            AUTHORIZATION_CODE_GRANT => {
                self.redeem_auth_code(&client_id, &request, refreshable, now)
            }
            _ => {
                let token = required(request.refresh_token.as_deref(), "refreshToken")?;
                self.refresh(&client_id, token, now)
            }
        }
    }

    fn redeem_device_code(
        &mut self,
        client_id: &str,
        device_code: &str,
        refreshable: bool,
        now: Instant,
    ) -> Result<Tokens, ApiError> {
        let interval = self.options.poll_interval;
        let invalid = || ApiError::new(ErrorKind::InvalidGrant, "Invalid device code provided");
        let device = self.devices.get_mut(device_code).ok_or_else(invalid)?;
        if device.client_id != client_id {
            return Err(invalid());
        }
        if now >= device.expires {
            return Err(ApiError::new(
                ErrorKind::ExpiredToken,
                "the device code has expired",
            ));
        }
        if device.state == DeviceState::Redeemed {
            return Err(invalid());
        }
        let last_poll = device.last_poll.replace(now);
        if last_poll.is_some_and(|last| now + POLL_SLACK < last + interval) {
            return Err(ApiError::new(
                ErrorKind::SlowDown,
                "Client is polling too fast",
            ));
        }
        match device.state {
            DeviceState::Pending => Err(ApiError::new(
                ErrorKind::AuthorizationPending,
                "Authorization is still pending",
            )),
            DeviceState::Denied => Err(ApiError::new(
                ErrorKind::AccessDenied,
                "the user denied the authorization",
            )),
            DeviceState::Redeemed => Err(invalid()),
            DeviceState::Approved => {
                device.state = DeviceState::Redeemed;
                let session = self.new_session(refreshable, now);
                Ok(self.issue(session, client_id, now))
            }
        }
    }

    fn redeem_auth_code(
        &mut self,
        client_id: &str,
        request: &TokenRequest,
        refreshable: bool,
        now: Instant,
    ) -> Result<Tokens, ApiError> {
        let code = required(request.code.as_deref(), "code")?;
        let verifier = required(request.code_verifier.as_deref(), "codeVerifier")?;
        let redirect_uri = required(request.redirect_uri.as_deref(), "redirectUri")?;
        let invalid = |why: &str| ApiError::new(ErrorKind::InvalidGrant, why);
        let grant = self
            .codes
            .get_mut(code)
            .ok_or_else(|| invalid("Invalid authorization code provided"))?;
        if grant.client_id != client_id || grant.used || now >= grant.expires {
            return Err(invalid("Invalid authorization code provided"));
        }
        if grant.redirect_uri != redirect_uri {
            return Err(invalid(
                "redirectUri differs from the authorization request's",
            ));
        }
        if s256(verifier) != grant.challenge {
            // The code stays usable: only its holder with the right verifier gets tokens.
            return Err(invalid("Code verifier does not match the code challenge"));
        }
        grant.used = true;
        let session = self.new_session(refreshable, now);
        Ok(self.issue(session, client_id, now))
    }

    fn refresh(&mut self, client_id: &str, token: &str, now: Instant) -> Result<Tokens, ApiError> {
        let invalid = || ApiError::new(ErrorKind::InvalidGrant, "Invalid refresh token provided");
        let grant = self.refresh_tokens.get_mut(token).ok_or_else(invalid)?;
        if grant.client_id != client_id || grant.rotated {
            return Err(invalid());
        }
        let session = grant.session;
        if !self.sessions[session].live(now) {
            return Err(invalid());
        }
        grant.rotated = true;
        Ok(self.issue(session, client_id, now))
    }

    fn new_session(&mut self, refreshable: bool, now: Instant) -> usize {
        self.sessions.push(Session {
            ends: now + self.options.session_length,
            revoked: false,
            refreshable,
        });
        self.sessions.len() - 1
    }

    /// A new access token (and refresh token, for sessions that have them) of `session`. An
    /// access token never outlives its session.
    fn issue(&mut self, session: usize, client_id: &str, now: Instant) -> Tokens {
        let (ends, refreshable) = {
            let s = &self.sessions[session];
            (s.ends, s.refreshable)
        };
        let expires = if refreshable {
            ends.min(now + self.options.access_token_ttl)
        } else {
            ends
        };
        let access_token = self.random_token("aoa", 96);
        self.access_tokens
            .insert(access_token.clone(), AccessGrant { session, expires });
        let refresh_token = refreshable.then(|| {
            let token = self.random_token("aor", 96);
            self.refresh_tokens.insert(
                token.clone(),
                RefreshGrant {
                    session,
                    client_id: client_id.to_owned(),
                    rotated: false,
                },
            );
            token
        });
        Tokens {
            access_token,
            expires_in: ceil_seconds(expires.saturating_duration_since(now)),
            refresh_token,
        }
    }

    // ---- The portal ----------------------------------------------------------------------

    /// The session of a valid access token.
    fn bearer(&self, token: Option<&str>, now: Instant) -> Result<usize, ApiError> {
        let unauthorized = || {
            ApiError::new(
                ErrorKind::Unauthorized,
                "Session token not found or invalid",
            )
        };
        let grant = token
            .and_then(|t| self.access_tokens.get(t))
            .ok_or_else(unauthorized)?;
        if now >= grant.expires || !self.sessions[grant.session].live(now) {
            return Err(unauthorized());
        }
        Ok(grant.session)
    }

    /// Checks a GetRoleCredentials request; Ok(the ARN of the role to assume).
    pub fn role_to_assume(
        &self,
        token: Option<&str>,
        account_id: Option<&str>,
        role_name: Option<&str>,
        now: Instant,
    ) -> Result<String, ApiError> {
        self.bearer(token, now)?;
        let account_id = portal_required(account_id, "account_id")?;
        let role_name = portal_required(role_name, "role_name")?;
        let assigned = self
            .options
            .accounts
            .iter()
            .any(|a| a.id == account_id && a.roles.iter().any(|r| r == role_name));
        if !assigned {
            return Err(ApiError::new(ErrorKind::Forbidden, "No access"));
        }
        Ok(super::role_arn(account_id, role_name))
    }

    pub fn list_accounts(
        &self,
        token: Option<&str>,
        next_token: Option<&str>,
        max_results: Option<&str>,
        now: Instant,
    ) -> Result<Page<super::Account>, ApiError> {
        self.bearer(token, now)?;
        let assigned: Vec<super::Account> = self
            .options
            .accounts
            .iter()
            .filter(|a| !a.roles.is_empty())
            .cloned()
            .collect();
        self.page(&assigned, "accounts", next_token, max_results)
    }

    pub fn list_account_roles(
        &self,
        token: Option<&str>,
        account_id: Option<&str>,
        next_token: Option<&str>,
        max_results: Option<&str>,
        now: Instant,
    ) -> Result<Page<String>, ApiError> {
        self.bearer(token, now)?;
        let account_id = portal_required(account_id, "account_id")?;
        let roles = self
            .options
            .accounts
            .iter()
            .find(|a| a.id == account_id)
            .map(|a| a.roles.clone())
            .unwrap_or_default();
        self.page(
            &roles,
            &format!("roles/{account_id}"),
            next_token,
            max_results,
        )
    }

    /// Logout: the token's whole session ends (every token of it).
    pub fn logout(&mut self, token: Option<&str>, now: Instant) -> Result<(), ApiError> {
        let session = self.bearer(token, now)?;
        self.sessions[session].revoked = true;
        Ok(())
    }

    /// One page of `items` for the listing named `scope`: at most the page size (and at most
    /// `max_results`), with an opaque token for the next page, valid for this listing only.
    fn page<T: Clone>(
        &self,
        items: &[T],
        scope: &str,
        next_token: Option<&str>,
        max_results: Option<&str>,
    ) -> Result<Page<T>, ApiError> {
        let invalid = |what: &str| ApiError::new(ErrorKind::PortalInvalidRequest, what);
        let max = match max_results {
            None => usize::MAX,
            Some(text) => match text.parse::<usize>() {
                Ok(n @ 1..=100) => n,
                _ => return Err(invalid("max_result must be between 1 and 100")),
            },
        };
        let start = match next_token {
            None => 0,
            Some(token) => decode_page_token(token, scope)
                .filter(|offset| *offset <= items.len())
                .ok_or_else(|| invalid("Invalid next token"))?,
        };
        let size = self.options.page_size.max(1).min(max);
        let end = (start + size).min(items.len());
        let next = (end < items.len()).then(|| encode_page_token(scope, end));
        Ok((items[start..end].to_vec(), next))
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

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidRequest, format!("{name} is required")))
}

fn portal_required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorKind::PortalInvalidRequest,
            format!("{name} is required"),
        )
    })
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

#[cfg(test)]
mod tests;
