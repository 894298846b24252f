//! `credd import --sso`: the profile the config would get for each account and role Identity
//! Center offers, named by the rule below and checked with the config's own checks, or why it is
//! left out: already configured (under any name), its name taken by another profile, or its name
//! clashing with another of the same import. A pure function of the loaded [`Config`] and the
//! account list; the client edits the file with what is proposed here.

use std::collections::{BTreeMap, BTreeSet};

use credd_proto::{ImportProposal, SsoAccount, SsoImportEntry};

use super::checks::{
    PROFILE_NAME_MAX as NAME_MAX, check_account_id, check_name, check_sso_role_name,
};
use super::{Config, ProfileKind};

/// An account name's part of a profile name is cut to this, so the role name always fits.
const ACCOUNT_SLUG_MAX: usize = 32;
/// Identity Center permission set names have at most 32 characters; anything longer is cut.
const ROLE_MAX: usize = 40;

/// What `credd import --sso` does with every account role of `accounts` under `config`, sorted
/// by account name, then account ID, then role; each account role once, however often listed.
///
/// Each added profile gets the Identity Center Region as its `region`: `credd exec`/`env` export
/// it, and the AWS CLI and SDKs refuse to run without one.
pub fn sso_import(config: &Config, accounts: &[SsoAccount]) -> Vec<SsoImportEntry> {
    let region = config.access.sso().map(|sso| sso.region.clone());
    let mut added: Vec<&Named> = Vec::new();
    let named = names(accounts);
    let mut out = Vec::with_capacity(named.len());
    for candidate in &named {
        let proposal = if let Some(profile) = configured_as(config, candidate) {
            ImportProposal::AlreadyConfigured { profile }
        } else if let Err(why) = check(candidate) {
            ImportProposal::Invalid {
                profile: candidate.profile.clone(),
                why,
            }
        } else if config.profiles.contains_key(&candidate.profile) {
            ImportProposal::NameTaken {
                profile: candidate.profile.clone(),
            }
        } else if let Some(first) = added.iter().find(|a| a.profile == candidate.profile) {
            ImportProposal::NameClash {
                profile: candidate.profile.clone(),
                with: format!("{}/{}", first.account_id, first.role_name),
            }
        } else {
            added.push(candidate);
            let mut fields = vec![
                ("sso_account_id".into(), candidate.account_id.clone()),
                ("sso_role_name".into(), candidate.role_name.clone()),
            ];
            if let Some(region) = &region {
                fields.push(("region".into(), region.clone()));
            }
            ImportProposal::Add {
                profile: candidate.profile.clone(),
                fields,
            }
        };
        out.push(SsoImportEntry {
            account_id: candidate.account_id.clone(),
            account_name: candidate.account_name.clone(),
            role_name: candidate.role_name.clone(),
            proposal,
        });
    }
    out
}

/// An account role and the profile name it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    profile: String,
    account_id: String,
    account_name: String,
    role_name: String,
}

/// The profile that is this account role already, if any.
fn configured_as(config: &Config, candidate: &Named) -> Option<String> {
    config.profiles.values().find_map(|p| match &p.kind {
        ProfileKind::Sso(role)
            if role.account_id == candidate.account_id && role.role_name == candidate.role_name =>
        {
            Some(p.name.clone())
        }
        _ => None,
    })
}

/// Whether the config would take the profile: its name, account ID and permission set name.
fn check(candidate: &Named) -> Result<(), String> {
    check_name(&candidate.profile).map_err(|msg| format!("profile name: {msg}"))?;
    check_account_id(&candidate.account_id)?;
    check_sso_role_name(&candidate.role_name)
}

/// Every account/role with its profile name, sorted by account name, then account ID, then role.
///
/// A name is `<account>-<role>`: the account name as a lowercase slug (letters, digits, '-'),
/// the role name with anything but letters, digits, '-', '_', '.' made '-'. When two accounts
/// give the same slug, each gets its account ID too: `<account>-<account id>-<role>`. An account
/// name with nothing left of it is replaced by the account ID. Names depend only on the list,
/// never on the order it came in.
fn names(accounts: &[SsoAccount]) -> Vec<Named> {
    // One entry per account ID, whatever Identity Center sent.
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
            out.push(Named {
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

#[cfg(test)]
mod tests {
    use super::super::testing::ok;
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
    fn every_name_passes_the_configs_own_check_even_from_odd_input() {
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
            assert_eq!(check_name(name), Ok(()), "{name:?}");
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

    const CONFIG: &str = r#"
default_profile = "staging-AdministratorAccess"

[access]
source = "sso"
sso_session = "acme"
sso_start_url = "https://acme.awsapps.com/start"
sso_region = "us-east-1"
sso_account_id = "111111111111"
sso_role_name = "AccessAdmin"

[profiles.staging-AdministratorAccess]
sso_account_id = "222222222222"
sso_role_name = "AdministratorAccess"

[profiles.audit]
sso_account_id = "111111111111"
sso_role_name = "Auditor"

[profiles.prod-ReadOnly]
role_arn = "arn:aws:iam::333333333333:role/ReadOnly"
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

    /// `(account/role, proposal)` of every entry, in order.
    fn proposals(entries: &[SsoImportEntry]) -> Vec<(String, ImportProposal)> {
        entries
            .iter()
            .map(|e| {
                (
                    format!("{}/{}", e.account_id, e.role_name),
                    e.proposal.clone(),
                )
            })
            .collect()
    }

    /// What is proposed under CONFIG: the profile carries the Identity Center Region.
    fn add(profile: &str, account_id: &str, role_name: &str) -> ImportProposal {
        ImportProposal::Add {
            profile: profile.into(),
            fields: vec![
                ("sso_account_id".into(), account_id.into()),
                ("sso_role_name".into(), role_name.into()),
                ("region".into(), "us-east-1".into()),
            ],
        }
    }

    #[test]
    fn nothing_configured_is_proposed_again_or_clobbered() {
        let entries = sso_import(&ok(CONFIG), &org());
        assert_eq!(
            proposals(&entries),
            [
                (
                    "111111111111/Auditor".to_owned(),
                    ImportProposal::AlreadyConfigured {
                        profile: "audit".into()
                    }
                ),
                (
                    "333333333333/Deploy".to_owned(),
                    add("prod-Deploy", "333333333333", "Deploy")
                ),
                (
                    "333333333333/ReadOnly".to_owned(),
                    ImportProposal::NameTaken {
                        profile: "prod-ReadOnly".into()
                    }
                ),
                (
                    "222222222222/AdministratorAccess".to_owned(),
                    ImportProposal::AlreadyConfigured {
                        profile: "staging-AdministratorAccess".into()
                    }
                ),
                (
                    "222222222222/ReadOnly".to_owned(),
                    add("staging-ReadOnly", "222222222222", "ReadOnly")
                ),
            ]
        );
        assert_eq!(entries[1].account_name, "Prod");
    }

    #[test]
    fn names_clashing_within_one_import_add_only_the_first() {
        let entries = sso_import(
            &ok(CONFIG),
            &[account("222222222222", "Staging", &["A+B", "A=B"])],
        );
        assert_eq!(
            proposals(&entries),
            [
                (
                    "222222222222/A+B".to_owned(),
                    add("staging-A-B", "222222222222", "A+B")
                ),
                (
                    "222222222222/A=B".to_owned(),
                    ImportProposal::NameClash {
                        profile: "staging-A-B".into(),
                        with: "222222222222/A+B".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn what_the_config_would_refuse_is_never_proposed() {
        let entries = sso_import(
            &ok(CONFIG),
            &[
                account("4444", "Odd", &["Admin"]),
                account("555555555555", "Odd", &["Admin/Ops"]),
                account("666666666666", "Fine", &["Admin"]),
            ],
        );
        let [fine, short_id, slash] = &proposals(&entries)[..] else {
            panic!("{entries:?}")
        };
        assert!(
            matches!(&short_id.1, ImportProposal::Invalid { profile, why }
                if profile == "odd-4444-Admin" && why.contains("12-digit AWS account ID")),
            "{short_id:?}"
        );
        assert_eq!(fine.1, add("fine-Admin", "666666666666", "Admin"));
        assert!(
            matches!(&slash.1, ImportProposal::Invalid { why, .. } if why.contains("permission set name")),
            "{slash:?}"
        );
    }

    #[test]
    fn no_accounts_no_entries() {
        assert_eq!(sso_import(&ok(CONFIG), &[]), []);
    }
}
