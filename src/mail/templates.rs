//! The wording of every mail, in English and Dutch.
//!
//! Each language is one [`Phrasebook`]: adding a language means filling in one more, and the
//! compiler makes sure no phrase is forgotten. [`letter`] picks the phrases a mail needs and puts
//! them in order; `layout` turns the result into text and HTML. Phrases use `{placeholder}`s
//! (see `layout::PLACEHOLDERS`) and `\n` for a line break within a paragraph.
//!
//! Tone: the Dutch texts address the reader with "je", as Dutch employers commonly do; both
//! languages say what happened, what to do next, and whom to ask when something is unexpected.

use super::layout::Values;
use super::{Locale, MailKind};

/// A mail before its values are filled in.
pub(super) struct Letter {
    pub(super) subject: &'static str,
    pub(super) greeting: &'static str,
    pub(super) blocks: Vec<Block>,
    pub(super) sign_off: &'static str,
    pub(super) footer: &'static str,
}

/// One part of a letter's body.
pub(super) enum Block {
    /// A paragraph.
    Text(&'static str),
    /// The `{link}`: a button labelled `label` in HTML, followed by the URL written out after the
    /// `fallback` sentence; in plain text the label and the URL on its own line.
    Link {
        label: &'static str,
        fallback: &'static str,
    },
}

/// Every phrase of every mail, in one language.
struct Phrasebook {
    hello_name: &'static str,
    hello: &'static str,
    regards: &'static str,
    footer: &'static str,
    link_fallback: &'static str,

    activation_subject: &'static str,
    activation_intro: &'static str,
    activation_button: &'static str,
    activation_valid_days: &'static str,
    activation_valid_one_day: &'static str,
    activation_single_use: &'static str,
    activation_unexpected: &'static str,

    added_subject: &'static str,
    added_intro: &'static str,
    added_button: &'static str,
    added_unexpected: &'static str,

    changed_old_subject: &'static str,
    changed_old_body: &'static str,
    changed_old_unexpected: &'static str,

    changed_new_subject: &'static str,
    changed_new_body: &'static str,
    changed_new_unchanged: &'static str,
    changed_new_unexpected: &'static str,
}

const EN: Phrasebook = Phrasebook {
    hello_name: "Hello {name},",
    hello: "Hello,",
    regards: "Kind regards,\n{organisation}",
    footer: "This is an automated message sent on behalf of {organisation}.",
    link_fallback: "If the button does not work, copy this link into your browser:",

    activation_subject: "You're invited to {organisation}",
    activation_intro: "{organisation} has created an account for you. To start using it, \
        activate your account with the link below.",
    activation_button: "Activate your account",
    activation_valid_days: "This link is valid for {days} days and can be used only once. \
        If it has expired, ask your HR department to send you a new invitation.",
    activation_valid_one_day: "This link is valid for {days} day and can be used only once. \
        If it has expired, ask your HR department to send you a new invitation.",
    activation_single_use: "This link can be used only once. If it no longer works, ask your \
        HR department to send you a new invitation.",
    activation_unexpected: "If you did not expect this invitation, you can ignore this email: \
        your account stays inactive until the link is used. If you have any questions, please \
        contact your HR department.",

    added_subject: "You now have access to {organisation}",
    added_intro: "You have been added to {organisation}. You can use the account you already \
        have: sign in as usual with {email}. You do not need a new account or password.",
    added_button: "Sign in",
    added_unexpected: "If you did not expect this, please contact the HR department of \
        {organisation}.",

    changed_old_subject: "Your sign-in address for {organisation} has been changed",
    changed_old_body: "Following a change in the HR records of {organisation}, the email \
        address you use to sign in has been changed from {old_email} to {new_email}. From now \
        on, sign in with {new_email}; messages about your account will be sent there.",
    changed_old_unexpected: "If you did not expect this change, please contact your HR \
        department as soon as possible.",

    changed_new_subject: "This is now your sign-in address for {organisation}",
    changed_new_body: "Following a change in the HR records of {organisation}, this address, \
        {new_email}, is now the email address you use to sign in. It replaces your previous \
        address, {old_email}, which no longer works for signing in.",
    changed_new_unchanged: "Nothing else about your account has changed.",
    changed_new_unexpected: "If you did not expect this change, please contact your HR \
        department.",
};

const NL: Phrasebook = Phrasebook {
    hello_name: "Hallo {name},",
    hello: "Hallo,",
    regards: "Met vriendelijke groet,\n{organisation}",
    footer: "Dit is een automatisch bericht namens {organisation}.",
    link_fallback: "Werkt de knop niet? Kopieer dan deze link naar je browser:",

    activation_subject: "Je bent uitgenodigd voor {organisation}",
    activation_intro: "{organisation} heeft een account voor je aangemaakt. Activeer je account \
        via de link hieronder om ermee aan de slag te gaan.",
    activation_button: "Account activeren",
    activation_valid_days: "Deze link is {days} dagen geldig en werkt maar één keer. Is de \
        link verlopen? Vraag dan je afdeling HR om een nieuwe uitnodiging.",
    activation_valid_one_day: "Deze link is {days} dag geldig en werkt maar één keer. Is de \
        link verlopen? Vraag dan je afdeling HR om een nieuwe uitnodiging.",
    activation_single_use: "Deze link werkt maar één keer. Werkt hij niet meer? Vraag dan je \
        afdeling HR om een nieuwe uitnodiging.",
    activation_unexpected: "Had je deze uitnodiging niet verwacht? Dan kun je deze e-mail \
        negeren: je account blijft inactief zolang de link niet is gebruikt. Heb je vragen? \
        Neem dan contact op met je afdeling HR.",

    added_subject: "Je hebt nu toegang tot {organisation}",
    added_intro: "Je bent toegevoegd aan {organisation}. Je gebruikt daarvoor het account dat \
        je al hebt: log zoals gewoonlijk in met {email}. Een nieuw account of wachtwoord is \
        niet nodig.",
    added_button: "Inloggen",
    added_unexpected: "Had je dit niet verwacht? Neem dan contact op met de afdeling HR van \
        {organisation}.",

    changed_old_subject: "Je inlogadres voor {organisation} is gewijzigd",
    changed_old_body: "Na een wijziging in de HR-gegevens van {organisation} is het \
        e-mailadres waarmee je inlogt gewijzigd van {old_email} in {new_email}. Log voortaan \
        in met {new_email}; berichten over je account worden vanaf nu naar dat adres gestuurd.",
    changed_old_unexpected: "Had je deze wijziging niet verwacht? Neem dan zo snel mogelijk \
        contact op met je afdeling HR.",

    changed_new_subject: "Dit is nu je inlogadres voor {organisation}",
    changed_new_body: "Na een wijziging in de HR-gegevens van {organisation} is dit adres, \
        {new_email}, nu het e-mailadres waarmee je inlogt. Het vervangt je vorige adres, \
        {old_email}; daarmee kun je niet meer inloggen.",
    changed_new_unchanged: "Verder is er niets aan je account veranderd.",
    changed_new_unexpected: "Had je deze wijziging niet verwacht? Neem dan contact op met je \
        afdeling HR.",
};

/// The letter for a mail of `kind` in `locale`. Which optional parts appear (the name in the
/// greeting, the validity sentence, a sign-in button) depends on which values are present.
pub(super) fn letter(kind: MailKind, locale: Locale, values: &Values) -> Letter {
    let words = match locale {
        Locale::En => &EN,
        Locale::Nl => &NL,
    };
    let (subject, blocks) = match kind {
        MailKind::Activation => {
            let validity = match values.days {
                Some(1) => words.activation_valid_one_day,
                Some(_) => words.activation_valid_days,
                None => words.activation_single_use,
            };
            let blocks = vec![
                Block::Text(words.activation_intro),
                Block::Link {
                    label: words.activation_button,
                    fallback: words.link_fallback,
                },
                Block::Text(validity),
                Block::Text(words.activation_unexpected),
            ];
            (words.activation_subject, blocks)
        }
        MailKind::AddedToOrganisation => {
            let mut blocks = vec![Block::Text(words.added_intro)];
            if values.link.is_some() {
                blocks.push(Block::Link {
                    label: words.added_button,
                    fallback: words.link_fallback,
                });
            }
            blocks.push(Block::Text(words.added_unexpected));
            (words.added_subject, blocks)
        }
        MailKind::EmailChangedOld => {
            let blocks = vec![
                Block::Text(words.changed_old_body),
                Block::Text(words.changed_old_unexpected),
            ];
            (words.changed_old_subject, blocks)
        }
        MailKind::EmailChangedNew => {
            let blocks = vec![
                Block::Text(words.changed_new_body),
                Block::Text(words.changed_new_unchanged),
                Block::Text(words.changed_new_unexpected),
            ];
            (words.changed_new_subject, blocks)
        }
    };
    Letter {
        subject,
        greeting: if values.name.is_some() {
            words.hello_name
        } else {
            words.hello
        },
        blocks,
        sign_off: words.regards,
        footer: words.footer,
    }
}
