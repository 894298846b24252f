//! The small value checkers shared by the sections: names, regions, ARNs and the text STS accepts.
//!
//! Each returns what was wrong as a message; the caller adds the key and the `file:line:col`.

/// Profile names appear in URLs and shell variables, so keep them plain.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
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
fn is_sts_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// Returns the role's account ID.
pub(super) fn parse_role_arn(arn: &str) -> Result<String, String> {
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

pub(super) fn check_region(region: &str) -> Result<(), String> {
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

pub(super) fn check_mfa_serial(serial: &str) -> Result<(), String> {
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

pub(super) fn check_sts_text(
    value: &str,
    min: usize,
    max: usize,
    extra: &str,
) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters, found {len}"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !is_sts_word(*c) && !extra.contains(*c))
    {
        return Err(format!(
            "character {bad:?} is not allowed (letters, digits, +=,.@_-{extra})"
        ));
    }
    Ok(())
}

pub(super) fn check_tag(value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters, found {len}"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(*c)))
    {
        return Err(format!("character {bad:?} is not allowed"));
    }
    Ok(())
}
