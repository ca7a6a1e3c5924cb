//! The figures beside the table, which have no database floor: draining the invitations of a
//! first sync from the outbox (to `.eml` files, and to an SMTP server on this machine), and
//! fetching people from a SCIM server on this machine beside the raw download of the same
//! pages with the same HTTP client library (reqwest), page after page as hrsync asks for them.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::{Backend, Databases, MailTo, Organisation, hrsync, sync, write_config_with};

#[path = "../../tests/support/smtp.rs"]
mod smtp;

/// One line of the figures' table.
pub struct Figure {
    pub backend: &'static str,
    pub people: usize,
    pub what: &'static str,
    /// How many mails were sent, or records fetched.
    pub count: usize,
    pub hrsync: Duration,
    pub peak_mib: f64,
    /// What hrsync's time is held against: a target, or a measured reference.
    pub reference: &'static str,
    pub reference_time: Duration,
}

/// The SCIM page size, as the built-in `scim` definition asks for it.
const SCIM_PAGE: usize = 100;

/// Draining the outbox after a first sync of `people`: to files, and to a local SMTP server.
pub fn mail(
    backend: &Backend,
    people: usize,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let (files, ran) = drain(backend, people, &MailTo::Files, |dir| {
        Ok(std::fs::read_dir(dir.join("outbox"))?.count())
    })?;
    figures.push(Figure {
        backend: backend.name(),
        people,
        what: "mail drain, .eml files",
        count: files,
        hrsync: ran.0,
        peak_mib: ran.1,
        reference: "target",
        reference_time: Duration::from_secs(60),
    });
    let sink = rt.block_on(smtp::SmtpSink::start());
    let (received, ran) = drain(backend, people, &MailTo::Smtp(sink.url()), |_| {
        Ok(sink.messages().len())
    })?;
    figures.push(Figure {
        backend: backend.name(),
        people,
        what: "mail drain, local SMTP",
        count: received,
        hrsync: ran.0,
        peak_mib: ran.1,
        reference: "target",
        reference_time: Duration::from_secs(120),
    });
    Ok(figures)
}

/// A first sync into a fresh database with the mail queued, then `hrsync mail send` timed;
/// `delivered` counts what arrived, which must be what hrsync says it sent.
fn drain(
    backend: &Backend,
    people: usize,
    to: &MailTo,
    delivered: impl Fn(&Path) -> anyhow::Result<usize>,
) -> anyhow::Result<(usize, (Duration, f64))> {
    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("feed.csv");
    std::fs::write(&feed, Organisation::generate(people).csv())?;
    let databases = Databases::create(backend, dir.path())?;
    write_config_with(dir.path(), &databases.hrsync_url, &feed, to, "")?;
    sync(dir.path())?;
    let ran = hrsync(dir.path(), &["mail", "send"], &[])?;
    databases.drop_all()?;
    let sent = sent_count(&ran.stderr)?;
    let arrived = delivered(dir.path())?;
    ensure!(
        sent == arrived && sent > 0,
        "hrsync says it sent {sent} mails, and {arrived} arrived: {}",
        ran.stderr
    );
    Ok((sent, (ran.elapsed, ran.peak_mib)))
}

/// The count in hrsync's "Mail: N sent, …" line.
fn sent_count(stderr: &str) -> anyhow::Result<usize> {
    count_after(stderr, "Mail: ")
}

/// The number that follows `prefix` at the start of a line of `stderr`.
fn count_after(stderr: &str, prefix: &str) -> anyhow::Result<usize> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no `{prefix}N …` line in: {stderr}"))
}

/// Fetching `people` SCIM users from a server on this machine with `hrsync fetch`, beside
/// downloading the same pages in the same order with reqwest.
pub fn http(people: usize, rt: &tokio::runtime::Runtime) -> anyhow::Result<Figure> {
    let pages = scim_pages(people);
    let base = PageServer::start(pages.clone())?;
    let raw = rt.block_on(download(&base, &pages))?;

    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("feed.csv");
    std::fs::write(&feed, Organisation::generate(10).csv())?;
    let database = format!("sqlite://{}", dir.path().join("hrsync.db").display());
    let connector = format!(
        "\n[connectors.bench_scim]\norganisation = \"bench\"\nkind = \"http\"\n\n\
         [connectors.bench_scim.http]\ndefinition = \"scim\"\n\
         variables = {{ base_url = \"{base}\" }}\nsecrets = {{ token = \"BENCH_SCIM_TOKEN\" }}\n"
    );
    write_config_with(dir.path(), &database, &feed, &MailTo::Files, &connector)?;
    let ran = hrsync(
        dir.path(),
        &["fetch", "bench_scim", "--format", "none"],
        &[("BENCH_SCIM_TOKEN", "bench-token")],
    )?;
    let fetched = count_after(&ran.stderr, "bench_scim: ")?;
    ensure!(
        fetched == people,
        "hrsync fetched {fetched} of {people} users"
    );
    Ok(Figure {
        backend: "-",
        people,
        what: "SCIM fetch over HTTP",
        count: fetched,
        hrsync: ran.elapsed,
        peak_mib: ran.peak_mib,
        reference: "raw download",
        reference_time: raw,
    })
}

/// Every page of the listing, keyed by the `startIndex` that asks for it, and the empty page
/// after the last.
fn scim_pages(people: usize) -> Vec<(usize, String)> {
    let mut pages = Vec::new();
    let mut start = 1;
    while start <= people.max(1) {
        let end = (start + SCIM_PAGE - 1).min(people);
        let mut body = format!(
            "{{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\
             \"totalResults\":{people},\"startIndex\":{start},\"itemsPerPage\":{},\"Resources\":[",
            end + 1 - start
        );
        for n in start..=end {
            if n > start {
                body.push(',');
            }
            scim_user(&mut body, n - 1);
        }
        body.push_str("]}");
        pages.push((start, body));
        start += SCIM_PAGE;
    }
    // Past the end a SCIM server gives an empty list; hrsync asks for it after a last page
    // that came back full, in case people were added meanwhile.
    pages.push((
        start,
        format!(
            "{{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\
             \"totalResults\":{people},\"startIndex\":{start},\"itemsPerPage\":0,\"Resources\":[]}}"
        ),
    ));
    pages
}

/// One user as a SCIM server writes it: core, enterprise and Entra attributes, and meta.
fn scim_user(out: &mut String, n: usize) {
    let id = |n: usize| format!("{n:08x}-4af9-49d3-925e-04b9896e46ff");
    let manager = match n {
        0 => String::new(),
        _ => format!(
            ",\"manager\":{{\"value\":\"{}\",\"displayName\":\"Teamleider {}\"}}",
            id((n / 25) * 25),
            n / 25
        ),
    };
    let _ = write!(
        out,
        "{{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\
         \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\
         \"urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User\"],\
         \"id\":\"{id}\",\"externalId\":\"hr-{n}\",\"userName\":\"zoe.janssen.{n}@bench.example\",\
         \"name\":{{\"formatted\":\"Zo\\u00eb Janssen\",\"familyName\":\"Janssen\",\"givenName\":\"Zo\\u00eb\"}},\
         \"displayName\":\"Zo\\u00eb Janssen\",\"title\":\"Wijkverpleegkundige\",\"userType\":\"Employee\",\
         \"preferredLanguage\":\"nl-NL\",\"active\":true,\
         \"emails\":[{{\"value\":\"zoe.janssen.{n}@bench.example\",\"type\":\"work\",\"primary\":true}},\
         {{\"value\":\"zoe.{n}@mail.example.net\",\"type\":\"home\"}}],\
         \"phoneNumbers\":[{{\"value\":\"+31 570 000 102\",\"type\":\"work\"}}],\
         \"addresses\":[{{\"type\":\"work\",\"locality\":\"Locatie {loc}\",\"country\":\"NL\",\"primary\":true}}],\
         \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{{\"employeeNumber\":\"{n}\",\
         \"costCenter\":\"KP-{dep}\",\"organization\":\"Bench Zorg\",\"division\":\"Zorg\",\
         \"department\":\"Afdeling {dep}\"{manager}}},\
         \"urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User\":{{\
         \"employeeHireDate\":\"2017-02-01T00:00:00Z\",\"officeLocation\":\"Locatie {loc}\"}},\
         \"meta\":{{\"resourceType\":\"User\",\"created\":\"2017-01-16T09:00:00Z\",\
         \"lastModified\":\"2026-03-02T10:00:00Z\"}}}}",
        id = id(n),
        dep = n / 25,
        loc = (n / 25) % 40,
    );
}

/// The raw download: every page, in order, over one kept-alive connection, read whole.
async fn download(base: &str, pages: &[(usize, String)]) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    for (start, body) in pages {
        let got = client
            .get(format!("{base}/Users?startIndex={start}&count={SCIM_PAGE}"))
            .bearer_auth("bench-token")
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        ensure!(got.len() == body.len(), "page {start} came back short");
    }
    Ok(started.elapsed())
}

/// An HTTP/1.1 server on `127.0.0.1` that answers `GET …/Users?startIndex=N…` with the
/// prepared page of that start index, keeping connections alive; a thread per connection.
struct PageServer;

impl PageServer {
    /// Starts the server and returns its SCIM base URL.
    fn start(pages: Vec<(usize, String)>) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}/scim/v2", listener.local_addr()?);
        let pages: std::sync::Arc<std::collections::HashMap<usize, String>> =
            std::sync::Arc::new(pages.into_iter().collect());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let pages = std::sync::Arc::clone(&pages);
                std::thread::spawn(move || {
                    // A client that hangs up is no concern of the bench.
                    let _ = PageServer::serve(stream, &pages);
                });
            }
        });
        Ok(base)
    }

    fn serve(
        stream: TcpStream,
        pages: &std::collections::HashMap<usize, String>,
    ) -> anyhow::Result<()> {
        stream.set_nodelay(true)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line)? == 0 {
                return Ok(());
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                    break;
                }
            }
            let start = request_line
                .split(['?', '&', ' '])
                .find_map(|part| part.strip_prefix("startIndex="))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1);
            let Some(body) = pages.get(&start) else {
                eprintln!(
                    "the SCIM server has no page at {start}: {}",
                    request_line.trim()
                );
                bail!("no page starts at {start}: {request_line}");
            };
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            writer.write_all(body.as_bytes())?;
            writer.flush()?;
        }
    }
}

/// The figures as a Markdown table.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| backend | people | what | count | hrsync ms | reference | reference ms | ratio | peak MiB |\n|---|---:|---|---:|---:|---|---:|---:|---:|\n",
    );
    for f in figures {
        let ratio = f.hrsync.as_secs_f64() / f.reference_time.as_secs_f64().max(1e-6);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {ratio:.2}× | {:.0} |",
            f.backend,
            f.people,
            f.what,
            f.count,
            f.hrsync.as_millis(),
            f.reference,
            f.reference_time.as_millis(),
            f.peak_mib
        );
    }
    out
}
