//! Credentials as the daemon holds them: secret parts in wipe-on-drop [`Secret`]s.

use std::time::SystemTime;

use credd_proto::Secret;

/// A key pair, with a session token for anything temporary.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub expiration: Option<SystemTime>,
}

impl AwsCredentials {
    /// An IAM user's long-lived key: no session token, no expiry.
    pub fn long_lived(access_key_id: &str, secret_access_key: &Secret) -> AwsCredentials {
        AwsCredentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.clone(),
            session_token: None,
            expiration: None,
        }
    }

    /// For signing an STS call (the SDK keeps its copy in zeroizing storage too).
    pub fn to_sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().to_owned(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            self.expiration,
            "credd",
        )
    }

    /// STS grants at most the `duration` asked for at `asked`: a later `Expiration` (a clock that
    /// is wrong, ours or STS's) is not believed, or credentials that have really ended would be
    /// kept and served.
    pub fn granted_at_most(mut self, asked: SystemTime, duration: std::time::Duration) -> Self {
        if let (Some(e), Some(cap)) = (self.expiration, asked.checked_add(duration)) {
            self.expiration = Some(e.min(cap));
        }
        self
    }

    /// Moves the STS response's strings into secret storage without copying them.
    pub fn from_sts(c: aws_sdk_sts::types::Credentials) -> Self {
        let expiration = SystemTime::try_from(c.expiration).ok();
        AwsCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: Secret::from(c.secret_access_key),
            session_token: Some(Secret::from(c.session_token)),
            expiration,
        }
    }
}

/// One profile's assumed-role credentials.
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    pub creds: AwsCredentials,
    pub issued: SystemTime,
    pub expiration: SystemTime,
    pub assumed_arn: String,
    pub account_id: String,
    /// The STS region that issued them.
    pub region: String,
}

impl RoleCredentials {
    pub fn remaining(&self, now: SystemTime) -> std::time::Duration {
        self.expiration.duration_since(now).unwrap_or_default()
    }

    pub fn session_token(&self) -> &str {
        self.creds
            .session_token
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = AwsCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG"),
            session_token: Some(Secret::new("FwoGZXIvYXdzEXAMPLETOKEN")),
            expiration: None,
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("wJalr") && !shown.contains("FwoGZ"),
            "{shown}"
        );
        let sdk = format!("{:?}", c.to_sdk());
        assert!(!sdk.contains("wJalr") && !sdk.contains("FwoGZ"), "{sdk}");
    }
}
