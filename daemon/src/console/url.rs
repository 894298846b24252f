//! The console sign-in's URLs, built and checked without any I/O: which partition a Region or an
//! ARN is in and its sign-in and console hosts, the page to land on (`--destination`), the
//! federation endpoint's `getSigninToken` request, and the `login` URL handed to the browser.

use credd_proto::Secret;
use url::Url;

use crate::config::check_region;

/// What the `login` URL names as the issuer: where the console sends the user when the session
/// ends (credd has no sign-in page of its own; the console then shows its own sign-in).
pub const ISSUER: &str = "credd";

/// A service path in `--destination`: at most this long.
const MAX_SERVICE_PATH: usize = 256;

/// The AWS partitions credd signs in to. The isolated ones (`aws-iso*`) have no public
/// federation endpoint credd knows of: a Region in them is refused, saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("--region {region:?}: {reason}")]
    Region { region: String, reason: String },
    #[error(
        "--region {region:?} is in the {region_partition} partition, but {whom} is in {partition}: \
         choose a Region of {partition}"
    )]
    PartitionMismatch {
        region: String,
        region_partition: &'static str,
        whom: String,
        partition: &'static str,
    },
    #[error("--destination {given:?}: {reason}")]
    Destination { given: String, reason: String },
}

impl Partition {
    /// The partition of a Region; refuses a malformed one and the isolated partitions.
    pub fn of_region(region: &str) -> Result<Partition, UrlError> {
        check_region(region).map_err(|reason| UrlError::Region {
            region: region.to_owned(),
            reason,
        })?;
        let isolated = ["us-iso-", "us-isob-", "us-isof-", "eu-isoe-"];
        if isolated.iter().any(|prefix| region.starts_with(prefix)) {
            return Err(UrlError::Region {
                region: region.to_owned(),
                reason: "the isolated partitions (aws-iso*) are not supported by `credd console`"
                    .to_owned(),
            });
        }
        Ok(if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        })
    }

    /// The partition an ARN names (`arn:aws-cn:...`); `None` for one credd does not sign in to.
    pub fn of_arn(arn: &str) -> Option<Partition> {
        match arn.split(':').nth(1)? {
            "aws" => Some(Partition::Aws),
            "aws-cn" => Some(Partition::AwsCn),
            "aws-us-gov" => Some(Partition::AwsUsGov),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    /// The console Region when neither `--region` nor the profile names one.
    pub fn default_region(self) -> &'static str {
        match self {
            Partition::Aws => "us-east-1",
            Partition::AwsCn => "cn-north-1",
            Partition::AwsUsGov => "us-gov-west-1",
        }
    }

    fn signin_host(self) -> &'static str {
        match self {
            Partition::Aws => "signin.aws.amazon.com",
            Partition::AwsCn => "signin.amazonaws.cn",
            Partition::AwsUsGov => "signin.amazonaws-us-gov.com",
        }
    }

    /// The console's host; its regional hosts (`eu-west-1.console.aws.amazon.com`) and service
    /// hosts (`s3.console.aws.amazon.com`) are subdomains of it.
    pub fn console_host(self) -> &'static str {
        match self {
            Partition::Aws => "console.aws.amazon.com",
            Partition::AwsCn => "console.amazonaws.cn",
            Partition::AwsUsGov => "console.amazonaws-us-gov.com",
        }
    }

    /// The partition's federation endpoint.
    pub fn federation_endpoint(self) -> Url {
        Url::parse(&format!("https://{}/federation", self.signin_host()))
            .expect("a constant URL parses")
    }

    fn of_console_host(host: &str) -> Option<Partition> {
        [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov]
            .into_iter()
            .find(|p| {
                let console = p.console_host();
                host == console
                    || host
                        .strip_suffix(console)
                        .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1)
            })
    }
}

/// `region`'s partition, which must be `partition` (where the credentials are valid; `whom`
/// names them for the message).
pub fn region_in(region: &str, partition: Partition, whom: &str) -> Result<(), UrlError> {
    let region_partition = Partition::of_region(region)?;
    if region_partition == partition {
        Ok(())
    } else {
        Err(UrlError::PartitionMismatch {
            region: region.to_owned(),
            region_partition: region_partition.name(),
            whom: whom.to_owned(),
            partition: partition.name(),
        })
    }
}

/// The console page to land on: the home page of `region`; a service path (`s3`,
/// `ec2/home#Instances:`, `cloudwatch/home?...` is refused: give the full URL) in `region`; or a
/// full console URL of `partition`, taken as it is.
pub fn destination(
    partition: Partition,
    region: &str,
    given: Option<&str>,
) -> Result<Url, UrlError> {
    let bad = |reason: &str| UrlError::Destination {
        given: given.unwrap_or_default().to_owned(),
        reason: reason.to_owned(),
    };
    let given = given.map(str::trim).unwrap_or_default();
    if given.contains("://") {
        return console_url(partition, given).map_err(|reason| bad(&reason));
    }
    let (path, fragment) = match given.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (given, None),
    };
    let path = path.trim_matches('/');
    let path = if path.is_empty() { "console" } else { path };
    if path.len() > MAX_SERVICE_PATH {
        return Err(bad(&format!(
            "a service path is at most {MAX_SERVICE_PATH} characters"
        )));
    }
    if path.contains('?') {
        return Err(bad(
            "a service path takes no query: give the full console URL instead",
        ));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        || path
            .split('/')
            .any(|segment| segment.is_empty() || segment.starts_with('.'))
    {
        return Err(bad(
            "a service path is like `s3`, `ec2/home` or `ec2/home#Instances:` (letters, digits, \
             `-`, `_`, `.` and `/`), or give a full https://console URL",
        ));
    }
    if fragment.is_some_and(|f| f.chars().any(|c| c.is_control() || c == ' ')) {
        return Err(bad(
            "the part after `#` holds a space or a control character",
        ));
    }
    // `s3` is `s3/home`: every service console answers there.
    let path = if path.contains('/') {
        path.to_owned()
    } else {
        format!("{path}/home")
    };
    let mut url = Url::parse(&format!("https://{}/{path}", partition.console_host()))
        .map_err(|e| bad(&e.to_string()))?;
    url.query_pairs_mut().append_pair("region", region);
    url.set_fragment(fragment);
    Ok(url)
}

/// A full console URL of `partition`: https, a console host, nothing that could send the
/// browser (and its new session) anywhere else.
fn console_url(partition: Partition, given: &str) -> Result<Url, String> {
    let url = Url::parse(given).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err("a console URL starts with https://".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a console URL carries no user name or password".to_owned());
    }
    if url.port().is_some() {
        return Err("a console URL names no port".to_owned());
    }
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host,
        _ => return Err("a console URL names the console's host".to_owned()),
    };
    match Partition::of_console_host(host) {
        Some(p) if p == partition => Ok(url),
        Some(p) => Err(format!(
            "{host} is the {} console, but these credentials are for {} ({})",
            p.name(),
            partition.name(),
            partition.console_host()
        )),
        None => Err(format!(
            "{host} is not an AWS console host ({} or one of its subdomains)",
            partition.console_host()
        )),
    }
}

/// The `getSigninToken` request: `Session` is the credentials as JSON, so the whole URL is a
/// secret. `duration_secs` only for a federation token's session (role sessions refuse it).
pub fn signin_token_request(
    endpoint: &Url,
    access_key_id: &str,
    secret_access_key: &Secret,
    session_token: &Secret,
    duration_secs: Option<u64>,
) -> Secret {
    let session = Secret::new(
        serde_json::json!({
            "sessionId": access_key_id,
            "sessionKey": secret_access_key.expose(),
            "sessionToken": session_token.expose(),
        })
        .to_string(),
    );
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("Action", "getSigninToken");
        if let Some(secs) = duration_secs {
            query.append_pair("SessionDuration", &secs.to_string());
        }
        query.append_pair("Session", session.expose());
    }
    Secret::new(String::from(url))
}

/// The URL that signs the browser in: `Action=login`, the issuer, the page to land on and the
/// sign-in token. A bearer secret for about 15 minutes.
pub fn login_url(endpoint: &Url, destination: &Url, signin_token: &Secret) -> Secret {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("Action", "login")
        .append_pair("Issuer", ISSUER)
        .append_pair("Destination", destination.as_str())
        .append_pair("SigninToken", signin_token.expose());
    Secret::new(String::from(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> Vec<(String, String)> {
        Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn regions_fall_in_their_partitions() {
        assert_eq!(Partition::of_region("eu-west-1"), Ok(Partition::Aws));
        assert_eq!(Partition::of_region("cn-northwest-1"), Ok(Partition::AwsCn));
        assert_eq!(
            Partition::of_region("us-gov-east-1"),
            Ok(Partition::AwsUsGov)
        );
        let e = Partition::of_region("us-iso-east-1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("aws-iso") && e.contains("not supported"), "{e}");
        let e = Partition::of_region("Europe").unwrap_err().to_string();
        assert!(e.starts_with("--region \"Europe\""), "{e}");
        assert_eq!(
            Partition::of_arn("arn:aws-us-gov:iam::1:role/x"),
            Some(Partition::AwsUsGov)
        );
        assert_eq!(Partition::of_arn("arn:aws-iso:iam::1:role/x"), None);
    }

    #[test]
    fn each_partition_has_its_own_signin_and_console_hosts() {
        let endpoints: Vec<String> = [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov]
            .iter()
            .map(|p| p.federation_endpoint().to_string())
            .collect();
        assert_eq!(
            endpoints,
            [
                "https://signin.aws.amazon.com/federation",
                "https://signin.amazonaws.cn/federation",
                "https://signin.amazonaws-us-gov.com/federation",
            ]
        );
        assert_eq!(
            destination(Partition::AwsCn, "cn-north-1", None)
                .unwrap()
                .as_str(),
            "https://console.amazonaws.cn/console/home?region=cn-north-1"
        );
        assert_eq!(
            destination(Partition::AwsUsGov, "us-gov-west-1", Some("s3"))
                .unwrap()
                .as_str(),
            "https://console.amazonaws-us-gov.com/s3/home?region=us-gov-west-1"
        );
    }

    #[test]
    fn a_region_of_another_partition_is_refused_by_name() {
        let e = region_in("cn-north-1", Partition::Aws, "profile \"staging\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aws-cn partition") && e.contains("profile \"staging\" is in aws"),
            "{e}"
        );
        assert!(region_in("eu-central-1", Partition::Aws, "x").is_ok());
    }

    #[test]
    fn service_paths_land_in_the_region() {
        let d = |given| {
            destination(Partition::Aws, "eu-west-1", given)
                .map(String::from)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            d(None).unwrap(),
            "https://console.aws.amazon.com/console/home?region=eu-west-1"
        );
        assert_eq!(
            d(Some("s3")).unwrap(),
            "https://console.aws.amazon.com/s3/home?region=eu-west-1"
        );
        assert_eq!(
            d(Some("/ec2/home#Instances:")).unwrap(),
            "https://console.aws.amazon.com/ec2/home?region=eu-west-1#Instances:"
        );
        assert_eq!(
            d(Some("cloudwatch/home/")).unwrap(),
            "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        );
        for bad in [
            "ec2/../iam",
            "ec2 home",
            "ec2/home?region=x",
            "ec2//home",
            "ec2/home#a b",
        ] {
            let e = d(Some(bad)).unwrap_err();
            assert!(e.starts_with(&format!("--destination {bad:?}:")), "{e}");
        }
    }

    #[test]
    fn full_urls_must_be_the_partitions_console() {
        let d = |given| destination(Partition::Aws, "us-east-1", Some(given));
        for good in [
            "https://console.aws.amazon.com/iam/home#/roles",
            "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1",
            "https://s3.console.aws.amazon.com/s3/buckets",
        ] {
            assert_eq!(d(good).unwrap().as_str(), good, "kept as given");
        }
        for (bad, why) in [
            ("http://console.aws.amazon.com/", "https://"),
            (
                "https://evil.example/console.aws.amazon.com",
                "not an AWS console host",
            ),
            (
                "https://console.aws.amazon.com.evil.example/",
                "not an AWS console host",
            ),
            (
                "https://evilconsole.aws.amazon.com/",
                "not an AWS console host",
            ),
            ("https://user:pw@console.aws.amazon.com/", "no user name"),
            ("https://console.aws.amazon.com:8443/", "no port"),
            ("https://console.amazonaws.cn/", "aws-cn console"),
            ("https://127.0.0.1/", "console's host"),
            ("https://", "not a URL"),
        ] {
            let e = d(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_session_is_json_escaped_into_the_query() {
        let endpoint = Partition::Aws.federation_endpoint();
        let request = signin_token_request(
            &endpoint,
            "ASIAEXAMPLE",
            &Secret::new("se/cr+et=&"),
            &Secret::new("to\"ken"),
            None,
        );
        let pairs = query(request.expose());
        assert_eq!(pairs[0], ("Action".into(), "getSigninToken".into()));
        assert_eq!(pairs.len(), 2, "no SessionDuration: {pairs:?}");
        let session: serde_json::Value = serde_json::from_str(&pairs[1].1).unwrap();
        assert_eq!(
            session,
            serde_json::json!({"sessionId": "ASIAEXAMPLE", "sessionKey": "se/cr+et=&", "sessionToken": "to\"ken"})
        );
        let with_duration = signin_token_request(
            &endpoint,
            "ASIA",
            &Secret::new("s"),
            &Secret::new("t"),
            Some(7200),
        );
        assert_eq!(
            query(with_duration.expose())[1],
            ("SessionDuration".into(), "7200".into())
        );
    }

    #[test]
    fn the_login_url_escapes_destination_and_token() {
        let endpoint = Partition::AwsCn.federation_endpoint();
        let destination =
            destination(Partition::AwsCn, "cn-north-1", Some("ec2/home#Instances:")).unwrap();
        let url = login_url(&endpoint, &destination, &Secret::new("tok+en/=&x"));
        let parsed = Url::parse(url.expose()).unwrap();
        assert_eq!(parsed.host_str(), Some("signin.amazonaws.cn"));
        assert_eq!(parsed.path(), "/federation");
        assert_eq!(
            query(url.expose()),
            [
                ("Action".to_owned(), "login".to_owned()),
                ("Issuer".to_owned(), ISSUER.to_owned()),
                (
                    "Destination".to_owned(),
                    "https://console.amazonaws.cn/ec2/home?region=cn-north-1#Instances:".to_owned()
                ),
                ("SigninToken".to_owned(), "tok+en/=&x".to_owned()),
            ]
        );
        assert!(
            !url.expose().contains('#'),
            "the destination's fragment is escaped, not the login URL's own"
        );
    }
}
