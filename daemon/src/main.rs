//! `credd-daemon`: thin entry point; everything lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// The credd daemon: holds your AWS access session and serves role credentials on loopback.
///
/// Without --foreground it starts itself in the background, waits until it is ready, and exits.
#[derive(Parser, Debug)]
#[command(name = "credd-daemon", version)]
struct Args {
    /// Stay attached to the terminal and log to stderr (what service managers run).
    #[arg(long)]
    foreground: bool,
    /// Config file (default: <config dir>/credd/config.toml; also CREDD_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// With --foreground: log to FILE instead of stderr, rotated at 4 MiB (two older files kept).
    #[arg(long, value_name = "FILE", requires = "foreground")]
    log_file: Option<PathBuf>,
    /// Print the address the HTTP API listens on with this config ([daemon] listen; the default
    /// when there is no config yet) and exit: what `credd service install` gives the service
    /// manager's socket.
    #[arg(long, conflicts_with_all = ["foreground", "log_file"])]
    listen_address: bool,
    /// Print this man page (roff) and exit: packaging/build-deb and the Homebrew formula install it.
    #[arg(long, hide = true, exclusive = true)]
    man_page: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.man_page {
        let page = clap_mangen::Man::new(Args::command()).render(&mut std::io::stdout().lock());
        return match page {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("credd-daemon: writing the man page: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let paths = credd_proto::paths::Paths::resolve(args.config);
    let result = if args.listen_address {
        credd_daemon::config::listen_address(&paths.config).map(|addr| println!("{addr}"))
    } else if args.foreground {
        credd_daemon::run_foreground(paths, args.log_file.as_deref())
    } else {
        credd_daemon::launch::start_in_background(&paths)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credd-daemon: {e:#}");
            ExitCode::FAILURE
        }
    }
}
