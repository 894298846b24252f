//! The AWS shared config and credentials files read as the AWS SDKs read them (aws-config's
//! profile-file parser and normalisation are the model), but keeping each key's line so that
//! `credd import` can point at it, and never keeping a secret's value.
//!
//! The SDKs' rules followed here: lines are split on `\n` or `\r\n`; a line starting with `#` or
//! `;` is a comment; in a `[section]` line a `#`/`;` starts a comment anywhere, in a `key = value`
//! line only after whitespace; a line starting with whitespace continues the previous value (or
//! holds a sub-property); keys are case-insensitive; a section seen twice is merged, later keys
//! winning. In the config file, `[default]`, `[profile NAME]` (which wins over `[default]` for
//! `default`) and `[sso-session NAME]` count; in the credentials file, `[NAME]`. Anything else is
//! ignored by the SDKs, and reported here.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use zeroize::Zeroize;

/// Keys whose values are secrets: only their presence and line are kept.
const SECRET_KEYS: &[&str] = &["aws_secret_access_key", "aws_session_token"];
/// What the SDKs accept in a profile or session name.
const NAME_PUNCTUATION: &[char] = &['_', '-', '/', '.', '%', '@', ':', '+'];

/// Which of the two files a text is: their section headers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Config,
    Credentials,
}

/// Where something is: `path:line`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One key of a profile or session. A secret's value is never kept: `value` is `None`.
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    pub value: Option<String>,
    pub at: Location,
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values are not secrets (those are dropped), but keep Debug short anyway.
        write!(f, "{:?} at {}", self.value, self.at)
    }
}

impl Property {
    pub fn value(&self) -> &str {
        self.value.as_deref().unwrap_or_default()
    }
}

/// A `[profile NAME]` (or `[default]`, or a credentials file's `[NAME]`) or `[sso-session NAME]`,
/// merged over every place it appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// Its first header.
    pub at: Location,
    /// Lowercase keys.
    pub properties: BTreeMap<String, Property>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(Property::value)
    }
}

/// What a file held, as the SDKs see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFile {
    pub profiles: BTreeMap<String, Section>,
    pub sso_sessions: BTreeMap<String, Section>,
    /// Sections the SDKs ignore or merge, said for the user.
    pub notes: Vec<String>,
}

/// A line the SDKs refuse (they refuse the whole file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ParseError {
    pub at: Location,
    pub message: String,
}

/// Reads `text` (from `file`, named in locations) as the SDKs would.
pub fn parse(text: &str, file: &str, kind: FileKind) -> Result<ProfileFile, ParseError> {
    let at = |line: usize| Location {
        file: file.to_owned(),
        line,
    };
    let error = |line: usize, message: &str| ParseError {
        at: at(line),
        message: message.to_owned(),
    };
    // Each header as written, with its properties, in file order.
    let mut raw: Vec<(String, usize, BTreeMap<String, Property>)> = Vec::new();
    // The property that continuation lines extend, and whether it holds sub-properties.
    let mut current: Option<(String, bool)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim_matches([' ', '\t']).is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            let header = strip_comment(line, false);
            let Some(inner) = header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) else {
                return Err(error(n, "a section header must end with ']'"));
            };
            raw.push((inner.to_owned(), n, BTreeMap::new()));
            current = None;
        } else if line.starts_with([' ', '\t']) {
            let Some((_, _, props)) = raw.last_mut() else {
                return Err(error(n, "expected a [profile NAME] section first"));
            };
            let Some((key, sub)) = &current else {
                return Err(error(
                    n,
                    "an indented line continues a property, but there is none before it",
                ));
            };
            let line = line.trim_matches([' ', '\t']);
            if *sub && split_property(line).is_none() {
                return Err(error(n, "expected an '=' sign defining a sub-property"));
            }
            if let Some(Property {
                value: Some(value), ..
            }) = props.get_mut(key)
            {
                value.push('\n');
                value.push_str(line);
            }
        } else {
            let Some((_, _, props)) = raw.last_mut() else {
                return Err(error(n, "expected a [profile NAME] section first"));
            };
            let Some((key, value)) = split_property(strip_comment(line, true)) else {
                return Err(error(n, "expected `key = value`"));
            };
            if key.is_empty() {
                return Err(error(n, "a property has no name before '='"));
            }
            let key = key.to_ascii_lowercase();
            let value = (!SECRET_KEYS.contains(&key.as_str())).then(|| value.to_owned());
            current = Some((key.clone(), value.as_deref() == Some("")));
            props.insert(key, Property { value, at: at(n) });
        }
    }
    Ok(normalize(raw, file, kind))
}

/// `key = value`, both trimmed.
fn split_property(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once('=')?;
    Some((k.trim_matches([' ', '\t']), v.trim_matches([' ', '\t'])))
}

/// The line without its comment: in a property line, `#`/`;` start one only after whitespace.
fn strip_comment(line: &str, needs_whitespace: bool) -> &str {
    let line = line.trim_matches([' ', '\t']);
    let mut after_space = false;
    for (i, c) in line.char_indices() {
        if matches!(c, '#' | ';') && (after_space || !needs_whitespace) {
            return line[..i].trim_matches([' ', '\t']);
        }
        after_space = c.is_whitespace();
    }
    line
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(&c))
}

enum Target {
    Profile(String),
    SsoSession(String),
}

/// The SDKs' normalisation: which sections count, under which name, merged.
fn normalize(
    raw: Vec<(String, usize, BTreeMap<String, Property>)>,
    file: &str,
    kind: FileKind,
) -> ProfileFile {
    let mut out = ProfileFile::default();
    let prefixed_default = kind == FileKind::Config
        && raw
            .iter()
            .any(|(h, ..)| split_header(h) == (Some("profile"), "default"));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (header, line, mut props) in raw {
        let at = Location {
            file: file.to_owned(),
            line,
        };
        let target = match (kind, split_header(&header)) {
            (FileKind::Config, (None, "default")) if prefixed_default => {
                out.notes.push(format!(
                    "{at}: [default] is ignored: [profile default] takes its place (as in the \
                     AWS SDKs)"
                ));
                wipe(&mut props);
                continue;
            }
            (FileKind::Config, (None, "default")) => Ok(Target::Profile("default".into())),
            (FileKind::Config, (Some("profile"), name)) if valid_name(name) => {
                Ok(Target::Profile(name.to_owned()))
            }
            (FileKind::Config, (Some("sso-session"), name)) if valid_name(name) => {
                Ok(Target::SsoSession(name.to_owned()))
            }
            (FileKind::Config, (Some("services"), _)) => {
                Err("a [services] section (service endpoints): credd has no use for it".to_owned())
            }
            (FileKind::Config, (None, name)) => Err(format!(
                "[{name}] is ignored by the AWS SDKs: in the config file a profile is \
                 [profile {name}]"
            )),
            (FileKind::Config, (Some(prefix), name)) => Err(format!(
                "[{prefix} {name}] is ignored by the AWS SDKs (not a valid section)"
            )),
            (FileKind::Credentials, (None, name)) if valid_name(name) => {
                Ok(Target::Profile(name.to_owned()))
            }
            (FileKind::Credentials, (Some("profile"), name)) => Err(format!(
                "[profile {name}] is ignored by the AWS SDKs: in the credentials file a \
                 profile is [{name}]"
            )),
            (FileKind::Credentials, _) => Err(format!(
                "[{header}] is ignored by the AWS SDKs (not a valid profile name)"
            )),
        };
        let (map, name, what) = match target {
            Ok(Target::Profile(name)) => (&mut out.profiles, name, "profile"),
            Ok(Target::SsoSession(name)) => (&mut out.sso_sessions, name, "sso-session"),
            Err(why) => {
                out.notes.push(format!("{at}: {why}"));
                wipe(&mut props);
                continue;
            }
        };
        let key = format!("{what} {name}");
        if let Some(first) = seen.get(&key) {
            out.notes.push(format!(
                "{at}: [{header}] appears again (first at line {first}): merged into one, later \
                 keys winning, as the AWS SDKs do"
            ));
        } else {
            seen.insert(key, line);
        }
        let section = map.entry(name.clone()).or_insert_with(|| Section {
            name,
            at,
            properties: BTreeMap::new(),
        });
        section.properties.extend(props);
    }
    out
}

/// `profile  NAME` → (Some("profile"), "NAME"); `default` → (None, "default").
fn split_header(header: &str) -> (Option<&str>, &str) {
    let header = header.trim_matches([' ', '\t']);
    match header.split_once([' ', '\t']) {
        Some((prefix, name)) => (Some(prefix), name.trim_matches([' ', '\t'])),
        None => (None, header),
    }
}

fn wipe(props: &mut BTreeMap<String, Property>) {
    for p in props.values_mut() {
        if let Some(v) = &mut p.value {
            v.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ProfileFile {
        parse(text, "config", FileKind::Config).unwrap()
    }

    #[test]
    fn sections_keys_and_comments_as_the_sdks_read_them() {
        let file = config(
            "# top\n; also\n[default]\nregion=us-east-1 ; a comment\n\
             [ profile   dev ] # comment\nRole_Arn = arn:x#not-a-comment\n\
             s3 =\n\tmax = 10\n[sso-session acme]\nsso_region = eu-west-1\r\n",
        );
        assert_eq!(file.profiles["default"].get("region"), Some("us-east-1"));
        let dev = &file.profiles["dev"];
        assert_eq!(dev.get("role_arn"), Some("arn:x#not-a-comment"));
        assert_eq!(dev.properties["role_arn"].at.line, 6);
        assert_eq!(dev.get("s3"), Some("\nmax = 10"));
        // An indented line continues the value before it, as in the SDKs.
        let file2 = config("[default]\nregion = a\n  b\n");
        assert_eq!(file2.profiles["default"].get("region"), Some("a\nb"));
        assert_eq!(
            file.sso_sessions["acme"].get("sso_region"),
            Some("eu-west-1")
        );
        assert!(file.notes.is_empty(), "{:?}", file.notes);
    }

    #[test]
    fn secrets_are_never_kept_and_odd_sections_are_reported() {
        let file = parse(
            "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s3cr3t\n\
             [profile x]\naws_secret_access_key = other\n",
            "credentials",
            FileKind::Credentials,
        )
        .unwrap();
        let default = &file.profiles["default"];
        assert_eq!(default.get("aws_access_key_id"), Some("AKIA"));
        assert_eq!(default.properties["aws_secret_access_key"].value, None);
        assert!(!format!("{file:?}").contains("s3cr3t"));
        assert!(!format!("{file:?}").contains("other"));
        assert_eq!(file.notes.len(), 1);
        assert!(file.notes[0].starts_with("credentials:4: [profile x] is ignored"));
    }

    #[test]
    fn profile_default_wins_and_duplicates_merge() {
        let file = config(
            "[default]\nregion = a\n[profile default]\nregion = b\n\
             [profile x]\nregion = 1\noutput = json\n[profile x]\nregion = 2\n[x]\nregion = 3\n",
        );
        assert_eq!(file.profiles["default"].get("region"), Some("b"));
        assert_eq!(file.profiles["x"].get("region"), Some("2"));
        assert_eq!(file.profiles["x"].get("output"), Some("json"));
        assert_eq!(file.notes.len(), 3, "{:?}", file.notes);
    }

    #[test]
    fn broken_lines_name_their_line() {
        let e = parse("[default]\nregion\n", "c", FileKind::Config).unwrap_err();
        assert_eq!(e.to_string(), "c:2: expected `key = value`");
        let e = parse("region = x\n", "c", FileKind::Config).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c:1: expected a [profile NAME] section first"
        );
        let e = parse("[default\n", "c", FileKind::Config).unwrap_err();
        assert_eq!(e.to_string(), "c:1: a section header must end with ']'");
    }
}
