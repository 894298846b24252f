//! A real SAML identity provider for the `source = "saml"` tests: SimpleSAMLphp (Debian's package,
//! installed on first use when running as root), served by PHP's built-in web server from a private
//! config in a temp dir, with users whose assertions carry AWS's attributes for the service
//! provider `urn:amazon:webservices`, as a company's IdP sends them to the AWS sign-in page.
//!
//! `tests/py/saml_assertion.py` is the `assertion_command` credd runs: it logs in the way a browser
//! would (IdP-initiated, then the login form) and prints the signed base64 `SAMLResponse`, counting
//! its runs. Each [`SamlIdp`] is a server of its own (about 0.1 s to start); it runs behind
//! `tests/py/saml_idp_server.py`, which stops PHP when its stdin closes, so none outlives the test
//! process however that ends.
//!
//! moto's AssumeRoleWithSAML (auth off) takes these assertions, with two quirks: it answers HTTP 500
//! when the Role attribute has several values or the attribute statement has only one attribute. A
//! user for a login that reaches STS has exactly one role (RoleSessionName always makes a second
//! attribute); users with several roles are for credd's own refusal, which lists them. And
//! GetCallerIdentity knows the credentials only for roles in [`MOTO_SAML_ACCOUNT`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::install::apt_install;
use crate::server::lock;
use crate::{POLL_INTERVAL, free_port, system_python};

/// The Debian packages the IdP needs, installed by [`ensure_installed`]: SimpleSAMLphp (1.19 in
/// Debian 12), the PHP CLI whose built-in web server serves it, the XML (DOM, for signing) and
/// mbstring extensions it uses, and openssl for its certificate. The `php-*` names follow the
/// release's PHP (8.2 in Debian 12).
pub const SIMPLESAMLPHP_PACKAGES: &[&str] = &[
    "simplesamlphp",
    "php-cli",
    "php-xml",
    "php-mbstring",
    "openssl",
];

/// Where Debian's package puts SimpleSAMLphp's web root.
pub const SIMPLESAMLPHP_WWW: &str = "/usr/share/simplesamlphp/www";

/// AWS's service provider entity ID: the `spentityid` of an IdP-initiated login to AWS.
pub const AWS_SP_ENTITY_ID: &str = "urn:amazon:webservices";

/// Where the IdP posts the response for AWS (the form's action; nothing is sent there).
pub const AWS_ACS_URL: &str = "https://signin.aws.amazon.com/saml";

/// The IdP's entity ID, the `Issuer` of its responses.
pub const IDP_ENTITY_ID: &str = "urn:credd-tests:idp";

/// The attribute listing the roles a user may take, each `ROLE_ARN,PROVIDER_ARN` (either order).
pub const ROLE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/Role";

/// The attribute AWS takes the session name from: [`SamlUser::role_session_name`].
pub const ROLE_SESSION_NAME_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/RoleSessionName";

/// The optional attribute capping the session, in seconds.
pub const SESSION_DURATION_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/SessionDuration";

/// The NameID format of the assertions; the NameID is the user's login.
pub const NAME_ID_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// The account for the roles of SAML logins whose credentials a test checks with
/// GetCallerIdentity: moto's default account. moto files an AssumeRoleWithSAML (unsigned) under
/// this account whatever the role's, while GetCallerIdentity looks the credentials up under the
/// role's account: it recognizes them (`assumed-role/ROLE/SESSION`) only for roles in this one,
/// and answers `user/moto` for any other.
pub const MOTO_SAML_ACCOUNT: &str = "123456789012";

/// The environment variable [`SamlIdp::assertion_command`] reads the password from.
pub const PASSWORD_ENV: &str = "CREDD_TEST_SAML_PASSWORD";

/// How long PHP may take to answer its first request.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Attempts at starting a server: the port from [`free_port`] can be taken before PHP binds it.
const START_ATTEMPTS: usize = 3;

/// How long a stopping server may take to exit after its stdin closes before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Whether the packages were found (or installed) by this process, or why not.
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// The ARN of the SAML provider `name` in `account`, the second half of a role value.
pub fn provider_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:saml-provider/{name}")
}

/// One value of the Role attribute: `ROLE_ARN,PROVIDER_ARN`, the order AWS documents.
pub fn role_value(role_arn: &str, provider_arn: &str) -> String {
    format!("{role_arn},{provider_arn}")
}

/// A user of the IdP.
#[derive(Clone)]
pub struct SamlUser {
    /// What the login form takes as the username; also the assertion's NameID. No `:`.
    pub login: String,
    pub password: String,
    /// The Role attribute's values, each `ROLE_ARN,PROVIDER_ARN` (either order, as written here).
    /// Empty: the assertion has no Role attribute (a user not given access to AWS).
    pub roles: Vec<String>,
    /// The SessionDuration attribute in seconds, when set.
    pub session_duration: Option<u32>,
}

impl SamlUser {
    /// A user with one role (the shape moto accepts) and no SessionDuration.
    pub fn new(login: &str, password: &str, role: String) -> SamlUser {
        SamlUser {
            login: login.to_owned(),
            password: password.to_owned(),
            roles: vec![role],
            session_duration: None,
        }
    }

    /// The RoleSessionName attribute's value, `LOGIN@example.com`, like a company's email
    /// address: the SESSION of `assumed-role/ROLE/SESSION` after AssumeRoleWithSAML.
    pub fn role_session_name(&self) -> String {
        format!("{}@example.com", self.login)
    }
}

impl std::fmt::Debug for SamlUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlUser")
            .field("login", &self.login)
            .field("password", &"***")
            .field("roles", &self.roles)
            .field("session_duration", &self.session_duration)
            .finish()
    }
}

/// A running SimpleSAMLphp IdP; dropping it stops the server and removes its files.
pub struct SamlIdp {
    port: u16,
    /// The private config, certificate, sessions and the run counter.
    dir: tempfile::TempDir,
    /// PHP's output: a file without a name, read with `read_at`.
    log: File,
    server: Option<Server>,
    users: Mutex<Vec<SamlUser>>,
}

/// The wrapper process and the pipe whose closing stops it.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl SamlIdp {
    /// Installs SimpleSAMLphp if needed (see [`ensure_installed`]), writes a private config for
    /// `users` and starts the IdP on a free port, waiting until it answers.
    pub fn start(users: &[SamlUser]) -> SamlIdp {
        ensure_installed();
        let dir = tempfile::Builder::new()
            .prefix("credd-saml-idp-")
            .tempdir()
            .unwrap_or_else(|e| panic!("create the SAML IdP's temp dir: {e}"));
        write_config(dir.path());
        write_users(dir.path(), users);
        let log = tempfile::tempfile().unwrap_or_else(|e| panic!("create the IdP's log: {e}"));
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            match start_server(dir.path(), port, &log) {
                Ok(server) => {
                    return SamlIdp {
                        port,
                        dir,
                        log,
                        server: Some(server),
                        users: Mutex::new(users.to_vec()),
                    };
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "the SAML IdP did not start after {START_ATTEMPTS} attempts:\n{}\n--- PHP's log ---\n{}",
            failures.join("\n"),
            crate::moto::read_log(&log)
        );
    }

    /// `http://127.0.0.1:PORT`, the IdP's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The IdP's signing certificate, base64 DER as in the responses' `X509Certificate`.
    pub fn certificate_base64(&self) -> String {
        let pem = fs::read_to_string(self.dir.path().join("cert/idp.crt"))
            .unwrap_or_else(|e| panic!("read the IdP's certificate: {e}"));
        pem.lines()
            .filter(|line| !line.starts_with("-----"))
            .collect()
    }

    /// The argv of an `assertion_command` printing `login`'s SAMLResponse: the system python3
    /// running `tests/py/saml_assertion.py`, which reads the password from [`PASSWORD_ENV`] (see
    /// [`SamlIdp::assertion_env`]) and counts its runs for [`SamlIdp::runs`] in a file of the
    /// IdP's private dir (so it runs as the test's own user, not as another).
    pub fn assertion_command(&self, login: &str) -> Vec<String> {
        vec![
            system_python().display().to_string(),
            assertion_script().display().to_string(),
            self.url(),
            login.to_owned(),
            "--password-env".to_owned(),
            PASSWORD_ENV.to_owned(),
            "--count-file".to_owned(),
            self.runs_file().display().to_string(),
        ]
    }

    /// [`SamlIdp::assertion_command`] waiting `delay` after it is counted, before it logs in:
    /// a run held open while other requests arrive.
    pub fn slow_assertion_command(&self, login: &str, delay: Duration) -> Vec<String> {
        let mut command = self.assertion_command(login);
        command.extend(["--delay-ms".to_owned(), delay.as_millis().to_string()]);
        command
    }

    /// The environment the assertion command needs for `login`: its password in [`PASSWORD_ENV`].
    /// Panics if the IdP has no such user.
    pub fn assertion_env(&self, login: &str) -> Vec<(String, String)> {
        let users = lock(&self.users);
        let user = users
            .iter()
            .find(|user| user.login == login)
            .unwrap_or_else(|| {
                let logins: Vec<_> = users.iter().map(|u| u.login.as_str()).collect();
                panic!("the SAML IdP has no user {login:?} (it has {logins:?})")
            });
        password_env(&user.password)
    }

    /// Runs the assertion command for `login` with `password` (right or wrong): Ok(the base64
    /// SAMLResponse), or Err(the last line of its stderr, the reason credd would show).
    pub fn assertion(&self, login: &str, password: &str) -> Result<String, String> {
        let argv = self.assertion_command(login);
        let output = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("LANG", "C.UTF-8")
            .envs(password_env(password))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {argv:?}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(stderr.lines().last().unwrap_or_default().to_owned())
        }
    }

    /// How many times an assertion command of this IdP has run (each run counts when it starts).
    pub fn runs(&self) -> usize {
        match fs::read_to_string(self.runs_file()) {
            Ok(runs) => runs.lines().count(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => panic!("read {}: {e}", self.runs_file().display()),
        }
    }

    /// Replaces the IdP's users; the next login sees the change (a role granted or taken away,
    /// a password changed).
    pub fn set_users(&self, users: &[SamlUser]) {
        let mut current = lock(&self.users);
        write_users(self.dir.path(), users);
        *current = users.to_vec();
    }

    /// Stops the server (the IdP is down: logins fail to connect); [`SamlIdp::restart`] brings
    /// it back on the same port.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Starts the stopped server again on its port, with its users and sessions. Panics if it is
    /// running or does not start (another process took the port meanwhile).
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "the SAML IdP is running already");
        let server = start_server(self.dir.path(), self.port, &self.log)
            .unwrap_or_else(|failure| panic!("restart the SAML IdP: {failure}"));
        self.server = Some(server);
    }

    /// What PHP and SimpleSAMLphp printed so far (requests, notices, errors).
    pub fn log(&self) -> String {
        crate::moto::read_log(&self.log)
    }

    fn runs_file(&self) -> PathBuf {
        self.dir.path().join("runs")
    }
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// Closes the wrapper's stdin (it stops PHP and exits), then waits; kills it if it is slow.
    fn stop(mut self) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < STOP_DEADLINE {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment giving the assertion command `password`.
pub fn password_env(password: &str) -> Vec<(String, String)> {
    vec![(PASSWORD_ENV.to_owned(), password.to_owned())]
}

/// The SAMLResponse's XML, from its base64 (as the assertion command prints it).
pub fn decode_response(encoded: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap_or_else(|e| panic!("the SAMLResponse is not base64 ({e}): {encoded:?}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("the SAMLResponse is not UTF-8: {e}"))
}

/// `tests/py/saml_assertion.py`.
pub fn assertion_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("saml_assertion.py")
}

/// What the packages install that the IdP uses; absent, they are installed (or asked for).
fn installed() -> bool {
    let www = Path::new(SIMPLESAMLPHP_WWW);
    www.join("saml2/idp/SSOService.php").is_file()
        && php_has_extensions()
        && Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|out| out.status.success())
}

/// `php` runs and has the DOM (php-xml) and mbstring extensions.
fn php_has_extensions() -> bool {
    Command::new("php")
        .args([
            "-r",
            "exit(extension_loaded('dom') && extension_loaded('mbstring') ? 0 : 1);",
        ])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Makes sure SimpleSAMLphp and PHP are installed, checked once per test process. When they are
/// missing: as root, `apt-get install -y` [`SIMPLESAMLPHP_PACKAGES`] (see [`apt_install`]; about
/// 25 s; lock file `target/simplesamlphp-install.lock`); as anyone else, panics with the command
/// to run.
pub fn ensure_installed() {
    INSTALLED
        .get_or_init(try_install)
        .as_ref()
        .unwrap_or_else(|failure| panic!("{failure}"));
}

fn try_install() -> Result<(), String> {
    let missing = || -> Vec<String> {
        if installed() {
            Vec::new()
        } else {
            SIMPLESAMLPHP_PACKAGES
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        }
    };
    apt_install(
        "the SAML tests' identity provider (SimpleSAMLphp on PHP)",
        "simplesamlphp-install",
        missing,
    )
}

/// SimpleSAMLphp's config in `dir`: the whole of it, so nothing of the system's config (nor
/// Debian's `/var/lib/simplesamlphp/secrets.inc.php`) is read. Paths are relative to the
/// config's own place, so nothing here needs quoting for PHP.
fn write_config(dir: &Path) {
    for sub in [
        "config", "metadata", "cert", "data", "tmp", "sessions", "log",
    ] {
        let path = dir.join(sub);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    }
    write_file(&dir.join("config/config.php"), CONFIG_PHP);
    write_file(&dir.join("config/authsources.php"), AUTHSOURCES_PHP);
    write_file(
        &dir.join("metadata/saml20-idp-hosted.php"),
        &idp_hosted_php(),
    );
    write_file(&dir.join("metadata/saml20-sp-remote.php"), &sp_remote_php());
    write_certificate(&dir.join("cert"));
}

/// The IdP's key and self-signed certificate (`idp.key`, `idp.crt`) in `cert_dir`: one pair per
/// test process, made by openssl on first use (an RSA key takes 0.1 to 1 s to generate).
fn write_certificate(cert_dir: &Path) {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    let (key, certificate) = PAIR.get_or_init(make_certificate);
    write_file(&cert_dir.join("idp.key"), key);
    write_file(&cert_dir.join("idp.crt"), certificate);
}

/// A new RSA key and a self-signed certificate for it, as PEM: (key, certificate).
fn make_certificate() -> (String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temp dir for openssl: {e}"));
    let (key, certificate) = (dir.path().join("idp.key"), dir.path().join("idp.crt"));
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        ])
        .args(["-subj", "/CN=credd-tests SAML IdP"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run openssl for the IdP's certificate: {e}"));
    assert!(
        output.status.success(),
        "openssl failed to make the IdP's certificate ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |path: &Path| {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    (read(&key), read(&certificate))
}

/// The users as exampleauth:UserPass wants them, keyed `login:password`, read by
/// `authsources.php` on every request. Written whole and renamed into place.
fn write_users(dir: &Path, users: &[SamlUser]) {
    let mut entries = BTreeMap::new();
    for (i, user) in users.iter().enumerate() {
        assert!(
            users[..i].iter().all(|other| other.login != user.login),
            "two SAML users with the login {:?}",
            user.login
        );
        assert!(
            !user.login.contains(':') && !user.login.is_empty(),
            "a SAML user's login must be non-empty and have no ':' (exampleauth splits on it): {:?}",
            user.login
        );
        let mut attributes = BTreeMap::new();
        // The NameID's source; the SP's filters keep it out of the attribute statement.
        attributes.insert("uid", vec![user.login.clone()]);
        if !user.roles.is_empty() {
            attributes.insert(ROLE_ATTRIBUTE, user.roles.clone());
        }
        attributes.insert(ROLE_SESSION_NAME_ATTRIBUTE, vec![user.role_session_name()]);
        if let Some(seconds) = user.session_duration {
            attributes.insert(SESSION_DURATION_ATTRIBUTE, vec![seconds.to_string()]);
        }
        entries.insert(format!("{}:{}", user.login, user.password), attributes);
    }
    let json = serde_json::to_string_pretty(&entries).expect("serialize the SAML users");
    let path = dir.join("users.json");
    let partial = dir.join("users.json.partial");
    write_file(&partial, &json);
    fs::rename(&partial, &path)
        .unwrap_or_else(|e| panic!("rename {} into place: {e}", path.display()));
}

fn write_file(path: &Path, contents: &str) {
    let mut file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.write_all(contents.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    // The IdP's secrets (key, passwords) are the test's own.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod 600 {}: {e}", path.display()));
}

/// SimpleSAMLphp's main config: an IdP only (SAML 2.0, exampleauth users), PHP sessions and logs
/// inside the temp dir, session cookies without `Secure` (the IdP is plain HTTP on loopback),
/// notices to stderr (PHP's log).
const CONFIG_PHP: &str = r#"<?php
$dir = dirname(__DIR__);
$config = [
    'baseurlpath' => '/',
    'certdir' => $dir . '/cert/',
    'metadatadir' => $dir . '/metadata/',
    'datadir' => $dir . '/data/',
    'tempdir' => $dir . '/tmp',
    'loggingdir' => $dir . '/log/',
    'secretsalt' => 'credd-tests-salt-not-a-secret',
    'technicalcontact_name' => 'credd tests',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',
    'admin.checkforupdates' => false,
    'showerrors' => false,
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'logging.handler' => 'stderr',
    'logging.level' => SimpleSAML\Logger::NOTICE,
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => $dir . '/sessions',
    'session.cookie.secure' => false,
    'language.cookie.secure' => false,
];
"#;

/// The users' source: `users.json` beside the config, read on every request.
const AUTHSOURCES_PHP: &str = r#"<?php
$users = json_decode(file_get_contents(dirname(__DIR__) . '/users.json'), true);
$config = [
    'credd-users' => array_merge(['exampleauth:UserPass'], $users),
];
"#;

/// The hosted IdP: signs with the temp dir's key, authenticates against `credd-users`.
fn idp_hosted_php() -> String {
    format!(
        r#"<?php
$metadata['{IDP_ENTITY_ID}'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'credd-users',
];
"#
    )
}

/// AWS as the service provider: the response and the assertion signed, attribute names as URIs,
/// the login as a persistent NameID, and only AWS's attributes released.
fn sp_remote_php() -> String {
    format!(
        r#"<?php
$metadata['{AWS_SP_ENTITY_ID}'] = [
    'AssertionConsumerService' => '{AWS_ACS_URL}',
    'NameIDFormat' => '{NAME_ID_FORMAT}',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
    'authproc' => [
        10 => [
            'class' => 'saml:AttributeNameID',
            'attribute' => 'uid',
            'Format' => '{NAME_ID_FORMAT}',
        ],
        20 => [
            'class' => 'core:AttributeLimit',
            '{ROLE_ATTRIBUTE}',
            '{ROLE_SESSION_NAME_ATTRIBUTE}',
            '{SESSION_DURATION_ATTRIBUTE}',
        ],
    ],
];
"#
    )
}

/// Spawns `saml_idp_server.py` on `port` and waits until SimpleSAMLphp answers (its metadata
/// page loads only with a valid config); Err with the reason if it exits or is slow.
fn start_server(dir: &Path, port: u16, log: &File) -> Result<Server, String> {
    let stderr = log
        .try_clone()
        .map_err(|e| format!("share the IdP's log: {e}"))?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("saml_idp_server.py");
    let mut command = Command::new(system_python());
    command
        .arg(&script)
        .args(["127.0.0.1", &port.to_string(), SIMPLESAMLPHP_WWW])
        .env_clear()
        .env("SIMPLESAMLPHP_CONFIG_DIR", dir.join("config"))
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", script.display()));
    let mut server = Server {
        stdin: child.stdin.take(),
        child,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("PHP on port {port} exited ({status})"));
        }
        if crate::moto::http_status(addr, "/saml2/idp/metadata.php") == Some(200) {
            return Ok(server);
        }
        if start.elapsed() > START_DEADLINE {
            server.stop();
            return Err(format!(
                "SimpleSAMLphp on port {port} did not answer within {START_DEADLINE:?}"
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
