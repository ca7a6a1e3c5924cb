//! The `hrsync` binary: parses the command line, starts logging, and hands over to the library.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc, not the system allocator: a large sync allocates and frees millions of small
/// strings and rows, and jemalloc does that faster (README, "End to end").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = hrsync::cli::Cli::parse();
    // The daemon logs at info by default, the one-shot commands only warnings.
    let default = match cli.command {
        hrsync::cli::Command::Serve => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("HRSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Lines for people on a terminal; one JSON object per line for a log collector otherwise.
    // `HRSYNC_LOG_FORMAT=json` or `text` decides explicitly.
    let json = match std::env::var("HRSYNC_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
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
