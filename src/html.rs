//! The HTML escaping of every template that askama renders as HTML (mails, digests and the
//! admin pages), named in `src/mail/askama.toml` and `src/server/askama.toml` for the `.html`
//! extension. A leaf utility, so the mails and the pages share it without the server reaching
//! into the mail module.
//!
//! Askama decides what is escaped: every value a template writes, unless the template marks it
//! safe (none of ours does). This escaper only decides how: with the named entities `&amp;`,
//! `&lt;`, `&gt;`, `&quot;` and the numeric `&#39;`, as hrsync's mails and pages have always been
//! written (askama's own escaper writes numeric entities for all five). Mail clients and tests
//! see the same text as before, and the five characters that can end an element or a quoted
//! attribute value are still all escaped.

use std::fmt;

/// The HTML escaper of hrsync's templates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        for c in text.chars() {
            self.write_escaped_char(&mut dest, c)?;
        }
        Ok(())
    }

    fn write_escaped_char<W: fmt::Write>(&self, mut dest: W, c: char) -> fmt::Result {
        match c {
            '&' => dest.write_str("&amp;"),
            '<' => dest.write_str("&lt;"),
            '>' => dest.write_str("&gt;"),
            '"' => dest.write_str("&quot;"),
            '\'' => dest.write_str("&#39;"),
            c => dest.write_char(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use askama::filters::Escaper;

    use super::*;

    #[test]
    fn the_five_markup_characters_are_escaped_with_their_entities() {
        let mut out = String::new();

        Html.write_escaped_str(&mut out, "<script>alert('x')</script> & \"q\" é")
            .unwrap();

        assert_eq!(
            out,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot; é"
        );
    }
}
