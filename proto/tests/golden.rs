//! Golden fixtures of every message shape of the current protocol version, under
//! `tests/golden/v<PROTOCOL_VERSION>` (older versions' directories stay as a record). A change to
//! the wire format fails here; if it is intended, bump `PROTOCOL_VERSION` and write fixtures for
//! the new version (`CREDD_UPDATE_GOLDEN=1 cargo test -p credd-proto --test golden`).

use std::path::PathBuf;

use credd_proto::*;

const NAMED_CONFIG: &str = "/home/alice/work/credd.toml";

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let sw = "credd 0.1.0";
    let dm = "credd-daemon 0.1.0";
    let access = AccessInfo {
        source: "iam-user".into(),
        logged_in: true,
        identity: Some("arn:aws:iam::111111111111:user/alice".into()),
        expires_at: Some(1_800_000_000),
        mfa_serial: Some("arn:aws:iam::111111111111:mfa/alice".into()),
        sts_region: Some("us-east-1".into()),
        warning: None,
        last_error: None,
        session_storage: Some("runtime dir (tmpfs)".into()),
        sso: None,
        federation: None,
        pending: None,
        key: Some(KeyInfo {
            stored_in: "keychain: Secret Service (login collection): credd/aws-access-key".into(),
            access_key_id: Some("AKIAEXAMPLE".into()),
            created_at: Some(1_790_000_000),
            warning: Some("the key is 115 days old: run `credd key rotate`".into()),
        }),
        renews: Some("with mfa_command ykman".into()),
    };
    let authorization = Authorization {
        method: LoginMethod::Device,
        url: "https://device.sso.us-east-1.amazonaws.com/?user_code=ABCD-EFGH".into(),
        user_code: Some("ABCD-EFGH".into()),
        provider: "IAM Identity Center (us-east-1)".into(),
        region: Some("us-east-1".into()),
        expires_at: 1_800_000_600,
        joined: false,
    };
    let sso_access = AccessInfo {
        source: "sso".into(),
        logged_in: true,
        identity: Some("acme (https://acme.awsapps.com/start)".into()),
        expires_at: Some(1_800_028_800),
        mfa_serial: None,
        sts_region: None,
        warning: None,
        last_error: None,
        session_storage: None,
        sso: Some(SsoInfo {
            session_name: "acme".into(),
            start_url: "https://acme.awsapps.com/start".into(),
            region: "us-east-1".into(),
            token_expires_at: Some(1_800_003_600),
            session_ends_at: Some(1_800_028_800),
            cache_file: "/home/alice/.aws/sso/cache/0123.json".into(),
            regions: vec![SsoRegionInfo {
                region: "us-east-1".into(),
                start_url: "https://acme.awsapps.com/start".into(),
                authorized: true,
            }],
        }),
        federation: None,
        pending: Some(authorization.clone()),
        key: None,
        renews: None,
    };
    let saml_pending = Authorization {
        method: LoginMethod::Command,
        url: "acme-idp saml".into(),
        user_code: None,
        provider: "assertion_command".into(),
        region: None,
        expires_at: 1_800_000_300,
        joined: true,
    };
    let federated_access = AccessInfo {
        source: "web-identity".into(),
        logged_in: true,
        identity: Some(
            "arn:aws:sts::111111111111:assumed-role/AccessFromIdP/alice@acme.example".into(),
        ),
        expires_at: Some(1_800_003_600),
        mfa_serial: None,
        sts_region: Some("us-east-1".into()),
        warning: None,
        last_error: None,
        session_storage: None,
        sso: None,
        federation: Some(FederationInfo {
            provider: "https://login.acme.example".into(),
            role_arn: Some("arn:aws:iam::111111111111:role/AccessFromIdP".into()),
            who: Some("alice@acme.example at https://login.acme.example".into()),
        }),
        pending: None,
        key: None,
        renews: Some("with the identity provider's refresh token".into()),
    };
    let status = StatusReport {
        daemon_version: "0.1.0".into(),
        pid: 4242,
        started_at: 1_799_990_000,
        paths: PathsInfo {
            config: "/home/alice/.config/credd/config.toml".into(),
            runtime_dir: "/run/user/1000/credd".into(),
            socket: "/run/user/1000/credd/control.sock".into(),
            token_file: "/run/user/1000/credd/http.token".into(),
            state_file: "/home/alice/.local/state/credd/state.json".into(),
        },
        url: Some("http://127.0.0.1:9911".into()),
        config: ConfigInfo {
            path: "/home/alice/.config/credd/config.toml".into(),
            loaded_at: 1_799_990_000,
            error: None,
            warnings: vec!["profile \"audit\": duration 4h capped at 1h".into()],
        },
        access: access.clone(),
        current_profile: Some("staging".into()),
        profiles: vec![ProfileStatus {
            name: "staging".into(),
            role_arn: Some("arn:aws:iam::222222222222:role/Administrator".into()),
            sso_role: None,
            via: None,
            state: ProfileState::Fresh,
            expires_at: Some(1_799_993_600),
            last_refresh: Some(1_799_990_000),
            next_refresh: Some(1_799_991_500),
            last_error: None,
            sts_region: Some("us-east-1".into()),
            assumed_arn: Some("arn:aws:sts::222222222222:assumed-role/Administrator/alice".into()),
            region: Some("us-west-2".into()),
            retry_at: None,
        }],
        docker: Some(docker::DockerStatus {
            engine: "/var/run/docker.sock".into(),
            endpoints: vec!["http://172.17.0.1:9912/".into()],
            grants: vec![docker::GrantStatus {
                id: "3f9a2c1d".into(),
                profile: "staging".into(),
                standing: false,
                created_at: 1_799_990_100,
                containers: 1,
            }],
            containers: vec![docker::ContainerGrant {
                id: "06690aae77561c0b53e0f4b1d5e2a1c06690aae77561c0b53e0f4b1d5e2a1c0".into(),
                name: "eager_tesla".into(),
                image: "amazon/aws-cli".into(),
                profile: "staging".into(),
                grant: "3f9a2c1d".into(),
                address: "172.17.0.2".into(),
                since: 1_799_990_101,
            }],
            error: None,
        }),
    };
    let requests = [
        ("request_status", Request::Status),
        ("request_profiles", Request::Profiles),
        (
            "request_switch",
            Request::Switch {
                profile: "prod".into(),
            },
        ),
        ("request_reload", Request::Reload),
        (
            "request_login",
            Request::Login {
                mfa_code: Some(Secret::new("123456")),
                browser: BrowserLogin::default(),
            },
        ),
        (
            "request_login_sso",
            Request::Login {
                mfa_code: None,
                browser: BrowserLogin {
                    method: Some(LoginMethod::Browser),
                    display: true,
                    region: Some("eu-west-1".into()),
                },
            },
        ),
        ("request_login_wait", Request::LoginWait),
        ("request_login_cancel", Request::LoginCancel),
        ("request_sso_import", Request::SsoImport),
        ("request_logout", Request::Logout),
        (
            "request_credentials",
            Request::Credentials {
                profile: Some("prod".into()),
            },
        ),
        ("request_endpoint", Request::Endpoint { profile: None }),
        ("request_reset_token", Request::ResetToken),
        (
            "request_key_add",
            Request::KeyAdd {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: Secret::new("secret"),
            },
        ),
        (
            "request_key_import",
            Request::KeyImport {
                profile: Some("default".into()),
                delete_from_file: true,
            },
        ),
        ("request_key_rotate", Request::KeyRotate),
        ("request_key_remove", Request::KeyRemove),
        (
            "request_console",
            Request::Console(ConsoleRequest {
                profile: Some("staging".into()),
                access: false,
                region: Some("eu-west-1".into()),
                destination: Some("ec2/home#Instances:".into()),
                duration_secs: None,
                browser: true,
            }),
        ),
        (
            "request_console_access",
            Request::Console(ConsoleRequest {
                profile: None,
                access: true,
                region: None,
                destination: None,
                duration_secs: Some(7200),
                browser: false,
            }),
        ),
        // `credd refresh`, `credd stop` (issue 20).
        (
            "request_refresh",
            Request::Refresh {
                profile: Some("prod".into()),
                all: false,
            },
        ),
        (
            "request_refresh_all",
            Request::Refresh {
                profile: None,
                all: true,
            },
        ),
        ("request_stop", Request::Stop),
        ("request_doctor", Request::Doctor),
        (
            "request_docker_grant",
            Request::DockerGrant(docker::GrantRequest {
                profile: Some("staging".into()),
                network: None,
                standing: false,
                docker_host: Some("unix:///run/user/1000/docker.sock".into()),
            }),
        ),
        (
            "request_docker_revoke",
            Request::DockerRevoke(docker::RevokeRequest {
                id: Some("3f9a2c1d".into()),
                all: false,
                unclaimed_only: true,
            }),
        ),
    ];
    let responses = [
        ("response_status", Response::Status(Box::new(status))),
        (
            "response_profiles",
            Response::Profiles {
                current: Some("staging".into()),
                profiles: vec![ProfileInfo {
                    name: "staging".into(),
                    role_arn: None,
                    sso_role: Some("222222222222/AdministratorAccess".into()),
                    via: None,
                    region: Some("us-west-2".into()),
                }],
            },
        ),
        (
            "response_switched",
            Response::Switched {
                previous: Some("staging".into()),
                current: "prod".into(),
            },
        ),
        (
            "response_reloaded",
            Response::Reloaded {
                path: "/c.toml".into(),
                profiles: 2,
                warnings: vec![],
            },
        ),
        (
            "response_mfa_required",
            Response::MfaRequired {
                serial: "arn:aws:iam::111111111111:mfa/alice".into(),
            },
        ),
        (
            "response_logged_in",
            Response::LoggedIn {
                access: Box::new(access),
                profiles_ready: 2,
                profiles: 2,
            },
        ),
        (
            "response_logged_in_sso",
            Response::LoggedIn {
                access: Box::new(sso_access),
                profiles_ready: 1,
                profiles: 1,
            },
        ),
        (
            "response_logged_in_web_identity",
            Response::LoggedIn {
                access: Box::new(federated_access),
                profiles_ready: 1,
                profiles: 1,
            },
        ),
        (
            "response_authorization_pending_command",
            Response::AuthorizationPending(saml_pending),
        ),
        (
            "response_authorization_pending",
            Response::AuthorizationPending(authorization),
        ),
        (
            "response_login_cancelled",
            Response::LoginCancelled { cancelled: true },
        ),
        (
            "response_sso_import",
            Response::SsoImport {
                accounts: 2,
                entries: vec![
                    SsoImportEntry {
                        account_id: "222222222222".into(),
                        account_name: "Staging".into(),
                        role_name: "ReadOnly".into(),
                        proposal: ImportProposal::Add {
                            profile: "staging-ReadOnly".into(),
                            fields: vec![
                                ("sso_account_id".into(), "222222222222".into()),
                                ("sso_role_name".into(), "ReadOnly".into()),
                            ],
                        },
                    },
                    SsoImportEntry {
                        account_id: "222222222222".into(),
                        account_name: "Staging".into(),
                        role_name: "AdministratorAccess".into(),
                        proposal: ImportProposal::AlreadyConfigured {
                            profile: "staging".into(),
                        },
                    },
                    SsoImportEntry {
                        account_id: "333333333333".into(),
                        account_name: "Prod".into(),
                        role_name: "ReadOnly".into(),
                        proposal: ImportProposal::NameTaken {
                            profile: "prod-ReadOnly".into(),
                        },
                    },
                    SsoImportEntry {
                        account_id: "333333333333".into(),
                        account_name: "Prod".into(),
                        role_name: "A=B".into(),
                        proposal: ImportProposal::NameClash {
                            profile: "prod-A-B".into(),
                            with: "333333333333/A+B".into(),
                        },
                    },
                    SsoImportEntry {
                        account_id: "4444".into(),
                        account_name: "Odd".into(),
                        role_name: "Admin".into(),
                        proposal: ImportProposal::Invalid {
                            profile: "odd-Admin".into(),
                            why: "expected a 12-digit AWS account ID like \"111111111111\", found \"4444\"".into(),
                        },
                    },
                ],
            },
        ),
        ("response_logged_out", Response::LoggedOut { forgotten: 3 }),
        (
            "response_credentials",
            Response::Credentials(Credentials {
                profile: "prod".into(),
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: Secret::new("secret"),
                session_token: Secret::new("token"),
                expiration: 1_799_993_600,
                account_id: Some("333333333333".into()),
            }),
        ),
        (
            "response_endpoint",
            Response::Endpoint(EndpointInfo {
                profile: None,
                url: "http://127.0.0.1:9911/v1/credentials".into(),
                region: Some("us-west-2".into()),
                imds_url: None,
                needs_login: true,
            }),
        ),
        (
            "response_key_stored",
            Response::KeyStored(KeyReport {
                access_key_id: "AKIANEWKEY".into(),
                identity: "arn:aws:iam::111111111111:user/alice".into(),
                keychain: "Secret Service (login collection): credd/aws-access-key".into(),
                previous: Some("AKIAOLDKEY".into()),
                imported_from: Some("/home/alice/.aws/credentials [default]".into()),
                deleted_from_file: true,
                warning: None,
            }),
        ),
        (
            "response_key_removed",
            Response::KeyRemoved {
                removed: true,
                keychain: "Secret Service (login collection): credd/aws-access-key".into(),
            },
        ),
        ("response_token_reset", Response::TokenReset),
        (
            "response_console",
            Response::Console(ConsoleSignin {
                url: Secret::new(
                    "https://signin.aws.amazon.com/federation?Action=login&Issuer=credd\
                     &Destination=https%3A%2F%2Fconsole.aws.amazon.com%2Fconsole%2Fhome%3Fregion%3Deu-west-1\
                     &SigninToken=EXAMPLETOKEN",
                ),
                profile: Some("staging".into()),
                identity: "arn:aws:sts::222222222222:assumed-role/Administrator/alice".into(),
                partition: "aws".into(),
                region: "eu-west-1".into(),
                destination: "https://console.aws.amazon.com/console/home?region=eu-west-1".into(),
                expires_at: Some(1_800_003_600),
                mfa_authenticated: true,
                notes: vec!["--duration applies only to the access session's own sign-in".into()],
                page: Some("http://127.0.0.1:41234/console/0123456789abcdef0123456789abcdef".into()),
            }),
        ),
        (
            "response_error_federation",
            Response::Error(ErrorReply::new(
                ErrorCode::Federation,
                "the AWS federation endpoint refused the sign-in: HTTP 400",
            )),
        ),
        (
            "response_error",
            Response::Error(ErrorReply::new(
                ErrorCode::UnknownProfile,
                "unknown profile \"x\"",
            )),
        ),
        // `credd refresh`, `credd stop` (issue 20).
        (
            "response_refreshed",
            Response::Refreshed {
                outcomes: vec![
                    RefreshOutcome {
                        profile: "prod".into(),
                        expires_at: Some(1_800_003_600),
                        sts_region: Some("us-east-1".into()),
                        error: None,
                    },
                    RefreshOutcome {
                        profile: "staging".into(),
                        expires_at: None,
                        sts_region: None,
                        error: Some(ErrorReply::new(
                            ErrorCode::LoginRequired,
                            "not logged in: run `credd login`",
                        )),
                    },
                ],
            },
        ),
        (
            "response_stopping",
            Response::Stopping(StopReport {
                pid: 4242,
                managed_by: None,
                stopping: true,
            }),
        ),
        (
            "response_stopping_managed",
            Response::Stopping(StopReport {
                pid: 4242,
                managed_by: Some("systemd".into()),
                stopping: false,
            }),
        ),
        (
            "response_doctor",
            Response::Doctor(DoctorReport {
                daemon_version: "0.1.0".into(),
                findings: vec![
                    Finding::critical(
                        "management-account",
                        "the access account 111111111111 is the management account of \
                         organization o-abc123",
                    )
                    .why("any principal there can assume OrganizationAccountAccessRole")
                    .fix("make a member account the access account"),
                    Finding::ok("mfa", "arn:aws:iam::111111111111:mfa/alice, a code at each login"),
                    Finding::info("key-age", "not checked: IAM denied iam:ListAccessKeys"),
                    Finding::warning("regions", "one STS Region: us-east-1")
                        .fix("regions = [\"us-east-1\", \"us-west-2\"]"),
                ],
            }),
        ),
        (
            "response_docker_grant",
            Response::DockerGrant(docker::Grant {
                secret: Secret::new("9c1e5b7a0d3f4e2a8b6c1d0e9f7a5b3c"),
                id: "3f9a2c1d".into(),
                profile: "staging".into(),
                endpoint: "http://172.17.0.1:9912/".into(),
                network: "bridge".into(),
                region: Some("us-west-2".into()),
                standing: false,
            }),
        ),
        (
            "response_docker_revoked",
            Response::DockerRevoked {
                grants: vec!["3f9a2c1d".into()],
                containers: 1,
            },
        ),
    ];
    let mut out: Vec<(&'static str, Vec<u8>)> = requests
        .into_iter()
        .map(|(n, r)| (n, encode_request(sw, &r)[HEADER_LEN..].to_vec()))
        .collect();
    // A client pointed at a config file (`--config`, `CREDD_CONFIG`) names it beside any request.
    out.push((
        "request_status_named_config",
        encode_request_with_config(sw, &Request::Status, Some(NAMED_CONFIG))[HEADER_LEN..].to_vec(),
    ));
    out.extend(
        responses
            .into_iter()
            .map(|(n, r)| (n, encode_response(dm, &r)[HEADER_LEN..].to_vec())),
    );
    out
}

#[test]
fn every_message_matches_its_fixture() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{PROTOCOL_VERSION}"));
    let update = std::env::var_os("CREDD_UPDATE_GOLDEN").is_some();
    if update {
        std::fs::create_dir_all(&dir).expect("create the fixture dir");
    }
    for (name, body) in samples() {
        let value: serde_json::Value = serde_json::from_slice(&body).expect("encoded JSON");
        let pretty = serde_json::to_string_pretty(&value).expect("pretty JSON") + "\n";
        let path = dir.join(format!("{name}.json"));
        if update {
            std::fs::write(&path, &pretty).expect("write fixture");
            continue;
        }
        let fixture = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with CREDD_UPDATE_GOLDEN=1)",
                path.display()
            )
        });
        assert_eq!(pretty, fixture, "{name} changed shape on the wire");
        // And the fixture still decodes: an old peer's message is understood.
        let compact =
            serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(&fixture).unwrap())
                .unwrap();
        if name.starts_with("request_") {
            let (_, config) = decode_request_with_config("test", &compact)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let named = name.ends_with("_named_config").then_some(NAMED_CONFIG);
            assert_eq!(config.as_deref(), named, "{name}");
        } else {
            decode_response("test", &compact).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
