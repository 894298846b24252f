//! `source = "saml"`: `assertion_command` prints a base64 SAMLResponse; credd reads which roles it
//! offers (`https://aws.amazon.com/SAML/Attributes/Role`: "role ARN,provider ARN" pairs, in either
//! order), picks the configured one, and trades the assertion for it with AssumeRoleWithSAML (an
//! unsigned call; STS checks the IdP's signature, so credd only reads). Renewing means running the
//! command again, which may need the user: so only `credd login` does it.

mod source;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use credd_proto::Secret;
use quick_xml::events::Event;

use super::command;
use super::federated::{self, Federation};
use super::{AccessError, AccessSession};
use crate::config::DEFAULT_FEDERATED_DURATION;
use crate::config::SamlConfig;
use crate::sts::Sts;

const ROLE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
const SESSION_DURATION: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";
/// The command may wait for the user (a password, a push approval): it has this long.
pub const ASSERTION_COMMAND_LIMIT: Duration = Duration::from_secs(300);
/// STS's bounds for DurationSeconds.
const MIN_DURATION: Duration = Duration::from_secs(900);
const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("assertion_command printed no base64 SAMLResponse (the output is not base64)")]
    NotBase64,
    #[error("assertion_command printed no SAMLResponse: {0}")]
    NotXml(String),
    #[error(
        "the SAML assertion is encrypted, so credd cannot read its roles: have your identity provider sign, not encrypt, assertions for AWS (urn:amazon:webservices)"
    )]
    Encrypted,
    #[error(
        "the SAML assertion offers no AWS role: its {ROLE} attribute is missing; the identity provider's AWS app must send it"
    )]
    NoRoles,
    #[error("the SAML assertion's role value {0:?} is not \"role ARN,provider ARN\"")]
    BadRole(String),
    #[error("the SAML assertion does not offer role_arn {wanted}; it offers: {}", offered.join(", "))]
    NoMatchingRole {
        wanted: String,
        offered: Vec<String>,
    },
    #[error("the SAML assertion offers several roles; choose one with role_arn in [access]: {}", offered.join(", "))]
    SeveralRoles { offered: Vec<String> },
}

/// What credd reads of an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// (role ARN, SAML provider ARN) pairs.
    pub roles: Vec<(String, String)>,
    pub name_id: Option<String>,
    pub session_duration: Option<Duration>,
}

impl Assertion {
    /// The role to assume: the configured one, or the only one offered.
    pub fn choose(&self, wanted: Option<&str>) -> Result<&(String, String), SamlError> {
        let offered = || {
            self.roles
                .iter()
                .map(|(r, _)| r.clone())
                .collect::<Vec<_>>()
        };
        match (wanted, &self.roles[..]) {
            (_, []) => Err(SamlError::NoRoles),
            (Some(w), roles) => {
                roles
                    .iter()
                    .find(|(r, _)| r == w)
                    .ok_or_else(|| SamlError::NoMatchingRole {
                        wanted: w.to_owned(),
                        offered: offered(),
                    })
            }
            (None, [one]) => Ok(one),
            (None, _) => Err(SamlError::SeveralRoles { offered: offered() }),
        }
    }
}

/// Reads the roles, NameID and SessionDuration of a base64 SAMLResponse.
pub fn parse(base64: &str) -> Result<Assertion, SamlError> {
    let compact: String = base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let xml = zeroize::Zeroizing::new(STANDARD.decode(compact).map_err(|_| SamlError::NotBase64)?);
    let text =
        std::str::from_utf8(&xml).map_err(|_| SamlError::NotXml("it is not UTF-8 text".into()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut attribute: Option<String> = None;
    let mut collecting: Option<String> = None;
    let mut in_name_id = false;
    let mut saw_response = false;
    let mut values: Vec<(String, String)> = Vec::new();
    let mut name_id = None;
    loop {
        match reader.read_event() {
            Err(e) => {
                return Err(SamlError::NotXml(format!(
                    "it is not well-formed XML ({e})"
                )));
            }
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                "Response" => saw_response = true,
                "EncryptedAssertion" => return Err(SamlError::Encrypted),
                "Attribute" => {
                    attribute = e
                        .try_get_attribute("Name")
                        .ok()
                        .flatten()
                        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                        .map(|v| v.into_owned());
                }
                "AttributeValue" => collecting = Some(String::new()),
                "NameID" => {
                    in_name_id = true;
                    name_id = Some(String::new());
                }
                _ => {}
            },
            Ok(Event::Text(t)) => {
                let t = t.xml10_content();
                push_text(&mut collecting, &mut name_id, in_name_id, &t);
            }
            Ok(Event::GeneralRef(r)) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().ok().flatten().map(String::from)
                } else {
                    quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .map(str::to_owned)
                };
                if let Some(t) = resolved {
                    push_text(&mut collecting, &mut name_id, in_name_id, &t);
                }
            }
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                "AttributeValue" => {
                    if let (Some(name), Some(v)) = (&attribute, collecting.take()) {
                        values.push((name.clone(), v.trim().to_owned()));
                    }
                }
                "Attribute" => attribute = None,
                "NameID" => in_name_id = false,
                _ => {}
            },
            Ok(_) => {}
        }
    }
    if !saw_response {
        return Err(SamlError::NotXml("the XML is not a samlp:Response".into()));
    }
    let mut roles = Vec::new();
    for (_, v) in values.iter().filter(|(n, _)| n == ROLE) {
        roles.push(role_pair(v)?);
    }
    let session_duration = values
        .iter()
        .find(|(n, _)| n == SESSION_DURATION)
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    Ok(Assertion {
        roles,
        name_id: name_id
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        session_duration,
    })
}

fn push_text(
    collecting: &mut Option<String>,
    name_id: &mut Option<String>,
    in_name_id: bool,
    t: &str,
) {
    if let Some(v) = collecting {
        v.push_str(t);
    } else if in_name_id && let Some(n) = name_id {
        n.push_str(t);
    }
}

/// "role ARN,provider ARN", in either order.
fn role_pair(value: &str) -> Result<(String, String), SamlError> {
    let bad = || SamlError::BadRole(value.to_owned());
    let (a, b) = value.split_once(',').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let is_role = |s: &str| s.starts_with("arn:aws") && s.contains(":role/");
    let is_provider = |s: &str| s.starts_with("arn:aws") && s.contains(":saml-provider/");
    if is_role(a) && is_provider(b) {
        Ok((a.to_owned(), b.to_owned()))
    } else if is_provider(a) && is_role(b) {
        Ok((b.to_owned(), a.to_owned()))
    } else {
        Err(bad())
    }
}

pub struct Saml {
    pub config: SamlConfig,
}

impl Saml {
    /// Runs `assertion_command` and trades its assertion for the access role's credentials.
    pub async fn assertion_login(
        &self,
        sts: &Sts,
        regions: &[String],
    ) -> Result<(AccessSession, String), AccessError> {
        let assertion: Secret = command::run(
            &self.config.assertion_command,
            "assertion_command",
            ASSERTION_COMMAND_LIMIT,
        )
        .await?;
        let parsed = parse(assertion.expose())?;
        let (role_arn, provider_arn) = parsed.choose(self.config.role_arn.as_deref())?.clone();
        let duration = match (self.config.duration, parsed.session_duration) {
            (Some(mine), Some(theirs)) => mine.min(theirs),
            (Some(d), None) | (None, Some(d)) => d,
            (None, None) => DEFAULT_FEDERATED_DURATION,
        }
        .clamp(MIN_DURATION, MAX_DURATION);
        let (creds, identity_arn, region) = federated::assume_role_with_saml(
            sts,
            regions,
            &role_arn,
            &provider_arn,
            &assertion,
            duration,
        )
        .await
        .map_err(|f| federated::explain_saml(f, &role_arn, &provider_arn))?;
        let who = parsed
            .name_id
            .clone()
            .unwrap_or_else(|| "an unnamed SAML user".to_owned());
        let session = federated::session(
            creds,
            identity_arn,
            Federation {
                who,
                refresh_token: None,
                renews: None,
                issued_at: sts.now(),
            },
        );
        Ok((session, region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "arn:aws:iam::111111111111:role/AccessFromSAML";
    const P1: &str = "arn:aws:iam::111111111111:saml-provider/acme";
    const R2: &str = "arn:aws:iam::111111111111:role/Auditor";

    fn response(values: &[&str], extra: &str) -> String {
        let values: String = values
            .iter()
            .map(|v| {
                format!("<saml:AttributeValue xsi:type=\"xs:string\">{v}</saml:AttributeValue>")
            })
            .collect();
        let xml = format!(
            r#"<?xml version="1.0"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><saml:Assertion><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">alice&#64;acme.example</saml:NameID></saml:Subject><saml:AttributeStatement><saml:Attribute Name="{ROLE}">{values}</saml:Attribute><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>alice</saml:AttributeValue></saml:Attribute>{extra}</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
        );
        STANDARD.encode(xml)
    }

    #[test]
    fn roles_in_either_order_the_name_id_and_the_session_duration_are_read() {
        let a = parse(&response(
            &[&format!("{R1},{P1}"), &format!(" {P1} , {R2} ")],
            &format!("<saml:Attribute Name=\"{SESSION_DURATION}\"><saml:AttributeValue>28800</saml:AttributeValue></saml:Attribute>"),
        ))
        .unwrap();
        assert_eq!(
            a.roles,
            [
                (R1.to_owned(), P1.to_owned()),
                (R2.to_owned(), P1.to_owned())
            ]
        );
        assert_eq!(a.name_id.as_deref(), Some("alice@acme.example"));
        assert_eq!(a.session_duration, Some(Duration::from_secs(28800)));
        assert_eq!(a.choose(Some(R2)).unwrap().0, R2);
        assert_eq!(
            a.choose(None).unwrap_err().to_string(),
            format!(
                "the SAML assertion offers several roles; choose one with role_arn in [access]: {R1}, {R2}"
            )
        );
        let e = a
            .choose(Some("arn:aws:iam::111111111111:role/Other"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the SAML assertion does not offer role_arn arn:aws:iam::111111111111:role/Other; it offers: {R1}, {R2}"
            )
        );
        let one = parse(&response(&[&format!("{P1},{R1}")], "")).unwrap();
        assert_eq!(one.choose(None).unwrap(), &(R1.to_owned(), P1.to_owned()));
        assert_eq!(one.session_duration, None);
    }

    #[test]
    fn what_is_not_a_usable_assertion_says_why() {
        assert_eq!(parse("%%%").unwrap_err(), SamlError::NotBase64);
        assert!(matches!(
            parse(&STANDARD.encode("<a><b></a>")),
            Err(SamlError::NotXml(_))
        ));
        assert_eq!(
            parse(&STANDARD.encode("<html><body>login</body></html>")).unwrap_err(),
            SamlError::NotXml("the XML is not a samlp:Response".into())
        );
        assert_eq!(
            parse(&response(&[], "")).unwrap().choose(None).unwrap_err(),
            SamlError::NoRoles
        );
        assert_eq!(
            parse(&response(&["just-a-role"], "")).unwrap_err(),
            SamlError::BadRole("just-a-role".into())
        );
        let encrypted = STANDARD.encode(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/></samlp:Response>",
        );
        assert_eq!(parse(&encrypted).unwrap_err(), SamlError::Encrypted);
    }
}
