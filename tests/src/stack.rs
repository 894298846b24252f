//! The fixture of every scenario that runs a daemon with an access source: a world whose daemon
//! gets STS from the shared moto (with auth on, or off for MFA logins), through the
//! fault-injecting proxy or straight, or from nowhere at all; alice (a seeded IAM user in an
//! account of her own) in the shared credentials file, or an IAM Identity Center fake
//! ([`Access::Sso`]); a config of the scenario's choosing; and the daemon's HTTP API and real
//! SDKs pointed at it. [`Stack::builder`] picks the variant.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bins::sdk_client_bin;
use crate::http::{self, Reply};
use crate::identity_center::{self, IdentityCenter};
use crate::moto::{Auth, Moto, SeedSpec, SeededUser, venv_python};
use crate::oidc_provider::{self, OidcProvider};
use crate::proxy::StsProxy;
use crate::saml_idp::{self, SamlIdp, SamlUser};
use crate::sdk::BOTO3_CALLER;
use crate::wait_until;
use crate::world::{CmdOutput, Running, World};

/// The role most profiles assume, in another account than alice's.
pub const ADMIN: &str = "arn:aws:iam::222222222222:role/Administrator";
/// The role chained profiles assume through [`ADMIN`], in a third account.
pub const AUDITOR: &str = "arn:aws:iam::333333333333:role/Auditor";
/// A second role to switch to, beside [`AUDITOR`].
pub const DEPLOY: &str = "arn:aws:iam::333333333333:role/Deploy";
/// The IAM user; also the default RoleSessionName.
pub const USER: &str = "alice";
/// A well-formed one-time code (moto, auth off, accepts any).
pub const MFA_CODE: &str = "123456";

/// The access role of [`Access::WebIdentity`] stacks. In moto's default account: moto keeps the
/// credentials of an unsigned AssumeRoleWith* call there, and GetCallerIdentity finds them only
/// for a role in that account.
pub const ACCESS_FROM_IDP: &str = "arn:aws:iam::123456789012:role/AccessFromIdP";
/// The access role of [`Access::Saml`] stacks (in moto's default account, as above).
pub const ACCESS_FROM_SAML: &str = "arn:aws:iam::123456789012:role/AccessFromSAML";
/// The IAM SAML provider of [`Access::Saml`] stacks.
pub const SAML_PROVIDER: &str = "arn:aws:iam::123456789012:saml-provider/acme";
/// alice's password at the SAML IdP.
pub const SAML_PASSWORD: &str = "alice-saml-password";

/// The `sso_session` of [`Access::Sso`] stacks: names the AWS CLI token cache file.
pub const SSO_SESSION: &str = "acme";

/// The literal of [`SSO_PROFILES`], for a scenario's `concat!` of more profiles after them.
#[macro_export]
macro_rules! sso_profiles {
    () => {
        r#"
[profiles.sso-admin]
sso_account_id = "222222222222"
sso_role_name = "AdministratorAccess"

[profiles.sso-readonly]
sso_account_id = "333333333333"
sso_role_name = "ReadOnlyAccess"
"#
    };
}

/// Identity Center profiles on the fake's default assignments: `sso-admin` is
/// [`identity_center::ADMIN_ROLE`] in [`identity_center::STAGING_ACCOUNT`] (the account of
/// [`ADMIN`]), `sso-readonly` [`identity_center::READ_ONLY_ROLE`] in
/// [`identity_center::PROD_ACCOUNT`].
pub const SSO_PROFILES: &str = sso_profiles!();

/// From a `credd login` to its prompt (the authorization, or the command it runs).
pub const PROMPT_DEADLINE: Duration = Duration::from_secs(10);

/// Login and the first AssumeRole of every profile, moto included.
pub const READY_DEADLINE: Duration = Duration::from_secs(20);

/// One literal for both constants below.
macro_rules! staging_and_audit {
    () => {
        r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
region = "us-west-2"

[profiles.prod-audit]
role_arn = "arn:aws:iam::333333333333:role/Auditor"
via = "staging"
"#
    };
}

/// `staging` assumes [`ADMIN`]; `prod-audit` assumes [`AUDITOR`] through it.
pub const STAGING_AND_AUDIT: &str = staging_and_audit!();

/// A whole config for scenarios that need no STS: a free port, a key-only access source and
/// [`STAGING_AND_AUDIT`].
pub const OFFLINE_CONFIG: &str = concat!(
    r#"default_profile = "staging"

[daemon]
listen = "127.0.0.1:0"

[access]
source = "iam-user"
aws_profile = "access"
"#,
    staging_and_audit!()
);

/// What one HTTP credential request of a [`Stack::burst`] got, and how long it took.
pub struct Answer {
    pub status: u16,
    /// The error code, when it failed.
    pub code: String,
    pub took: Duration,
}

/// Asserts that every answer of a burst was 503 LoginRequired (`when` says during what); the
/// slowest and the median, for the test's figures (`credd-bench` measures them properly). That
/// no request was held for the login needs no clock: a held one would be answered only once the
/// login it waited for ended (200 then), or time out if nobody approves it.
#[track_caller]
pub fn assert_login_required(answers: &[Answer], when: &str) -> (Duration, Duration) {
    for a in answers {
        assert_eq!(
            (a.status, a.code.as_str()),
            (503, "LoginRequired"),
            "{when}"
        );
    }
    slowest_and_median(answers)
}

/// Asserts that every answer of a burst after the login was 200; the slowest and the median.
#[track_caller]
pub fn assert_all_served(answers: &[Answer]) -> (Duration, Duration) {
    for a in answers {
        assert_eq!(a.status, 200, "after the login: {}", a.code);
    }
    slowest_and_median(answers)
}

/// Asserts that the logins of a [`Stack::logins_during_burst`] shared one authorization: the
/// first started it and every other joined it.
#[track_caller]
pub fn assert_all_but_one_joined(logins: &[(Running, serde_json::Value)]) {
    let joined = logins.iter().filter(|(_, p)| p["joined"] == true).count();
    assert_eq!(joined, logins.len() - 1, "all but the first joined it");
}

/// Waits for each login of a [`Stack::logins_during_burst`] to end logged in; their `--json`
/// results.
#[track_caller]
pub fn finish_logins(
    logins: Vec<(Running, serde_json::Value)>,
    deadline: Duration,
) -> Vec<serde_json::Value> {
    logins
        .into_iter()
        .map(|(login, _)| {
            let out = login.wait(deadline);
            let result = out.assert_success().json();
            assert_eq!(result["access"]["logged_in"], true, "{out}");
            result
        })
        .collect()
}

/// The slowest and the median of `answers`.
pub fn slowest_and_median(answers: &[Answer]) -> (Duration, Duration) {
    let mut took: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    took.sort();
    (took[took.len() - 1], took[took.len() / 2])
}

/// Each of `secrets` (what it is, the secret) is nowhere: not in the daemon's log (which must
/// hold trace events, or this proves little), not in anything `shown` to the user, not in any
/// file of the world or its runtime dir. Stop the daemon first: its log is complete then.
#[track_caller]
pub fn assert_secrets_nowhere(
    world: &World,
    secrets: &[(impl std::fmt::Display, String)],
    shown: &[CmdOutput],
) {
    let log = world.daemon_log();
    assert!(
        log.contains("TRACE"),
        "the daemon logged at trace level, or this proves little"
    );
    for (what, secret) in secrets {
        let logged = log.lines().find(|l| l.contains(secret.as_str()));
        assert_eq!(logged, None, "{what} is in the daemon log");
        for out in shown {
            assert!(
                !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
                "{what} is shown to the user: {out}"
            );
        }
        let on_disk = [
            files_containing(&world.root, secret),
            files_containing(&world.runtime_dir, secret),
        ]
        .concat();
        assert!(on_disk.is_empty(), "{what} is written to {on_disk:?}");
    }
}

/// The caller ARN of credentials for `role_arn` (a role without a path) under `session`.
pub fn assumed_role_arn(role_arn: &str, session: &str) -> String {
    let (account, role) = role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .unwrap_or_else(|| panic!("not a role ARN: {role_arn}"));
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

/// How alice reaches the access account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// alice has an MFA device and `mfa_serial` is configured: `credd login` trades her key and a
    /// code for a GetSessionToken session. moto's auth stays off: with it on, moto rejects the
    /// keys its own GetSessionToken hands out.
    Mfa,
    /// No `mfa_serial`: alice's key signs AssumeRole itself and the daemon logs in by itself.
    /// moto's auth is on, so every credential the daemon serves is really checked.
    Key,
    /// IAM Identity Center (`source = "sso"`, session [`SSO_SESSION`]) played by an
    /// [`IdentityCenter`] fake whose role credentials come from moto with auth on; the daemon
    /// reaches it through `AWS_ENDPOINT_URL_SSO_OIDC` / `AWS_ENDPOINT_URL_SSO`. There is no IAM
    /// user and no shared credentials file. [`StackBuilder::identity_center`] sets the fake's
    /// options.
    Sso {
        /// `sso_login`; `None` leaves it out (the daemon's default, `auto`).
        login: Option<SsoLogin>,
        /// Writes `sso_account_id` / `sso_role_name` of the fake's
        /// [`identity_center::ACCESS_ROLE`] into `[access]`: the role whose credentials sign
        /// AssumeRole for `role_arn` profiles.
        access_role: bool,
    },
    /// `source = "web-identity"` with credd's own login at a real OpenID provider
    /// ([`OidcProvider`], options from [`StackBuilder::oidc`]), trading its ID token for
    /// [`ACCESS_FROM_IDP`]. moto's auth is off: with it on, moto fails AssumeRoleWithWebIdentity
    /// (and it checks no token: the tests check what credd sent against the provider's keys).
    WebIdentity,
    /// `source = "saml"`: a real SAML IdP ([`SamlIdp`], users from [`StackBuilder::saml_users`],
    /// by default alice with the single role [`ACCESS_FROM_SAML`]) and its `assertion_command`
    /// signing in as alice. moto's auth is off (as for AssumeRoleWithWebIdentity).
    Saml,
}

impl Access {
    /// [`Access::Sso`] with the device grant and the access role: what most scenarios need.
    pub const SSO_DEVICE: Access = Access::Sso {
        login: Some(SsoLogin::Device),
        access_role: true,
    };
}

/// `sso_login` in `[access]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoLogin {
    Auto,
    Browser,
    Device,
}

impl SsoLogin {
    pub fn as_str(self) -> &'static str {
        match self {
            SsoLogin::Auto => "auto",
            SsoLogin::Browser => "browser",
            SsoLogin::Device => "device",
        }
    }
}

/// The parts of the config a scenario chooses; the rest (the listener, the `[access]` source for
/// the stack) is filled in by [`Stack::write_config`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Toml<'a> {
    /// Top-level lines, before any table, e.g. `default_profile = "staging"`.
    pub top: &'a str,
    /// Extra lines of `[daemon]`, e.g. `min_remaining = "14m50s"`.
    pub daemon: &'a str,
    /// Extra lines of `[access]`, e.g. `regions = ["us-east-1", "us-west-2"]`.
    pub access: &'a str,
    /// `[profiles.*]` tables.
    pub profiles: &'a str,
}

/// Where the daemon's STS requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Through the [`StsProxy`], which counts them and injects faults.
    Proxy,
    /// Straight to moto.
    Direct,
    /// Nowhere: nothing listens at the STS endpoint, and the key is a placeholder.
    Unreachable,
}

/// Chooses a [`Stack`]: [`Access::Key`] through the proxy, in a [`World::new`], listening on a
/// free loopback port, with an empty config, unless told otherwise.
pub struct StackBuilder<'a> {
    access: Access,
    identity_center: identity_center::Options,
    oidc: oidc_provider::Options,
    saml_users: Option<Vec<SamlUser>>,
    route: Route,
    world: Option<World>,
    listen: &'a str,
    toml: Toml<'a>,
    /// Changes alice's seeding ([`Access::Key`]): her key's age, her account's organization.
    seed: fn(SeedSpec) -> SeedSpec,
}

impl<'a> StackBuilder<'a> {
    /// Changes what moto seeds for [`Access::Key`] (alice is [`USER`]), e.g.
    /// `|s| s.organization(Organization::Management)`.
    pub fn seed(mut self, seed: fn(SeedSpec) -> SeedSpec) -> Self {
        self.seed = seed;
        self
    }

    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The Identity Center fake's options ([`Access::Sso`] only; default
    /// [`identity_center::Options::default`]).
    pub fn identity_center(mut self, options: identity_center::Options) -> Self {
        self.identity_center = options;
        self
    }

    /// The OpenID provider's options ([`Access::WebIdentity`] only).
    pub fn oidc(mut self, options: oidc_provider::Options) -> Self {
        self.oidc = options;
        self
    }

    /// The SAML IdP's users ([`Access::Saml`] only); the first signs in.
    pub fn saml_users(mut self, users: Vec<SamlUser>) -> Self {
        self.saml_users = Some(users);
        self
    }

    /// The daemon reaches moto without the proxy in between.
    pub fn direct(mut self) -> Self {
        self.route = Route::Direct;
        self
    }

    /// No STS at all (for the checks made before any credentials are involved): nothing listens
    /// at the STS endpoint, alice's key is a placeholder, no moto is started (except for an
    /// [`Access::Sso`] fake's role credentials).
    pub fn without_sts(mut self) -> Self {
        self.route = Route::Unreachable;
        self
    }

    /// Builds in `world` (e.g. [`World::on_disk`]).
    pub fn world(mut self, world: World) -> Self {
        self.world = Some(world);
        self
    }

    /// `[daemon] listen`, e.g. `[::1]:0`.
    pub fn listen(mut self, listen: &'a str) -> Self {
        self.listen = listen;
        self
    }

    /// The config's parts (see [`Toml`]).
    pub fn toml(mut self, toml: Toml<'a>) -> Self {
        self.toml = toml;
        self
    }

    /// moto seeded for the access, the proxy if any, the world pointed at them and the config
    /// written; no daemon yet.
    pub fn build(self) -> Stack {
        let mut world = self.world.unwrap_or_default();
        let roles = SeedSpec::new().role(ADMIN).role(AUDITOR).role(DEPLOY);
        let (sts, endpoint) = match self.route {
            Route::Unreachable => (Sts::Unreachable, "http://127.0.0.1:1".to_owned()),
            Route::Proxy | Route::Direct => {
                // With auth off moto assumes any role ARN, so only the auth-on stack needs roles.
                let (moto, spec) = match self.access {
                    Access::Mfa => (Moto::shared(Auth::Off), SeedSpec::new().user_with_mfa(USER)),
                    Access::Key => (Moto::shared(Auth::On), (self.seed)(roles.user(USER))),
                    Access::Sso { .. } => (Moto::shared(Auth::On), roles),
                    Access::WebIdentity | Access::Saml => {
                        (Moto::shared(Auth::Off), SeedSpec::new())
                    }
                };
                let seeded = moto.seed(&spec);
                let user = seeded.users.get(USER).cloned();
                let proxy = (self.route == Route::Proxy).then(|| StsProxy::start(&moto.endpoint()));
                let endpoint = proxy
                    .as_ref()
                    .map_or_else(|| moto.endpoint(), StsProxy::endpoint);
                (Sts::Moto { moto, user, proxy }, endpoint)
            }
        };
        world.set_env("AWS_ENDPOINT_URL_STS", &endpoint);
        // moto serves IAM on the same port (the key's age, `credd key rotate`), and
        // Organizations (`credd doctor`).
        world.set_env("AWS_ENDPOINT_URL_IAM", &endpoint);
        world.set_env("AWS_ENDPOINT_URL_ORGANIZATIONS", &endpoint);
        let identity_center = match self.access {
            Access::Sso { .. } => {
                let fake = match &sts {
                    Sts::Moto { moto, .. } => {
                        IdentityCenter::start_with_moto(self.identity_center, moto)
                    }
                    Sts::Unreachable => IdentityCenter::start(self.identity_center),
                };
                for (key, value) in fake.env() {
                    world.set_env(&key, &value);
                }
                Some(fake)
            }
            Access::WebIdentity | Access::Saml => None,
            Access::Mfa | Access::Key => {
                let (key, secret) = match &sts {
                    Sts::Moto {
                        user: Some(user), ..
                    } => (user.access_key_id.as_str(), user.secret_access_key.as_str()),
                    _ => ("AKIDEXAMPLE", "not-a-real-secret"),
                };
                world.write_shared_credentials("access", key, secret);
                None
            }
        };
        let oidc = (self.access == Access::WebIdentity).then(|| OidcProvider::start(self.oidc));
        let saml = (self.access == Access::Saml).then(|| {
            let users = self.saml_users.unwrap_or_else(|| {
                vec![SamlUser::new(
                    USER,
                    SAML_PASSWORD,
                    saml_idp::role_value(ACCESS_FROM_SAML, SAML_PROVIDER),
                )]
            });
            let idp = SamlIdp::start(&users);
            // The daemon passes its environment to assertion_command: the password goes there,
            // never on a command line.
            for (key, value) in idp.assertion_env(&users[0].login) {
                world.set_env(&key, &value);
            }
            (idp, users[0].login.clone())
        });
        let stack = Stack {
            world,
            sts,
            identity_center,
            oidc,
            saml,
            access: self.access,
            listen: self.listen.to_owned(),
            http: OnceLock::new(),
        };
        stack.write_config(self.toml);
        stack
    }

    /// [`StackBuilder::build`], then the daemon started.
    pub fn start(self) -> Stack {
        let mut stack = self.build();
        stack.world.start_daemon();
        stack
    }
}

enum Sts {
    Moto {
        moto: &'static Moto,
        /// alice; none for [`Access::Sso`].
        user: Option<SeededUser>,
        proxy: Option<StsProxy>,
    },
    Unreachable,
}

/// The daemon's HTTP API as `credd status` names it.
struct HttpApi {
    url: String,
    addr: SocketAddr,
}

/// Fields drop in order: the world (and its daemon) goes first, then the proxy and the fake.
pub struct Stack {
    pub world: World,
    sts: Sts,
    identity_center: Option<IdentityCenter>,
    oidc: Option<OidcProvider>,
    /// The IdP and who signs in.
    saml: Option<(SamlIdp, String)>,
    pub access: Access,
    listen: String,
    http: OnceLock<HttpApi>,
}

impl Stack {
    /// See [`StackBuilder`] for the defaults.
    pub fn builder() -> StackBuilder<'static> {
        StackBuilder {
            access: Access::Key,
            identity_center: identity_center::Options::default(),
            oidc: oidc_provider::Options::default(),
            saml_users: None,
            route: Route::Proxy,
            world: None,
            listen: "127.0.0.1:0",
            toml: Toml::default(),
            seed: |spec| spec,
        }
    }

    /// moto seeded for `access`, the proxy, and a world pointed at them; no daemon yet.
    pub fn new(access: Access) -> Stack {
        Stack::builder().access(access).build()
    }

    /// [`Stack::new`], the config written from `toml`, the daemon started.
    pub fn start(access: Access, toml: Toml<'_>) -> Stack {
        Stack::builder().access(access).toml(toml).start()
    }

    /// [`Stack::start`] with [`STAGING_AND_AUDIT`] and nothing else chosen.
    pub fn staging_and_audit(access: Access) -> Stack {
        Stack::start(
            access,
            Toml {
                profiles: STAGING_AND_AUDIT,
                ..Toml::default()
            },
        )
    }

    /// The shared moto this stack's user lives in; panics for a stack without STS.
    pub fn moto(&self) -> &'static Moto {
        match &self.sts {
            Sts::Moto { moto, .. } => moto,
            Sts::Unreachable => panic!("this stack was built without STS"),
        }
    }

    /// alice as seeded; panics for a stack without STS or an [`Access::Sso`] one.
    pub fn user(&self) -> &SeededUser {
        match &self.sts {
            Sts::Moto {
                user: Some(user), ..
            } => user,
            Sts::Moto { user: None, .. } => {
                panic!("this stack's access is Identity Center: there is no IAM user")
            }
            Sts::Unreachable => panic!("this stack was built without STS: alice has no real key"),
        }
    }

    /// The Identity Center fake; panics unless the access is [`Access::Sso`].
    pub fn identity_center(&self) -> &IdentityCenter {
        self.identity_center
            .as_ref()
            .expect("this stack's access is not Identity Center")
    }

    /// `credd login --json ARGS`, left waiting: its pending authorization, from the one JSON line
    /// it prints on stderr.
    #[track_caller]
    pub fn pending_login(&self, args: &[&str]) -> (Running, serde_json::Value) {
        let mut argv = vec!["login", "--json"];
        argv.extend_from_slice(args);
        let mut login = self.world.spawn_credd(&argv);
        let stderr = login.wait_for_stderr("\"authorization_pending\"", PROMPT_DEADLINE);
        let line = stderr
            .lines()
            .find(|l| l.contains("\"authorization_pending\""))
            .expect("the line just waited for");
        let pending = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the pending authorization is not JSON ({e}): {line}"));
        (login, pending)
    }

    /// Who moto says the credentials of `route` (`/v1/credentials[/PROFILE]`) are, through
    /// aws-config (the AWS SDK for Rust) and boto3, both on the container route.
    #[track_caller]
    pub fn sdk_callers(&self, route: &str) -> (String, String) {
        let env = self.container_env(route, "us-east-1");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let rust = self
            .rust_sdk(&env, &["container"])
            .unwrap_or_else(|out| panic!("aws-config on {route}: {out}"));
        let boto3 = self
            .boto3(&env)
            .unwrap_or_else(|out| panic!("boto3 on {route}: {out}"));
        assert_eq!(boto3["method"], "container-role", "{boto3}");
        let arn = |v: &serde_json::Value| v["arn"].as_str().unwrap_or_default().to_owned();
        (arn(&rust), arn(&boto3))
    }

    /// The OpenID provider; panics unless the access is [`Access::WebIdentity`].
    pub fn oidc(&self) -> &OidcProvider {
        self.oidc
            .as_ref()
            .expect("this stack's access is not web identity")
    }

    /// The SAML IdP; panics unless the access is [`Access::Saml`].
    pub fn saml(&self) -> &SamlIdp {
        &self
            .saml
            .as_ref()
            .expect("this stack's access is not SAML")
            .0
    }

    /// `n` concurrent credential requests (fresh connections, released together) spread over
    /// `routes`.
    pub fn burst(&self, n: usize, routes: &[&str]) -> Vec<Answer> {
        let token = self.token();
        let addr = self.addr();
        let start = std::sync::Barrier::new(n);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..n)
                .map(|i| {
                    let (start, token) = (&start, &token);
                    s.spawn(move || {
                        start.wait();
                        let began = std::time::Instant::now();
                        let reply = http::request(
                            addr,
                            "GET",
                            routes[i % routes.len()],
                            &[("Authorization", token)],
                        );
                        Answer {
                            status: reply.status,
                            code: reply.json()["code"].as_str().unwrap_or_default().to_owned(),
                            took: began.elapsed(),
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a request thread"))
                .collect()
        })
    }

    /// `logins` concurrent `credd login --json ARGS` (left waiting, with their pending
    /// authorizations) while a [`Stack::burst`] of `n` requests runs.
    pub fn logins_during_burst(
        &self,
        logins: usize,
        args: &[&str],
        n: usize,
        routes: &[&str],
    ) -> (Vec<Answer>, Vec<(Running, serde_json::Value)>) {
        std::thread::scope(|s| {
            let logins: Vec<_> = (0..logins)
                .map(|_| s.spawn(|| self.pending_login(args)))
                .collect();
            let answers = self.burst(n, routes);
            let logins = logins
                .into_iter()
                .map(|l| l.join().expect("a login thread"))
                .collect();
            (answers, logins)
        })
    }

    /// Where the AWS CLI keeps the token of [`SSO_SESSION`]:
    /// `$HOME/.aws/sso/cache/<sha1 hex of the session name>.json`.
    pub fn sso_cache_file(&self) -> PathBuf {
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            SSO_SESSION.as_bytes(),
        );
        self.world
            .aws_dir
            .join("sso")
            .join("cache")
            .join(format!("{}.json", hex::encode(digest)))
    }

    /// A `$BROWSER` for the world: a script that opens its URL argument with `curl -sL`, so it
    /// follows `/authorize`'s redirect to the loopback callback as a user's browser would.
    /// Returns the script's path (written on first use).
    pub fn scripted_browser(&self) -> PathBuf {
        let path = self.world.root.join("bin").join("browser");
        if !path.exists() {
            write_executable(
                &path,
                "#!/bin/sh\n# credd-tests: a browser that follows redirects and shows nothing.\n\
                 exec curl -sSL --max-time 10 -o /dev/null \"$1\"\n",
            );
        }
        path
    }

    /// The proxy between the daemon and moto; panics for a stack built without one.
    pub fn proxy(&self) -> &StsProxy {
        match &self.sts {
            Sts::Moto {
                proxy: Some(proxy), ..
            } => proxy,
            _ => panic!("this stack was built without the STS proxy"),
        }
    }

    /// The MFA device's serial ([`Access::Mfa`] only).
    pub fn mfa_serial(&self) -> &str {
        self.user()
            .mfa_serial
            .as_deref()
            .expect("this stack's user has no MFA device")
    }

    /// Writes the credd config: `toml`'s parts plus the listener and the `[access]` source of
    /// this stack.
    pub fn write_config(&self, toml: Toml<'_>) {
        let source = match self.access {
            Access::Mfa => format!(
                "source = \"iam-user\"\naws_profile = \"access\"\nmfa_serial = \"{}\"\n",
                self.mfa_serial()
            ),
            Access::Key => "source = \"iam-user\"\naws_profile = \"access\"\n".to_owned(),
            Access::Sso { login, access_role } => {
                let mut lines = format!(
                    "source = \"sso\"\nsso_session = \"{SSO_SESSION}\"\n\
                     sso_start_url = \"{}\"\nsso_region = \"{}\"\n",
                    self.identity_center().start_url(),
                    identity_center::SSO_REGION,
                );
                if let Some(login) = login {
                    lines.push_str(&format!("sso_login = \"{}\"\n", login.as_str()));
                }
                if access_role {
                    lines.push_str(&format!(
                        "sso_account_id = \"{}\"\nsso_role_name = \"{}\"\n",
                        identity_center::ACCESS_ACCOUNT,
                        identity_center::ACCESS_ROLE,
                    ));
                }
                lines
            }
            Access::WebIdentity => format!(
                "source = \"web-identity\"\nrole_arn = \"{ACCESS_FROM_IDP}\"\n\
                 oidc_issuer = \"{}\"\noidc_client_id = \"{}\"\n",
                self.oidc().issuer(),
                self.oidc().client_id(),
            ),
            Access::Saml => {
                let (idp, login) = self.saml.as_ref().expect("a SAML stack has its IdP");
                let command: Vec<String> = idp
                    .assertion_command(login)
                    .iter()
                    .map(|word| format!("{word:?}"))
                    .collect();
                format!(
                    "source = \"saml\"\nassertion_command = [{}]\n",
                    command.join(", ")
                )
            }
        };
        let top = match toml.top {
            "" => String::new(),
            lines => format!("{lines}\n"),
        };
        self.world.write_config(&format!(
            "{top}[daemon]\nlisten = \"{listen}\"\n{daemon}\n\n\
             [access]\n{source}{access}\n{profiles}",
            listen = self.listen,
            daemon = toml.daemon,
            access = toml.access,
            profiles = toml.profiles,
        ));
    }

    /// Who moto (auth on) says the credentials credd serves for `profile` belong to: the real
    /// check that they work. The credentials come from `credd credential-process`.
    #[track_caller]
    pub fn served_identity(&self, profile: &str) -> Result<String, String> {
        let creds = self
            .world
            .credential_process(profile)
            .unwrap_or_else(|out| panic!("no credentials for {profile}: {out}"));
        self.moto().caller_arn(
            &creds.keys.access_key_id,
            &creds.keys.secret_access_key,
            creds.keys.session_token.as_deref(),
        )
    }

    /// `credd login --mfa-code 123456`, asserting it succeeds.
    #[track_caller]
    pub fn login_with_mfa(&self) {
        self.world
            .credd(&["login", "--mfa-code", MFA_CODE])
            .assert_success();
    }

    /// Waits until the daemon has logged in by itself ([`Access::Key`]) or after `credd login`.
    #[track_caller]
    pub fn wait_logged_in(&self, deadline: Duration) {
        wait_until(deadline, "the access session", || {
            self.world.status()["access"]["logged_in"] == true
        });
    }

    /// Waits until every profile is fresh.
    #[track_caller]
    pub fn wait_all_fresh(&self, deadline: Duration) {
        wait_until(deadline, "every profile to be fresh", || {
            let status = self.world.status();
            status["profiles"]
                .as_array()
                .is_some_and(|all| !all.is_empty() && all.iter().all(|p| p["state"] == "fresh"))
        });
    }

    // ---- The HTTP API --------------------------------------------------------------------

    /// The daemon's HTTP API, from `credd status --json` the first time it is asked for (a
    /// daemon restarted later may listen elsewhere).
    fn http_api(&self) -> &HttpApi {
        self.http.get_or_init(|| {
            let mut url = String::new();
            wait_until(READY_DEADLINE, "the HTTP URL in credd status", || {
                let out = self.world.credd(&["status", "--json"]);
                match out
                    .success()
                    .then(|| out.json()["url"].as_str().map(str::to_owned))
                {
                    Some(Some(u)) => {
                        url = u;
                        true
                    }
                    _ => false,
                }
            });
            let addr = url
                .strip_prefix("http://")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("status url {url:?} is not http://IP:PORT"));
            HttpApi { url, addr }
        })
    }

    /// `http://127.0.0.1:PORT`, from `credd status --json`.
    pub fn url(&self) -> &str {
        &self.http_api().url
    }

    pub fn addr(&self) -> SocketAddr {
        self.http_api().addr
    }

    /// The HTTP API token the daemon wrote.
    pub fn token(&self) -> String {
        self.world.http_token()
    }

    /// `GET path` with the right token and a loopback Host.
    pub fn get_authorized(&self, path: &str) -> Reply {
        self.get_with_token(path, &self.token())
    }

    /// `GET path` with `token` (a leaked one, an old one) and a loopback Host.
    pub fn get_with_token(&self, path: &str, token: &str) -> Reply {
        self.request("GET", path, &[("Authorization", token)])
    }

    /// One request on a fresh connection; `Host: 127.0.0.1:PORT` unless `headers` has a Host.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        http::request(self.addr(), method, path, headers)
    }

    /// Writes `bytes` on a fresh connection and returns all the daemon sends back (see
    /// [`http::send_raw`]).
    pub fn send_raw(&self, bytes: &[u8]) -> Vec<u8> {
        http::send_raw(self.addr(), bytes)
    }

    /// Asserts the daemon is up and answering: `/healthz` is `ok`, and the process still runs.
    #[track_caller]
    pub fn assert_still_serving(&self) {
        assert!(
            self.world.daemon_running(),
            "the daemon exited:\n{}",
            self.world.daemon_log()
        );
        let reply = self.request("GET", "/healthz", &[]);
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"), "{reply}");
    }

    /// The env a program needs for the container route at `path` (`/v1/credentials...`), in
    /// `region`.
    pub fn container_env(&self, path: &str, region: &str) -> Vec<(String, String)> {
        vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                format!("{}{path}", self.url()),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                self.world.token_file().display().to_string(),
            ),
            ("AWS_REGION".into(), region.into()),
        ]
    }

    /// The env a program needs to use the daemon as its IMDS, in `region`.
    pub fn imds_env(&self, region: &str) -> Vec<(String, String)> {
        vec![
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT".into(),
                self.url().to_owned(),
            ),
            ("AWS_EC2_METADATA_DISABLED".into(), "false".into()),
            ("AWS_REGION".into(), region.into()),
        ]
    }

    // ---- Programs in the world -----------------------------------------------------------

    /// Runs `program args` in the world with `env` added (as `env K=V... program args`), so each
    /// call chooses its own variables; `AWS_EC2_METADATA_DISABLED` stays `true` unless overridden.
    pub fn run_with_env(&self, env: &[(&str, &str)], program: &str, args: &[&str]) -> CmdOutput {
        let mut argv: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        argv.push(program.to_owned());
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.world.run("env", &argv, None)
    }

    /// [`BOTO3_CALLER`] with `env` added; Ok(its JSON) or Err(the output) when it fails.
    pub fn boto3(&self, env: &[(&str, &str)]) -> Result<serde_json::Value, CmdOutput> {
        let python = venv_python().display().to_string();
        let out = self.run_with_env(env, &python, &["-c", BOTO3_CALLER]);
        if out.success() {
            Ok(out.json())
        } else {
            Err(out)
        }
    }

    /// `sdk-client ARGS` (the AWS SDK for Rust, see tests/src/bin/sdk-client.rs) with `env`.
    pub fn rust_sdk(
        &self,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<serde_json::Value, CmdOutput> {
        let sdk_client = sdk_client_bin().display().to_string();
        let out = self.run_with_env(env, &sdk_client, args);
        if out.success() {
            Ok(out.json())
        } else {
            Err(out)
        }
    }
}

/// Every regular file under `dir` (recursively) whose bytes contain `needle`; unreadable files
/// and sockets are skipped. For "this secret is nowhere on disk" checks.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    assert!(
        !needle.is_empty(),
        "looking for an empty secret finds everything"
    );
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => {
                    let hit = fs::read(&path).is_ok_and(|bytes| {
                        bytes
                            .windows(needle.len())
                            .any(|window| window == needle.as_bytes())
                    });
                    if hit {
                        found.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Writes `text` to `path` (making its directory) as an executable script.
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod 755 {}: {e}", path.display()));
}

/// Seconds since the Unix epoch, as status reports times.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
