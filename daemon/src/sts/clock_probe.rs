//! `credd doctor`'s clock check: one GetCallerIdentity whose response's `Date` header says what
//! time STS thinks it is. SigV4 refuses a request signed more than 5 minutes off STS's clock, so
//! the header is read from any response, a refusal included (a badly skewed clock gets one).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::{Sts, StsFailure, classify, signed_by};
use crate::creds::AwsCredentials;
use crate::lock;

/// What one GetCallerIdentity told of STS's clock and of the caller.
#[derive(Debug)]
pub struct ClockProbe {
    /// The daemon's clock just before the request, and just after the answer.
    pub sent: SystemTime,
    pub received: SystemTime,
    /// STS's `Date` header (whole seconds), when a response came.
    pub server_date: Option<SystemTime>,
    /// The Region asked.
    pub region: String,
    /// The caller's account and ARN, or why STS did not say.
    pub caller: Result<(String, String), StsFailure>,
}

/// Keeps the last response's `Date` header.
#[derive(Debug, Clone, Default)]
struct DateHeader(Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "credd::DateHeader"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *lock::lock(&self.0) = Some(date.to_owned());
        }
        Ok(())
    }
}

/// An HTTP date (`Sun, 06 Dec 2026 09:55:01 GMT`) as a time.
fn http_date(text: &str) -> Option<SystemTime> {
    let t =
        aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::HttpDate)
            .ok()?;
    SystemTime::try_from(t).ok()
}

impl Sts {
    /// GetCallerIdentity in the first of `regions`, signed by `signer`, with STS's clock read
    /// off the answer. One Region: a clock is a clock, and the other checks cover failover.
    pub async fn clock_probe(&self, regions: &[String], signer: &AwsCredentials) -> ClockProbe {
        let region = regions
            .first()
            .cloned()
            .unwrap_or_else(|| "us-east-1".into());
        let header = DateHeader::default();
        let sent = self.now();
        let result = self
            .clients
            .get(&region)
            .get_caller_identity()
            .customize()
            .config_override(signed_by(signer))
            .interceptor(header.clone())
            .send()
            .await;
        let received = self.now();
        let server_date = lock::lock(&header.0).as_deref().and_then(http_date);
        let caller = result
            .map(|out| (out.account.unwrap_or_default(), out.arn.unwrap_or_default()))
            .map_err(|e| classify(&region, e));
        ClockProbe {
            sent,
            received,
            server_date,
            region,
            caller,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn an_http_date_is_read() {
        let t = super::http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("a date");
        assert_eq!(t, std::time::UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(super::http_date("yesterday"), None);
    }
}
