//! The Identity Center fake read by the clients the daemon uses, the AWS SDK for Rust's
//! `aws-sdk-ssooidc` and `aws-sdk-sso` (restJson1): each answer deserializes, each error lands
//! in its modeled variant with its members (or, for the unmodeled 403, carries its code), the
//! paginators walk every page, and the role credentials pass moto with auth on.

use aws_sdk_sso::error::ProvideErrorMetadata;
use aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsError;
use aws_sdk_sso::operation::list_accounts::ListAccountsError;
use aws_sdk_ssooidc::operation::create_token::CreateTokenError;
use aws_sdk_ssooidc::operation::create_token::CreateTokenOutput;
use aws_sdk_ssooidc::operation::create_token::builders::CreateTokenFluentBuilder;
use aws_sdk_ssooidc::operation::start_device_authorization::StartDeviceAuthorizationError;

use credd_tests::identity_center::{
    ACCESS_ACCOUNT, ACCESS_ROLE, ADMIN_ROLE, DEVICE_CODE_GRANT, IdentityCenter, Options,
    PROD_ACCOUNT, REFRESH_TOKEN_GRANT, SSO_REGION, SSO_SCOPE, STAGING_ACCOUNT, assumed_role_arn,
};
use credd_tests::moto::AwsKeys;
use credd_tests::sdk::http_client;

fn oidc_client(fake: &IdentityCenter) -> aws_sdk_ssooidc::Client {
    let config = aws_sdk_ssooidc::Config::builder()
        .behavior_version(aws_sdk_ssooidc::config::BehaviorVersion::latest())
        .region(aws_sdk_ssooidc::config::Region::new(SSO_REGION))
        .endpoint_url(fake.url())
        .http_client(http_client())
        .retry_config(aws_sdk_ssooidc::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_ssooidc::Client::from_conf(config)
}

fn portal_client(fake: &IdentityCenter) -> aws_sdk_sso::Client {
    let config = aws_sdk_sso::Config::builder()
        .behavior_version(aws_sdk_sso::config::BehaviorVersion::latest())
        .region(aws_sdk_sso::config::Region::new(SSO_REGION))
        .endpoint_url(fake.url())
        .http_client(http_client())
        .retry_config(aws_sdk_sso::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sso::Client::from_conf(config)
}

fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the SDK clients")
        .block_on(fut)
}

/// A registered device-code client: (clientId, clientSecret).
async fn register(oidc: &aws_sdk_ssooidc::Client) -> (String, String) {
    let registered = oidc
        .register_client()
        .client_name("credd-tests")
        .client_type("public")
        .scopes(SSO_SCOPE)
        .send()
        .await
        .expect("RegisterClient");
    (
        registered.client_id().expect("clientId").to_owned(),
        registered.client_secret().expect("clientSecret").to_owned(),
    )
}

/// StartDeviceAuthorization: (deviceCode, userCode).
async fn start(
    oidc: &aws_sdk_ssooidc::Client,
    client: &(String, String),
    start_url: &str,
) -> Result<(String, String), StartDeviceAuthorizationError> {
    let out = oidc
        .start_device_authorization()
        .client_id(&client.0)
        .client_secret(&client.1)
        .start_url(start_url)
        .send()
        .await
        .map_err(|e| e.into_service_error())?;
    assert_eq!(out.interval(), 1);
    assert_eq!(out.expires_in(), 600);
    assert!(
        out.verification_uri_complete()
            .is_some_and(|u| u.ends_with(out.user_code().unwrap_or("?"))),
        "{out:?}"
    );
    Ok((
        out.device_code().expect("deviceCode").to_owned(),
        out.user_code().expect("userCode").to_owned(),
    ))
}

/// CreateToken of `grant` by `client`, its grant-specific member set by `with`.
async fn create_token(
    oidc: &aws_sdk_ssooidc::Client,
    client: &(String, String),
    grant: &str,
    with: impl FnOnce(CreateTokenFluentBuilder) -> CreateTokenFluentBuilder,
) -> Result<CreateTokenOutput, CreateTokenError> {
    with(
        oidc.create_token()
            .client_id(&client.0)
            .client_secret(&client.1)
            .grant_type(grant),
    )
    .send()
    .await
    .map_err(|e| e.into_service_error())
}

/// A device authorization for `client`, approved: its tokens.
async fn approved(
    oidc: &aws_sdk_ssooidc::Client,
    fake: &IdentityCenter,
    client: &(String, String),
) -> CreateTokenOutput {
    let (device_code, user_code) = start(oidc, client, &fake.start_url())
        .await
        .expect("StartDeviceAuthorization");
    fake.approve(&user_code);
    poll(oidc, client, &device_code)
        .await
        .expect("CreateToken after approval")
}

async fn poll(
    oidc: &aws_sdk_ssooidc::Client,
    client: &(String, String),
    device_code: &str,
) -> Result<CreateTokenOutput, CreateTokenError> {
    create_token(oidc, client, DEVICE_CODE_GRANT, |b| {
        b.device_code(device_code)
    })
    .await
}

async fn refresh(
    oidc: &aws_sdk_ssooidc::Client,
    client: &(String, String),
    refresh_token: &str,
) -> Result<CreateTokenOutput, CreateTokenError> {
    create_token(oidc, client, REFRESH_TOKEN_GRANT, |b| {
        b.refresh_token(refresh_token)
    })
    .await
}

#[test]
fn aws_sdk_ssooidc_reads_every_answer_and_error_as_its_modeled_type() {
    let fake = IdentityCenter::start(Options::default());
    let oidc = oidc_client(&fake);
    block_on(async {
        let client = register(&oidc).await;
        let wrong = start(&oidc, &client, "https://elsewhere.awsapps.com/start").await;
        assert!(
            matches!(
                wrong,
                Err(StartDeviceAuthorizationError::InvalidRequestException(_))
            ),
            "{wrong:?}"
        );
        let bad_client = (client.0.clone(), "not-the-secret".to_owned());
        let wrong = start(&oidc, &bad_client, &fake.start_url()).await;
        assert!(
            matches!(
                wrong,
                Err(StartDeviceAuthorizationError::InvalidClientException(_))
            ),
            "{wrong:?}"
        );

        let (device_code, _) = start(&oidc, &client, &fake.start_url())
            .await
            .expect("StartDeviceAuthorization");
        match poll(&oidc, &client, &device_code).await {
            Err(CreateTokenError::AuthorizationPendingException(e)) => {
                assert_eq!(e.error(), Some("authorization_pending"));
                assert!(e.error_description().is_some_and(|d| !d.is_empty()));
            }
            other => panic!("expected AuthorizationPendingException: {other:?}"),
        }
        let again = poll(&oidc, &client, &device_code).await;
        assert!(
            matches!(again, Err(CreateTokenError::SlowDownException(_))),
            "{again:?}"
        );
        // Polling the first one again would be too fast: a second one shows the denial.
        let (device_code, user_code) = start(&oidc, &client, &fake.start_url())
            .await
            .expect("StartDeviceAuthorization");
        fake.deny(&user_code);
        let denied = poll(&oidc, &client, &device_code).await;
        assert!(
            matches!(denied, Err(CreateTokenError::AccessDeniedException(_))),
            "{denied:?}"
        );
        let (device_code, _) = start(&oidc, &client, &fake.start_url())
            .await
            .expect("StartDeviceAuthorization");
        fake.expire_device_codes();
        let expired = poll(&oidc, &client, &device_code).await;
        assert!(
            matches!(expired, Err(CreateTokenError::ExpiredTokenException(_))),
            "{expired:?}"
        );

        let tokens = approved(&oidc, &fake, &client).await;
        assert_eq!(tokens.token_type(), Some("Bearer"));
        assert_eq!(tokens.expires_in(), 3600);
        let first = tokens.refresh_token().expect("a refresh token").to_owned();
        let rotated = refresh(&oidc, &client, &first).await.expect("refresh");
        assert_ne!(rotated.refresh_token(), Some(first.as_str()));
        match refresh(&oidc, &client, &first).await {
            Err(CreateTokenError::InvalidGrantException(e)) => {
                assert_eq!(e.error(), Some("invalid_grant"));
            }
            other => panic!("expected InvalidGrantException: {other:?}"),
        }
        fake.end_sessions();
        let over = refresh(&oidc, &client, rotated.refresh_token().unwrap_or_default()).await;
        assert!(
            matches!(over, Err(CreateTokenError::InvalidGrantException(_))),
            "{over:?}"
        );
    });
}

#[test]
fn aws_sdk_sso_gets_credentials_moto_accepts_pages_listings_and_reads_portal_errors() {
    let fake = IdentityCenter::start(Options {
        page_size: 1,
        ..Options::default()
    });
    let oidc = oidc_client(&fake);
    let portal = portal_client(&fake);
    let (token, keys) = block_on(async {
        let client = register(&oidc).await;
        let tokens = approved(&oidc, &fake, &client).await;
        let token = tokens.access_token().expect("accessToken").to_owned();
        let out = portal
            .get_role_credentials()
            .access_token(&token)
            .account_id(STAGING_ACCOUNT)
            .role_name(ADMIN_ROLE)
            .send()
            .await
            .expect("GetRoleCredentials");
        let creds = out.role_credentials().expect("roleCredentials");
        let now_ms = credd_tests::stack::now_unix() as i64 * 1000;
        assert!(
            (3_000_000..=3_601_000).contains(&(creds.expiration() - now_ms)),
            "expiration is epoch milliseconds: {}",
            creds.expiration()
        );
        let keys = AwsKeys {
            access_key_id: creds.access_key_id().unwrap_or_default().to_owned(),
            secret_access_key: creds.secret_access_key().unwrap_or_default().to_owned(),
            session_token: creds.session_token().map(str::to_owned),
        };
        (token, keys)
    });
    let arn = fake.moto().caller_arn(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.as_deref(),
    );
    assert_eq!(arn, Ok(assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE)));

    block_on(async {
        let accounts: Vec<String> = portal
            .list_accounts()
            .access_token(&token)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("ListAccounts pages")
            .iter()
            .filter_map(|a| a.account_id().map(str::to_owned))
            .collect();
        assert_eq!(accounts, [ACCESS_ACCOUNT, STAGING_ACCOUNT, PROD_ACCOUNT]);
        let roles: Vec<String> = portal
            .list_account_roles()
            .access_token(&token)
            .account_id(ACCESS_ACCOUNT)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("ListAccountRoles pages")
            .iter()
            .filter_map(|r| r.role_name().map(str::to_owned))
            .collect();
        assert_eq!(roles, [ACCESS_ROLE]);

        let forbidden = portal
            .get_role_credentials()
            .access_token(&token)
            .account_id(PROD_ACCOUNT)
            .role_name(ADMIN_ROLE)
            .send()
            .await
            .expect_err("no such assignment")
            .into_service_error();
        assert_eq!(
            forbidden.code(),
            Some("ForbiddenException"),
            "{forbidden:?}"
        );
        assert_eq!(forbidden.message(), Some("No access"));

        // Logout ends the token's session: its token is refused from then on.
        let client = register(&oidc).await;
        let other = approved(&oidc, &fake, &client).await;
        let other = other.access_token().expect("accessToken");
        portal
            .logout()
            .access_token(other)
            .send()
            .await
            .expect("Logout");
        let out = portal.list_accounts().access_token(other).send().await;
        assert!(
            matches!(
                out.as_ref().map_err(|e| e.as_service_error()),
                Err(Some(ListAccountsError::UnauthorizedException(_)))
            ),
            "{out:?}"
        );
        assert_eq!(fake.live_sessions(), 1);

        fake.revoke_all();
        let unauthorized = portal
            .get_role_credentials()
            .access_token(&token)
            .account_id(STAGING_ACCOUNT)
            .role_name(ADMIN_ROLE)
            .send()
            .await
            .expect_err("revoked")
            .into_service_error();
        assert!(
            matches!(
                unauthorized,
                GetRoleCredentialsError::UnauthorizedException(_)
            ),
            "{unauthorized:?}"
        );
        assert_eq!(
            unauthorized.message(),
            Some("Session token not found or invalid")
        );

        fake.set_down(true);
        let down = portal
            .list_accounts()
            .access_token(&token)
            .send()
            .await
            .expect_err("the Region is down");
        assert_eq!(down.raw_response().map(|r| r.status().as_u16()), Some(503));
        assert_eq!(down.code(), Some("ServiceUnavailableException"));
    });
}
