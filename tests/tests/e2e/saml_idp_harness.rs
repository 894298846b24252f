//! The SAML IdP of the `source = "saml"` tests works, without credd: its assertion command prints
//! a signed SAMLResponse carrying AWS's attributes, fails with one clear line when the login
//! cannot succeed, counts its runs, and moto takes the response in AssumeRoleWithSAML (called
//! unsigned through the Rust STS SDK, as credd calls it). Each test has its own IdP (SimpleSAMLphp,
//! installed by the first run when missing); `tests/py/saml_assertion.py` is the command.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use credd_tests::moto::{Auth, Moto, REGION};
use credd_tests::saml_idp::{
    AWS_ACS_URL, AWS_SP_ENTITY_ID, IDP_ENTITY_ID, MOTO_SAML_ACCOUNT, NAME_ID_FORMAT,
    ROLE_ATTRIBUTE, ROLE_SESSION_NAME_ATTRIBUTE, SESSION_DURATION_ATTRIBUTE, SamlIdp, SamlUser,
    decode_response, provider_arn, role_value,
};
use credd_tests::sdk::http_client;
use credd_tests::wait_until;

/// moto knows the credentials of a SAML login to a role in this account (see
/// [`MOTO_SAML_ACCOUNT`]).
const ACCOUNT: &str = MOTO_SAML_ACCOUNT;
const ADMIN: &str = "arn:aws:iam::123456789012:role/SamlAdmin";
const READ_ONLY: &str = "arn:aws:iam::333333333333:role/SamlReadOnly";

fn provider() -> String {
    provider_arn(ACCOUNT, "credd-tests")
}

/// alice: one role (what moto accepts) and a 15-minute SessionDuration.
fn alice() -> SamlUser {
    SamlUser {
        session_duration: Some(900),
        ..SamlUser::new("alice", "alice-pw", role_value(ADMIN, &provider()))
    }
}

/// The values of the attribute `name` in the response's XML, in order; None if it is absent.
fn attribute_values(xml: &str, name: &str) -> Option<Vec<String>> {
    let start = xml.find(&format!("<saml:Attribute Name=\"{name}\""))?;
    let attribute = &xml[start..];
    let attribute = &attribute[..attribute
        .find("</saml:Attribute>")
        .expect("an Attribute element ends")];
    let values = attribute
        .split("<saml:AttributeValue")
        .skip(1)
        .map(|value| {
            let text = &value[value.find('>').expect("the AttributeValue tag ends") + 1..];
            text[..text.find("</saml:AttributeValue>").expect("a value ends")].to_owned()
        })
        .collect();
    Some(values)
}

/// Where the first `<tag>` or `<tag ...>` starts in `xml` (not `<tagMore...>`).
fn tag_start(xml: &str, tag: &str) -> usize {
    let open = format!("<{tag}");
    xml.match_indices(&open)
        .map(|(at, _)| at)
        .find(|&at| matches!(xml.as_bytes().get(at + open.len()), Some(b'>' | b' ')))
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// The text of the first `<tag ...>text</tag>` in `xml`.
fn element_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let text = &xml[tag_start(xml, tag)..];
    let text = &text[text.find('>').expect("the tag ends") + 1..];
    &text[..text
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("<{tag}> is not closed"))]
}

/// The value of the attribute `name="..."` of the first `<tag ...>` in `xml`.
fn tag_attribute<'a>(xml: &'a str, tag: &str, name: &str) -> &'a str {
    let head = &xml[tag_start(xml, tag)..];
    let head = &head[..head.find('>').expect("the tag ends")];
    let value = &head[head
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("<{tag}> has no {name}: {head}"))
        + name.len()
        + 3..];
    &value[..value.find('"').expect("the attribute value ends")]
}

#[test]
fn assertion_command_prints_a_signed_response_with_the_aws_attributes() {
    let idp = SamlIdp::start(&[alice()]);

    // As credd runs it: the argv, the environment it is given, and only stdout kept.
    let argv = idp.assertion_command("alice");
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(idp.assertion_env("alice"))
        .stdin(Stdio::null())
        .output()
        .expect("run the assertion command");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    assert!(
        output.status.success(),
        "the assertion command failed ({}): {}\n--- IdP log ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        idp.log()
    );
    assert!(
        !argv.iter().any(|arg| arg.contains("alice-pw")),
        "the password is not on the command line: {argv:?}"
    );
    assert_eq!(stdout.lines().count(), 1, "one line of base64: {stdout:?}");
    assert!(output.stderr.is_empty(), "nothing on stderr");
    assert_eq!(idp.runs(), 1);

    let xml = decode_response(&stdout);
    assert!(xml.starts_with("<samlp:Response "), "{xml}");
    assert!(xml.contains(r#"xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol""#));
    assert!(xml.contains(r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#));
    assert_eq!(
        tag_attribute(&xml, "samlp:Response", "Destination"),
        AWS_ACS_URL
    );
    assert_eq!(element_text(&xml, "saml:Issuer"), IDP_ENTITY_ID);
    assert_eq!(
        tag_attribute(&xml, "samlp:StatusCode", "Value"),
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );

    // Signed twice, as AWS accepts either: the response (before the assertion) and the assertion,
    // each referring to its own element, each with the IdP's certificate.
    let (response_part, assertion_part) = xml
        .split_once("<saml:Assertion ")
        .expect("the response holds an assertion");
    let response_id = tag_attribute(&xml, "samlp:Response", "ID");
    let assertion_id = tag_attribute(&xml, "saml:Assertion", "ID");
    assert_eq!(
        tag_attribute(response_part, "ds:Reference", "URI"),
        format!("#{response_id}")
    );
    assert_eq!(
        tag_attribute(assertion_part, "ds:Reference", "URI"),
        format!("#{assertion_id}")
    );
    for part in [response_part, assertion_part] {
        assert_eq!(
            tag_attribute(part, "ds:SignatureMethod", "Algorithm"),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        );
        assert!(!element_text(part, "ds:SignatureValue").is_empty());
        assert_eq!(
            element_text(part, "ds:X509Certificate"),
            idp.certificate_base64()
        );
    }

    assert_eq!(tag_attribute(&xml, "saml:NameID", "Format"), NAME_ID_FORMAT);
    assert_eq!(element_text(&xml, "saml:NameID"), "alice");
    assert_eq!(element_text(&xml, "saml:Audience"), AWS_SP_ENTITY_ID);
    assert_eq!(
        attribute_values(&xml, ROLE_ATTRIBUTE),
        Some(vec![format!("{ADMIN},{}", provider())])
    );
    assert_eq!(
        attribute_values(&xml, ROLE_SESSION_NAME_ATTRIBUTE),
        Some(vec!["alice@example.com".to_owned()])
    );
    assert_eq!(
        attribute_values(&xml, SESSION_DURATION_ATTRIBUTE),
        Some(vec!["900".to_owned()])
    );
    assert_eq!(
        xml.matches("<saml:Attribute ").count(),
        3,
        "AWS's attributes only: {xml}"
    );
}

#[test]
fn a_user_with_several_roles_gets_each_as_written_and_no_duration_unless_set() {
    let bob = SamlUser {
        login: "bob".to_owned(),
        password: "bob-pw".to_owned(),
        roles: vec![
            role_value(ADMIN, &provider()),
            // Provider first: AWS takes either order.
            format!(
                "{},{READ_ONLY}",
                provider_arn("333333333333", "credd-tests")
            ),
        ],
        session_duration: None,
    };
    let idp = SamlIdp::start(std::slice::from_ref(&bob));
    let xml = decode_response(&idp.assertion("bob", "bob-pw").expect("bob's SAMLResponse"));
    assert_eq!(attribute_values(&xml, ROLE_ATTRIBUTE), Some(bob.roles));
    assert_eq!(attribute_values(&xml, SESSION_DURATION_ATTRIBUTE), None);
}

#[test]
fn failed_logins_say_why_in_their_last_line_and_count_as_runs() {
    let mut idp = SamlIdp::start(&[alice()]);
    let refused = Err(
        "saml_assertion: the IdP refused the login of alice: Incorrect username or password"
            .to_owned(),
    );
    assert_eq!(idp.assertion("alice", "wrong"), refused);

    // A password change reaches the next login.
    idp.set_users(&[SamlUser {
        password: "new-pw".to_owned(),
        ..alice()
    }]);
    assert_eq!(idp.assertion("alice", "alice-pw"), refused);
    assert!(idp.assertion("alice", "new-pw").is_ok());

    idp.stop();
    let down = idp
        .assertion("alice", "new-pw")
        .expect_err("the IdP is down");
    assert!(
        down.starts_with(&format!(
            "saml_assertion: cannot reach the IdP at {}/saml2/idp/SSOService.php",
            idp.url()
        )) && down.ends_with("Connection refused"),
        "{down}"
    );
    idp.restart();
    assert!(idp.assertion("alice", "new-pw").is_ok());
    assert_eq!(idp.runs(), 5);
}

#[test]
fn a_slow_run_is_counted_while_it_is_held_open() {
    let idp = SamlIdp::start(&[alice()]);
    let argv = idp.slow_assertion_command("alice", Duration::from_millis(800));
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(idp.assertion_env("alice"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the slow assertion command");
    wait_until(Duration::from_secs(5), "the slow run to be counted", || {
        idp.runs() == 1
    });
    assert!(
        child.try_wait().expect("poll the command").is_none(),
        "still held open once counted"
    );
    let output = child.wait_with_output().expect("the slow run ends");
    assert!(output.status.success(), "{output:?}");
    assert!(decode_response(&String::from_utf8_lossy(&output.stdout)).contains(ADMIN));
}

/// AssumeRoleWithSAML at moto (auth off), unsigned like credd's, one attempt.
fn assume_role_with_saml(
    role_arn: &str,
    assertion: &str,
) -> Result<aws_sdk_sts::operation::assume_role_with_saml::AssumeRoleWithSamlOutput, String> {
    let moto = Moto::shared(Auth::Off);
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .endpoint_url(moto.endpoint())
        .http_client(http_client())
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_sts::Client::from_conf(config);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the STS client")
        .block_on(
            client
                .assume_role_with_saml()
                .role_arn(role_arn)
                .principal_arn(provider())
                .saml_assertion(assertion)
                .send(),
        )
        .map_err(|e| aws_sdk_sts::error::DisplayErrorContext(&e).to_string())
}

#[test]
fn moto_takes_the_signed_response_in_assume_role_with_saml() {
    let idp = SamlIdp::start(&[alice()]);
    let assertion = idp
        .assertion("alice", "alice-pw")
        .expect("alice's SAMLResponse");
    let asked_at = SystemTime::now();
    let out = assume_role_with_saml(ADMIN, &assertion).unwrap_or_else(|e| {
        panic!(
            "AssumeRoleWithSAML: {e}\n--- moto log ---\n{}",
            Moto::shared(Auth::Off).log_tail()
        )
    });
    let arn = out.assumed_role_user().expect("an assumed role user").arn();
    assert_eq!(
        arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/SamlAdmin/alice@example.com")
    );

    // moto read SessionDuration: the credentials last 900 s.
    let creds = out.credentials().expect("credentials");
    let expiration = SystemTime::try_from(*creds.expiration()).expect("an expiration in range");
    let lifetime = expiration
        .duration_since(asked_at)
        .expect("expires in the future");
    assert!(
        lifetime > Duration::from_secs(840) && lifetime <= Duration::from_secs(905),
        "{lifetime:?}"
    );
    let caller = Moto::shared(Auth::Off).caller_arn(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token()),
    );
    assert_eq!(caller.as_deref(), Ok(arn));
}

#[test]
fn moto_fails_a_response_with_several_roles() {
    // Why end-to-end users have one role: moto answers 500 to a multi-valued Role attribute
    // (real AWS takes the RoleArn asked for). credd refuses such an assertion before STS.
    let two_roles = SamlUser {
        roles: vec![
            role_value(ADMIN, &provider()),
            role_value(READ_ONLY, &provider()),
        ],
        ..alice()
    };
    let idp = SamlIdp::start(&[two_roles]);
    let assertion = idp
        .assertion("alice", "alice-pw")
        .expect("alice's SAMLResponse");
    let err = assume_role_with_saml(ADMIN, &assertion).expect_err("moto fails it");
    assert!(err.contains("500"), "{err}");
}
