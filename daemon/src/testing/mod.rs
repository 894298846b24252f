//! The test doubles of the unit tests, in one place and never in the release binary: scripted
//! AWS services plugged into the real SDK clients as their HTTP client ([`sts`] with its Identity
//! Center half [`sso`], [`iam`], on the plumbing of [`scripted`]), an OpenID provider
//! ([`oidc`]), and a notifier that records
//! ([`notifier`]). The simulated clock is [`crate::clock::Clock::simulated`] (also test-only).

pub mod iam;
pub mod notifier;
pub mod oidc;
pub mod scripted;
pub mod sso;
pub mod sts;
