//! SSO OIDC's rules: client registration, the device code grant (pending, too fast, denied,
//! expired, redeemed once), the authorization code grant with PKCE, and refresh with rotation.

use std::time::{Instant, SystemTime};

use super::*;

impl State {
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
            interval: ceil_seconds(self.options.poll_interval),
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
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidRequest, format!("{name} is required")))
}
