//! `credd profiles`: the configured profiles, the current one marked, each with where its
//! credentials come from (the role it assumes, or its Identity Center account and role).

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{ProfileInfo, Request, Response};
use serde_json::json;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Profiles;
    let (current, profiles) = match ask(paths, &request)? {
        Response::Profiles { current, profiles } => (current, profiles),
        other => return Err(unexpected(&request, other)),
    };
    if json {
        output::json(&json!({ "current": current, "profiles": profiles }));
    } else {
        print!("{}", render(current.as_deref(), &profiles));
    }
    Ok(ExitCode::SUCCESS)
}

/// `arn:aws:iam::...:role/X` for an AssumeRole profile, `Identity Center ACCOUNT/ROLE` for an
/// Identity Center one.
pub fn source(p: &ProfileInfo) -> String {
    match (&p.role_arn, &p.sso_role) {
        (Some(arn), _) => arn.clone(),
        (None, Some(sso)) => format!("Identity Center {sso}"),
        (None, None) => String::new(),
    }
}

fn render(current: Option<&str>, profiles: &[ProfileInfo]) -> String {
    if profiles.is_empty() {
        return "no profiles configured\n".to_owned();
    }
    let rows: Vec<(&ProfileInfo, String)> = profiles.iter().map(|p| (p, source(p))).collect();
    let name_width = profiles.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let source_width = rows.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
    let region_width = profiles
        .iter()
        .filter_map(|p| p.region.as_ref().map(String::len))
        .max();
    let mut out = String::new();
    for (p, source) in rows {
        let mark = if current == Some(p.name.as_str()) {
            "*"
        } else {
            " "
        };
        let mut line = format!("{mark} {:name_width$}  {source:source_width$}", p.name);
        if let Some(width) = region_width {
            let region = p.region.as_deref().unwrap_or("");
            line.push_str(&format!("  {region:width$}"));
        }
        if let Some(v) = &p.via {
            line.push_str(&format!("  via {v}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, role_arn: Option<&str>, sso_role: Option<&str>) -> ProfileInfo {
        ProfileInfo {
            name: name.into(),
            role_arn: role_arn.map(Into::into),
            sso_role: sso_role.map(Into::into),
            via: None,
            region: Some("eu-west-1".into()),
        }
    }

    #[test]
    fn identity_center_profiles_name_account_and_role() {
        let mut audit = profile(
            "prod-audit",
            Some("arn:aws:iam::333333333333:role/Auditor"),
            None,
        );
        audit.via = Some("staging".into());
        audit.region = None;
        let profiles = [
            audit,
            profile("staging", None, Some("222222222222/AdministratorAccess")),
        ];
        assert_eq!(
            render(Some("staging"), &profiles),
            "  prod-audit  arn:aws:iam::333333333333:role/Auditor                       via staging\n\
             * staging     Identity Center 222222222222/AdministratorAccess  eu-west-1\n"
        );
        assert_eq!(render(None, &[]), "no profiles configured\n");
    }
}
