//! Small helpers for secrets that several layers need: random tokens (activation links,
//! sign-in sessions, admin tokens), the form they are stored in, a URL shown without its
//! password, and credentials sealed for keeping in the database. A leaf utility: it uses nothing of the crate, so the mail worker, the server and
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

/// A credential sealed for keeping in the database (AES-256-GCM, a random nonce): the key is
/// derived from `key_material`, a secret the database does not hold (the configured secret
/// the kept one replaces), so the database alone does not give it away. Hex of nonce and
/// sealed bytes.
pub fn seal(key_material: &str, plaintext: &str) -> Result<String, aws_lc_rs::error::Unspecified> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &seal_key(key_material))?);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce)?;
    let mut sealed = plaintext.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(SEAL_CONTEXT),
        &mut sealed,
    )?;
    Ok(format!("{}{}", hex(&nonce), hex(&sealed)))
}

/// What [`seal`] sealed, or `None` when it was sealed with other key material (the configured
/// secret changed) or is not a sealed text at all.
pub fn open_sealed(key_material: &str, sealed: &str) -> Option<String> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    let bytes = unhex(sealed)?;
    let (nonce, body) = (bytes.get(..NONCE_LEN)?, bytes.get(NONCE_LEN..)?);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &seal_key(key_material)).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(SEAL_CONTEXT), &mut body)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

const SEAL_CONTEXT: &[u8] = b"hrsync kept credential v1";

fn seal_key(key_material: &str) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(SEAL_CONTEXT);
    context.update(&[0]);
    context.update(key_material.as_bytes());
    let mut key = [0u8; 32];
    for (to, from) in key.iter_mut().zip(context.finish().as_ref()) {
        *to = *from;
    }
    key
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
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
    fn a_sealed_credential_opens_only_with_the_same_key_material() {
        let sealed = seal("configured-refresh-token", "rotated-refresh-token").unwrap();

        assert!(!sealed.contains("rotated"));
        assert_eq!(
            open_sealed("configured-refresh-token", &sealed).as_deref(),
            Some("rotated-refresh-token")
        );
        assert_eq!(open_sealed("another-configured-token", &sealed), None);
        assert_ne!(
            sealed,
            seal("configured-refresh-token", "rotated-refresh-token").unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_refused_as_a_sealed_credential_or_opened_without_panic(text in "\\PC{0,80}|[0-9a-f]{0,120}") {
            let _ = open_sealed("k", &text);
        }
    }

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
