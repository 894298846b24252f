//! `credd dist-files DIR`: what a package installs beside the two binaries, generated
//! from this build so it always matches it: the man pages of `credd` and each of its subcommands
//! (clap_mangen), the bash, zsh and fish completions, and the systemd user units for a daemon at
//! `--daemon` (default `/usr/bin/credd-daemon`), listening on the daemon's default address.
//! packaging/build-deb and the Homebrew formula run it; `credd-daemon --man-page` adds the
//! daemon's own page. It is not one of the CLI's verbs (a hidden clap subcommand would still be
//! offered by the completions): `main` hands it the arguments before parsing its own.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use credd_proto::paths::Paths;

use crate::commands::service::{self, Install};
use crate::connection;
use crate::error::ClientError;
use crate::service_manager::Manager;

/// Heads the packaged units: which copy this is, and which one wins.
const PACKAGED: &str = "# Installed by the credd package, for the daemon's default address. `credd service \
                        install` writes\n# your own copy to ~/.config/systemd/user/, which systemd \
                        uses instead of this one.\n";

/// Write the man pages, completions and systemd user units a package installs (packaging/).
#[derive(Debug, clap::Parser)]
#[command(name = "credd dist-files", version)]
pub struct Args {
    /// Where to write man/, completions/ and systemd/ (created when missing).
    dir: PathBuf,
    /// The daemon's path on the machine the files are installed on, for the units' ExecStart.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/credd-daemon")]
    daemon: PathBuf,
}

/// Runs `credd dist-files ...` when those are the arguments (`None` otherwise); `cli` gives the
/// whole command line's definition, from `main`.
pub fn run_if_asked(cli: impl FnOnce() -> clap::Command) -> Option<ExitCode> {
    let mut args = std::env::args_os();
    args.next()?;
    if args.next().as_deref() != Some(OsStr::new("dist-files")) {
        return None;
    }
    let name = std::ffi::OsString::from("credd dist-files");
    let parsed = <Args as clap::Parser>::parse_from(std::iter::once(name).chain(args));
    Some(match run(parsed, cli()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("credd: {e}");
            ExitCode::FAILURE
        }
    })
}

/// `cli` is the whole command line's definition, from `main`.
fn run(args: Args, cli: clap::Command) -> Result<ExitCode, ClientError> {
    if !args.daemon.is_absolute() {
        return Err(ClientError::DistFiles {
            path: args.daemon,
            why: "--daemon must be an absolute path (systemd's ExecStart)".into(),
        });
    }
    let man = args.dir.join("man");
    let completions = args.dir.join("completions");
    let systemd = args.dir.join("systemd");
    for dir in [&man, &completions, &systemd] {
        std::fs::create_dir_all(dir).map_err(|source| ClientError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    clap_mangen::generate_to(cli.clone(), &man).map_err(|e| ClientError::DistFiles {
        path: man.clone(),
        why: e.to_string(),
    })?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "credd.bash"),
        (clap_complete::Shell::Zsh, "_credd"),
        (clap_complete::Shell::Fish, "credd.fish"),
    ] {
        // The script `credd completions` prints, calling credd back on PATH for profile names.
        let text = super::completions::registration(shell, "credd").map_err(|e| {
            ClientError::DistFiles {
                path: completions.join(name),
                why: e.to_string(),
            }
        })?;
        write(&completions.join(name), &text)?;
    }
    // The socket holds the daemon's default port: where the daemon listens without a config.
    let builder = connection::daemon_exe()?;
    let defaults = Paths::resolve(Some(args.dir.join("no-config.toml")));
    let listen = service::listen_address(&builder, &defaults)?;
    let files = service::render(
        Manager::Systemd,
        &Install {
            daemon: &args.daemon,
            log: Path::new("/dev/null"),
            env: &[],
            listen: (listen.port() != 0).then_some(listen),
        },
    );
    write(
        &systemd.join("credd.service"),
        format!("{PACKAGED}{}", files.unit).as_bytes(),
    )?;
    if let Some(socket) = files.socket {
        write(
            &systemd.join("credd.socket"),
            format!("{PACKAGED}{socket}").as_bytes(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    std::fs::write(path, bytes).map_err(|source| ClientError::WriteFile {
        path: path.to_owned(),
        source,
    })
}
