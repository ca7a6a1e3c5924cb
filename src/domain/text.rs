//! Text from HR, made safe at the edge: single-line values and NUL-free attributes.
//!
//! Names, emails, ids, titles, departments, locations, employment types and statuses travel
//! into email headers, CSV exports, HTML pages and both databases. A line break in a name can
//! break a mail header, a NUL is refused by PostgreSQL, and an invisible bidi override can make
//! a name read differently on a page than it is stored. So every such value is cleaned once,
//! here, before any other layer sees it: every run of white space or control characters inside
//! it becomes one space, NUL and invisible formatting characters are removed, and the ends are
//! trimmed. Attributes keep their text as given (a note may hold line breaks), without NUL.

/// Whether a character is removed outright rather than turned into a space: NUL, and the
/// invisible characters that reorder, hide or pad text (bidi marks, embeddings, overrides and
/// isolates; zero-width space, word joiner and invisible operators; soft hyphen; byte order
/// mark; Hangul fillers; deprecated format characters; tag characters). Zero-width joiners
/// (U+200C, U+200D) stay: scripts such as Persian and emoji sequences need them.
fn is_removed(c: char) -> bool {
    matches!(
        c,
        '\0' | '\u{00AD}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Whether a character separates words: white space (line and paragraph separators
/// included) or any other control character.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// A single-line value: every run of white space or control characters becomes one space,
/// NUL and invisible formatting characters are removed, and the ends are trimmed.
pub fn single_line(raw: &str) -> String {
    // Most values are clean already: one scan, one copy.
    if is_single_line(raw) {
        return raw.to_owned();
    }
    cleaned(raw)
}

/// [`single_line`]'s work, character by character.
fn cleaned(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if is_removed(c) {
            continue;
        }
        if is_separator(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Whether a value is already single-line (what [`single_line`] would return unchanged).
pub fn is_single_line(text: &str) -> bool {
    // A space is allowed only between two other characters: not first, not last, not twice.
    let mut after_space = true;
    if text.is_ascii() {
        // In ASCII, NUL is the one removed character and every control is a separator.
        for &b in text.as_bytes() {
            if b > b' ' && b != 0x7f {
                after_space = false;
            } else if b == b' ' && !after_space {
                after_space = true;
            } else {
                return false;
            }
        }
        return !after_space || text.is_empty();
    }
    for c in text.chars() {
        if is_removed(c) {
            return false;
        }
        if is_separator(c) {
            if c != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    !after_space || text.is_empty()
}

/// An optional single-line value: `None` when nothing is left after cleaning.
pub fn non_empty(raw: &str) -> Option<String> {
    let text = single_line(raw);
    (!text.is_empty()).then_some(text)
}

/// An attribute's value: its text as given, trimmed, without NUL (which PostgreSQL cannot
/// store); `None` when nothing is left.
pub fn attribute(raw: &str) -> Option<String> {
    let text = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let text = if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text.to_string()
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_breaks_tabs_and_controls_become_one_space() {
        assert_eq!(single_line("Ann\r\nSmit"), "Ann Smit");
        assert_eq!(single_line("Ann\t \u{b}\u{c}Smit"), "Ann Smit");
        assert_eq!(single_line("Ann\u{85}\u{2028}\u{2029}Smit"), "Ann Smit");
        assert_eq!(single_line("Ann\u{1b}[31mSmit"), "Ann [31mSmit");
    }

    #[test]
    fn nul_and_bidi_controls_are_removed() {
        assert_eq!(single_line("An\0n"), "Ann");
        assert_eq!(single_line("\u{202E}nimda\u{202C}"), "nimda");
        assert_eq!(single_line("Ann\u{200F} \u{2067}Smit\u{2069}"), "Ann Smit");
        assert_eq!(single_line("\u{FEFF}Ann"), "Ann");
        assert_eq!(single_line("An\u{AD}n\u{3164}\u{E0041}"), "Ann");
    }

    #[test]
    fn ends_are_trimmed_and_blank_text_is_none() {
        assert_eq!(single_line("  \n Ann  "), "Ann");
        assert_eq!(non_empty(" \r\n\t\0 "), None);
        assert_eq!(non_empty(" Ann "), Some("Ann".to_string()));
    }

    #[test]
    fn ordinary_names_are_kept_as_written() {
        for name in [
            "Zoë de Vries",
            "O'Brien",
            "محمد",
            "김민준",
            "👩‍💻 Dev",
            "نرگس‌ها",
        ] {
            assert_eq!(single_line(name), name);
        }
    }

    #[test]
    fn attributes_keep_their_line_breaks_but_lose_nul() {
        assert_eq!(attribute(" a\nb\0c "), Some("a\nbc".to_string()));
        assert_eq!(attribute("\0 \0"), None);
    }

    proptest! {
        #[test]
        fn single_line_text_has_no_control_character_and_is_stable(raw in any::<String>()) {
            let clean = single_line(&raw);
            prop_assert!(!clean.chars().any(|c| c.is_control() || is_removed(c)));
            prop_assert!(!clean.contains("  "));
            prop_assert_eq!(clean.trim(), clean.as_str());
            prop_assert_eq!(single_line(&clean), clean);
        }

        #[test]
        fn a_value_is_single_line_exactly_when_cleaning_keeps_it(
            raw in "[ a\\t\\n\\r\\x00\\x7f\u{85}\u{a0}\u{202e}\u{feff}é]{0,10}",
        ) {
            prop_assert_eq!(is_single_line(&raw), cleaned(&raw) == raw);
        }

        #[test]
        fn any_value_is_single_line_exactly_when_cleaning_keeps_it(raw in any::<String>()) {
            prop_assert_eq!(is_single_line(&raw), cleaned(&raw) == raw);
        }

        #[test]
        fn attributes_never_hold_nul(raw in any::<String>()) {
            if let Some(value) = attribute(&raw) {
                prop_assert!(!value.contains('\0'));
            }
        }
    }
}
