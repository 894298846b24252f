//! The "Examples:" at the end of the main verbs' `--help`, in one table rather than in each
//! verb's definition. A verb not defined (yet) is skipped.

/// (verb, examples): each line a command, then what it does. A verb of a verb is its path
/// (`docker run`).
const EXAMPLES: &[(&str, &str)] = &[
    (
        "status",
        "credd status                      the daemon, the session, every profile
  credd status --json | jq '.profiles[] | select(.state != \"fresh\")'",
    ),
    (
        "switch",
        "credd switch prod                 the current route (and a hooked shell's region) moves
  credd switch                      pick from the profiles, filtered as you type",
    ),
    (
        "env",
        "eval \"$(credd env --hook bash)\"   in ~/.bashrc: follow `credd switch`, region included
  eval \"$(credd env --hook zsh)\"    in ~/.zshrc
  credd env --hook fish | source    in ~/.config/fish/config.fish
  eval \"$(credd env prod)\"          this shell pinned to prod",
    ),
    (
        "exec",
        "credd exec prod terraform plan
  credd exec staging aws s3 ls --region eu-west-1
  credd exec prod -- env            `--` is optional",
    ),
    (
        "login",
        "credd login                       ask for the MFA code, or open the sign-in page
  credd login --device-code         over SSH: a URL and a code to approve on any device
  credd login --mfa-code - < code   the code on stdin, off the command line",
    ),
    (
        "import",
        "credd import --dry-run            profiles from ~/.aws/config, as a diff
  credd import --sso --dry-run      every account role Identity Center offers, as a diff
  credd import --sso                add them",
    ),
    (
        "console",
        "credd console                     the current profile's console in the browser
  credd console prod --destination s3
  credd console prod --print        the sign-in URL on stdout, to open elsewhere",
    ),
    (
        "key",
        "credd key add                     type the access key ID and secret (not echoed)
  credd key import                  move the key out of ~/.aws/credentials
  credd key rotate                  a new key in IAM, the old one deleted",
    ),
    (
        "doctor",
        "credd doctor                      every check, the problems first; exit 3 warning, 4 critical
  credd doctor --json | jq '.findings[] | select(.severity != \"ok\")'",
    ),
    (
        "audit",
        "credd audit                       which programs took which profiles, and when
  credd audit --since 1h --profile 'prod*'
  credd audit --route credential-process --json | jq '.[].cmdline'
  credd audit --follow              each credential as it is taken",
    ),
    (
        "docker",
        "credd docker setup                is the engine there, where containers reach credd
  credd docker run --profile staging -- amazon/aws-cli sts get-caller-identity
  (umask 077; credd docker env prod > .credd.env)
  credd docker revoke --all         cut every container off",
    ),
    (
        "docker run",
        "credd docker run --profile staging -- amazon/aws-cli sts get-caller-identity
  credd docker run -- -it --rm --network dev python:3.12
  CREDD_DOCKER=podman credd docker run --profile prod -- alpine",
    ),
    (
        "docker env",
        "(umask 077; credd docker env prod > .credd.env)
  docker run --env-file .credd.env amazon/aws-cli s3 ls
  compose:            env_file: .credd.env
  devcontainer.json:  \"runArgs\": [\"--env-file\", \"${localWorkspaceFolder}/.credd.env\"]",
    ),
    (
        "prompt",
        "PS1='[$(credd prompt)] \\w \\$ '     bash (zsh: setopt PROMPT_SUBST)
  function fish_right_prompt; credd prompt; end",
    ),
    (
        "completions",
        "source <(credd completions bash)  in ~/.bashrc
  source <(credd completions zsh)   in ~/.zshrc, after compinit
  credd completions fish | source   in ~/.config/fish/config.fish",
    ),
];

/// `cli` with each verb's examples after its help.
pub fn add(mut cli: clap::Command) -> clap::Command {
    for (verb, examples) in EXAMPLES {
        let path: Vec<&str> = verb.split(' ').collect();
        cli = add_at(cli, &path, examples);
    }
    cli
}

/// `cli` with `examples` after the help of its subcommand at `path`, when there is one.
fn add_at(cli: clap::Command, path: &[&str], examples: &str) -> clap::Command {
    match path {
        [] => cli.after_help(format!("Examples:\n  {examples}")),
        [verb, rest @ ..] if cli.find_subcommand(verb).is_some() => {
            cli.mut_subcommand(verb, |c| add_at(c, rest, examples))
        }
        _ => cli,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_verbs_end_their_help_with_examples() {
        let cli = add(clap::Command::new("credd")
            .subcommand(clap::Command::new("switch"))
            .subcommand(clap::Command::new("reload")));
        let mut switch = cli.find_subcommand("switch").unwrap().clone();
        let help = switch.render_help().to_string();
        assert!(
            help.ends_with(
                "  credd switch                      pick from the profiles, filtered as you type\n"
            ),
            "{help}"
        );
        assert!(help.contains("Examples:\n  credd switch prod "), "{help}");
        let mut reload = cli.find_subcommand("reload").unwrap().clone();
        assert!(!reload.render_help().to_string().contains("Examples:"));
        let cli = add(clap::Command::new("credd")
            .subcommand(clap::Command::new("docker").subcommand(clap::Command::new("run"))));
        let docker = cli.find_subcommand("docker").unwrap();
        let mut run = docker.find_subcommand("run").unwrap().clone();
        assert!(
            run.render_help()
                .to_string()
                .contains("Examples:\n  credd docker run --profile staging -- "),
            "a verb of a verb"
        );
    }
}
