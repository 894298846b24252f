//! The value checks both binaries apply: the daemon to its config, the client to what
//! `credd import` proposes from `~/.aws/config`, so an import never writes what the daemon would
//! refuse. Each returns what was wrong as a message; the caller adds where.

/// The longest profile name.
pub const PROFILE_NAME_MAX: usize = 64;

/// Profile names appear in URLs and shell variables, so keep them plain.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > PROFILE_NAME_MAX {
        return Err(format!("must be 1 to {PROFILE_NAME_MAX} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return Err("use letters, digits, '-', '_' and '.' (not first)".into());
    }
    Ok(())
}

/// The characters IAM allows in role names, session names and similar STS text.
pub fn is_sts_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// Returns the role's account ID.
pub fn parse_role_arn(arn: &str) -> Result<String, String> {
    let expected = "expected arn:aws:iam::123456789012:role/NAME (optionally role/PATH/NAME)";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(format!("{expected}, found {arn:?}"));
    };
    if prefix != "arn" || !partition.starts_with("aws") || service != "iam" || !region.is_empty() {
        return Err(format!("{expected}, found {arn:?}"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the account ID must be 12 digits, found {account:?}"
        ));
    }
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(format!(
            "{expected}: the resource must start with role/, found {resource:?}"
        ));
    };
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_sts_word) {
        return Err(format!(
            "role name {name:?} must be 1 to 64 of letters, digits and +=,.@_-"
        ));
    }
    Ok(account.to_owned())
}

pub fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a region like \"us-east-1\", found {region:?}"
        ))
    }
}

/// `sso_session` names the AWS CLI token cache file (through its sha1) and appears in messages:
/// plain characters only.
pub fn check_sso_session(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(1..=64).contains(&len) {
        return Err(format!("must be 1 to 64 characters, found {len}"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "character {bad:?} is not allowed (letters, digits, '-', '_' and '.')"
        ));
    }
    Ok(())
}

/// An `mfa_serial` STS accepts as SerialNumber (the daemon's `[access]` check, which `credd
/// import` applies before it writes one).
pub fn check_mfa_serial(serial: &str) -> Result<(), String> {
    let ok = (9..=256).contains(&serial.len())
        && serial
            .chars()
            .all(|c| is_sts_word(c) || matches!(c, ':' | '/'));
    if !ok {
        return Err(format!(
            "expected an MFA device ARN like arn:aws:iam::111111111111:mfa/alice, found {serial:?}"
        ));
    }
    Ok(())
}
