//! The check of the sections about the services hrsync talks to and offers: `[database]`,
//! `[mail]` (sender and activation link, then the SMTP transport) and `[server]`.

use crate::config::{Loaded, MailTransportKind, Problem};

/// `[database]`: a URL whose scheme names a backend, and the password's variable, if named.
pub(super) fn database(cfg: &Loaded) -> Vec<Problem> {
    let database = &cfg.settings.database;
    let mut problems = Vec::new();
    if !(database.url.starts_with("sqlite:")
        || database.url.starts_with("postgres:")
        || database.url.starts_with("postgresql:"))
    {
        problems.push(cfg.problem("database.url", "must start with sqlite: or postgres:"));
    }
    if let Some(var) = &database.password_env
        && std::env::var_os(var).is_none()
    {
        problems.push(cfg.problem(
            "database.password_env",
            format!("the environment variable `{var}` is not set"),
        ));
    }
    problems
}

/// `[mail]` as every transport needs it: a sender mailbox and an activation link with a place
/// for the token.
pub(super) fn mail(cfg: &Loaded) -> Vec<Problem> {
    let mail = &cfg.settings.mail;
    let mut problems = Vec::new();
    if mail.from.parse::<lettre::message::Mailbox>().is_err() {
        problems.push(cfg.problem(
            "mail.from",
            format!(
                "`{}` is not a mailbox such as `Name <addr@example.org>`",
                mail.from
            ),
        ));
    }
    if !mail.activation_url.contains("{token}") {
        problems.push(cfg.problem(
            "mail.activation_url",
            "must contain `{token}`, where the activation token goes",
        ));
    }
    problems
}

/// `[mail]` with `transport = "smtp"`: a server to send to, and credentials that go together.
pub(super) fn smtp(cfg: &Loaded) -> Vec<Problem> {
    let mail = &cfg.settings.mail;
    let mut problems = Vec::new();
    if mail.transport != MailTransportKind::Smtp {
        return problems;
    }
    if mail.smtp_url.is_none() {
        problems.push(cfg.problem("mail.smtp_url", "is required when transport = \"smtp\""));
    }
    if let Some(var) = &mail.smtp_password_env
        && std::env::var_os(var).is_none()
    {
        problems.push(cfg.problem(
            "mail.smtp_password_env",
            format!("the environment variable `{var}` is not set"),
        ));
    }
    if mail.smtp_password_env.is_some() && mail.smtp_username.is_none() {
        problems.push(cfg.problem("mail.smtp_username", "is required with smtp_password_env"));
    }
    problems
}

/// `[server]`: an address to listen on, the admin token's hash, and the public address that
/// digests link to (required once an organisation has digests).
pub(super) fn server(cfg: &Loaded) -> Vec<Problem> {
    let s = &cfg.settings;
    let server = &s.server;
    let mut problems = Vec::new();
    if server.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(cfg.problem(
            "server.listen",
            format!(
                "`{}` is not an address such as 127.0.0.1:8080",
                server.listen
            ),
        ));
    }
    if let Some(hash) = &server.admin_token_sha256
        && !(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        problems.push(cfg.problem(
            "server.admin_token_sha256",
            "must be the 64 hex digits of a SHA-256; `hrsync admin-token` makes a token and its hash",
        ));
    }
    match &server.public_url {
        Some(url) if !is_http_url(url) => problems.push(cfg.problem(
            "server.public_url",
            format!(
                "`{url}` is not an http:// or https:// address such as https://hrsync.acme.example"
            ),
        )),
        None if s.organisations.values().any(|o| !o.digest_to.is_empty()) => problems
            .push(cfg.problem(
            "server.public_url",
            "is required when an organisation has digest_to: each digest links to its run's page",
        )),
        _ => {}
    }
    problems
}

/// Whether `url` is an absolute http(s) address with a host.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.chars().any(char::is_whitespace)
}
