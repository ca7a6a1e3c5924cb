//! Raw dumps (`hrsync fetch --raw`): every page as received, and its exchange, written to
//! owner-only files with every credential redacted.
//!
//! Dumps exist to write fixtures and to show a vendor what was asked and answered; they hold
//! real people's personal data, so the directory and files are private to their owner.

use std::path::Path;

use super::{Endpoint, FetchError, HttpSource};

impl HttpSource {
    /// Writes a page as received (`<what>-0001.json`) and its exchange (`<what>-0001.http`),
    /// with every credential redacted. The last argument is the response as received: status,
    /// headers and body.
    pub(super) fn dump(
        &self,
        dir: &Path,
        ep: &Endpoint<'_>,
        page: u32,
        head: String,
        (status, headers, bytes): (u16, &reqwest::header::HeaderMap, &[u8]),
    ) -> Result<(), FetchError> {
        let stem = format!("{}-{page:04}", ep.what.replace(' ', "-"));
        let exchange = format!(
            "{head}\nHTTP {status}\n{}",
            self.describe_headers(headers, None)
        );
        let body = self.redact(&String::from_utf8_lossy(bytes));
        let write = |name: String, text: &str| {
            let path = dir.join(&name);
            write_private(&path, text)
                .map_err(|e| self.setup(format!("cannot write `{}`: {e}", path.display())))
        };
        write(format!("{stem}.http"), &exchange)?;
        write(format!("{stem}.json"), &body)
    }
}

/// Creates a directory for raw dumps that only its owner can read: the pages hold real
/// people's personal data, even with every credential redacted.
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a dump file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
