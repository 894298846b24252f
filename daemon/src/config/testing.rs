//! Fixtures shared by the sections' tests: a valid config to mutate, and the parse helpers.

use std::path::Path;

use super::{Config, ConfigError, parse};

/// A valid `iam-user` config; tests replace one piece of it.
pub(super) const GOOD: &str = r#"
default_profile = "staging"

[daemon]
listen = "127.0.0.1:0"
min_remaining = "30m"

[access]
source = "iam-user"
aws_profile = "access"
mfa_serial = "arn:aws:iam::111111111111:mfa/alice"
regions = ["us-east-1", "us-west-2"]

[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
region = "us-west-2"

[profiles.prod-audit]
role_arn = "arn:aws:iam::333333333333:role/ops/Auditor"
via = "staging"
duration = "4h"
tags = { team = "sre" }
"#;

pub(super) fn err(text: &str) -> ConfigError {
    parse(Path::new("/c.toml"), text).expect_err("config should be refused")
}

pub(super) fn ok(text: &str) -> Config {
    parse(Path::new("/c.toml"), text).unwrap_or_else(|e| panic!("config should load: {e}"))
}

/// The issue's Identity Center example: an access role, an Identity Center profile (line 10) and
/// a `role_arn` profile the access role signs (line 14).
pub(super) const SSO: &str = r#"
[access]
source = "sso"
sso_session = "acme"
sso_start_url = "https://acme.awsapps.com/start"
sso_region = "us-east-1"
sso_account_id = "111111111111"
sso_role_name = "AccessAdmin"

[profiles.staging]
sso_account_id = "222222222222"
sso_role_name = "AdministratorAccess"

[profiles.prod]
role_arn = "arn:aws:iam::333333333333:role/Deployer"
"#;

/// `SSO` with `line` added as line 7 of `[access]`.
pub(super) fn sso_with(line: &str) -> String {
    SSO.replace(
        "sso_account_id = \"111",
        &format!("{line}\nsso_account_id = \"111"),
    )
}
