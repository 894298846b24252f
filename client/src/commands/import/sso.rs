//! `credd import --sso`: a `[profiles.NAME]` table for every account and role IAM Identity Center
//! offers the logged-in user, added to the config file the daemon uses, whose comments and layout
//! stay as they are. Nothing is ever overwritten: a name already in use, or an account/role pair
//! already configured under any name, is skipped and reported.
//!
//! The daemon names the profiles and decides what to skip, by its own rules and the config it has
//! loaded (`Request::SsoImport`); this verb edits the file's text with [`crate::config_edit`],
//! which leaves alone any table the file has gained since, and reports what was done. The daemon
//! notices the written file and reloads it by itself.

use std::path::Path;
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{ImportProposal, Request, Response, SsoImportEntry};
use serde::Serialize;

use crate::commands::{ask, unexpected};
use crate::config_edit::{self, NewTable};
use crate::error::ClientError;
use crate::output;

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
    /// The daemon's config checks would refuse the profile.
    Invalid { profile: String, why: String },
    /// The file has a table of this name the daemon has not loaded yet (edited since): left as
    /// it is.
    AlreadyInFile { profile: String },
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
            SkipReason::Invalid { profile, why } => {
                format!("profile {profile} would not be valid ({why}); add it by hand")
            }
            SkipReason::AlreadyInFile { profile } => format!(
                "profile {profile} is already in the file, edited since the daemon read it \
                 (left alone)"
            ),
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
    let request = Request::SsoImport;
    let (accounts, entries) = match ask(paths, &request)? {
        Response::SsoImport { accounts, entries } => (accounts, entries),
        other => return Err(unexpected(&request, other)),
    };
    let path = super::daemon_config_path(paths)?;
    let old = std::fs::read_to_string(&path).map_err(|source| ClientError::ImportRead {
        path: path.clone(),
        source,
    })?;
    let plan = plan(&old, entries).map_err(|why| ClientError::ImportEdit {
        path: path.clone(),
        why,
    })?;
    let diff = config_edit::diff(&old, &plan.text, &path);
    if !dry_run && !plan.added.is_empty() {
        super::write(&path, &old, &plan.text)?;
    }
    if json {
        output::json(&serde_json::json!({
            "config": path,
            "dry_run": dry_run,
            "accounts": accounts,
            "added": plan.added,
            "skipped": plan.skipped,
        }));
    } else {
        report(&path, &plan, dry_run, &diff);
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon's proposals applied to `text`: the profiles it proposes to add become
/// `[profiles.NAME]` tables, except those the text already has; the rest is reported, in the
/// daemon's order.
pub fn plan(text: &str, entries: Vec<SsoImportEntry>) -> Result<Plan, config_edit::EditError> {
    let tables: Vec<NewTable> = entries
        .iter()
        .filter_map(|e| match &e.proposal {
            ImportProposal::Add { profile, fields } => Some(NewTable {
                path: vec!["profiles".to_owned(), profile.clone()],
                comment: Some(format!(
                    "{} ({}), from IAM Identity Center",
                    e.account_name, e.account_id
                )),
                fields: fields
                    .iter()
                    .map(|(key, value)| (key.clone(), value.into()))
                    .collect(),
            }),
            _ => None,
        })
        .collect();
    let edit = config_edit::add_tables(text, &tables)?;

    let (mut added, mut skipped) = (Vec::new(), Vec::new());
    let mut table = 0;
    for entry in entries {
        let reason = match entry.proposal {
            ImportProposal::Add { profile, .. } => {
                let present = edit.present.contains(&table);
                table += 1;
                if !present {
                    added.push(NewProfile {
                        profile,
                        account_id: entry.account_id,
                        account_name: entry.account_name,
                        role_name: entry.role_name,
                    });
                    continue;
                }
                SkipReason::AlreadyInFile { profile }
            }
            ImportProposal::AlreadyConfigured { profile } => {
                SkipReason::AlreadyConfigured { profile }
            }
            ImportProposal::NameTaken { profile } => SkipReason::NameTaken { profile },
            ImportProposal::NameClash { profile, with } => SkipReason::NameClash { profile, with },
            ImportProposal::Invalid { profile, why } => SkipReason::Invalid { profile, why },
        };
        skipped.push(Skipped {
            account_id: entry.account_id,
            account_name: entry.account_name,
            role_name: entry.role_name,
            reason,
        });
    }
    Ok(Plan {
        added,
        skipped,
        text: edit.text,
    })
}

fn report(path: &Path, plan: &Plan, dry_run: bool, diff: &str) {
    if plan.added.is_empty() && plan.skipped.is_empty() {
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

    fn entry(id: &str, name: &str, role: &str, proposal: ImportProposal) -> SsoImportEntry {
        SsoImportEntry {
            account_id: id.into(),
            account_name: name.into(),
            role_name: role.into(),
            proposal,
        }
    }

    fn add(profile: &str, id: &str, role: &str) -> ImportProposal {
        ImportProposal::Add {
            profile: profile.into(),
            fields: vec![
                ("sso_account_id".into(), id.into()),
                ("sso_role_name".into(), role.into()),
            ],
        }
    }

    const CONFIG: &str = r#"# credd config — hand-written
[access]
source = "sso"          # Identity Center

[profiles.audit]
sso_account_id = "111111111111"
sso_role_name = "Auditor"

[daemon]
imds = true
"#;

    /// What the daemon proposes for CONFIG: one configured, two to add.
    fn proposals() -> Vec<SsoImportEntry> {
        vec![
            entry(
                "111111111111",
                "Audit",
                "Auditor",
                ImportProposal::AlreadyConfigured {
                    profile: "audit".into(),
                },
            ),
            entry(
                "333333333333",
                "Prod",
                "Deploy",
                add("prod-Deploy", "333333333333", "Deploy"),
            ),
            entry(
                "222222222222",
                "Staging",
                "ReadOnly",
                add("staging-ReadOnly", "222222222222", "ReadOnly"),
            ),
        ]
    }

    #[test]
    fn the_proposed_profiles_are_added_with_their_account_as_a_comment() {
        let plan = plan(CONFIG, proposals()).unwrap();
        let added: Vec<_> = plan.added.iter().map(|p| p.profile.as_str()).collect();
        assert_eq!(added, ["prod-Deploy", "staging-ReadOnly"]);
        assert_eq!(
            plan.skipped
                .iter()
                .map(|s| (s.account_id.as_str(), &s.reason))
                .collect::<Vec<_>>(),
            [(
                "111111111111",
                &SkipReason::AlreadyConfigured {
                    profile: "audit".into()
                }
            )]
        );
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
    }

    #[test]
    fn a_profile_the_file_gained_since_the_daemon_read_it_is_left_alone() {
        // The same import again before the daemon reloaded: the daemon still proposes both.
        let first = plan(CONFIG, proposals()).unwrap();
        let again = plan(&first.text, proposals()).unwrap();
        assert!(again.added.is_empty());
        assert_eq!(again.text, first.text);
        assert_eq!(
            again.skipped[1].reason,
            SkipReason::AlreadyInFile {
                profile: "prod-Deploy".into()
            }
        );
        assert!(
            again.skipped[1]
                .reason
                .describe()
                .contains("already in the file")
        );
        // A hand-written table of that name, whatever it holds, is never overwritten.
        let mine = format!("{CONFIG}\n[profiles.staging-ReadOnly]\nrole_arn = \"mine\"\n");
        let plan = plan(&mine, proposals()).unwrap();
        assert_eq!(plan.added.len(), 1);
        assert!(
            plan.text
                .contains("\n[profiles.staging-ReadOnly]\nrole_arn = \"mine\"\n"),
            "{}",
            plan.text
        );
        assert_eq!(plan.text.matches("staging-ReadOnly").count(), 1);
    }

    #[test]
    fn every_skip_reason_says_what_to_do() {
        let entries = vec![
            entry(
                "3",
                "Prod",
                "ReadOnly",
                ImportProposal::NameTaken {
                    profile: "prod-ReadOnly".into(),
                },
            ),
            entry(
                "2",
                "S",
                "A=B",
                ImportProposal::NameClash {
                    profile: "s-A-B".into(),
                    with: "2/A+B".into(),
                },
            ),
            entry(
                "4444",
                "Odd",
                "Admin",
                ImportProposal::Invalid {
                    profile: "odd-Admin".into(),
                    why: "expected a 12-digit AWS account ID".into(),
                },
            ),
        ];
        let plan = plan(CONFIG, entries).unwrap();
        assert_eq!(plan.text, CONFIG);
        let said: Vec<String> = plan.skipped.iter().map(|s| s.reason.describe()).collect();
        assert_eq!(
            said,
            [
                "profile prod-ReadOnly already exists for something else (left alone)",
                "would be named s-A-B like 2/A+B; add it by hand",
                "profile odd-Admin would not be valid (expected a 12-digit AWS account ID); add \
                 it by hand",
            ]
        );
        let json = serde_json::to_value(&plan.skipped[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "account_id": "2", "account_name": "S", "role_name": "A=B",
                "reason": "name_clash", "profile": "s-A-B", "with": "2/A+B",
            })
        );
    }

    #[test]
    fn a_file_that_cannot_take_profiles_is_refused_not_mangled() {
        assert_eq!(
            plan("profiles = 3\n", proposals()),
            Err(config_edit::EditError::NotTable {
                key: "profiles".into()
            })
        );
    }
}
