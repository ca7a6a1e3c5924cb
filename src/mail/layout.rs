//! Layout: turns a [`Letter`] and its values into the plain-text and the HTML body.
//!
//! Both bodies come from the same letter, block by block, so they cannot drift apart. Values are
//! substituted into `{placeholder}`s by [`fill`]; in the HTML body every substituted value, and
//! the template text around it, is HTML-escaped, so a name such as `<b>Jan</b>` shows as
//! written and cannot change the markup.

use super::templates::{Block, Letter};
use super::{Locale, MailContent, MailError, MailKind};

/// The placeholder names a template may use.
pub(super) const PLACEHOLDERS: [&str; 7] = [
    "name",
    "organisation",
    "link",
    "days",
    "email",
    "old_email",
    "new_email",
];

/// The values substituted into a template, checked for the mail kind.
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

    fn get(&self, placeholder: &str) -> Option<String> {
        match placeholder {
            "name" => self.name.clone(),
            "organisation" => Some(self.organisation.clone()),
            "link" => self.link.clone(),
            "days" => self.days.map(|days| days.to_string()),
            "email" => Some(self.email.clone()),
            "old_email" => self.old_email.clone(),
            "new_email" => self.new_email.clone(),
            _ => None,
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

/// How substituted text is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Escape {
    /// Plain text and headers: as is.
    None,
    /// HTML text and attribute values.
    Html,
}

/// Replaces each `{name}` in `template` with its value. A placeholder without a value is left
/// as it is (the tests check that no template leaves one), and a `{` that does not start a
/// placeholder is ordinary text.
pub(super) fn fill(template: &str, values: &Values, escape: Escape) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        push(&mut out, &rest[..open], escape);
        let after = &rest[open + 1..];
        let substituted = after.find('}').and_then(|close| {
            let name = &after[..close];
            let value = if PLACEHOLDERS.contains(&name) {
                values.get(name)
            } else {
                None
            };
            value.map(|value| (value, close))
        });
        match substituted {
            Some((value, close)) => {
                push(&mut out, &value, escape);
                rest = &after[close + 1..];
            }
            None => {
                push(&mut out, "{", escape);
                rest = after;
            }
        }
    }
    push(&mut out, rest, escape);
    out
}

fn push(out: &mut String, text: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(text),
        Escape::Html => escape_html_into(out, text),
    }
}

/// Escapes the five characters that matter in HTML text and in quoted attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_html_into(&mut out, text);
    out
}

fn escape_html_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The plain-text body: greeting, paragraphs separated by blank lines, links on a line of their
/// own (so that mail clients make them clickable and nothing wraps them), the sign-off, and the
/// footer below a signature separator.
pub(super) fn plain_text(letter: &Letter, values: &Values) -> String {
    let mut out = fill(letter.greeting, values, Escape::None);
    for block in &letter.blocks {
        out.push_str("\n\n");
        match block {
            Block::Text(template) => out.push_str(&fill(template, values, Escape::None)),
            Block::Link { label, .. } => {
                out.push_str(&fill(label, values, Escape::None));
                out.push_str(":\n");
                out.push_str(&fill("{link}", values, Escape::None));
            }
        }
    }
    out.push_str("\n\n");
    out.push_str(&fill(letter.sign_off, values, Escape::None));
    out.push_str("\n\n-- \n");
    out.push_str(&fill(letter.footer, values, Escape::None));
    out.push('\n');
    out
}

const FONT: &str = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;";
pub(super) const PARAGRAPH: &str = "margin:0 0 16px 0;";
pub(super) const BUTTON: &str = "display:inline-block;padding:12px 24px;background-color:#1d4ed8;\
    color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600;";

/// The HTML body: a complete document with a single centred column and inline styles, which is
/// what mail clients render reliably. A link becomes a button, followed by the URL written out
/// for clients that do not show buttons.
pub(super) fn html(letter: &Letter, values: &Values, locale: Locale) -> String {
    let text = |template: &str| fill(template, values, Escape::Html).replace('\n', "<br>\n");
    let mut body = String::new();
    body.push_str(&format!(
        "<p style=\"{PARAGRAPH}\">{}</p>\n",
        text(letter.greeting)
    ));
    for block in &letter.blocks {
        match block {
            Block::Text(template) => {
                body.push_str(&format!(
                    "<p style=\"{PARAGRAPH}\">{}</p>\n",
                    text(template)
                ));
            }
            Block::Link { label, fallback } => {
                let href = fill("{link}", values, Escape::Html);
                body.push_str(&format!(
                    "<p style=\"margin:24px 0;\"><a href=\"{href}\" style=\"{BUTTON}\">{}</a></p>\n",
                    text(label)
                ));
                body.push_str(&format!(
                    "<p style=\"{PARAGRAPH}font-size:14px;color:#4b5563;\">{}<br>\n\
                     <a href=\"{href}\" style=\"color:#1d4ed8;word-break:break-all;\">{href}</a></p>\n",
                    text(fallback)
                ));
            }
        }
    }
    body.push_str(&format!(
        "<p style=\"margin:24px 0 0 0;\">{}</p>\n",
        text(letter.sign_off)
    ));

    let subject = fill(letter.subject, values, Escape::Html);
    let footer = text(letter.footer);
    document(locale, &subject, &body, &footer)
}

/// The HTML document around a body: a single centred white column on grey with inline styles,
/// and the footer below it. `title`, `body` and `footer` are HTML already.
pub(super) fn document(locale: Locale, title: &str, body: &str, footer: &str) -> String {
    let lang = locale.as_str();
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"{lang}\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         </head>\n\
         <body style=\"margin:0;padding:0;background-color:#f3f4f6;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"background-color:#f3f4f6;\">\n\
         <tr><td align=\"center\" style=\"padding:32px 12px;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"max-width:560px;background-color:#ffffff;border-radius:8px;\">\n\
         <tr><td style=\"padding:32px;{FONT}font-size:16px;line-height:1.5;color:#111827;\">\n\
         {body}\
         </td></tr>\n\
         </table>\n\
         <p style=\"max-width:560px;margin:16px auto 0 auto;{FONT}font-size:12px;\
         line-height:1.5;color:#6b7280;\">{footer}</p>\n\
         </td></tr>\n\
         </table>\n\
         </body>\n\
         </html>\n"
    )
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

    #[test]
    fn placeholders_are_replaced_by_their_values() {
        let filled = fill(
            "Hi {name}, {days} days at {organisation}.",
            &values(),
            Escape::None,
        );

        assert_eq!(filled, "Hi Anna <de> Vries, 3 days at Acme.");
    }

    #[test]
    fn html_fill_escapes_values_and_template_text() {
        let filled = fill("Tom & {name}: {link}", &values(), Escape::Html);

        assert_eq!(
            filled,
            "Tom &amp; Anna &lt;de&gt; Vries: https://x.example/a?b=1&amp;c=2"
        );
    }

    #[test]
    fn braces_that_are_no_placeholder_stay_as_written() {
        let filled = fill(
            "{ not one } {unknown} {old_email} {",
            &values(),
            Escape::None,
        );

        assert_eq!(filled, "{ not one } {unknown} {old_email} {");
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_filled_again() {
        let tricky = Values {
            name: Some("{organisation}".to_string()),
            ..values()
        };

        let filled = fill("Hi {name}", &tricky, Escape::None);

        assert_eq!(filled, "Hi {organisation}");
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
