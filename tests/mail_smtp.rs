//! Mail end to end: each kind of mail is rendered, delivered through `Mailer::smtp` to a real
//! SMTP server on a local port, and read back the way a mail client would read it.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/smtp.rs"]
mod smtp;

use std::time::Duration;

use hrsync::mail::{Locale, MailContent, MailError, MailKind, Mailer, render};
use lettre::message::Mailbox;
use secrecy::SecretString;
use smtp::{ReceivedMail, SmtpSink};

const WAIT: Duration = Duration::from_secs(10);
const LINK: &str = "https://id.example.org/activate?token=Zx9-_q%2Fw&org=42";

fn from() -> Mailbox {
    "Zorggroep Noord <noreply@zorggroep-noord.example>"
        .parse()
        .unwrap()
}

fn activation(locale: Locale) -> MailContent {
    MailContent {
        kind: MailKind::Activation,
        locale,
        to: "jan.jansen@example.org".to_string(),
        to_name: Some("Jan Jansen".to_string()),
        organisation: "Zorggroep Noord".to_string(),
        link: Some(LINK.to_string()),
        expires_in_days: Some(14),
        old_email: None,
        new_email: None,
    }
}

fn email_change(kind: MailKind, to: &str) -> MailContent {
    MailContent {
        kind,
        locale: Locale::En,
        to: to.to_string(),
        to_name: Some("Jan Jansen".to_string()),
        organisation: "Zorggroep Noord".to_string(),
        link: None,
        expires_in_days: None,
        old_email: Some("jan@old.example".to_string()),
        new_email: Some("jan.jansen@new.example".to_string()),
    }
}

async fn deliver(sink: &SmtpSink, content: &MailContent) {
    let mailer = Mailer::smtp(&sink.url(), None).unwrap();
    let message = render(content, &from()).unwrap();
    mailer.send(message).await.unwrap();
}

fn text_of(mail: &ReceivedMail) -> String {
    mail.text().expect("a text/plain part")
}

fn html_of(mail: &ReceivedMail) -> String {
    mail.html().expect("a text/html part")
}

#[tokio::test]
async fn activation_mail_arrives_with_recipient_subject_and_exact_link() {
    let sink = SmtpSink::start().await;

    deliver(&sink, &activation(Locale::En)).await;

    let mails = sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.from, "noreply@zorggroep-noord.example");
    assert_eq!(mail.to, ["jan.jansen@example.org"]);
    assert_eq!(
        mail.subject().as_deref(),
        Some("You're invited to Zorggroep Noord")
    );
    assert_eq!(
        mail.header("To").as_deref(),
        Some("\"Jan Jansen\" <jan.jansen@example.org>")
    );
    let text = text_of(mail);
    assert!(
        text.lines().any(|line| line == LINK),
        "the link is not on a line of its own: {text}"
    );
    let html = html_of(mail);
    let href = format!("href=\"{}\"", LINK.replace('&', "&amp;"));
    assert!(html.contains(&href), "{html}");
}

#[tokio::test]
async fn activation_mail_in_dutch_is_written_in_dutch() {
    let sink = SmtpSink::start().await;

    deliver(&sink, &activation(Locale::Nl)).await;

    let mails = sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(
        mail.subject().as_deref(),
        Some("Je bent uitgenodigd voor Zorggroep Noord")
    );
    assert_eq!(mail.header("Content-Language").as_deref(), Some("nl"));
    let text = text_of(mail);
    assert!(text.starts_with("Hallo Jan Jansen,"), "{text}");
    assert!(
        text.contains("14 dagen geldig en werkt maar één keer"),
        "{text}"
    );
    assert!(text.contains("Met vriendelijke groet"), "{text}");
    assert!(text.lines().any(|line| line == LINK), "{text}");
    let html = html_of(mail);
    assert!(html.contains("Account activeren"), "{html}");
    assert!(html.contains("<html lang=\"nl\">"), "{html}");
}

#[tokio::test]
async fn email_change_notices_reach_the_old_and_the_new_address() {
    let sink = SmtpSink::start().await;
    let to_old = email_change(MailKind::EmailChangedOld, "jan@old.example");
    let to_new = email_change(MailKind::EmailChangedNew, "jan.jansen@new.example");

    deliver(&sink, &to_old).await;
    deliver(&sink, &to_new).await;

    let mails = sink.wait_for(2, WAIT).await;
    let old = mails
        .iter()
        .find(|mail| mail.to == ["jan@old.example"])
        .expect("a notice to the old address");
    let new = mails
        .iter()
        .find(|mail| mail.to == ["jan.jansen@new.example"])
        .expect("a notice to the new address");
    assert_eq!(
        old.subject().as_deref(),
        Some("Your sign-in address for Zorggroep Noord has been changed")
    );
    let old_text = text_of(old);
    assert!(
        old_text.contains("from jan@old.example to jan.jansen@new.example"),
        "{old_text}"
    );
    assert!(
        old_text.contains("contact your HR department"),
        "{old_text}"
    );
    assert!(html_of(old).contains("jan.jansen@new.example"));
    assert_eq!(
        new.subject().as_deref(),
        Some("This is now your sign-in address for Zorggroep Noord")
    );
    let new_text = text_of(new);
    assert!(
        new_text.contains("your previous address, jan@old.example,"),
        "{new_text}"
    );
    assert!(html_of(new).contains("jan@old.example"));
}

#[tokio::test]
async fn added_to_organisation_notice_names_the_organisation_and_the_sign_in_address() {
    let sink = SmtpSink::start().await;
    let content = MailContent {
        kind: MailKind::AddedToOrganisation,
        locale: Locale::Nl,
        link: Some("https://id.example.org/login".to_string()),
        expires_in_days: None,
        ..activation(Locale::Nl)
    };

    deliver(&sink, &content).await;

    let mails = sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(
        mail.subject().as_deref(),
        Some("Je hebt nu toegang tot Zorggroep Noord")
    );
    let text = text_of(mail);
    assert!(
        text.contains("Je bent toegevoegd aan Zorggroep Noord"),
        "{text}"
    );
    assert!(text.contains("jan.jansen@example.org"), "{text}");
    assert!(
        text.lines()
            .any(|line| line == "https://id.example.org/login"),
        "{text}"
    );
}

#[tokio::test]
async fn names_with_accents_and_markup_survive_the_trip() {
    let sink = SmtpSink::start().await;
    let content = MailContent {
        to_name: Some("Zoë <b>de</b> Vries".to_string()),
        organisation: "Stichting Één & Twee".to_string(),
        ..activation(Locale::Nl)
    };

    deliver(&sink, &content).await;

    let mails = sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(
        mail.subject().as_deref(),
        Some("Je bent uitgenodigd voor Stichting Één & Twee")
    );
    assert!(text_of(mail).starts_with("Hallo Zoë <b>de</b> Vries,"));
    let html = html_of(mail);
    assert!(
        html.contains("Hallo Zoë &lt;b&gt;de&lt;/b&gt; Vries,"),
        "{html}"
    );
    assert!(html.contains("Stichting Één &amp; Twee"), "{html}");
}

#[tokio::test]
async fn credentials_are_used_to_sign_in_to_the_server() {
    let sink = SmtpSink::start().await;
    let credentials = ("hrsync".to_string(), SecretString::from("s3cret pass"));
    let mailer = Mailer::smtp(&sink.url(), Some(credentials)).unwrap();

    mailer
        .send(render(&activation(Locale::En), &from()).unwrap())
        .await
        .unwrap();

    sink.wait_for(1, WAIT).await;
    assert_eq!(
        sink.logins(),
        [("hrsync".to_string(), "s3cret pass".to_string())]
    );
}

#[tokio::test]
async fn one_mailer_delivers_several_messages_over_its_pool() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::smtp(&sink.url(), None).unwrap();

    for to in ["a@example.org", "b@example.org", "c@example.org"] {
        let content = MailContent {
            to: to.to_string(),
            ..activation(Locale::En)
        };
        mailer
            .send(render(&content, &from()).unwrap())
            .await
            .unwrap();
    }

    let mails = sink.wait_for(3, WAIT).await;
    let recipients: Vec<&str> = mails.iter().map(|mail| mail.to[0].as_str()).collect();
    assert_eq!(
        recipients,
        ["a@example.org", "b@example.org", "c@example.org"]
    );
}

#[tokio::test]
async fn file_mailer_writes_an_eml_file_with_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("mail");
    let mailer = Mailer::file(&folder).unwrap();

    mailer
        .send(render(&activation(Locale::En), &from()).unwrap())
        .await
        .unwrap();

    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].extension().and_then(|ext| ext.to_str()),
        Some("eml")
    );
    let written = ReceivedMail {
        from: String::new(),
        to: Vec::new(),
        data: std::fs::read_to_string(&files[0]).unwrap(),
    };
    assert_eq!(
        written.subject().as_deref(),
        Some("You're invited to Zorggroep Noord")
    );
    assert!(text_of(&written).lines().any(|line| line == LINK));
}

#[tokio::test]
async fn refused_sender_gives_a_permanent_error_without_the_password() {
    let sink = SmtpSink::failing().await;
    let password = "never-show-this-pw";
    let credentials = ("hrsync".to_string(), SecretString::from(password));
    let mailer = Mailer::smtp(&sink.url(), Some(credentials)).unwrap();

    let result = mailer
        .send(render(&activation(Locale::En), &from()).unwrap())
        .await;

    let err = result.expect_err("the server refuses every sender");
    assert!(matches!(err, MailError::Smtp { .. }), "{err:?}");
    assert!(!err.is_transient(), "{err}");
    let shown = format!("{err} | {err:?} | {mailer} | {mailer:?}");
    assert!(!shown.contains(password), "{shown}");
    assert!(err.to_string().contains("554"), "{err}");
    assert!(err.to_string().contains(&sink.url()), "{err}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn temporarily_refused_sender_gives_a_transient_error() {
    let sink = SmtpSink::failing_transiently().await;
    let mailer = Mailer::smtp(&sink.url(), None).unwrap();

    let result = mailer
        .send(render(&activation(Locale::En), &from()).unwrap())
        .await;

    let err = result.expect_err("the server refuses every sender for now");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("451"), "{err}");
}

#[tokio::test]
async fn unreachable_server_gives_a_transient_error_without_the_password() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("smtp://hrsync:url-secret@127.0.0.1:{closed_port}");
    let mailer = Mailer::smtp(&url, None).unwrap();

    let result = mailer
        .send(render(&activation(Locale::En), &from()).unwrap())
        .await;

    let err = result.expect_err("nothing listens on the port");
    assert!(err.is_transient(), "{err}");
    let shown = format!("{err} | {err:?}");
    assert!(!shown.contains("url-secret"), "{shown}");
    assert!(shown.contains("hrsync:***@127.0.0.1"), "{shown}");
}
