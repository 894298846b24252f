//! Tracing set-up: human-readable on a terminal, journal-friendly (no timestamps or colours, the
//! journal adds its own) under a service manager. `RUST_LOG` / `CREDD_LOG` override the level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// True when systemd or launchd started us (they capture stderr themselves).
pub fn under_service_manager() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
        || std::env::var_os("INVOCATION_ID").is_some()
        || std::env::var_os("XPC_SERVICE_NAME").is_some_and(|v| v != "0")
}

/// credd's own lifecycle at info; the AWS SDK's chatter only when it matters.
const DEFAULT_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,aws_runtime=warn";

pub fn init() {
    let filter = EnvFilter::try_from_env("CREDD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if under_service_manager() {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
