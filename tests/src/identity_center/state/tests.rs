//! The bookkeeping's rules, at chosen instants.

use super::*;
use crate::identity_center::{Account, START_URL};

const SECOND: Duration = Duration::from_secs(1);

fn options() -> Options {
    Options {
        accounts: vec![
            Account::new("111111111111", "one").role("A").role("B"),
            Account::new("222222222222", "two").role("C"),
            Account::new("333333333333", "three").role("D"),
        ],
        page_size: 2,
        ..Options::default()
    }
}

fn device_client(state: &mut State, now: Instant) -> (String, String) {
    let r = state
        .register_client(
            Registration {
                client_name: Some("test".into()),
                client_type: Some("public".into()),
                scopes: vec![SSO_SCOPE.into()],
                ..Registration::default()
            },
            now,
            SystemTime::now(),
        )
        .expect("register");
    (r.client_id, r.client_secret)
}

fn token_request(client: &(String, String), grant: &str) -> TokenRequest {
    TokenRequest {
        client_id: Some(client.0.clone()),
        client_secret: Some(client.1.clone()),
        grant_type: Some(grant.into()),
        ..TokenRequest::default()
    }
}

/// A device login, approved and redeemed at `now`.
fn login(state: &mut State, client: &(String, String), now: Instant) -> Tokens {
    let started = state
        .start_device_authorization(Some(&client.0), Some(&client.1), Some(START_URL), now)
        .expect("start");
    state
        .decide_device(&started.user_code, true, now)
        .expect("approve");
    let mut request = token_request(client, DEVICE_CODE_GRANT);
    request.device_code = Some(started.device_code);
    state.create_token(request, now).expect("redeem")
}

fn kind<T>(result: Result<T, ApiError>) -> ErrorKind {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind,
    }
}

#[test]
fn device_polling_is_pending_then_too_fast_then_done_once() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = device_client(&mut state, t0);
    let started = state
        .start_device_authorization(Some(&client.0), Some(&client.1), Some(START_URL), t0)
        .expect("start");
    assert_eq!((started.expires_in, started.interval), (600, 1));
    let mut poll = token_request(&client, DEVICE_CODE_GRANT);
    poll.device_code = Some(started.device_code.clone());
    let at = |s: u64| t0 + Duration::from_millis(s);
    assert_eq!(
        kind(state.create_token(poll.clone(), at(0))),
        ErrorKind::AuthorizationPending
    );
    assert_eq!(
        kind(state.create_token(poll.clone(), at(500))),
        ErrorKind::SlowDown
    );
    // Measured from the last poll, too-fast ones included.
    assert_eq!(
        kind(state.create_token(poll.clone(), at(1200))),
        ErrorKind::SlowDown
    );
    assert_eq!(
        kind(state.create_token(poll.clone(), at(2200))),
        ErrorKind::AuthorizationPending
    );
    state
        .decide_device(&started.user_code, true, at(2300))
        .expect("approve");
    let tokens = state.create_token(poll.clone(), at(3200)).expect("tokens");
    assert!(tokens.access_token.starts_with("aoa"));
    assert!(tokens.refresh_token.is_some());
    assert_eq!(
        kind(state.create_token(poll, at(4200))),
        ErrorKind::InvalidGrant
    );
}

#[test]
fn a_device_code_expires_and_a_denied_one_is_refused() {
    let mut state = State::new(Options {
        device_code_ttl: Duration::from_millis(300),
        ..options()
    });
    let t0 = Instant::now();
    let client = device_client(&mut state, t0);
    let started = state
        .start_device_authorization(Some(&client.0), Some(&client.1), Some(START_URL), t0)
        .expect("start");
    assert_eq!(started.expires_in, 1, "sub-second lifetimes round up");
    let mut poll = token_request(&client, DEVICE_CODE_GRANT);
    poll.device_code = Some(started.device_code);
    assert_eq!(
        kind(state.create_token(poll, t0 + SECOND)),
        ErrorKind::ExpiredToken
    );

    let started = state
        .start_device_authorization(Some(&client.0), Some(&client.1), Some(START_URL), t0)
        .expect("start");
    state
        .decide_device(&started.user_code, false, t0)
        .expect("deny");
    let mut poll = token_request(&client, DEVICE_CODE_GRANT);
    poll.device_code = Some(started.device_code);
    assert_eq!(kind(state.create_token(poll, t0)), ErrorKind::AccessDenied);
}

#[test]
fn unknown_start_urls_and_clients_are_refused() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = device_client(&mut state, t0);
    assert_eq!(
        kind(state.start_device_authorization(
            Some(&client.0),
            Some(&client.1),
            Some("https://elsewhere.awsapps.com/start"),
            t0
        )),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        kind(state.start_device_authorization(Some(&client.0), Some("wrong"), Some(START_URL), t0)),
        ErrorKind::InvalidClient
    );
    let lifetime = state.options.client_secret_lifetime;
    assert_eq!(
        kind(state.start_device_authorization(
            Some(&client.0),
            Some(&client.1),
            Some(START_URL),
            t0 + lifetime
        )),
        ErrorKind::InvalidClient
    );
}

#[test]
fn refresh_rotates_and_refuses_reuse_ended_and_revoked_sessions() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = device_client(&mut state, t0);
    let first = login(&mut state, &client, t0);
    assert_eq!(first.expires_in, 3600);
    let mut refresh = token_request(&client, REFRESH_TOKEN_GRANT);
    refresh.refresh_token = first.refresh_token.clone();
    let second = state.create_token(refresh.clone(), t0).expect("refresh");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        kind(state.create_token(refresh, t0)),
        ErrorKind::InvalidGrant,
        "a rotated refresh token is dead"
    );
    // Near the session's end, the access token is cut to it.
    let mut refresh = token_request(&client, REFRESH_TOKEN_GRANT);
    refresh.refresh_token = second.refresh_token.clone();
    let late = t0 + state.options.session_length - Duration::from_secs(60);
    let third = state.create_token(refresh, late).expect("refresh");
    assert_eq!(third.expires_in, 60);
    let mut refresh = token_request(&client, REFRESH_TOKEN_GRANT);
    refresh.refresh_token = third.refresh_token.clone();
    state.end_sessions(late);
    assert_eq!(
        kind(state.create_token(refresh, late)),
        ErrorKind::InvalidGrant
    );

    let fresh = login(&mut state, &client, t0);
    state.revoke_all();
    let mut refresh = token_request(&client, REFRESH_TOKEN_GRANT);
    refresh.refresh_token = fresh.refresh_token;
    assert_eq!(
        kind(state.create_token(refresh, t0)),
        ErrorKind::InvalidGrant
    );
    assert_eq!(
        kind(state.role_to_assume(
            Some(&fresh.access_token),
            Some("111111111111"),
            Some("A"),
            t0
        )),
        ErrorKind::Unauthorized
    );
}

#[test]
fn legacy_clients_get_one_token_for_the_session_and_no_refresh_token() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = state
        .register_client(
            Registration {
                client_name: Some("legacy".into()),
                client_type: Some("public".into()),
                ..Registration::default()
            },
            t0,
            SystemTime::now(),
        )
        .expect("register");
    let tokens = login(&mut state, &(client.client_id, client.client_secret), t0);
    assert_eq!(tokens.expires_in, 8 * 3600);
    assert!(tokens.refresh_token.is_none());
}

#[test]
fn role_credentials_need_a_live_token_and_an_assignment() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = device_client(&mut state, t0);
    let tokens = login(&mut state, &client, t0);
    let token = Some(tokens.access_token.as_str());
    assert_eq!(
        state.role_to_assume(token, Some("111111111111"), Some("A"), t0),
        Ok("arn:aws:iam::111111111111:role/A".to_owned())
    );
    assert_eq!(
        kind(state.role_to_assume(token, Some("111111111111"), Some("C"), t0)),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(state.role_to_assume(Some("aoa-nope"), Some("111111111111"), Some("A"), t0)),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        kind(state.role_to_assume(
            token,
            Some("111111111111"),
            Some("A"),
            t0 + 2 * 3600 * SECOND
        )),
        ErrorKind::Unauthorized,
        "the access token lasts an hour"
    );
    state.expire_access_tokens(t0);
    assert_eq!(
        kind(state.role_to_assume(token, Some("111111111111"), Some("A"), t0)),
        ErrorKind::Unauthorized
    );
}

#[test]
fn listings_paginate_with_tokens_of_their_own() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = device_client(&mut state, t0);
    let token = login(&mut state, &client, t0).access_token;
    let token = Some(token.as_str());
    let (first, next) = state.list_accounts(token, None, None, t0).expect("page 1");
    assert_eq!(first.len(), 2);
    let next = next.expect("a second page");
    let (second, last) = state
        .list_accounts(token, Some(&next), None, t0)
        .expect("page 2");
    assert_eq!((second.len(), last), (1, None));
    let (one, _) = state
        .list_accounts(token, None, Some("1"), t0)
        .expect("max_result 1");
    assert_eq!(one.len(), 1);
    assert_eq!(
        kind(state.list_accounts(token, None, Some("0"), t0)),
        ErrorKind::PortalInvalidRequest
    );
    assert_eq!(
        kind(state.list_account_roles(token, Some("111111111111"), Some(&next), None, t0)),
        ErrorKind::PortalInvalidRequest,
        "a token of another listing"
    );
    let (roles, none) = state
        .list_account_roles(token, Some("111111111111"), None, None, t0)
        .expect("roles");
    assert_eq!((roles, none), (vec!["A".to_owned(), "B".to_owned()], None));
}

#[test]
fn authorization_code_needs_the_verifier_and_the_same_redirect_uri() {
    let mut state = State::new(options());
    let t0 = Instant::now();
    let client = state
        .register_client(
            Registration {
                client_name: Some("pkce".into()),
                client_type: Some("public".into()),
                scopes: vec![SSO_SCOPE.into()],
                grant_types: vec![AUTHORIZATION_CODE_GRANT.into(), REFRESH_TOKEN_GRANT.into()],
                redirect_uris: vec!["http://127.0.0.1/oauth/callback".into()],
                issuer_url: Some(START_URL.into()),
            },
            t0,
            SystemTime::now(),
        )
        .expect("register");
    let client = (client.client_id, client.client_secret);
    let redirect = "http://127.0.0.1:45678/oauth/callback";
    let verifier = "a-verifier-of-at-least-43-characters-0123456789";
    let location = match state.authorize(
        AuthorizeRequest {
            response_type: Some("code".into()),
            client_id: Some(client.0.clone()),
            redirect_uri: Some(redirect.into()),
            state: Some("st".into()),
            code_challenge_method: Some("S256".into()),
            code_challenge: Some(s256(verifier)),
        },
        t0,
    ) {
        Authorized::Redirect(location) => location,
        Authorized::Refuse(why) => panic!("refused: {why}"),
    };
    let query = location
        .strip_prefix(&format!("{redirect}?"))
        .expect("back to the redirect URI");
    let pairs: HashMap<String, String> = serde_urlencoded::from_str(query).expect("a query");
    assert_eq!(pairs["state"], "st");
    let mut request = token_request(&client, AUTHORIZATION_CODE_GRANT);
    request.code = Some(pairs["code"].clone());
    request.redirect_uri = Some(redirect.into());
    request.code_verifier = Some("another-verifier-of-at-least-43-characters-01".into());
    assert_eq!(
        kind(state.create_token(request.clone(), t0)),
        ErrorKind::InvalidGrant
    );
    request.code_verifier = Some(verifier.into());
    request.redirect_uri = Some("http://127.0.0.1:1/oauth/callback".into());
    assert_eq!(
        kind(state.create_token(request.clone(), t0)),
        ErrorKind::InvalidGrant
    );
    request.redirect_uri = Some(redirect.into());
    state.create_token(request.clone(), t0).expect("tokens");
    assert_eq!(
        kind(state.create_token(request, t0)),
        ErrorKind::InvalidGrant,
        "single use"
    );
    // A redirect URI on another path is never sent anything.
    let refused = state.authorize(
        AuthorizeRequest {
            response_type: Some("code".into()),
            client_id: Some(client.0),
            redirect_uri: Some("http://127.0.0.1:45678/elsewhere".into()),
            ..AuthorizeRequest::default()
        },
        t0,
    );
    assert!(matches!(refused, Authorized::Refuse(_)));
}
