//! `serve`'s log on stderr: `EDGETHUMB_LOG` picks the format (`text`,
//! `json` lines, or `off`), `EDGETHUMB_LOG_LEVEL` the events (`tracing`
//! filter directives; default `info`). Every request gets one access
//! event with the core's [`AccessRecord`] fields, the same a Worker and
//! the Spin component log.

use std::io::{self, IsTerminal};

use edgethumb::service::AccessRecord;
use tracing_appender::non_blocking::WorkerGuard;

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Off,
}

/// Starts the log; keep the guard until exit, which flushes it. An
/// `EDGETHUMB_LOG` that names no format is read as filter directives in
/// text, as before formats existed.
pub fn init() -> Option<WorkerGuard> {
    let log = std::env::var("EDGETHUMB_LOG").unwrap_or_default();
    let (format, directives) = match log.trim() {
        "" | "text" => (Format::Text, None),
        "json" => (Format::Json, None),
        "off" => (Format::Off, None),
        other => (Format::Text, Some(other.to_string())),
    };
    if format == Format::Off {
        return None;
    }
    let directives = std::env::var("EDGETHUMB_LOG_LEVEL")
        .ok()
        .or(directives)
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking(io::stderr());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = match format {
        Format::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        _ => fmt.with_ansi(ansi).try_init(),
    };
    Some(guard)
}

/// The access event: server errors at `warn`, everything else at `info`.
pub fn access(r: &AccessRecord) {
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                $level,
                id = %r.id,
                method = %r.method,
                status = r.status,
                cache = r.cache,
                bytes = r.bytes,
                ms = r.ms,
                fetch_ms = r.fetch_ms,
                decode_ms = r.decode_ms,
                resize_ms = r.resize_ms,
                encode_ms = r.encode_ms,
                timing = %r.timing,
                host = r.host.as_deref(),
                error = r.failure.map(|f| f.kind),
                reason = r.reason.as_deref(),
                detail = r.detail.as_deref(),
                "access"
            )
        };
    }
    if r.status >= 500 {
        event!(tracing::Level::WARN);
    } else {
        event!(tracing::Level::INFO);
    }
}
