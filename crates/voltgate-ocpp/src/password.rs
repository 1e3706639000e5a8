//! Charger Basic-auth passwords (security profiles 1 and 2) as each OCPP version has them:
//! which passwords are valid, and how the value that sets one on the charger is written.
//!
//! What the specifications say, and what this module follows:
//! - OCPP 1.6 Security Whitepaper (edition 3), configuration key `AuthorizationKey`: the Basic
//!   authentication password, "minimal length: 16 bytes", "20 bytes maximum", and on the wire
//!   "hexadecimal represented ... as a string of up to 40 hexadecimal digits". The charger
//!   decodes the hex and presents the password itself (the bytes) in its `Authorization`
//!   header; the compliance test tool checks that the CSMS sends the hex form. So a 1.6
//!   password is 16 to 20 bytes, sent as 32 to 40 hex digits.
//! - OCPP 2.0.1 Part 2, requirement A00.FR.205 (Security Profile 1): the password is "a
//!   randomly chosen passwordString with a sufficiently high entropy, consisting of minimum 16
//!   and maximum 40 characters", sent as plain UTF-8, "NOT encoded into octet string or
//!   base64". Part 2 §2.1.3 (primitive datatypes) defines `passwordString` as case-sensitive
//!   text of the characters `a-z A-Z 0-9 * - _ = : + | @ .`; the Part 2 appendix lists
//!   `SecurityCtrlr.BasicAuthPassword` as WriteOnly, dataType `passwordString`, maxLimit 40.
//!   So a 2.0.1 password is 16 to 40 of those characters, sent as is.
//!
//! Where the charger's version is not known (it has not connected yet), a password is valid
//! when it is valid for either version, so it can be set before the first connection.

use crate::OcppVersion;

/// OCPP 1.6 `AuthorizationKey`: the password is 16 to 20 bytes.
pub const V16_MIN_BYTES: usize = 16;
pub const V16_MAX_BYTES: usize = 20;
/// OCPP 2.0.1 `BasicAuthPassword`: 16 to 40 `passwordString` characters.
pub const V201_MIN_CHARS: usize = 16;
pub const V201_MAX_CHARS: usize = 40;
/// The special characters `passwordString` allows besides ASCII letters and digits.
pub const PASSWORD_STRING_SPECIALS: &str = "*-_=:+|@.";
/// The characters generated passwords are drawn from: ASCII letters and digits, valid in a
/// `passwordString` and one byte each, so a password's length in characters is its length in
/// bytes under both versions' rules.
pub const GENERATED_ALPHABET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why a password cannot be set on a charger. The messages name the rule and never the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "OCPP 1.6 charger passwords (AuthorizationKey) must be {V16_MIN_BYTES} to {V16_MAX_BYTES} bytes; this one is {0} bytes"
    )]
    V16Length(usize),
    #[error(
        "OCPP 2.0.1 charger passwords (BasicAuthPassword) must be {V201_MIN_CHARS} to {V201_MAX_CHARS} characters; this one is {0}"
    )]
    V201Length(usize),
    #[error(
        "OCPP 2.0.1 charger passwords (BasicAuthPassword) are passwordStrings: only letters a-z and A-Z, digits and {PASSWORD_STRING_SPECIALS}"
    )]
    V201Characters,
    #[error(
        "the charger's OCPP version is not known yet, so its password must fit OCPP 1.6 ({V16_MIN_BYTES} to {V16_MAX_BYTES} bytes) or OCPP 2.0.1 ({V201_MIN_CHARS} to {V201_MAX_CHARS} characters of a-z, A-Z, 0-9 and {PASSWORD_STRING_SPECIALS})"
    )]
    NeitherVersion,
    #[error("an AuthorizationKey must be {min} to {max} hexadecimal digits of a password")]
    NotHex { min: usize, max: usize },
}

fn is_password_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || PASSWORD_STRING_SPECIALS.contains(c)
}

fn check_v16(password: &str) -> Result<(), PasswordError> {
    let bytes = password.len();
    if (V16_MIN_BYTES..=V16_MAX_BYTES).contains(&bytes) {
        Ok(())
    } else {
        Err(PasswordError::V16Length(bytes))
    }
}

fn check_v201(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if !(V201_MIN_CHARS..=V201_MAX_CHARS).contains(&chars) {
        return Err(PasswordError::V201Length(chars));
    }
    if !password.chars().all(is_password_string_char) {
        return Err(PasswordError::V201Characters);
    }
    Ok(())
}

/// Checks `password` against the rule of `version`; `None` (version not known yet) accepts a
/// password either version accepts.
pub fn check_password(version: Option<OcppVersion>, password: &str) -> Result<(), PasswordError> {
    match version {
        Some(OcppVersion::V16) => check_v16(password),
        Some(OcppVersion::V201) => check_v201(password),
        None => check_v16(password)
            .or_else(|_| check_v201(password))
            .map_err(|_| PasswordError::NeitherVersion),
    }
}

/// The length of a generated password for `version`: the longest its rule allows (for an
/// unknown version, the longest both allow).
pub fn generated_length(version: Option<OcppVersion>) -> usize {
    match version {
        Some(OcppVersion::V201) => V201_MAX_CHARS,
        Some(OcppVersion::V16) | None => V16_MAX_BYTES,
    }
}

/// The 1.6 `AuthorizationKey` value for a password: its bytes in lowercase hexadecimal.
pub fn authorization_key(password: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(password.len() * 2);
    for byte in password.bytes() {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// The password a 1.6 `AuthorizationKey` value carries, as a charger decodes it: 32 to 40
/// hexadecimal digits (either case) of 16 to 20 bytes that are valid UTF-8 (the gateway's
/// passwords are text).
pub fn decode_authorization_key(value: &str) -> Result<String, PasswordError> {
    let not_hex = PasswordError::NotHex {
        min: V16_MIN_BYTES * 2,
        max: V16_MAX_BYTES * 2,
    };
    let digits = value.as_bytes();
    if digits.len() % 2 != 0 || !(V16_MIN_BYTES..=V16_MAX_BYTES).contains(&(digits.len() / 2)) {
        return Err(not_hex);
    }
    let nibble = |d: u8| {
        char::from(d)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
    };
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        match (
            pair.first().copied().and_then(nibble),
            pair.get(1).copied().and_then(nibble),
        ) {
            (Some(high), Some(low)) => bytes.push(high << 4 | low),
            _ => return Err(not_hex),
        }
    }
    String::from_utf8(bytes).map_err(|_| not_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_has_its_own_rule() {
        let v16 = Some(OcppVersion::V16);
        let v201 = Some(OcppVersion::V201);
        assert_eq!(check_password(v16, "0123456789abcdef"), Ok(()));
        assert_eq!(check_password(v16, "0123456789abcdefghij"), Ok(()));
        assert_eq!(
            check_password(v16, "0123456789abcde"),
            Err(PasswordError::V16Length(15))
        );
        assert_eq!(
            check_password(v16, "0123456789abcdefghijk"),
            Err(PasswordError::V16Length(21))
        );
        // 1.6 counts bytes: 8 two-byte characters are 16 bytes.
        assert_eq!(check_password(v16, "éééééééé"), Ok(()));
        assert_eq!(check_password(v201, &"a".repeat(40)), Ok(()));
        assert_eq!(
            check_password(v201, &"a".repeat(41)),
            Err(PasswordError::V201Length(41))
        );
        assert_eq!(
            check_password(v201, &"a".repeat(15)),
            Err(PasswordError::V201Length(15))
        );
        assert_eq!(
            check_password(v201, "with spaces in it!!"),
            Err(PasswordError::V201Characters)
        );
        assert_eq!(check_password(v201, "Aa0*-_=:+|@.Aa0*-_=:+|@."), Ok(()));
        assert_eq!(check_password(None, "with spaces 1234"), Ok(()));
        assert_eq!(check_password(None, &"a".repeat(30)), Ok(()));
        assert_eq!(
            check_password(None, "with spaces in it, too long"),
            Err(PasswordError::NeitherVersion)
        );
        assert_eq!(
            check_password(None, "short"),
            Err(PasswordError::NeitherVersion)
        );
    }

    #[test]
    fn generated_passwords_fit_their_rule() {
        let longest = |version| "Z".repeat(generated_length(version));
        for version in [Some(OcppVersion::V16), Some(OcppVersion::V201), None] {
            assert_eq!(check_password(version, &longest(version)), Ok(()));
        }
        assert!(GENERATED_ALPHABET
            .iter()
            .all(|&b| is_password_string_char(char::from(b))));
    }

    #[test]
    fn authorization_keys_are_hex_and_decode_back() {
        let key = authorization_key("0123456789ABCDEF");
        assert_eq!(key, "30313233343536373839414243444546");
        assert_eq!(
            decode_authorization_key(&key).as_deref(),
            Ok("0123456789ABCDEF")
        );
        assert_eq!(
            decode_authorization_key(&key.to_uppercase()).as_deref(),
            Ok("0123456789ABCDEF")
        );
        for bad in [
            "",
            "303",
            "zz313233343536373839414243444546",
            &"30".repeat(21),
            &"30".repeat(15),
            &"ff".repeat(16),
        ] {
            assert!(decode_authorization_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_never_carry_the_password() {
        for (version, password) in [
            (Some(OcppVersion::V16), "tiny-secret"),
            (Some(OcppVersion::V201), "secret with spaces"),
            (None, "tiny-secret"),
        ] {
            let message = check_password(version, password).unwrap_err().to_string();
            assert!(!message.contains(password), "{message}");
        }
    }
}
