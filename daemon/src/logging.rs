//! Tracing set-up: human-readable on a terminal, journal-friendly (no timestamps or colours, the
//! journal adds its own) under a service manager, or into a size-bounded file (`--log-file`, as
//! the background launcher and the launchd agent use). `RUST_LOG` / `CREDD_LOG` override the
//! level.
//!
//! What a stranger can trigger at will (refused connections, refused IMDS requests) is logged
//! through a [`Throttle`]: a flood costs one line a minute, not one per request.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rolling_file::{BasicRollingFileAppender, RollingConditionBasic};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::lock;

/// True when systemd or launchd started us (they capture stderr themselves).
pub fn under_service_manager() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
        || std::env::var_os("INVOCATION_ID").is_some()
        || std::env::var_os("XPC_SERVICE_NAME").is_some_and(|v| v != "0")
}

/// credd's own lifecycle at info; the AWS SDK's chatter only when it matters.
const DEFAULT_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,aws_runtime=warn";
/// The log file is rotated past this size...
pub const LOG_FILE_MAX: u64 = 4 * 1024 * 1024;
/// ...keeping this many older files (`daemon.log.1`, ...): at most ~12 MiB of log in all.
pub const LOG_FILES_KEPT: usize = 2;

/// The AWS SDK logs whole HTTP bodies and operation outputs at trace level, and not every
/// secret in them is marked sensitive in the models (an Identity Center device code is not):
/// its trace events are dropped whatever `RUST_LOG` / `CREDD_LOG` ask for.
/// The SDK's HTTP client also logs whole request URIs at debug level (with an authenticating
/// proxy), and the console's `getSigninToken` request carries credentials in its URI: its debug
/// events are dropped too. The Docker engine client logs every answer it decodes at debug
/// level, and a container's description holds its whole environment (its grant, and whatever
/// secrets its owner gave it): only its warnings and errors are kept.
fn not_sdk_trace(meta: &tracing::Metadata<'_>) -> bool {
    let level = *meta.level();
    let target = meta.target();
    !((level == tracing::Level::TRACE && target.starts_with("aws_"))
        || (level == tracing::Level::DEBUG && target.starts_with("aws_smithy_http_client"))
        || (level >= tracing::Level::DEBUG && target.starts_with("bollard")))
}

/// Logs to stderr, or to `file` (rotated) when given.
pub fn init(file: Option<&Path>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("CREDD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if let Some(path) = file {
        let appender = BasicRollingFileAppender::new_with_buffer_capacity(
            path,
            RollingConditionBasic::new().max_size(LOG_FILE_MAX),
            LOG_FILES_KEPT,
            // Unbuffered: every line is on disk when it is logged (and before a crash).
            0,
        )
        .map_err(|e| anyhow::anyhow!("opening log file {}: {e}", path.display()))?;
        builder
            .with_ansi(false)
            .with_writer(Mutex::new(appender))
            .finish()
            .with(filter_fn(not_sdk_trace))
            .init();
    } else if under_service_manager() {
        builder
            .with_writer(std::io::stderr)
            .without_time()
            .with_ansi(false)
            .finish()
            .with(filter_fn(not_sdk_trace))
            .init();
    } else {
        builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(filter_fn(not_sdk_trace))
            .init();
    }
    // A panic is logged like everything else (in the background, stderr is not watched).
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!("panic: {info}\n{backtrace}");
    }));
    Ok(())
}

/// At most one log line per window for one kind of event; the rest are counted and the count is
/// reported on the next line that gets through.
pub struct Throttle {
    window: Duration,
    state: Mutex<ThrottleState>,
}

struct ThrottleState {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub const fn new(window: Duration) -> Throttle {
        Throttle {
            window,
            state: Mutex::new(ThrottleState {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)`: log this one, mentioning the `n` suppressed since the last line; `None`:
    /// stay quiet (it is counted).
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = lock::lock(&self.state);
        match state.last {
            Some(last) if now.duration_since(last) < self.window => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

/// How often a throttled event may be logged.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gets_one_line_per_window_with_the_count() {
        let throttle = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(throttle.allow_at(start), Some(0));
        for i in 0..1000 {
            assert_eq!(throttle.allow_at(start + Duration::from_millis(i)), None);
        }
        let later = start + Duration::from_secs(61);
        assert_eq!(throttle.allow_at(later), Some(1000));
        assert_eq!(throttle.allow_at(later + Duration::from_secs(1)), None);
    }
}
