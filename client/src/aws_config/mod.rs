//! `credd import`: the profiles of `~/.aws/config` (and which of `~/.aws/credentials` hold a key)
//! mapped onto credd's config, resolved the way the AWS SDKs resolve them (aws-config's
//! `profile/credentials/repr.rs` is the model): a `role_arn` profile is assumed from its
//! `source_profile`, down to the root of the chain, which holds the credentials: an IAM user's key
//! (→ `[access] source = "iam-user"`), an Identity Center sign-in (→ `source = "sso"`) or a web
//! identity token file (→ `source = "web-identity"`). credd has one access account, so the chains
//! of one root are imported; a profile credd cannot serve is listed with the reason.
//!
//! [`plan`] is a pure function of the two files and the credd config's text: it only ever adds
//! tables, never touching one that is there (a second run adds nothing). Secrets are never read
//! into it: [`parse`] keeps only that a secret key is present, and where.

pub mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use credd_proto::checks;
use serde::Serialize;
use toml_edit::{DocumentMut, Value};

use crate::config_edit::{self, NewTable};
pub use parse::{FileKind, Location, ParseError, ProfileFile, Section};

/// STS's AssumeRole range, and credd's default `min_remaining`: a shorter duration would leave
/// nothing to serve.
const DURATION_MAX: Duration = Duration::from_secs(43_200);
const MIN_REMAINING: Duration = Duration::from_secs(1_800);

/// The keys credd maps or understands; any other key of a profile is reported as not imported.
const ROLE_KEYS: &[&str] = &[
    "role_arn",
    "source_profile",
    "external_id",
    "duration_seconds",
    "role_session_name",
    "region",
    // Last: only under an IAM user's key (see `Kind::Role`).
    "mfa_serial",
];
/// Any of them makes a profile an Identity Center one.
const SSO_KEYS: &[&str] = &[
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
];

/// The two AWS files, already read.
#[derive(Debug, Clone, Default)]
pub struct AwsFiles {
    pub config: ProfileFile,
    /// `~/.aws/credentials`: only which keys its profiles hold (and the access key IDs).
    pub credentials: ProfileFile,
}

/// What an import does to a credd config text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The access source: added, already there, or none found.
    pub access: AccessOutcome,
    /// Profiles added to the text.
    pub added: Vec<Imported>,
    /// Profiles the text already has, as this import would write them (a second run).
    pub unchanged: Vec<Imported>,
    /// What cannot be imported, and why.
    pub skipped: Vec<Skipped>,
    /// Keys and sections not imported, and anything else to know; each names its file:line.
    pub notes: Vec<String>,
    /// The IAM user's key, found in a plain-text file: how to move it into the keychain.
    pub key: Option<KeyHint>,
    /// The credd config text with the new tables; equal to the input when nothing is added.
    #[serde(skip)]
    pub text: String,
}

impl Plan {
    pub fn changes(&self) -> bool {
        !self.added.is_empty() || matches!(self.access, AccessOutcome::Added { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AccessOutcome {
    /// `[access]` added, from this AWS profile (or Identity Center).
    Added { source: String, from: String },
    /// The config has an `[access]` already, left as it is.
    Kept { source: String },
    /// Neither the config nor the AWS files have one.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The credd profile.
    pub profile: String,
    /// The AWS profile it comes from, and where.
    pub from: String,
    pub at: Location,
    pub role_arn: Option<String>,
    pub sso_role: Option<String>,
    pub via: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The AWS profile.
    pub profile: String,
    pub at: Location,
    pub reason: String,
}

/// The access key of `[access]`, in a file that holds it in plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyHint {
    pub aws_profile: String,
    pub access_key_id: Option<String>,
    pub at: Location,
    /// What to run to move it into the OS keychain.
    pub command: String,
    /// Whether `credd key import` can read it there (the shared credentials file): else the key
    /// is in `~/.aws/config` and must be given to `credd key add`.
    pub importable: bool,
}

/// The root of a chain: what the access account session is made from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Root {
    /// The static key of this profile.
    IamUser { profile: String },
    /// An Identity Center instance.
    Sso { start_url: String, region: String },
    WebIdentity {
        role_arn: String,
        token_file: String,
    },
}

impl Root {
    fn source(&self) -> &'static str {
        match self {
            Root::IamUser { .. } => "iam-user",
            Root::Sso { .. } => "sso",
            Root::WebIdentity { .. } => "web-identity",
        }
    }

    fn describe(&self) -> String {
        match self {
            Root::IamUser { profile } => format!("the IAM user key of [{profile}]"),
            Root::Sso { start_url, region } => {
                format!("IAM Identity Center {start_url} ({region})")
            }
            Root::WebIdentity { role_arn, .. } => format!("the web identity role {role_arn}"),
        }
    }
}

/// What an AWS profile is to credd.
#[derive(Debug, Clone)]
enum Node {
    /// It is the root itself (an IAM user's key, a web identity role): `[access]`, no profile.
    Root(Root),
    /// A credd profile.
    Profile(Box<Candidate>),
}

impl Node {
    fn root(&self) -> &Root {
        match self {
            Node::Root(r) => r,
            Node::Profile(c) => &c.root,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Role {
        role_arn: String,
        via: Option<String>,
    },
    Sso {
        account_id: String,
        role_name: String,
    },
}

#[derive(Debug, Clone)]
struct Candidate {
    name: String,
    at: Location,
    root: Root,
    identity: Identity,
    /// Fields after the identity's (region, external_id, ...).
    extra: Vec<(String, Value)>,
    mfa_serial: Option<(String, Location)>,
    /// The SSO session name this profile's sign-in uses, if named.
    sso_session: Option<String>,
}

#[derive(Debug, Clone)]
enum Failure {
    /// A source_profile loop: every profile in it gets this.
    Cycle(String),
    Other(String),
}

impl Failure {
    fn reason(&self) -> String {
        match self {
            Failure::Cycle(path) => format!("source_profile goes round in a loop: {path}"),
            Failure::Other(why) => why.clone(),
        }
    }
}

/// The import of `files` into the credd config `text` (empty: a new config).
pub fn plan(files: &AwsFiles, text: &str) -> Result<Plan, config_edit::EditError> {
    let doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| config_edit::EditError::NotToml(e.to_string()))?;
    let existing = Existing::read(&doc);
    let mut resolver = Resolver::new(files);
    let names: Vec<String> = resolver.order.clone();
    for name in &names {
        let _ = resolver.resolve(name);
    }
    let mut notes: Vec<String> = files.config.notes.clone();
    notes.extend(files.credentials.notes.iter().cloned());

    // Which root is [access]: the config's own, else the one most profiles come from.
    let mut counts: BTreeMap<Root, (usize, Location)> = BTreeMap::new();
    for name in &names {
        if let Some(Ok(node)) = resolver.done.get(name) {
            let at = resolver.profiles[name].at.clone();
            let entry = counts.entry(node.root().clone()).or_insert((0, at));
            if matches!(node, Node::Profile(_)) {
                entry.0 += 1;
            }
        }
    }
    // Among the roots the existing [access] accepts (an `iam-user` one with its key in the
    // keychain accepts every IAM user's key), the same pick as a first import makes, so that
    // importing again finds the profiles the first import wrote.
    let chosen: Option<Root> = counts
        .iter()
        .filter(|(root, _)| existing.access.as_ref().is_none_or(|a| a.accepts(root)))
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(r, _)| r.clone());

    let mut skipped = Vec::new();
    let mut decided: BTreeMap<String, Decision> = BTreeMap::new();
    for name in &names {
        decide(
            name,
            &resolver,
            &existing,
            chosen.as_ref(),
            &mut decided,
            &mut skipped,
        );
    }

    let mut tables = Vec::new();
    let mut access = match &existing.access {
        Some(a) => AccessOutcome::Kept {
            source: a.source.clone(),
        },
        None => AccessOutcome::NotFound,
    };
    if let (None, Some(root)) = (&existing.access, &chosen) {
        let (fields, from) = access_fields(root, &resolver, &decided, &mut notes);
        tables.push(NewTable {
            path: vec!["access".into()],
            comment: Some(format!("the access account: {from}, from credd import")),
            fields,
        });
        access = AccessOutcome::Added {
            source: root.source().into(),
            from,
        };
    }

    let (mut added, mut unchanged) = (Vec::new(), Vec::new());
    for name in &names {
        let via = match decided.get(name) {
            Some(Decision::Write { via }) => via,
            Some(Decision::Present { via }) => {
                unchanged.push(imported(candidate(&resolver, name), via.clone()));
                continue;
            }
            Some(Decision::ConfiguredAs(other)) => {
                let mut same = imported(candidate(&resolver, name), None);
                same.profile = other.clone();
                unchanged.push(same);
                continue;
            }
            _ => continue,
        };
        let c = candidate(&resolver, name);
        let kind = match c.identity {
            Identity::Role { .. } => match &c.root {
                // Its own key assumes its role: the key is [access].
                Root::IamUser { profile } if profile == name => Kind::SelfSourced,
                Root::IamUser { .. } => Kind::Role { mfa: true },
                _ => Kind::Role { mfa: false },
            },
            Identity::Sso { .. } => Kind::Sso,
        };
        notes.extend(unmapped_keys(&resolver.profiles[name], kind));
        let mut fields: Vec<(String, Value)> = match &c.identity {
            Identity::Role { role_arn, .. } => vec![("role_arn".into(), role_arn.as_str().into())],
            Identity::Sso {
                account_id,
                role_name,
            } => vec![
                ("sso_account_id".into(), account_id.as_str().into()),
                ("sso_role_name".into(), role_name.as_str().into()),
            ],
        };
        if let Some(via) = via {
            fields.push(("via".into(), via.as_str().into()));
        }
        fields.extend(c.extra.iter().cloned());
        tables.push(NewTable {
            path: vec!["profiles".into(), c.name.clone()],
            comment: Some(format!("[{}] of {}, from credd import", c.name, c.at)),
            fields,
        });
        added.push(imported(c, via.clone()));
    }
    for (name, node) in resolver.done.iter() {
        if let Ok(Node::Root(root)) = node
            && Some(root) == chosen.as_ref()
        {
            let kind = match root {
                Root::IamUser { .. } => Kind::KeyRoot,
                Root::WebIdentity { .. } => Kind::WebIdentityRoot,
                Root::Sso { .. } => Kind::Sso,
            };
            notes.extend(unmapped_keys(&resolver.profiles[name], kind));
        }
    }
    // The [sso-session] of an imported Identity Center: what credd has no use for.
    if let Some(Root::Sso { .. }) = &chosen {
        for session in files.config.sso_sessions.values() {
            notes.extend(unmapped(
                session,
                &format!("sso-session {}", session.name),
                &["sso_start_url", "sso_region"],
            ));
        }
    }

    let key = match (&chosen, &existing.access) {
        (Some(Root::IamUser { profile }), None) => key_hint(&resolver, profile),
        (Some(Root::IamUser { profile }), Some(a)) if a.key_in_keychain() => {
            key_hint(&resolver, profile)
        }
        _ => None,
    };

    let mut edit = config_edit::add_tables(text, &tables)?;
    if text.is_empty() {
        edit.text = edit.text.trim_start_matches('\n').to_owned();
    }
    // Tables the text has already (possible only for [access], checked above) are not added.
    if !edit.present.is_empty() {
        return Err(config_edit::EditError::WouldChange);
    }
    skipped.sort_by(|a: &Skipped, b| a.at.cmp(&b.at));
    notes.sort_by_key(|n| note_order(n));
    notes.dedup();
    Ok(Plan {
        access,
        added,
        unchanged,
        skipped,
        notes,
        key,
        text: edit.text,
    })
}

/// Notes start with `file:line: `: by file, then line number.
fn note_order(note: &str) -> (String, usize, String) {
    let at = note.split(": ").next().unwrap_or_default();
    match at.rsplit_once(':').map(|(f, l)| (f, l.parse::<usize>())) {
        Some((file, Ok(line))) => (file.to_owned(), line, note.to_owned()),
        _ => (String::new(), 0, note.to_owned()),
    }
}

fn candidate<'a>(resolver: &'a Resolver, name: &str) -> &'a Candidate {
    match resolver.done.get(name) {
        Some(Ok(Node::Profile(c))) => c,
        _ => unreachable!("only profiles are written"),
    }
}

fn imported(c: &Candidate, via: Option<String>) -> Imported {
    let (role_arn, sso_role) = match &c.identity {
        Identity::Role { role_arn, .. } => (Some(role_arn.clone()), None),
        Identity::Sso {
            account_id,
            role_name,
        } => (None, Some(format!("{account_id}/{role_name}"))),
    };
    Imported {
        profile: c.name.clone(),
        from: c.name.clone(),
        at: c.at.clone(),
        role_arn,
        sso_role,
        via,
    }
}

#[derive(Debug, Clone)]
enum Decision {
    /// Add `[profiles.NAME]`.
    Write {
        via: Option<String>,
    },
    /// The config has it already, the same.
    Present {
        via: Option<String>,
    },
    /// The config has the same role under this other name.
    ConfiguredAs(String),
    Skipped,
}

/// What to do with one AWS profile, its `via` decided first.
fn decide(
    name: &str,
    resolver: &Resolver,
    existing: &Existing,
    chosen: Option<&Root>,
    decided: &mut BTreeMap<String, Decision>,
    skipped: &mut Vec<Skipped>,
) -> Decision {
    if let Some(d) = decided.get(name) {
        return d.clone();
    }
    let skip = |reason: String| Err(Some(reason));
    let outcome: Result<Decision, Option<String>> = match resolver.done.get(name) {
        None => Err(None),
        Some(Err(why)) => skip(why.reason()),
        Some(Ok(Node::Root(root))) if Some(root) == chosen => Err(None),
        Some(Ok(Node::Root(root))) => skip(disagreement(root, existing, chosen)),
        Some(Ok(Node::Profile(c))) if Some(&c.root) != chosen => {
            skip(disagreement(&c.root, existing, chosen))
        }
        Some(Ok(Node::Profile(c))) => {
            let source_via = match &c.identity {
                Identity::Role { via, .. } => via.clone(),
                Identity::Sso { .. } => None,
            };
            let via = match source_via {
                None => Ok(None),
                Some(via) => match decide(&via, resolver, existing, chosen, decided, skipped) {
                    Decision::Write { .. } | Decision::Present { .. } => Ok(Some(via)),
                    Decision::ConfiguredAs(other) => Ok(Some(other)),
                    Decision::Skipped => Err(via),
                },
            };
            match via {
                Err(via) => skip(format!(
                    "it is assumed from [{via}] (source_profile), which is not imported"
                )),
                Ok(via) => {
                    let identity = match &c.identity {
                        Identity::Role { role_arn, .. } => Identity::Role {
                            role_arn: role_arn.clone(),
                            via: via.clone(),
                        },
                        sso => sso.clone(),
                    };
                    match existing.profiles.get(&c.name) {
                        Some(Some(theirs)) if *theirs == identity => Ok(Decision::Present { via }),
                        Some(_) => skip(format!(
                            "the credd config has a profile {} already, for something else \
                             (left alone)",
                            c.name
                        )),
                        None => match existing
                            .profiles
                            .iter()
                            .find(|(_, theirs)| theirs.as_ref() == Some(&identity))
                        {
                            Some((other, _)) => Ok(Decision::ConfiguredAs(other.clone())),
                            None => Ok(Decision::Write { via }),
                        },
                    }
                }
            }
        }
    };
    let decision = match outcome {
        Ok(d) => d,
        Err(reason) => {
            if let Some(reason) = reason {
                skipped.push(Skipped {
                    profile: name.to_owned(),
                    at: resolver.profiles[name].at.clone(),
                    reason,
                });
            }
            Decision::Skipped
        }
    };
    decided.insert(name.to_owned(), decision.clone());
    decision
}

fn disagreement(root: &Root, existing: &Existing, chosen: Option<&Root>) -> String {
    let theirs = match (&existing.access, chosen) {
        (Some(a), _) => format!(
            "the credd config's [access] (source = \"{}\", left alone)",
            a.source
        ),
        (None, Some(chosen)) => format!("{}, which most profiles use", chosen.describe()),
        (None, None) => "nothing".into(),
    };
    format!(
        "it reaches AWS through {}, but credd has one access account and it is {theirs}",
        root.describe()
    )
}

/// The `[access]` table for `root`, and where it comes from. Keys the AWS files have that credd
/// does not take go to `notes`.
fn access_fields(
    root: &Root,
    resolver: &Resolver,
    decided: &BTreeMap<String, Decision>,
    notes: &mut Vec<String>,
) -> (Vec<(String, Value)>, String) {
    let mut fields: Vec<(String, Value)> = vec![("source".into(), root.source().into())];
    match root {
        Root::IamUser { profile } => {
            let section = &resolver.profiles[profile];
            // Its own mfa_serial, else the one of the role profiles assumed with it.
            let mut serials: Vec<(String, Location)> = Vec::new();
            if let Some(p) = section.properties.get("mfa_serial") {
                serials.push((p.value().to_owned(), p.at.clone()));
            }
            for (name, node) in &resolver.done {
                if let (
                    Ok(Node::Profile(c)),
                    Some(Decision::Write { .. } | Decision::Present { .. }),
                ) = (node, decided.get(name))
                    && c.root == *root
                    && let Some(s) = &c.mfa_serial
                {
                    serials.push(s.clone());
                }
            }
            serials.retain(|(serial, at)| match checks::check_mfa_serial(serial) {
                Ok(()) => true,
                Err(why) => {
                    notes.push(format!("{at}: mfa_serial not imported: {why}"));
                    false
                }
            });
            if let Some((serial, _)) = serials.first() {
                fields.push(("mfa_serial".into(), serial.as_str().into()));
                for (other, at) in serials.iter().skip(1).filter(|(s, _)| s != serial) {
                    notes.push(format!(
                        "{at}: mfa_serial = {other} not imported: credd has one MFA device, \
                         [access] mfa_serial = {serial}"
                    ));
                }
            }
            if let Some(region) = section
                .get("region")
                .filter(|r| checks::check_region(r).is_ok())
            {
                let mut regions = toml_edit::Array::new();
                regions.push(region);
                fields.push(("regions".into(), Value::Array(regions)));
            }
            (
                fields,
                format!("the IAM user key of [{profile}] ({})", section.at),
            )
        }
        Root::Sso { start_url, region } => {
            // The sso-session name of the first profile that names one, else one from the URL.
            let session = resolver
                .done
                .values()
                .filter_map(|n| match n {
                    Ok(Node::Profile(c)) if c.root == *root => c.sso_session.clone(),
                    _ => None,
                })
                .find(|s| checks::check_sso_session(s).is_ok())
                .unwrap_or_else(|| session_from_url(start_url));
            fields.push(("sso_session".into(), session.as_str().into()));
            fields.push(("sso_start_url".into(), start_url.as_str().into()));
            fields.push(("sso_region".into(), region.as_str().into()));
            (
                fields,
                format!("IAM Identity Center {start_url} ({region}), sso_session {session}"),
            )
        }
        Root::WebIdentity {
            role_arn,
            token_file,
        } => {
            fields.push(("role_arn".into(), role_arn.as_str().into()));
            fields.push(("token_file".into(), token_file.as_str().into()));
            (fields, format!("the web identity role {role_arn}"))
        }
    }
}

/// What an AWS profile became, for which of its keys credd takes.
#[derive(Clone, Copy)]
enum Kind {
    /// A `role_arn` profile; its `mfa_serial` is the IAM user's (`[access]`) when `mfa`.
    Role { mfa: bool },
    /// An Identity Center profile.
    Sso,
    /// The profile whose key is `[access]`.
    KeyRoot,
    /// A `role_arn` profile whose key (`[access]`) assumes its role (`source_profile` itself).
    SelfSourced,
    /// The web identity profile that is `[access]`.
    WebIdentityRoot,
}

/// Keys of `section` credd does not take, as one note (or none).
fn unmapped_keys(section: &Section, kind: Kind) -> Option<String> {
    let known: &[&str] = match kind {
        Kind::Role { mfa: true } => ROLE_KEYS,
        Kind::Role { mfa: false } => &ROLE_KEYS[..ROLE_KEYS.len() - 1],
        Kind::Sso => &[
            "sso_session",
            "sso_start_url",
            "sso_region",
            "sso_account_id",
            "sso_role_name",
            "region",
        ],
        Kind::KeyRoot => &[
            "aws_access_key_id",
            "aws_secret_access_key",
            "mfa_serial",
            "region",
        ],
        Kind::WebIdentityRoot => &["role_arn", "web_identity_token_file"],
        Kind::SelfSourced => &[
            "role_arn",
            "source_profile",
            "external_id",
            "duration_seconds",
            "role_session_name",
            "region",
            "mfa_serial",
            "aws_access_key_id",
            "aws_secret_access_key",
        ],
    };
    unmapped(section, &section.name, known)
}

fn unmapped(section: &Section, name: &str, known: &[&str]) -> Option<String> {
    let left: Vec<String> = section
        .properties
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, p)| {
            if p.at.file == section.at.file {
                format!("{k} (line {})", p.at.line)
            } else {
                format!("{k} ({})", p.at)
            }
        })
        .collect();
    (!left.is_empty()).then(|| {
        format!(
            "{}: [{name}]: not imported, credd has no such setting (they stay in the AWS file): {}",
            section.at,
            left.join(", ")
        )
    })
}

fn key_hint(resolver: &Resolver, profile: &str) -> Option<KeyHint> {
    let section = &resolver.profiles[profile];
    let id = section.properties.get("aws_access_key_id")?;
    let secret = section.properties.get("aws_secret_access_key")?;
    let in_credentials = resolver
        .files
        .credentials
        .profiles
        .get(profile)
        .is_some_and(|s| s.properties.contains_key("aws_secret_access_key"));
    let command = if in_credentials {
        format!("credd key import --profile {profile} --delete")
    } else {
        "credd key add".to_owned()
    };
    Some(KeyHint {
        aws_profile: profile.to_owned(),
        access_key_id: id.value.clone(),
        at: secret.at.clone(),
        command,
        importable: in_credentials,
    })
}

/// What the credd config has already.
struct Existing {
    access: Option<ExistingAccess>,
    /// Each profile's identity (`None`: not one this import can compare).
    profiles: BTreeMap<String, Option<Identity>>,
}

struct ExistingAccess {
    source: String,
    aws_profile: Option<String>,
    key: Option<String>,
    sso_start_url: Option<String>,
    sso_region: Option<String>,
    role_arn: Option<String>,
}

impl ExistingAccess {
    /// Whether this hand-written [access] is `root`.
    fn accepts(&self, root: &Root) -> bool {
        match (self.source.as_str(), root) {
            ("iam-user", Root::IamUser { profile }) => {
                self.aws_profile.as_deref().is_none_or(|p| p == profile)
            }
            ("sso", Root::Sso { start_url, region }) => {
                self.sso_start_url
                    .as_deref()
                    .map(|u| u.trim_end_matches('/'))
                    == Some(start_url.trim_end_matches('/'))
                    && self.sso_region.as_deref() == Some(region)
            }
            ("web-identity", Root::WebIdentity { role_arn, .. }) => {
                self.role_arn.as_deref() == Some(role_arn)
            }
            _ => false,
        }
    }

    fn key_in_keychain(&self) -> bool {
        self.source == "iam-user"
            && self.aws_profile.is_none()
            && self.key.as_deref().is_none_or(|k| k == "keychain")
    }
}

impl Existing {
    fn read(doc: &DocumentMut) -> Existing {
        let text = |t: &dyn toml_edit::TableLike, key: &str| {
            t.get(key).and_then(|i| i.as_str()).map(str::to_owned)
        };
        let access = doc
            .get("access")
            .and_then(|i| i.as_table_like())
            .map(|t| ExistingAccess {
                source: text(t, "source").unwrap_or_default(),
                aws_profile: text(t, "aws_profile"),
                key: text(t, "key"),
                sso_start_url: text(t, "sso_start_url"),
                sso_region: text(t, "sso_region"),
                role_arn: text(t, "role_arn"),
            });
        let mut profiles = BTreeMap::new();
        if let Some(table) = doc.get("profiles").and_then(|i| i.as_table_like()) {
            for (name, item) in table.iter() {
                let identity = item.as_table_like().and_then(|t| {
                    match (
                        text(t, "role_arn"),
                        text(t, "sso_account_id"),
                        text(t, "sso_role_name"),
                    ) {
                        (Some(role_arn), None, None) => Some(Identity::Role {
                            role_arn,
                            via: text(t, "via"),
                        }),
                        (None, Some(account_id), Some(role_name)) => Some(Identity::Sso {
                            account_id,
                            role_name,
                        }),
                        _ => None,
                    }
                });
                profiles.insert(name.to_owned(), identity);
            }
        }
        Existing { access, profiles }
    }
}

/// Resolves each AWS profile to a [`Node`], following `source_profile` as the SDKs do.
struct Resolver<'a> {
    files: &'a AwsFiles,
    /// Every profile of both files, the credentials file's keys merged over the config's.
    profiles: BTreeMap<String, Section>,
    /// Profile names in the order of the config file, then the credentials file's own.
    order: Vec<String>,
    done: BTreeMap<String, Result<Node, Failure>>,
    visiting: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn new(files: &'a AwsFiles) -> Resolver<'a> {
        let mut profiles = files.config.profiles.clone();
        let mut only_in_credentials = BTreeSet::new();
        for (name, section) in &files.credentials.profiles {
            match profiles.get_mut(name) {
                Some(p) => p.properties.extend(section.properties.clone()),
                None => {
                    only_in_credentials.insert(name.clone());
                    profiles.insert(name.clone(), section.clone());
                }
            }
        }
        let mut order: Vec<(bool, Location, String)> = profiles
            .iter()
            .map(|(n, s)| (only_in_credentials.contains(n), s.at.clone(), n.clone()))
            .collect();
        order.sort();
        Resolver {
            files,
            order: order.into_iter().map(|(_, _, n)| n).collect(),
            profiles,
            done: BTreeMap::new(),
            visiting: Vec::new(),
        }
    }

    fn resolve(&mut self, name: &str) -> Result<Node, Failure> {
        if let Some(done) = self.done.get(name) {
            return done.clone();
        }
        if let Some(start) = self.visiting.iter().position(|v| v == name) {
            let mut path = self.visiting[start..].to_vec();
            path.push(name.to_owned());
            return Err(Failure::Cycle(path.join(" -> ")));
        }
        self.visiting.push(name.to_owned());
        let result = self.node(name);
        self.visiting.pop();
        self.done.insert(name.to_owned(), result.clone());
        result
    }

    fn node(&mut self, name: &str) -> Result<Node, Failure> {
        let other = |s: String| Err(Failure::Other(s));
        let Some(section) = self.profiles.get(name).cloned() else {
            return other(format!(
                "there is no profile {name} in the AWS config or credentials file"
            ));
        };
        let get = |k: &str| section.get(k).map(str::to_owned);
        if let (Some(role_arn), None) = (get("role_arn"), get("web_identity_token_file")) {
            let via = match (get("source_profile"), get("credential_source")) {
                (Some(_), Some(_)) => {
                    return other(
                        "it has both source_profile and credential_source (the AWS SDKs refuse \
                         it too)"
                            .into(),
                    );
                }
                (None, None) => {
                    return other(
                        "role_arn without source_profile or credential_source: nothing to assume \
                         it with"
                            .into(),
                    );
                }
                (None, Some(source)) => {
                    return other(format!(
                        "credential_source = {source} (this machine's environment, EC2 or ECS \
                         credentials): credd assumes roles from its own access session instead"
                    ));
                }
                (Some(source), None) if source == name => {
                    let root = match self.key_root(&section)? {
                        Node::Root(r) => r,
                        Node::Profile(_) => unreachable!("a key root is a root"),
                    };
                    (root, None)
                }
                // Like the SDKs: a source profile with a key is used for its key, even when it
                // has a role_arn of its own.
                (Some(source), None)
                    if self
                        .profiles
                        .get(&source)
                        .is_some_and(|s| s.properties.contains_key("aws_access_key_id")) =>
                {
                    let source = self.profiles[&source].clone();
                    match self.key_root(&source) {
                        Ok(Node::Root(r)) => (r, None),
                        _ => {
                            return other(format!(
                                "its source_profile [{}] cannot be imported (see there)",
                                source.name
                            ));
                        }
                    }
                }
                (Some(source), None) => match self.resolve(&source) {
                    Ok(Node::Root(r)) => (r, None),
                    Ok(Node::Profile(c)) => (c.root.clone(), Some(source)),
                    Err(Failure::Cycle(path)) => return Err(Failure::Cycle(path)),
                    Err(Failure::Other(_)) => {
                        return other(format!(
                            "its source_profile [{source}] cannot be imported (see there)"
                        ));
                    }
                },
            };
            return self.role_profile(&section, role_arn, via.0, via.1);
        }
        if let Some(source) = get("credential_source") {
            return other(format!(
                "credential_source = {source}: credd's access is one of its own sources"
            ));
        }
        if let Some(token_file) = get("web_identity_token_file") {
            let Some(role_arn) = get("role_arn") else {
                return other("web_identity_token_file without role_arn".into());
            };
            // The daemon refuses an [access] whose role is not an IAM role ARN.
            if let Err(why) = checks::parse_role_arn(&role_arn) {
                return other(format!(
                    "{}: role_arn: {why}",
                    section.properties["role_arn"].at
                ));
            }
            return Ok(Node::Root(Root::WebIdentity {
                role_arn,
                token_file,
            }));
        }
        if SSO_KEYS.iter().any(|k| section.properties.contains_key(*k)) {
            return self.sso_profile(&section);
        }
        if section.properties.contains_key("credential_process") {
            return other(
                "credential_process: its credentials come from a program credd cannot stand in \
                 for (keep using it through the AWS profile)"
                    .into(),
            );
        }
        if section.properties.contains_key("aws_access_key_id")
            || section.properties.contains_key("aws_secret_access_key")
        {
            return self.key_root(&section);
        }
        let keys: Vec<&str> = section.properties.keys().map(String::as_str).collect();
        other(if keys.is_empty() {
            "it is empty".into()
        } else {
            format!(
                "it holds no credentials, only settings ({}): nothing to import",
                keys.join(", ")
            )
        })
    }

    fn key_root(&self, section: &Section) -> Result<Node, Failure> {
        let has = |k: &str| section.properties.contains_key(k);
        if has("aws_session_token") {
            return Err(Failure::Other(
                "its key has an aws_session_token: temporary credentials, nothing lasting to \
                 import"
                    .into(),
            ));
        }
        if !has("aws_access_key_id") || !has("aws_secret_access_key") {
            return Err(Failure::Other(
                "it has half a key (aws_access_key_id and aws_secret_access_key go together)"
                    .into(),
            ));
        }
        Ok(Node::Root(Root::IamUser {
            profile: section.name.clone(),
        }))
    }

    fn role_profile(
        &self,
        section: &Section,
        role_arn: String,
        root: Root,
        via: Option<String>,
    ) -> Result<Node, Failure> {
        let name = &section.name;
        check_profile_name(name)?;
        let at_of = |k: &str| section.properties[k].at.clone();
        if let Err(why) = checks::parse_role_arn(&role_arn) {
            return Err(Failure::Other(format!(
                "{}: role_arn: {why}",
                at_of("role_arn")
            )));
        }
        let mut extra: Vec<(String, Value)> = Vec::new();
        if let Some(region) = section.get("region") {
            checks::check_region(region)
                .map_err(|why| Failure::Other(format!("{}: region: {why}", at_of("region"))))?;
            extra.push(("region".into(), region.into()));
        }
        if let Some(id) = section.get("external_id") {
            extra.push(("external_id".into(), id.into()));
        }
        if let Some(d) = section.get("duration_seconds") {
            let duration = d.parse::<u64>().map(Duration::from_secs).map_err(|_| {
                Failure::Other(format!(
                    "{}: duration_seconds = {d:?} is not a number of seconds",
                    at_of("duration_seconds")
                ))
            })?;
            if duration <= MIN_REMAINING || duration > DURATION_MAX {
                return Err(Failure::Other(format!(
                    "{}: duration_seconds = {d}: credd takes more than 30m (its min_remaining: it \
                     never serves credentials with less left) and at most 12h",
                    at_of("duration_seconds")
                )));
            }
            extra.push((
                "duration".into(),
                humantime::format_duration(duration).to_string().into(),
            ));
        }
        if let Some(s) = section.get("role_session_name") {
            extra.push(("session_name".into(), s.into()));
        }
        let mfa_serial = section
            .properties
            .get("mfa_serial")
            .map(|p| (p.value().to_owned(), p.at.clone()));
        Ok(Node::Profile(Box::new(Candidate {
            name: name.clone(),
            at: section.at.clone(),
            root,
            identity: Identity::Role { role_arn, via },
            extra,
            mfa_serial,
            sso_session: None,
        })))
    }

    fn sso_profile(&self, section: &Section) -> Result<Node, Failure> {
        let other = |s: String| Err(Failure::Other(s));
        let get = |k: &str| section.get(k).map(str::to_owned);
        let (start_url, sso_region, session) = match get("sso_session") {
            Some(session) => {
                if let Some(key) = ["sso_start_url", "sso_region"]
                    .into_iter()
                    .find(|k| section.properties.contains_key(*k))
                {
                    return other(format!(
                        "{key} goes in [sso-session {session}] when sso_session is set (the AWS \
                         SDKs refuse it too)"
                    ));
                }
                let Some(s) = self.files.config.sso_sessions.get(&session) else {
                    return other(format!(
                        "sso_session = {session}, but there is no [sso-session {session}]"
                    ));
                };
                (
                    s.get("sso_start_url").map(str::to_owned),
                    s.get("sso_region").map(str::to_owned),
                    Some(session),
                )
            }
            None => (get("sso_start_url"), get("sso_region"), None),
        };
        let (Some(start_url), Some(sso_region)) = (start_url, sso_region) else {
            return other("its Identity Center sign-in lacks sso_start_url or sso_region".into());
        };
        let (Some(account_id), Some(role_name)) = (get("sso_account_id"), get("sso_role_name"))
        else {
            return other(
                "an Identity Center sign-in without sso_account_id and sso_role_name: no account \
                 role to serve (`credd import --sso` adds every one you may use)"
                    .into(),
            );
        };
        check_profile_name(&section.name)?;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return other(format!(
                "sso_account_id = {account_id:?} is not a 12-digit account ID"
            ));
        }
        checks::check_region(&sso_region)
            .map_err(|why| Failure::Other(format!("sso_region: {why}")))?;
        // `credd exec` exports the profile's region: the SDKs need one.
        let region = get("region").unwrap_or_else(|| sso_region.clone());
        checks::check_region(&region).map_err(|why| Failure::Other(format!("region: {why}")))?;
        Ok(Node::Profile(Box::new(Candidate {
            name: section.name.clone(),
            at: section.at.clone(),
            root: Root::Sso {
                start_url,
                region: sso_region,
            },
            identity: Identity::Sso {
                account_id,
                role_name,
            },
            extra: vec![("region".into(), region.as_str().into())],
            mfa_serial: None,
            sso_session: session,
        })))
    }
}

/// credd's profile names, by the daemon's own check.
fn check_profile_name(name: &str) -> Result<(), Failure> {
    checks::check_name(name).map_err(|why| {
        Failure::Other(format!(
            "{name:?} is not a credd profile name: {why}; add it by hand under another name"
        ))
    })
}

/// A session name for a legacy Identity Center profile (no `[sso-session]`): the start URL's
/// first host label, e.g. `acme` for `https://acme.awsapps.com/start`.
fn session_from_url(url: &str) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '.', ':'])
        .next()
        .unwrap_or_default();
    let name: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect();
    if name.is_empty() { "sso".into() } else { name }
}
