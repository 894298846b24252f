//! The small value checkers shared by the sections: names, regions, ARNs, Identity Center IDs and
//! URLs, and the text STS accepts.
//!
//! Each returns what was wrong as a message; the caller adds the key and the `file:line:col`.

use std::net::{Ipv4Addr, Ipv6Addr};

pub use credd_proto::checks::{
    PROFILE_NAME_MAX, check_mfa_serial, check_name, check_region, check_sso_session, is_sts_word,
    parse_role_arn,
};

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

pub(super) fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a 12-digit AWS account ID like \"111111111111\", found {id:?}"
        ));
    }
    Ok(())
}

/// A permission set's name, as GetRoleCredentials takes it (IAM's role-name rules).
pub(super) fn check_sso_role_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_sts_word) {
        return Err(format!(
            "expected a permission set name of 1 to 64 letters, digits and +=,.@_- like \
             \"AdministratorAccess\", found {name:?}"
        ));
    }
    Ok(())
}

/// An Identity Center start URL (the AWS access portal).
pub(super) fn check_start_url(url: &str) -> Result<(), String> {
    check_service_url(
        url,
        "the start URL",
        "expected the AWS access portal URL, like \"https://acme.awsapps.com/start\"",
    )
}

/// An OpenID provider's issuer URL (discovery is at its `/.well-known/openid-configuration`).
pub(super) fn check_issuer_url(url: &str) -> Result<(), String> {
    check_service_url(
        url,
        "the issuer",
        "expected the identity provider's issuer URL, like \"https://login.acme.example\"",
    )?;
    if url.contains(['?', '#']) {
        return Err(format!(
            "the issuer URL has no query or fragment (OpenID Connect Discovery), found {url:?}"
        ));
    }
    Ok(())
}

/// A service's URL: real ones are `https://`; plain `http://` is accepted for a loopback host
/// only, so tests can point credd at a local server. `what` names it in the plain-http error.
fn check_service_url(url: &str, what: &str, expected: &str) -> Result<(), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s @ ("https" | "http"), rest)) => (s, rest),
        _ => return Err(format!("{expected}, found {url:?}")),
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{expected}, found {url:?} (it holds spaces)"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "{expected}: no user name or password in it, found {url:?}"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) => (addr, after.strip_prefix(':')),
            None => return Err(format!("{expected}, found {url:?}")),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = if authority.starts_with('[') {
        host.parse::<Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    if !host_ok {
        return Err(format!("{expected}: no valid host name in {url:?}"));
    }
    if let Some(port) = port
        && port.parse::<u16>().ok().is_none_or(|p| p == 0)
    {
        return Err(format!(
            "{expected}: the port must be 1 to 65535, found {port:?}"
        ));
    }
    if scheme == "http" && !is_loopback_host(host) {
        return Err(format!(
            "{url:?} is plain http: {what} must be https:// (http:// is accepted only for a test \
             server on 127.0.0.1, [::1] or localhost)"
        ));
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        assert!(check_name("prod-audit_2.x").is_ok());
        assert!(check_name(".hidden").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn role_arns_give_their_account() {
        let arn = "arn:aws:iam::123456789012:role/ops/Auditor";
        assert_eq!(parse_role_arn(arn).unwrap(), "123456789012");
        assert!(parse_role_arn("arn:aws-cn:iam::123456789012:role/R").is_ok());
        let e = parse_role_arn("arn:aws:iam::123456789012:user/alice").unwrap_err();
        assert!(e.contains("must start with role/"), "{e}");
        let e = parse_role_arn("arn:aws:iam::1234:role/R").unwrap_err();
        assert!(e.contains("12 digits"), "{e}");
        let e = parse_role_arn("arn:aws:iam::123456789012:role/a b").unwrap_err();
        assert!(e.contains("role name"), "{e}");
        assert!(parse_role_arn("Administrator").is_err());
    }

    #[test]
    fn regions_look_like_regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-5",
        ] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "us-east",
            "US-EAST-1",
            "useast1",
            "",
            "us-east-1a",
            "u-east-1",
        ] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mfa_serials_are_arns_or_serials() {
        assert!(check_mfa_serial("arn:aws:iam::111111111111:mfa/alice").is_ok());
        assert!(check_mfa_serial("GAHT12345678").is_ok());
        assert!(check_mfa_serial("short").is_err());
        assert!(check_mfa_serial("arn:aws:iam::111111111111:mfa/al ice").is_err());
    }

    #[test]
    fn sts_text_and_tags() {
        assert!(check_sts_text("alice@example.com", 2, 64, "").is_ok());
        assert!(
            check_sts_text("a", 2, 64, "")
                .unwrap_err()
                .contains("2 to 64")
        );
        assert!(
            check_sts_text("a/b", 2, 64, "")
                .unwrap_err()
                .contains("'/'")
        );
        assert!(check_sts_text("a/b:c", 2, 1224, ":/").is_ok());
        assert!(check_tag("team name", 1, 128).is_ok());
        assert!(check_tag("", 0, 256).is_ok());
        assert!(check_tag("", 1, 128).is_err());
        assert!(check_tag("a;b", 0, 256).is_err());
    }

    #[test]
    fn sso_session_names_are_plain() {
        for ok in ["acme", "acme-prod_2.0", ".x", &"a".repeat(64)] {
            assert!(check_sso_session(ok).is_ok(), "{ok}");
        }
        assert!(check_sso_session("").unwrap_err().contains("1 to 64"));
        assert!(
            check_sso_session(&"a".repeat(65))
                .unwrap_err()
                .contains("1 to 64")
        );
        let e = check_sso_session("acme corp").unwrap_err();
        assert!(e.contains("' '"), "{e}");
        assert!(check_sso_session("acme/prod").is_err());
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(check_account_id("111111111111").is_ok());
        for bad in ["11111111111", "1111111111111", "11111111111a", ""] {
            assert!(
                check_account_id(bad).unwrap_err().contains("12-digit"),
                "{bad}"
            );
        }
    }

    #[test]
    fn permission_set_names_follow_iam_rules() {
        assert!(check_sso_role_name("AdministratorAccess").is_ok());
        assert!(check_sso_role_name("a+=,.@_-").is_ok());
        assert!(check_sso_role_name(&"a".repeat(64)).is_ok());
        for bad in ["", "Admin Access", "ops/Admin", &"a".repeat(65)] {
            assert!(check_sso_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_urls_are_https_or_loopback_http() {
        for ok in [
            "https://acme.awsapps.com/start",
            "https://acme.awsapps.com/start/",
            "https://acme.awsapps.com/start#/",
            "https://d-1234567890.awsapps.com/start",
            "https://ssoins-1234.portal.us-east-1.app.aws",
            "http://127.0.0.1:8080/start",
            "http://localhost:1/start",
            "http://[::1]:4000",
        ] {
            assert!(
                check_start_url(ok).is_ok(),
                "{ok}: {:?}",
                check_start_url(ok)
            );
        }
        let e = check_start_url("http://acme.awsapps.com/start").unwrap_err();
        assert!(e.contains("must be https://"), "{e}");
        assert!(check_start_url("http://10.0.0.1/start").is_err());
        for bad in [
            "acme.awsapps.com/start",
            "ftp://acme.awsapps.com/start",
            "https://",
            "https:///start",
            "https://acme .awsapps.com/start",
            "https://user:pw@acme.awsapps.com/start",
            "https://acme.awsapps.com:0/start",
            "https://acme.awsapps.com:http/start",
            "https://acme..com/start",
            "https://[::1/start",
        ] {
            let e = check_start_url(bad).unwrap_err();
            assert!(
                e.contains("expected the AWS access portal URL"),
                "{bad}: {e}"
            );
        }
    }
}
