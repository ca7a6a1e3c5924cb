//! Layout: writes a [`Letter`] with its values as the subject, the plain-text and the HTML
//! body.
//!
//! Both bodies come from the same letter, block by block, so they cannot drift apart. Each phrase
//! is written once, as plain text, by the language's wording template (`templates.rs`); then
//! `templates/letter.txt` puts the phrases together as they are, and `templates/letter.html`
//! (inside `templates/document.html`) lets askama HTML-escape every one of them, so a name such as
//! `<b>Jan</b>` shows as written and cannot change the markup, and the wording's own `&` and `'`
//! are escaped as well.

use askama::Template;

use super::templates::{Block, Letter, Phrase, Words, say};
use super::{Locale, MailContent, MailError, MailKind};

/// The value names of the wording templates: a test checks that none is left in a rendered mail
/// as a `{placeholder}`, as the wording was once written.
#[cfg(test)]
pub(super) const PLACEHOLDERS: [&str; 7] = [
    "name",
    "organisation",
    "link",
    "days",
    "email",
    "old_email",
    "new_email",
];

/// The values of a mail, checked for the mail kind.
#[derive(Debug)]
pub(super) struct Values {
    pub(super) name: Option<String>,
    pub(super) organisation: String,
    pub(super) link: Option<String>,
    pub(super) days: Option<u32>,
    pub(super) email: String,
    pub(super) old_email: Option<String>,
    pub(super) new_email: Option<String>,
}

impl Values {
    /// Takes the values from the content, trimmed, and checks that the kind has what it needs.
    pub(super) fn from_content(content: &MailContent) -> Result<Values, MailError> {
        let missing = |field| MailError::MissingField {
            kind: content.kind,
            field,
        };
        let present = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_string)
        };

        let organisation = content.organisation.trim().to_string();
        if organisation.is_empty() {
            return Err(missing("organisation"));
        }
        let link = present(&content.link);
        if let Some(link) = &link {
            check_link(link)?;
        }
        let values = Values {
            name: present(&content.to_name),
            organisation,
            link,
            days: content.expires_in_days,
            email: content.to.trim().to_string(),
            old_email: present(&content.old_email),
            new_email: present(&content.new_email),
        };
        match content.kind {
            MailKind::Activation if values.link.is_none() => Err(missing("link")),
            MailKind::EmailChangedOld | MailKind::EmailChangedNew if values.old_email.is_none() => {
                Err(missing("old_email"))
            }
            MailKind::EmailChangedOld | MailKind::EmailChangedNew if values.new_email.is_none() => {
                Err(missing("new_email"))
            }
            _ => Ok(values),
        }
    }

    /// The values as the wording templates name them; a value the mail does not have is
    /// empty, and no phrase of that mail names it.
    fn words(&self) -> Words<'_> {
        Words {
            name: self.name.as_deref().unwrap_or_default(),
            organisation: &self.organisation,
            days: self.days.unwrap_or_default(),
            email: &self.email,
            old_email: self.old_email.as_deref().unwrap_or_default(),
            new_email: self.new_email.as_deref().unwrap_or_default(),
        }
    }
}

/// A link in a mail must be an absolute http(s) URL: anything else (a `javascript:` URL, a
/// relative path) would be a broken or dangerous button.
pub(super) fn check_link(link: &str) -> Result<(), MailError> {
    let lower = link.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let has_host = rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if has_host && !link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(MailError::InvalidLink {
            link: link.to_string(),
        })
    }
}

/// A block of a letter with its phrases written out.
pub(super) enum Part {
    Text(String),
    /// The button's label and the sentence before the written-out URL.
    Link(String, String),
}

#[derive(Template)]
#[template(path = "letter.txt", config = "src/mail/askama.toml")]
struct PlainText<'a> {
    greeting: &'a str,
    parts: &'a [Part],
    link: &'a str,
    sign_off: &'a str,
    footer: &'a str,
}

#[derive(Template)]
#[template(path = "letter.html", config = "src/mail/askama.toml")]
struct HtmlBody<'a> {
    lang: &'a str,
    title: &'a str,
    greeting: &'a str,
    parts: &'a [Part],
    link: &'a str,
    sign_off: &'a str,
    footer: &'a str,
}

/// A mail's subject and its two bodies.
pub(super) struct Rendered {
    pub(super) subject: String,
    pub(super) text: String,
    pub(super) html: String,
}

/// Writes `letter` in `locale` with `values`: the subject, the plain-text body and the HTML body
/// (a complete document with a single centred column and inline styles).
pub(super) fn render(
    letter: &Letter,
    values: &Values,
    locale: Locale,
) -> Result<Rendered, askama::Error> {
    let words = values.words();
    let say = |phrase: Phrase| say(locale, phrase, &words);
    let parts = letter
        .blocks
        .iter()
        .map(|block| match block {
            Block::Text(text) => Ok(Part::Text(say(*text)?)),
            Block::Link { label, fallback } => Ok(Part::Link(say(*label)?, say(*fallback)?)),
        })
        .collect::<Result<Vec<Part>, askama::Error>>()?;
    let subject = say(letter.subject)?;
    let greeting = say(letter.greeting)?;
    let sign_off = say(letter.sign_off)?;
    let footer = say(letter.footer)?;
    // A letter has a link block only when it has a link (`Values::from_content`, `letter`).
    let link = values.link.as_deref().unwrap_or_default();
    let text = PlainText {
        greeting: &greeting,
        parts: &parts,
        link,
        sign_off: &sign_off,
        footer: &footer,
    }
    .render()?;
    let html = HtmlBody {
        lang: locale.as_str(),
        title: &subject,
        greeting: &greeting,
        parts: &parts,
        link,
        sign_off: &sign_off,
        footer: &footer,
    }
    .render()?;
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            name: Some("Anna <de> Vries".to_string()),
            organisation: "Acme".to_string(),
            link: Some("https://x.example/a?b=1&c=2".to_string()),
            days: Some(3),
            email: "anna@example.org".to_string(),
            old_email: None,
            new_email: None,
        }
    }

    fn activation(values: &Values, locale: Locale) -> Rendered {
        let letter = super::super::templates::letter(MailKind::Activation, values);
        render(&letter, values, locale).unwrap()
    }

    #[test]
    fn values_are_written_into_the_phrases_as_they_are_in_plain_text() {
        let mail = activation(&values(), Locale::En);

        assert!(
            mail.text.starts_with("Hello Anna <de> Vries,\n"),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("valid for 3 days"), "{}", mail.text);
        assert!(
            mail.text.contains("\nhttps://x.example/a?b=1&c=2\n"),
            "{}",
            mail.text
        );
        assert_eq!(mail.subject, "You're invited to Acme");
    }

    #[test]
    fn html_escapes_values_and_template_text() {
        let mail = activation(&values(), Locale::En);

        assert!(
            mail.html.contains(">Hello Anna &lt;de&gt; Vries,</p>"),
            "{}",
            mail.html
        );
        assert!(
            mail.html
                .contains("href=\"https://x.example/a?b=1&amp;c=2\""),
            "{}",
            mail.html
        );
        assert!(
            mail.html
                .contains("<title>You&#39;re invited to Acme</title>")
        );
        assert!(
            mail.html.contains("Kind regards,<br>\nAcme</p>"),
            "{}",
            mail.html
        );
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_filled_again() {
        let tricky = Values {
            name: Some("{organisation} {{ v.organisation }}".to_string()),
            ..values()
        };

        let mail = activation(&tricky, Locale::Nl);

        assert!(
            mail.text
                .starts_with("Hallo {organisation} {{ v.organisation }},\n"),
            "{}",
            mail.text
        );
    }

    #[test]
    fn only_absolute_http_links_are_accepted() {
        for good in ["https://id.example.org/a", "http://localhost:8080/activate"] {
            assert!(check_link(good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "/activate",
            "https://",
            "https:///path",
            "https://x.example/a b",
            "ftp://x.example",
        ] {
            assert!(check_link(bad).is_err(), "{bad}");
        }
    }
}
