//! Identifier newtypes: email addresses, employee ids, team keys and connector ids.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// An email address, cleaned to a single line and trimmed, compared case-insensitively.
///
/// The address keeps the letter case it was given in (people care how their name is written),
/// but equality, ordering and hashing use [`Email::key`], the lower-cased form, so
/// `Jan@Example.org` and `jan@example.org` are the same account.
#[derive(Clone)]
pub struct Email {
    text: String,
    key: String,
}

/// Why a text is not a usable email address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("no email address")]
    Missing,
    #[error("`{0}` is not a valid email address")]
    Invalid(String),
}

impl Email {
    /// Parses an address: trimmed; a dot-atom local part (letters, digits and
    /// ``!#$%&'*+-/=?^_`{|}~``, dots between them) of at most 64 characters; a domain of at
    /// least two dot-separated labels of letters, digits and inner hyphens; at most 254
    /// characters in all. Letters may be non-ASCII (internationalised addresses). Anything a
    /// mail server would refuse (`<a@b.nl>`, `mailto:a@b.nl`, `a@b.nl;`) is invalid.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let text = &super::single_line(raw);
        if text.is_empty() {
            return Err(EmailError::Missing);
        }
        let invalid = || EmailError::Invalid(shortened(text));
        if text.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(invalid());
        }
        Ok(Email {
            text: text.to_string(),
            key: text.to_lowercase(),
        })
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The lower-cased address that identifies an account.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// An invalid address as a report shows it: at most 320 characters, so a hostile value of any
/// size cannot swell a report.
fn shortened(text: &str) -> String {
    const MAX: usize = 320;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Email {}
impl Hash for Email {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}
impl PartialOrd for Email {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Email {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}
impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.text)
    }
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Cleans the text to a single line (see [`super::single_line`]); an empty one is
            /// no id.
            pub fn parse(raw: &str) -> Option<$name> {
                super::non_empty(raw).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s).ok_or_else(|| format!("an empty {} is not allowed", $what))
            }
        }
    };
}

text_id!(
    /// The HR system's id of an employee, unique within one connector.
    EmployeeId,
    "employee id"
);
text_id!(
    /// The HR key a team is made from: a department code, a location or a cost centre.
    TeamKey,
    "team key"
);
text_id!(
    /// The id of a connector instance in the deployment configuration.
    ConnectorId,
    "connector id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_compared_without_case() {
        let a = Email::parse("  Jan.Jansen@Example.org ").unwrap();
        let b = Email::parse("jan.jansen@example.ORG").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Jan.Jansen@Example.org");
        assert_eq!(a.key(), "jan.jansen@example.org");
    }

    #[test]
    fn email_without_domain_dot_or_at_is_invalid() {
        for raw in [
            "jan",
            "jan@",
            "@example.org",
            "jan@localhost",
            "j an@example.org",
            "a@b@c.nl",
        ] {
            assert!(
                matches!(Email::parse(raw), Err(EmailError::Invalid(_))),
                "{raw}"
            );
        }
        assert_eq!(Email::parse("   "), Err(EmailError::Missing));
    }

    #[test]
    fn ordinary_and_international_addresses_are_valid() {
        for raw in [
            "jan.de-vries+hr@example.org",
            "o'brien@dekring.example",
            "zoë@zonnehof.example",
            "a@xn--bcher-kva.example",
        ] {
            assert!(Email::parse(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn employee_id_is_trimmed_and_never_empty() {
        assert_eq!(EmployeeId::parse(" 0042 ").unwrap().as_str(), "0042");
        assert!(EmployeeId::parse("  ").is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_into_a_clean_address_or_a_short_error(raw in proptest::prelude::any::<String>()) {
            match Email::parse(&raw) {
                Ok(email) => {
                    proptest::prop_assert!(crate::domain::is_single_line(email.as_str()));
                    proptest::prop_assert!(email.as_str().len() <= 254);
                    proptest::prop_assert_eq!(email.key(), email.as_str().to_lowercase());
                }
                Err(EmailError::Invalid(text)) => {
                    proptest::prop_assert!(crate::domain::is_single_line(&text));
                    proptest::prop_assert!(text.chars().count() <= 321);
                }
                Err(EmailError::Missing) => {}
            }
        }

        #[test]
        fn ids_are_single_line_and_never_empty(raw in proptest::prelude::any::<String>()) {
            if let Some(id) = EmployeeId::parse(&raw) {
                proptest::prop_assert!(!id.as_str().is_empty());
                proptest::prop_assert!(crate::domain::is_single_line(id.as_str()));
                proptest::prop_assert_eq!(EmployeeId::parse(id.as_str()), Some(id.clone()));
            }
        }
    }
}
