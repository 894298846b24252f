//! The errors the fake answers with, as the botocore models (`sso-oidc/2019-06-10`,
//! `sso/2019-06-10`) declare them: each one's type name and HTTP status, and for SSO OIDC the
//! OAuth `error` code its body carries. [`super::wire`] turns them into responses.

/// Which service's error shapes an error uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// SSO OIDC: members `error` + `error_description`.
    Oidc,
    /// The portal: member `message`.
    Portal,
    /// Neither: a front end's answer during an outage.
    Edge,
}

/// Every error the fake can give. The SSO OIDC and portal `InvalidRequestException`s are two
/// shapes with one name, so they are two kinds here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    // SSO OIDC (all 400 unless noted).
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    /// 500.
    InternalServer,
    /// 401.
    InvalidClient,
    InvalidClientMetadata,
    InvalidGrant,
    InvalidRedirectUri,
    InvalidRequest,
    InvalidScope,
    SlowDown,
    UnauthorizedClient,
    UnsupportedGrantType,
    // The portal.
    /// 401: the access token is unknown, expired, or its session is over.
    Unauthorized,
    /// 403: not in the model, but what the portal answers for a role the user is not assigned
    /// ("No access"): SDKs see an unmodeled error with this code.
    Forbidden,
    /// 400.
    PortalInvalidRequest,
    /// 404.
    ResourceNotFound,
    /// 429.
    TooManyRequests,
    // Either.
    /// 503 during an outage.
    ServiceUnavailable,
}

impl ErrorKind {
    /// The type name: the `x-amzn-ErrorType` header's, and the modeled exception's.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::AuthorizationPending => "AuthorizationPendingException",
            ErrorKind::ExpiredToken => "ExpiredTokenException",
            ErrorKind::InternalServer => "InternalServerException",
            ErrorKind::InvalidClient => "InvalidClientException",
            ErrorKind::InvalidClientMetadata => "InvalidClientMetadataException",
            ErrorKind::InvalidGrant => "InvalidGrantException",
            ErrorKind::InvalidRedirectUri => "InvalidRedirectUriException",
            ErrorKind::InvalidRequest | ErrorKind::PortalInvalidRequest => {
                "InvalidRequestException"
            }
            ErrorKind::InvalidScope => "InvalidScopeException",
            ErrorKind::SlowDown => "SlowDownException",
            ErrorKind::UnauthorizedClient => "UnauthorizedClientException",
            ErrorKind::UnsupportedGrantType => "UnsupportedGrantTypeException",
            ErrorKind::Unauthorized => "UnauthorizedException",
            ErrorKind::Forbidden => "ForbiddenException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::TooManyRequests => "TooManyRequestsException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
        }
    }

    /// The HTTP status the model gives the shape (`error.httpStatusCode`).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidClient | ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::ResourceNotFound => 404,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::InternalServer => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// The RFC 6749 / RFC 8628 `error` code an SSO OIDC error carries in its body.
    pub fn oauth_error(self) -> Option<&'static str> {
        Some(match self {
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::AuthorizationPending => "authorization_pending",
            ErrorKind::ExpiredToken => "expired_token",
            ErrorKind::InternalServer => "server_error",
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidClientMetadata => "invalid_client_metadata",
            ErrorKind::InvalidGrant => "invalid_grant",
            ErrorKind::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::InvalidScope => "invalid_scope",
            ErrorKind::SlowDown => "slow_down",
            ErrorKind::UnauthorizedClient => "unauthorized_client",
            ErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            _ => return None,
        })
    }

    pub(crate) fn service(self) -> Service {
        match self {
            ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::PortalInvalidRequest
            | ErrorKind::ResourceNotFound
            | ErrorKind::TooManyRequests => Service::Portal,
            ErrorKind::ServiceUnavailable => Service::Edge,
            _ => Service::Oidc,
        }
    }
}

/// One error answer: its kind and a human message (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_oidc_error_has_an_oauth_code_and_no_portal_error_has_one() {
        let all = [
            ErrorKind::AccessDenied,
            ErrorKind::AuthorizationPending,
            ErrorKind::ExpiredToken,
            ErrorKind::InternalServer,
            ErrorKind::InvalidClient,
            ErrorKind::InvalidClientMetadata,
            ErrorKind::InvalidGrant,
            ErrorKind::InvalidRedirectUri,
            ErrorKind::InvalidRequest,
            ErrorKind::InvalidScope,
            ErrorKind::SlowDown,
            ErrorKind::UnauthorizedClient,
            ErrorKind::UnsupportedGrantType,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::PortalInvalidRequest,
            ErrorKind::ResourceNotFound,
            ErrorKind::TooManyRequests,
            ErrorKind::ServiceUnavailable,
        ];
        for kind in all {
            assert_eq!(
                kind.oauth_error().is_some(),
                kind.service() == Service::Oidc,
                "{kind:?}"
            );
            assert!(kind.code().ends_with("Exception"), "{kind:?}");
        }
    }
}
