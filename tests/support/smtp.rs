#![allow(dead_code)]
//! A small, real SMTP server for tests: [`SmtpSink`] listens on `127.0.0.1:0`, accepts what
//! lettre's SMTP client sends over plain TCP, and keeps every message it receives.
//!
//! It speaks EHLO/HELO, AUTH PLAIN and AUTH LOGIN (any credentials are accepted and recorded),
//! MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP, VRFY and QUIT. It offers no
//! STARTTLS, so the client must be told not to use TLS: `smtp://127.0.0.1:PORT`, which is what
//! [`SmtpSink::url`] returns. [`SmtpSink::failing`] refuses every sender, so tests can exercise
//! a failed delivery.
//!
//! [`ReceivedMail`] also reads what arrived the way a mail client would: headers with RFC 2047
//! encoded words decoded, and the plain-text and HTML parts of a multipart message with their
//! quoted-printable or base64 transfer encoding undone.
//!
//! Include it with `#[path = "support/smtp.rs"] mod smtp;`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as the server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in the order given.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, lines ending in CRLF.
    pub data: String,
}

/// How the server answers `MAIL FROM`.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Accept,
    RefuseSender(&'static str),
    /// Accepts the sender, and answers `RCPT TO` of any recipient whose address contains
    /// the text with the answer.
    RefuseRecipients {
        containing: &'static str,
        answer: &'static str,
    },
    /// Accepts every message, each after this long: a busy server.
    Slow(Duration),
}

#[derive(Default)]
struct Received {
    mails: Vec<ReceivedMail>,
    logins: Vec<(String, String)>,
}

/// A running SMTP server; it stops accepting connections when dropped.
pub struct SmtpSink {
    port: u16,
    received: Arc<Mutex<Received>>,
    acceptor: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a server that accepts every message.
    pub async fn start() -> SmtpSink {
        SmtpSink::with(Behaviour::Accept).await
    }

    /// Starts a server that refuses every sender with a permanent `554` answer.
    pub async fn failing() -> SmtpSink {
        SmtpSink::with(Behaviour::RefuseSender(
            "554 5.7.1 Sender refused by test server",
        ))
        .await
    }

    /// Starts a server that refuses every sender with a transient `451` answer.
    pub async fn failing_transiently() -> SmtpSink {
        SmtpSink::with(Behaviour::RefuseSender(
            "451 4.3.0 Temporary failure in test server, try again later",
        ))
        .await
    }

    /// Starts a server that accepts every message, taking `per_message` for each.
    pub async fn slow(per_message: Duration) -> SmtpSink {
        SmtpSink::with(Behaviour::Slow(per_message)).await
    }

    /// Starts a server that accepts every message except to recipients whose address contains
    /// `containing`, which it refuses with `answer` (say, a permanent `550`).
    pub async fn refusing_recipients(containing: &'static str, answer: &'static str) -> SmtpSink {
        SmtpSink::with(Behaviour::RefuseRecipients { containing, answer }).await
    }

    async fn with(behaviour: Behaviour) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test SMTP server binds a port");
        let port = listener.local_addr().expect("bound address").port();
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = Arc::clone(&received);
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let received = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A client that hangs up mid-session is no concern of the tests.
                    let _ = session(stream, behaviour, received).await;
                });
            }
        });
        SmtpSink {
            port,
            received,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT`: plain TCP, no TLS.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in order of arrival.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().mails.clone()
    }

    /// Every `(user, password)` a client signed in with, in order.
    pub fn logins(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().logins.clone()
    }

    /// Waits until at least `count` messages have arrived and returns all of them; panics
    /// with what did arrive when `timeout` passes first.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mails = self.messages();
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "expected {count} mail(s) within {timeout:?}, received {}: {mails:#?}",
                    mails.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// The envelope being built between `MAIL FROM` and the end of `DATA`.
struct Transaction {
    from: String,
    to: Vec<String>,
}

async fn session(
    stream: TcpStream,
    behaviour: Behaviour,
    received: Arc<Mutex<Received>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    reply(&mut write, "220 127.0.0.1 ESMTP hrsync test sink").await?;
    let mut transaction: Option<Transaction> = None;

    while let Some(line) = read_line(&mut read).await? {
        let line = String::from_utf8_lossy(&line).into_owned();
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => {
                transaction = None;
                reply(
                    &mut write,
                    "250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                     250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN",
                )
                .await?;
            }
            "HELO" => {
                transaction = None;
                reply(&mut write, "250 127.0.0.1 greets you").await?;
            }
            "AUTH" => match authenticate(argument, &mut read, &mut write).await? {
                Ok(login) => {
                    received.lock().unwrap().logins.push(login);
                    reply(&mut write, "235 2.7.0 Authentication successful").await?;
                }
                Err(answer) => reply(&mut write, answer).await?,
            },
            "MAIL" => match (behaviour, path_after(argument, "FROM:")) {
                (Behaviour::RefuseSender(answer), _) => reply(&mut write, answer).await?,
                (
                    Behaviour::Accept | Behaviour::RefuseRecipients { .. } | Behaviour::Slow(_),
                    Some(from),
                ) => {
                    transaction = Some(Transaction {
                        from,
                        to: Vec::new(),
                    });
                    reply(&mut write, "250 2.1.0 Sender OK").await?;
                }
                (
                    Behaviour::Accept | Behaviour::RefuseRecipients { .. } | Behaviour::Slow(_),
                    None,
                ) => reply(&mut write, "501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => match (&mut transaction, path_after(argument, "TO:")) {
                (None, _) => reply(&mut write, "503 5.5.1 MAIL FROM first").await?,
                (Some(_), None) => reply(&mut write, "501 5.5.4 Syntax: RCPT TO:<address>").await?,
                (Some(_), Some(to)) if matches!(behaviour, Behaviour::RefuseRecipients { containing, .. } if to.contains(containing)) => {
                    if let Behaviour::RefuseRecipients { answer, .. } = behaviour {
                        reply(&mut write, answer).await?;
                    }
                }
                (Some(transaction), Some(to)) => {
                    transaction.to.push(to);
                    reply(&mut write, "250 2.1.5 Recipient OK").await?;
                }
            },
            "DATA" => match transaction.take() {
                Some(envelope) if !envelope.to.is_empty() => {
                    reply(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
                    let Some(data) = read_data(&mut read).await? else {
                        return Ok(());
                    };
                    if let Behaviour::Slow(per_message) = behaviour {
                        tokio::time::sleep(per_message).await;
                    }
                    received.lock().unwrap().mails.push(ReceivedMail {
                        from: envelope.from,
                        to: envelope.to,
                        data,
                    });
                    reply(&mut write, "250 2.0.0 Message accepted").await?;
                }
                other => {
                    transaction = other;
                    reply(&mut write, "503 5.5.1 RCPT TO first").await?;
                }
            },
            "RSET" => {
                transaction = None;
                reply(&mut write, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut write, "250 2.0.0 OK").await?,
            "VRFY" => reply(&mut write, "252 2.5.2 Cannot verify, but will accept").await?,
            "QUIT" => {
                reply(&mut write, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut write, "502 5.5.2 Command not recognised").await?,
        }
    }
    Ok(())
}

async fn reply(write: &mut (impl AsyncWrite + Unpin), text: &str) -> std::io::Result<()> {
    // One write per reply: split writes meet the client's delayed ACKs and cost 40 ms each.
    write.write_all(format!("{text}\r\n").as_bytes()).await?;
    write.flush().await
}

/// One line without its line ending, or `None` when the client has hung up.
async fn read_line(read: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if read.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    if line.ends_with(b"\n") {
        line.pop();
    }
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(line))
}

/// The message after `DATA`, up to the line holding a single dot; a leading dot that the client
/// doubled is removed again. `None` when the client hangs up first.
async fn read_data(read: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<String>> {
    let mut data = Vec::new();
    loop {
        let Some(line) = read_line(read).await? else {
            return Ok(None);
        };
        if line == b"." {
            return Ok(Some(String::from_utf8_lossy(&data).into_owned()));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
}

/// The address in `FROM:<address> PARAMS` or `TO:<address>`; `<>` gives an empty address.
fn path_after(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = argument[keyword.len()..].trim_start();
    match path.strip_prefix('<') {
        Some(rest) => rest.split_once('>').map(|(address, _)| address.to_string()),
        None => path.split_whitespace().next().map(str::to_string),
    }
}

/// Runs an `AUTH PLAIN` or `AUTH LOGIN` exchange and returns the user and password, or the
/// answer to give when the exchange fails.
async fn authenticate(
    argument: &str,
    read: &mut (impl AsyncBufRead + Unpin),
    write: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<Result<(String, String), &'static str>> {
    const UNDECODABLE: &str = "501 5.5.2 Cannot decode the credentials";
    let (mechanism, initial) = match argument.split_once(' ') {
        Some((mechanism, initial)) => (mechanism, Some(initial.trim().to_string())),
        None => (argument, None),
    };
    let mechanism = mechanism.to_ascii_uppercase();
    match mechanism.as_str() {
        "PLAIN" => {
            let encoded = match initial {
                Some(initial) => initial,
                None => match challenge(read, write, "334 ").await? {
                    Some(answer) => answer,
                    None => return Ok(Err(UNDECODABLE)),
                },
            };
            let Some(decoded) = decode_base64(&encoded) else {
                return Ok(Err(UNDECODABLE));
            };
            let mut fields = decoded.split(|byte| *byte == 0).skip(1);
            match (fields.next(), fields.next()) {
                (Some(user), Some(password)) => Ok(Ok((lossy(user), lossy(password)))),
                _ => Ok(Err(UNDECODABLE)),
            }
        }
        "LOGIN" => {
            let user = match initial {
                Some(initial) => Some(initial),
                None => challenge(read, write, "334 VXNlcm5hbWU6").await?,
            };
            let Some(user) = user else {
                return Ok(Err(UNDECODABLE));
            };
            let Some(password) = challenge(read, write, "334 UGFzc3dvcmQ6").await? else {
                return Ok(Err(UNDECODABLE));
            };
            match (decode_base64(&user), decode_base64(&password)) {
                (Some(user), Some(password)) => Ok(Ok((lossy(&user), lossy(&password)))),
                _ => Ok(Err(UNDECODABLE)),
            }
        }
        _ => Ok(Err("504 5.5.4 Unrecognised authentication mechanism")),
    }
}

/// Sends a `334` challenge and reads the answer; `None` when the client cancels with `*` or
/// hangs up.
async fn challenge(
    read: &mut (impl AsyncBufRead + Unpin),
    write: &mut (impl AsyncWrite + Unpin),
    text: &str,
) -> std::io::Result<Option<String>> {
    reply(write, text).await?;
    let answer = read_line(read).await?.map(|line| lossy(&line));
    Ok(answer.filter(|answer| answer != "*"))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl ReceivedMail {
    /// The first header called `name` (any letter case), unfolded, with RFC 2047 encoded words
    /// decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = split_entity(&self.data);
        header_in(head, name).map(|value| decode_words(&value))
    }

    /// The decoded `Subject` header.
    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
    }

    /// The decoded body of the first `text/plain` part.
    pub fn text(&self) -> Option<String> {
        self.part("text/plain")
    }

    /// The decoded body of the first `text/html` part.
    pub fn html(&self) -> Option<String> {
        self.part("text/html")
    }

    /// The decoded body of the first part of `media_type` (such as `text/plain`), searching
    /// nested multiparts; quoted-printable and base64 are undone, line endings stay CRLF.
    pub fn part(&self, media_type: &str) -> Option<String> {
        find_part(&self.data, &media_type.to_ascii_lowercase())
    }
}

/// Splits a message or body part into its header section and its body.
fn split_entity(entity: &str) -> (&str, &str) {
    if let Some(at) = entity.find("\r\n\r\n") {
        (&entity[..at], &entity[at + 4..])
    } else if let Some(at) = entity.find("\n\n") {
        (&entity[..at], &entity[at + 2..])
    } else {
        (entity, "")
    }
}

/// The raw value of header `name` in a header section, with folded lines joined.
fn header_in(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        let continues = line.starts_with([' ', '\t']);
        match (&mut found, continues) {
            (Some(value), true) => value.push_str(line),
            (Some(_), false) => break,
            (None, false) => {
                if let Some((field, value)) = line.split_once(':')
                    && field.trim().eq_ignore_ascii_case(name)
                {
                    found = Some(value.trim_start().to_string());
                }
            }
            (None, true) => {}
        }
    }
    found
}

/// A parameter such as `boundary` of a `Content-Type` value, without quotes.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn find_part(entity: &str, media_type: &str) -> Option<String> {
    let (head, body) = split_entity(entity);
    let content_type = header_in(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let delimiter = format!("--{}", parameter(&content_type, "boundary")?);
        for part in body.split(delimiter.as_str()).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix("\r\n").unwrap_or(part);
            let part = part.strip_suffix("\r\n").unwrap_or(part);
            if let Some(found) = find_part(part, media_type) {
                return Some(found);
            }
        }
        None
    } else if media == media_type {
        let encoding = header_in(head, "Content-Transfer-Encoding")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => decode_base64(body)?,
            _ => body.as_bytes().to_vec(),
        };
        Some(lossy(&bytes))
    } else {
        None
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`); white space between
/// two encoded words is dropped, as the RFC asks.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        match encoded_word(&rest[start..]) {
            Some((decoded, length)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &rest[start + length..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `text`: its decoded text and its length in `text`.
fn encoded_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let encoded = &after[..end];
    let bytes = match encoding {
        "B" | "b" => decode_base64(encoded)?,
        "Q" | "q" => decode_quoted_printable(&encoded.replace('_', " ")),
        _ => return None,
    };
    let length = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((lossy(&bytes), length))
}

/// Undoes quoted-printable: `=XX` becomes a byte and a `=` at the end of a line joins it to the
/// next.
pub fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'=' {
            if bytes[at + 1..].starts_with(b"\r\n") {
                at += 3;
                continue;
            }
            if bytes[at + 1..].starts_with(b"\n") {
                at += 2;
                continue;
            }
            let hex = bytes.get(at + 1..at + 3).and_then(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            });
            if let Some(byte) = hex {
                out.push(byte);
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

/// Decodes standard base64, skipping white space; `None` for any other stray character.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    lenient.decode(compact).ok()
}
