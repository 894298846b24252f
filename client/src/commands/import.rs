//! `credd import --sso`: a `[profiles.NAME]` table for every account and role IAM Identity Center
//! offers the logged-in user, added to the config file the daemon uses, whose comments and layout
//! stay as they are. Nothing is ever overwritten: a name already in use, or an account/role pair
//! already configured under any name, is skipped and reported.
//!
//! The naming and the edit are pure functions of the config text and the account list
//! ([`plan`]); the daemon notices the written file and reloads it by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response, SsoAccount};
use serde::Serialize;
use toml_edit::DocumentMut;

use super::{ask, unexpected};
use crate::config_edit::{self, EditError, NewTable, WriteError};
use crate::error::ClientError;
use crate::output;

/// The longest profile name the daemon accepts (`check_name` in the daemon's config).
const NAME_MAX: usize = 64;
/// An account name's part of a profile name is cut to this, so the role name always fits.
const ACCOUNT_SLUG_MAX: usize = 32;
/// Identity Center permission set names have at most 32 characters; anything longer is cut.
const ROLE_MAX: usize = 40;

/// A profile the import adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewProfile {
    pub profile: String,
    pub account_id: String,
    pub account_name: String,
    pub role_name: String,
}

/// An account/role the import leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub account_id: String,
    pub account_name: String,
    pub role_name: String,
    #[serde(flatten)]
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// This account/role is already a profile (under any name).
    AlreadyConfigured { profile: String },
    /// The name it would get is an existing profile of something else, left alone.
    NameTaken { profile: String },
    /// Another account/role of this import gets the same name (names are cut to 64 characters).
    NameClash { profile: String, with: String },
}

impl SkipReason {
    fn describe(&self) -> String {
        match self {
            SkipReason::AlreadyConfigured { profile } => {
                format!("already configured as profile {profile}")
            }
            SkipReason::NameTaken { profile } => {
                format!("profile {profile} already exists for something else (left alone)")
            }
            SkipReason::NameClash { profile, with } => {
                format!("would be named {profile} like {with}; add it by hand")
            }
        }
    }
}

/// What an import does to one config text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub added: Vec<NewProfile>,
    pub skipped: Vec<Skipped>,
    /// The config text with the new tables; equal to the input when nothing is added.
    pub text: String,
}

pub fn run(paths: &Paths, json: bool, dry_run: bool) -> Result<ExitCode, ClientError> {
    let request = Request::SsoAccounts;
    let accounts = match ask(paths, &request)? {
        Response::SsoAccounts { accounts } => accounts,
        other => return Err(unexpected(&request, other)),
    };
    let path = config_path(paths)?;
    let read = |source| ClientError::ImportRead {
        path: path.clone(),
        source,
    };
    let old = std::fs::read_to_string(&path).map_err(read)?;
    let plan = plan(&old, &accounts).map_err(|why| ClientError::ImportEdit {
        path: path.clone(),
        why,
    })?;
    let diff = config_edit::diff(&old, &plan.text, &path);
    if !dry_run && !plan.added.is_empty() {
        config_edit::write_atomically(&path, &old, &plan.text).map_err(|e| match e {
            WriteError::Read { path, source } => ClientError::ImportRead { path, source },
            WriteError::Write { path, source } => ClientError::WriteFile { path, source },
            WriteError::ChangedMeanwhile { path } => ClientError::ImportConcurrentEdit { path },
        })?;
    }
    if json {
        output::json(&serde_json::json!({
            "config": path,
            "dry_run": dry_run,
            "accounts": accounts.len(),
            "added": plan.added,
            "skipped": plan.skipped,
        }));
    } else {
        report(&path, &plan, &accounts, dry_run, &diff);
    }
    Ok(ExitCode::SUCCESS)
}

/// The config file the daemon reads, which is what the import must edit. A path from
/// `--config`/`CREDD_CONFIG` that names another file is reported, not followed.
fn config_path(paths: &Paths) -> Result<PathBuf, ClientError> {
    let request = Request::Status;
    let report = match ask(paths, &request)? {
        Response::Status(report) => report,
        other => return Err(unexpected(&request, other)),
    };
    let daemons = PathBuf::from(&report.config.path);
    if !same_file(&daemons, &paths.config) {
        eprintln!(
            "warning: credd-daemon reads {}, not {} (from --config, CREDD_CONFIG or the default); \
             importing into the daemon's",
            daemons.display(),
            paths.config.display()
        );
    }
    if let Some(e) = &report.config.error {
        eprintln!(
            "warning: the daemon rejected the last edit of this file (it keeps the previous \
             config until that is fixed): {e}"
        );
    }
    Ok(daemons)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Names every account/role, leaves out what is configured or taken, and adds the rest to
/// `text` as `[profiles.NAME]` tables after the existing profiles.
pub fn plan(text: &str, accounts: &[SsoAccount]) -> Result<Plan, EditError> {
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        EditError::NotToml(e.to_string().trim_end().to_owned())
    })?;
    let existing = existing_profiles(&doc)?;

    let mut added: Vec<NewProfile> = Vec::new();
    let mut skipped = Vec::new();
    for candidate in names(accounts) {
        let skip = |reason| Skipped {
            account_id: candidate.account_id.clone(),
            account_name: candidate.account_name.clone(),
            role_name: candidate.role_name.clone(),
            reason,
        };
        let pair = (candidate.account_id.clone(), candidate.role_name.clone());
        if let Some((name, _)) = existing.iter().find(|(_, p)| p.as_ref() == Some(&pair)) {
            skipped.push(skip(SkipReason::AlreadyConfigured {
                profile: name.clone(),
            }));
        } else if existing.contains_key(&candidate.profile) {
            skipped.push(skip(SkipReason::NameTaken {
                profile: candidate.profile.clone(),
            }));
        } else if let Some(first) = added.iter().find(|a| a.profile == candidate.profile) {
            skipped.push(skip(SkipReason::NameClash {
                profile: candidate.profile.clone(),
                with: format!("{}/{}", first.account_id, first.role_name),
            }));
        } else {
            added.push(candidate);
        }
    }

    let tables: Vec<NewTable> = added
        .iter()
        .map(|p| NewTable {
            path: vec!["profiles".to_owned(), p.profile.clone()],
            comment: Some(format!(
                "{} ({}), from IAM Identity Center",
                p.account_name, p.account_id
            )),
            fields: vec![
                ("sso_account_id".to_owned(), p.account_id.as_str().into()),
                ("sso_role_name".to_owned(), p.role_name.as_str().into()),
            ],
        })
        .collect();
    let edit = config_edit::add_tables(text, &tables)?;
    Ok(Plan {
        added,
        skipped,
        text: edit.text,
    })
}

/// Every profile name in the file, with its `(sso_account_id, sso_role_name)` when it has both.
#[allow(clippy::type_complexity)]
fn existing_profiles(
    doc: &DocumentMut,
) -> Result<BTreeMap<String, Option<(String, String)>>, EditError> {
    let Some(profiles) = doc.get("profiles") else {
        return Ok(BTreeMap::new());
    };
    let profiles = profiles
        .as_table_like()
        .ok_or_else(|| EditError::NotTable {
            key: "profiles".to_owned(),
        })?;
    Ok(profiles
        .iter()
        .map(|(name, item)| {
            let field = |key| {
                item.as_table_like()
                    .and_then(|t| t.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let pair = field("sso_account_id").zip(field("sso_role_name"));
            (name.to_owned(), pair)
        })
        .collect())
}

/// Every account/role with its profile name, sorted by account name, then account ID, then role.
///
/// A name is `<account>-<role>`: the account name as a lowercase slug (letters, digits, '-'),
/// the role name with anything but letters, digits, '-', '_', '.' made '-'. When two accounts
/// give the same slug, each gets its account ID too: `<account>-<account id>-<role>`. An account
/// name with nothing left of it is replaced by the account ID. Names depend only on the list,
/// never on the order it came in.
fn names(accounts: &[SsoAccount]) -> Vec<NewProfile> {
    // One entry per account ID, whatever the daemon sent.
    let mut by_id: BTreeMap<&str, (&str, BTreeSet<&str>)> = BTreeMap::new();
    for a in accounts {
        let entry = by_id
            .entry(&a.account_id)
            .or_insert((&a.account_name, BTreeSet::new()));
        entry.1.extend(a.roles.iter().map(String::as_str));
    }
    let slug_of = |id: &str, name: &str| {
        let slug = slug(name, ACCOUNT_SLUG_MAX);
        if slug.is_empty() { id.to_owned() } else { slug }
    };
    let mut ids_per_slug: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (id, (name, _)) in &by_id {
        ids_per_slug
            .entry(slug_of(id, name))
            .or_default()
            .insert(id);
    }
    let mut out = Vec::new();
    for (id, (name, roles)) in &by_id {
        let account = slug_of(id, name);
        let shared = ids_per_slug.get(&account).is_some_and(|ids| ids.len() > 1);
        for role in roles {
            let role_part: String = sanitize_role(role).chars().take(ROLE_MAX).collect();
            let id_part = if shared { 1 + id.len() } else { 0 };
            let room = NAME_MAX.saturating_sub(1 + role_part.len() + id_part);
            let mut account_part = cut(&account, room);
            if shared {
                account_part = format!("{account_part}-{id}");
            }
            out.push(NewProfile {
                profile: format!("{account_part}-{role_part}"),
                account_id: (*id).to_owned(),
                account_name: (*name).to_owned(),
                role_name: (*role).to_owned(),
            });
        }
    }
    out.sort_by(|a, b| {
        (a.account_name.to_lowercase(), &a.account_id, &a.role_name).cmp(&(
            b.account_name.to_lowercase(),
            &b.account_id,
            &b.role_name,
        ))
    });
    out
}

/// `Staging (EU) – Shared` → `staging-eu-shared`, at most `max` characters.
fn slug(name: &str, max: usize) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    cut(&out, max)
}

/// The first `max` characters (all ASCII here), without a dangling '-'.
fn cut(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

fn sanitize_role(role: &str) -> String {
    role.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn report(path: &Path, plan: &Plan, accounts: &[SsoAccount], dry_run: bool, diff: &str) {
    let pairs: usize = accounts.iter().map(|a| a.roles.len()).sum();
    if pairs == 0 {
        println!("IAM Identity Center offers you no account roles: nothing to import");
        return;
    }
    let width = plan
        .added
        .iter()
        .map(|p| p.profile.len())
        .max()
        .unwrap_or(0);
    if dry_run {
        // The diff alone on stdout (it applies with `patch`); the rest on stderr.
        print!("{diff}");
        eprintln!(
            "dry run: would add {} profiles to {} and skip {}; nothing was written",
            plan.added.len(),
            path.display(),
            plan.skipped.len()
        );
    } else if plan.added.is_empty() {
        println!(
            "nothing to add to {}: every account role is configured or its name is taken",
            path.display()
        );
    } else {
        println!("added {} profiles to {}:", plan.added.len(), path.display());
        for p in &plan.added {
            println!(
                "  {:width$}  {} ({}) {}",
                p.profile, p.account_name, p.account_id, p.role_name
            );
        }
    }
    if !plan.skipped.is_empty() {
        let print = |line: String| {
            if dry_run {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        };
        print(format!("skipped {}:", plan.skipped.len()));
        for s in &plan.skipped {
            print(format!(
                "  {}/{} ({}): {}",
                s.account_id,
                s.role_name,
                s.account_name,
                s.reason.describe()
            ));
        }
    }
    if !dry_run && !plan.added.is_empty() {
        println!("credd-daemon reloads the config by itself; `credd profiles` lists them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, name: &str, roles: &[&str]) -> SsoAccount {
        SsoAccount {
            account_id: id.into(),
            account_name: name.into(),
            email: Some(format!("aws+{id}@acme.example")),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn profile_names(accounts: &[SsoAccount]) -> Vec<String> {
        names(accounts).into_iter().map(|p| p.profile).collect()
    }

    /// The daemon's rule (`check_name` in daemon/src/config/mod.rs).
    fn valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    }

    #[test]
    fn names_are_account_slug_and_role() {
        let accounts = [
            account(
                "222222222222",
                "Staging",
                &["AdministratorAccess", "ReadOnly"],
            ),
            account("333333333333", "Prod (EU) – Payments", &["Deploy+Ops@x"]),
        ];
        assert_eq!(
            profile_names(&accounts),
            [
                "prod-eu-payments-Deploy-Ops-x",
                "staging-AdministratorAccess",
                "staging-ReadOnly",
            ]
        );
    }

    #[test]
    fn names_are_stable_whatever_the_order() {
        let mut accounts = vec![
            account(
                "222222222222",
                "Staging",
                &["ReadOnly", "AdministratorAccess"],
            ),
            account("111111111111", "Audit", &["Auditor"]),
            account("444444444444", "staging", &["ReadOnly"]),
        ];
        let first = names(&accounts);
        accounts.reverse();
        for a in &mut accounts {
            a.roles.reverse();
        }
        assert_eq!(names(&accounts), first);
    }

    #[test]
    fn accounts_with_the_same_slug_are_told_apart_by_id() {
        let accounts = [
            account("222222222222", "Staging", &["ReadOnly"]),
            account("444444444444", "staging!", &["ReadOnly"]),
            account("555555555555", "Sandbox", &["ReadOnly"]),
        ];
        assert_eq!(
            profile_names(&accounts),
            [
                "sandbox-ReadOnly",
                "staging-222222222222-ReadOnly",
                "staging-444444444444-ReadOnly",
            ]
        );
    }

    #[test]
    fn every_name_is_valid_even_from_odd_input() {
        let long = "A very long account name that goes on and on, well past any limit";
        let accounts = [
            account("666666666666", "生产", &["Admin"]),
            account("777777777777", "...", &["x"]),
            account("888888888888", long, &["AWSAdministratorAccessForEveryone"]),
            account("999999999999", long, &["AWSAdministratorAccessForEveryone"]),
            account("123456789012", "-Dev-", &[".hidden", "with space"]),
        ];
        let names = profile_names(&accounts);
        for name in &names {
            assert!(valid_name(name), "{name:?}");
        }
        assert!(
            names.contains(&"666666666666-Admin".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"dev-.hidden".to_owned()), "{names:?}");
        assert!(names.contains(&"dev-with-space".to_owned()), "{names:?}");
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    const CONFIG: &str = r#"# credd config — hand-written
default_profile = "staging-AdministratorAccess"

[access]
source = "sso"          # Identity Center
sso_session = "acme"
sso_start_url = "https://acme.awsapps.com/start"
sso_region = "us-east-1"

[profiles.staging-AdministratorAccess]   # mine
sso_account_id = "222222222222"
sso_role_name = "AdministratorAccess"

[profiles.audit]
sso_account_id = "111111111111"
sso_role_name = "Auditor"

[profiles.prod-ReadOnly]
role_arn = "arn:aws:iam::333333333333:role/ReadOnly"

[daemon]
imds = true
"#;

    fn org() -> Vec<SsoAccount> {
        vec![
            account("111111111111", "Audit", &["Auditor"]),
            account(
                "222222222222",
                "Staging",
                &["AdministratorAccess", "ReadOnly"],
            ),
            account("333333333333", "Prod", &["ReadOnly", "Deploy"]),
        ]
    }

    #[test]
    fn nothing_configured_is_clobbered() {
        let plan = plan(CONFIG, &org()).unwrap();
        let added: Vec<_> = plan.added.iter().map(|p| p.profile.as_str()).collect();
        assert_eq!(added, ["prod-Deploy", "staging-ReadOnly"]);
        assert_eq!(
            plan.skipped
                .iter()
                .map(|s| (s.account_id.as_str(), s.role_name.as_str(), &s.reason))
                .collect::<Vec<_>>(),
            [
                (
                    "111111111111",
                    "Auditor",
                    &SkipReason::AlreadyConfigured {
                        profile: "audit".into()
                    }
                ),
                (
                    "333333333333",
                    "ReadOnly",
                    &SkipReason::NameTaken {
                        profile: "prod-ReadOnly".into()
                    }
                ),
                (
                    "222222222222",
                    "AdministratorAccess",
                    &SkipReason::AlreadyConfigured {
                        profile: "staging-AdministratorAccess".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn the_edit_adds_tables_after_the_profiles_and_keeps_everything_else() {
        let plan = plan(CONFIG, &org()).unwrap();
        let expected = CONFIG.replace(
            "\n[daemon]\n",
            r#"
# Prod (333333333333), from IAM Identity Center
[profiles.prod-Deploy]
sso_account_id = "333333333333"
sso_role_name = "Deploy"

# Staging (222222222222), from IAM Identity Center
[profiles.staging-ReadOnly]
sso_account_id = "222222222222"
sso_role_name = "ReadOnly"

[daemon]
"#,
        );
        assert_eq!(plan.text, expected);
        // The result is what the daemon will parse, and a second import adds nothing.
        let again = super::plan(&plan.text, &org()).unwrap();
        assert!(again.added.is_empty());
        assert_eq!(again.text, plan.text);
    }

    #[test]
    fn a_config_without_profiles_gets_them_at_the_end() {
        let text = "[access]\nsource = \"sso\"";
        let plan = plan(text, &[account("222222222222", "Staging", &["Admin"])]).unwrap();
        assert_eq!(
            plan.text,
            "[access]\nsource = \"sso\"\n\n# Staging (222222222222), from IAM Identity \
             Center\n[profiles.staging-Admin]\nsso_account_id = \"222222222222\"\n\
             sso_role_name = \"Admin\"\n"
        );
    }

    #[test]
    fn an_import_with_nothing_new_leaves_the_text_alone() {
        let text = "[access]\nsource = \"sso\"";
        let plan = plan(text, &[]).unwrap();
        assert_eq!(plan.text, text);
        assert!(plan.added.is_empty() && plan.skipped.is_empty());
    }

    #[test]
    fn names_clashing_within_one_import_add_only_the_first() {
        let plan = plan("", &[account("222222222222", "Staging", &["A+B", "A=B"])]).unwrap();
        assert_eq!(plan.added.len(), 1);
        assert_eq!(plan.added[0].role_name, "A+B");
        assert_eq!(
            plan.skipped[0].reason,
            SkipReason::NameClash {
                profile: "staging-A-B".into(),
                with: "222222222222/A+B".into()
            }
        );
    }

    #[test]
    fn odd_configs_are_refused_not_mangled() {
        assert!(matches!(
            plan("[access\n", &org()),
            Err(EditError::NotToml(_))
        ));
        let not_table = Err(EditError::NotTable {
            key: "profiles".into(),
        });
        assert_eq!(plan("profiles = 3\n", &org()), not_table);
        assert_eq!(
            plan("profiles = { a = { role_arn = \"x\" } }\n", &org()),
            not_table
        );
    }
}
