//! The `hrsync` binary: parses the command line, starts logging, and hands over to the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = hrsync::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("HRSYNC_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = hrsync::cli::run(cli).await;
    std::process::ExitCode::from(code as u8)
}
