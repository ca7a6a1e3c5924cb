//! Small helpers for secrets that several layers need: random tokens (activation links,
//! sign-in sessions, admin tokens), the form they are stored in, and a URL shown without its
//! password. A leaf utility: it uses nothing of the crate, so the mail worker, the server and
//! a run can all share it without reaching into each other.

use aws_lc_rs::digest;

/// A new random token: 256 bits from the system's random source, as 64 hex digits (safe in a
/// URL). `Err` only when the system has no randomness to give.
pub fn random_token() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// The SHA-256 of a text as 64 hex digits: the form a token is stored and configured in.
pub fn sha256_hex(text: &str) -> String {
    hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL with the password of its user information replaced by `***`.
///
/// The user information is taken to end at the *last* `@`, so that a password with an
/// unencoded `@` or `/` is hidden too; a URL that only looks like it has one is shown mangled
/// rather than risk showing a secret.
pub fn url_without_password(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    match rest.rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}{user}:***{}", &rest[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_in_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());

        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_stored_form_is_the_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_password_in_a_url_is_hidden_up_to_the_last_at() {
        assert_eq!(
            url_without_password("smtps://hr:p@ss/w@mail.example:465"),
            "smtps://hr:***@mail.example:465"
        );
        assert_eq!(
            url_without_password("smtp://mail.example:25"),
            "smtp://mail.example:25"
        );
    }
}
