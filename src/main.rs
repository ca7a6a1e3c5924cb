//! The `hrsync` binary: parses the command line, starts logging, and hands over to the library.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc, not the system allocator: a large sync allocates and frees millions of small
/// strings and rows, and jemalloc does that faster (README, "End to end").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Whether to write colour codes to a stream that is (or is not) a terminal: `NO_COLOR` (set
/// and not empty) wins; then `CLICOLOR_FORCE` (set and not `0`); then the terminal decides.
fn colour(terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    set("CLICOLOR_FORCE") || terminal
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = hrsync::cli::Cli::parse();
    // The daemon logs at info by default, the one-shot commands only warnings.
    let default = match cli.command {
        hrsync::cli::Command::Serve => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("HRSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // A log line that cannot be written (the reader of stderr has gone) is dropped: the
    // subscriber's own report of that would go to stderr too, and panic there.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    // Lines for people on a terminal; one JSON object per line for a log collector otherwise.
    // `HRSYNC_LOG_FORMAT=json` or `text` decides explicitly.
    let json = match std::env::var("HRSYNC_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    // Colour only where a person reads it: on a terminal, unless `NO_COLOR` asks for none
    // (https://no-color.org); `CLICOLOR_FORCE` asks for it where there is no terminal.
    let builder = builder.with_ansi(colour(std::io::stderr().is_terminal()));
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
    let code = hrsync::cli::run(cli).await;
    std::process::ExitCode::from(code as u8)
}
