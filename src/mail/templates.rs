//! The wording of every mail, in English and Dutch.
//!
//! Each language is one askama template, `templates/words.<language>.txt`, that writes any
//! [`Phrase`] with the mail's values ([`Words`]): adding a language means one more template,
//! and askama's `match` over the phrases makes the compiler refuse a language that forgets one.
//! [`letter`] picks the phrases a mail needs and puts them in order; `layout` writes the result
//! as text and HTML. A line break within a phrase is a line break within its paragraph.
//!
//! Tone: the Dutch texts address the reader with "je", as Dutch employers commonly do; both
//! languages say what happened, what to do next, and whom to ask when something is unexpected.

use askama::Template;

use super::layout::Values;
use super::{Locale, MailKind};

/// A mail before its phrases are written out.
pub(super) struct Letter {
    pub(super) subject: Phrase,
    pub(super) greeting: Phrase,
    pub(super) blocks: Vec<Block>,
    pub(super) sign_off: Phrase,
    pub(super) footer: Phrase,
}

/// One part of a letter's body.
pub(super) enum Block {
    /// A paragraph.
    Text(Phrase),
    /// The link: a button labelled `label` in HTML, followed by the URL written out after the
    /// `fallback` sentence; in plain text the label and the URL on its own line.
    Link { label: Phrase, fallback: Phrase },
}

/// Every phrase of every mail; each language's template writes each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phrase {
    HelloName,
    Hello,
    Regards,
    Footer,
    LinkFallback,

    ActivationSubject,
    ActivationIntro,
    ActivationButton,
    ActivationValidDays,
    ActivationValidOneDay,
    ActivationSingleUse,
    ActivationUnexpected,

    AddedSubject,
    AddedIntro,
    AddedButton,
    AddedUnexpected,

    ChangedOldSubject,
    ChangedOldBody,
    ChangedOldUnexpected,

    ChangedNewSubject,
    ChangedNewBody,
    ChangedNewUnchanged,
    ChangedNewUnexpected,
}

/// The values a phrase may name, as text. A phrase names only values its mail has: the
/// greeting with the name is chosen only when there is a name, the validity sentence with the
/// days only when the link expires, and the change notices require both addresses.
pub(super) struct Words<'a> {
    pub(super) name: &'a str,
    pub(super) organisation: &'a str,
    pub(super) days: u32,
    pub(super) email: &'a str,
    pub(super) old_email: &'a str,
    pub(super) new_email: &'a str,
}

#[derive(Template)]
#[template(path = "words.en.txt", config = "src/mail/askama.toml")]
struct English<'a> {
    phrase: Phrase,
    v: &'a Words<'a>,
}

#[derive(Template)]
#[template(path = "words.nl.txt", config = "src/mail/askama.toml")]
struct Dutch<'a> {
    phrase: Phrase,
    v: &'a Words<'a>,
}

/// One phrase in `locale`, with its values, as plain text.
pub(super) fn say(locale: Locale, phrase: Phrase, v: &Words<'_>) -> Result<String, askama::Error> {
    match locale {
        Locale::En => English { phrase, v }.render(),
        Locale::Nl => Dutch { phrase, v }.render(),
    }
}

/// The letter for a mail of `kind`. Which optional parts appear (the name in the
/// greeting, the validity sentence, a sign-in button) depends on which values are present.
pub(super) fn letter(kind: MailKind, values: &Values) -> Letter {
    let (subject, blocks) = match kind {
        MailKind::Activation => {
            let validity = match values.days {
                Some(1) => Phrase::ActivationValidOneDay,
                Some(_) => Phrase::ActivationValidDays,
                None => Phrase::ActivationSingleUse,
            };
            let blocks = vec![
                Block::Text(Phrase::ActivationIntro),
                Block::Link {
                    label: Phrase::ActivationButton,
                    fallback: Phrase::LinkFallback,
                },
                Block::Text(validity),
                Block::Text(Phrase::ActivationUnexpected),
            ];
            (Phrase::ActivationSubject, blocks)
        }
        MailKind::AddedToOrganisation => {
            let mut blocks = vec![Block::Text(Phrase::AddedIntro)];
            if values.link.is_some() {
                blocks.push(Block::Link {
                    label: Phrase::AddedButton,
                    fallback: Phrase::LinkFallback,
                });
            }
            blocks.push(Block::Text(Phrase::AddedUnexpected));
            (Phrase::AddedSubject, blocks)
        }
        MailKind::EmailChangedOld => {
            let blocks = vec![
                Block::Text(Phrase::ChangedOldBody),
                Block::Text(Phrase::ChangedOldUnexpected),
            ];
            (Phrase::ChangedOldSubject, blocks)
        }
        MailKind::EmailChangedNew => {
            let blocks = vec![
                Block::Text(Phrase::ChangedNewBody),
                Block::Text(Phrase::ChangedNewUnchanged),
                Block::Text(Phrase::ChangedNewUnexpected),
            ];
            (Phrase::ChangedNewSubject, blocks)
        }
    };
    Letter {
        subject,
        greeting: if values.name.is_some() {
            Phrase::HelloName
        } else {
            Phrase::Hello
        },
        blocks,
        sign_off: Phrase::Regards,
        footer: Phrase::Footer,
    }
}
