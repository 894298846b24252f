//! Edits of the config file that only ever add: new tables (`[profiles.NAME]`, `[access]`...)
//! written into the TOML text with its comments and layout kept, checked to add lines and change
//! none, shown as a unified diff, and written in one rename. It knows the file's text, not what
//! the tables mean: a table already in the text is left as it is and reported, never overwritten.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value};

/// A table to add, e.g. `[profiles.staging-ReadOnly]` with its keys.
#[derive(Debug, Clone)]
pub struct NewTable {
    /// Its dotted path: `["profiles", "staging-ReadOnly"]`, `["access"]`.
    pub path: Vec<String>,
    /// One line written as a `#` comment above it (made printable).
    pub comment: Option<String>,
    /// Its keys and values, in this order.
    pub fields: Vec<(String, Value)>,
}

/// What [`add_tables`] makes of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The text with the new tables; equal to the input when nothing is added.
    pub text: String,
    /// The tables (indexes into those asked for) already in the text, left as they are.
    pub present: Vec<usize>,
}

/// Why a config text cannot take the new tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("it is not valid TOML: {0}")]
    NotToml(String),
    /// `key` holds something other than a `[key.NAME]` table (a value, an inline table).
    #[error("`{key}` is not a table of [{key}.NAME] tables")]
    NotTable { key: String },
    /// A guard: the edit must only ever add lines.
    #[error("the edit would change existing lines (a bug in credd); nothing was written")]
    WouldChange,
}

/// Why the edited text was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file (or a symlink's target) cannot be found or read again.
    #[error("reading {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Someone saved the file since it was read: their edit wins, nothing was written.
    #[error("{} changed since it was read; nothing was written", .path.display())]
    ChangedMeanwhile { path: PathBuf },
}

/// `text` with every table of `tables` that it lacks added after its siblings (new parents go at
/// the end), each after a blank line and its comment. Tables already there are reported in
/// [`Edit::present`]; a parent that is not a table (`profiles = 3`) refuses the edit.
pub fn add_tables(text: &str, tables: &[NewTable]) -> Result<Edit, EditError> {
    // toml_edit ends the last line; doing it first keeps the edit a pure addition.
    let mut doc: DocumentMut =
        with_final_newline(text)
            .parse()
            .map_err(|e: toml_edit::TomlError| {
                EditError::NotToml(e.to_string().trim_end().to_owned())
            })?;
    let mut present = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let Some((name, parents)) = table.path.split_last() else {
            continue;
        };
        let parent = parent_table(doc.as_table_mut(), parents)?;
        if parent.contains_key(name) {
            present.push(i);
            continue;
        }
        let mut new = Table::new();
        for (key, value) in &table.fields {
            new.insert(key, Item::Value(value.clone()));
        }
        let comment = match &table.comment {
            Some(c) => format!("\n# {}\n", printable(c)),
            None => "\n".to_owned(),
        };
        new.decor_mut().set_prefix(comment);
        parent.insert(name, Item::Table(new));
    }
    if present.len() == tables.len() {
        return Ok(Edit {
            text: text.to_owned(),
            present,
        });
    }
    let new = doc.to_string();
    if !only_adds(text, &new) {
        return Err(EditError::WouldChange);
    }
    Ok(Edit { text: new, present })
}

/// The table at `path` under `root`, made (implicit: no header of its own) where missing.
fn parent_table<'a>(root: &'a mut Table, path: &[String]) -> Result<&'a mut Table, EditError> {
    let mut table = root;
    for (depth, key) in path.iter().enumerate() {
        table = table
            .entry(key)
            .or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            })
            .as_table_mut()
            .ok_or_else(|| EditError::NotTable {
                key: path[..=depth].join("."),
            })?;
    }
    Ok(table)
}

fn with_final_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

/// A comment as it may appear after `#`: one line, no control characters.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Whether `new` is `old` with lines added and none changed or removed (a final newline aside).
fn only_adds(old: &str, new: &str) -> bool {
    let old = with_final_newline(old);
    similar::TextDiff::from_lines(old.as_str(), new)
        .ops()
        .iter()
        .all(|op| {
            matches!(
                op,
                similar::DiffOp::Equal { .. } | similar::DiffOp::Insert { .. }
            )
        })
}

/// A unified diff of the edit, as a dry run prints it (it applies with `patch`).
pub fn diff(old: &str, new: &str, path: &Path) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&name, &name)
        .to_string()
}

/// Replaces the file in one rename, so the daemon (which watches it) never reads half of it. A
/// symlinked config stays a symlink: its target is replaced, with the target's mode. An edit
/// saved meanwhile by someone else (the file no longer reads `old`) wins: nothing is written.
pub fn write_atomically(path: &Path, old: &str, new: &str) -> Result<(), WriteError> {
    let target = std::fs::canonicalize(path).map_err(|source| WriteError::Read {
        path: path.to_owned(),
        source,
    })?;
    let failed = |source| WriteError::Write {
        path: target.clone(),
        source,
    };
    let dir = target.parent().unwrap_or(Path::new("/"));
    let mode = std::fs::metadata(&target)
        .map_err(failed)?
        .permissions()
        .mode()
        & 0o7777;
    let mut tmp = tempfile::Builder::new()
        .prefix(".credd-import-")
        .suffix(".toml")
        .tempfile_in(dir)
        .map_err(failed)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(failed)?;
    tmp.write_all(new.as_bytes()).map_err(failed)?;
    tmp.as_file().sync_all().map_err(failed)?;
    if std::fs::read_to_string(&target).map_err(failed)? != old {
        return Err(WriteError::ChangedMeanwhile { path: target });
    }
    tmp.persist(&target).map_err(|e| failed(e.error))?;
    // The rename itself is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes a config file that does not exist yet (0600, its directory made 0700 when missing), in
/// one rename that never replaces a file someone else created meanwhile.
pub fn create_new(path: &Path, text: &str) -> Result<(), WriteError> {
    let failed = |source| WriteError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".credd-import-")
        .suffix(".toml")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(failed)?;
    tmp.write_all(text.as_bytes()).map_err(failed)?;
    tmp.as_file().sync_all().map_err(failed)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            WriteError::ChangedMeanwhile {
                path: path.to_owned(),
            }
        } else {
            failed(e.error)
        }
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# credd config — hand-written
default_profile = "staging-AdministratorAccess"

[access]
source = "sso"          # Identity Center
sso_session = "acme"

[profiles.staging-AdministratorAccess]   # mine
sso_account_id = "222222222222"
sso_role_name = "AdministratorAccess"

[profiles.prod-ReadOnly]
role_arn = "arn:aws:iam::333333333333:role/ReadOnly"

[daemon]
imds = true
"#;

    fn profile(name: &str, comment: Option<&str>, fields: &[(&str, &str)]) -> NewTable {
        NewTable {
            path: vec!["profiles".into(), name.into()],
            comment: comment.map(str::to_owned),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect(),
        }
    }

    fn two() -> Vec<NewTable> {
        vec![
            profile(
                "prod-Deploy",
                Some("Prod (333333333333), from IAM Identity Center"),
                &[
                    ("sso_account_id", "333333333333"),
                    ("sso_role_name", "Deploy"),
                ],
            ),
            profile(
                "b",
                None,
                &[("role_arn", "arn:aws:iam::444444444444:role/B")],
            ),
        ]
    }

    #[test]
    fn tables_go_after_their_siblings_and_everything_else_is_kept() {
        let edit = add_tables(CONFIG, &two()).unwrap();
        let expected = CONFIG.replace(
            "\n[daemon]\n",
            r#"
# Prod (333333333333), from IAM Identity Center
[profiles.prod-Deploy]
sso_account_id = "333333333333"
sso_role_name = "Deploy"

[profiles.b]
role_arn = "arn:aws:iam::444444444444:role/B"

[daemon]
"#,
        );
        assert_eq!(edit.text, expected);
        assert!(edit.present.is_empty());
        // Again: everything is there, nothing changes.
        let again = add_tables(&edit.text, &two()).unwrap();
        assert_eq!(again.present, [0, 1]);
        assert_eq!(again.text, edit.text);
    }

    #[test]
    fn a_table_already_in_the_text_is_reported_never_overwritten() {
        let tables = [
            profile("prod-ReadOnly", None, &[("sso_account_id", "999999999999")]),
            profile("new", None, &[("role_arn", "x")]),
        ];
        let edit = add_tables(CONFIG, &tables).unwrap();
        assert_eq!(edit.present, [0]);
        assert!(edit.text.contains("[profiles.prod-ReadOnly]\nrole_arn = "));
        assert!(!edit.text.contains("999999999999"), "{}", edit.text);
        assert!(edit.text.contains("\n[profiles.new]\nrole_arn = \"x\"\n"));
    }

    #[test]
    fn a_text_without_the_parent_gets_it_at_the_end_and_a_top_level_table_works_too() {
        let text = "[access]\nsource = \"sso\"";
        let tables = [profile(
            "staging-Admin",
            Some("Staging (222222222222), from IAM Identity Center"),
            &[
                ("sso_account_id", "222222222222"),
                ("sso_role_name", "Admin"),
            ],
        )];
        let edit = add_tables(text, &tables).unwrap();
        assert_eq!(
            edit.text,
            "[access]\nsource = \"sso\"\n\n# Staging (222222222222), from IAM Identity \
             Center\n[profiles.staging-Admin]\nsso_account_id = \"222222222222\"\n\
             sso_role_name = \"Admin\"\n"
        );
        let access = NewTable {
            path: vec!["access".into()],
            comment: Some("from ~/.aws/config".into()),
            fields: vec![("source".into(), Value::from("iam-user"))],
        };
        let edit = add_tables("default_profile = \"a\"\n", std::slice::from_ref(&access)).unwrap();
        assert_eq!(
            edit.text,
            "default_profile = \"a\"\n\n# from ~/.aws/config\n[access]\nsource = \"iam-user\"\n"
        );
        assert_eq!(add_tables(text, &[access]).unwrap().present, [0]);
    }

    #[test]
    fn nothing_to_add_leaves_the_text_alone() {
        let text = "[access]\nsource = \"sso\"";
        let edit = add_tables(text, &[]).unwrap();
        assert_eq!(edit.text, text);
        assert!(edit.present.is_empty());
    }

    #[test]
    fn comments_stay_one_printable_line() {
        let tables = [profile("a", Some("evil\n[access]\rsource = 1"), &[])];
        let edit = add_tables("", &tables).unwrap();
        assert_eq!(edit.text, "\n# evil [access] source = 1\n[profiles.a]\n");
    }

    #[test]
    fn odd_configs_are_refused_not_mangled() {
        assert!(matches!(
            add_tables("[access\n", &two()),
            Err(EditError::NotToml(_))
        ));
        let not_table = EditError::NotTable {
            key: "profiles".into(),
        };
        assert_eq!(add_tables("profiles = 3\n", &two()), Err(not_table.clone()));
        assert_eq!(
            add_tables("profiles = { a = { role_arn = \"x\" } }\n", &two()),
            Err(not_table.clone())
        );
        assert_eq!(
            not_table.to_string(),
            "`profiles` is not a table of [profiles.NAME] tables"
        );
    }

    #[test]
    fn the_diff_only_adds_lines() {
        let edit = add_tables(CONFIG, &two()).unwrap();
        let diff = diff(CONFIG, &edit.text, Path::new("/c/config.toml"));
        assert!(
            diff.starts_with("--- /c/config.toml\n+++ /c/config.toml\n@@ "),
            "{diff}"
        );
        assert!(diff.contains("\n+[profiles.prod-Deploy]\n"), "{diff}");
        assert!(!diff.lines().skip(2).any(|l| l.starts_with('-')), "{diff}");
    }

    #[test]
    fn writing_replaces_the_file_atomically_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "old\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("config.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        write_atomically(&link, "old\n", "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );

        // Someone saved in between: nothing is written.
        let e = write_atomically(&link, "old\n", "newer\n").unwrap_err();
        assert!(matches!(e, WriteError::ChangedMeanwhile { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
    }
}
