//! The one set of helpers that parse Kafka property values, shared by the
//! net, producer and consumer configs, with one set of bounds per kind of
//! value:
//!
//! | kind | helper | accepted |
//! |---|---|---|
//! | a duration the client times itself | [`millis`] | a whole number of milliseconds, `min..=u64::MAX` |
//! | a duration sent to the broker (an `int32` field) | [`wire_millis`] | `min..=i32::MAX` milliseconds |
//! | a count or size sent to the broker | [`int32`] | `min..=i32::MAX` |
//! | a count or size the client keeps | [`count`] | `min..=usize::MAX` |
//! | a flag | [`boolean`] | `true` or `false`, any case |
//! | a name | [`non_empty`] | anything but blanks (trimmed) |
//!
//! Surrounding blanks are ignored everywhere. Every refusal is a
//! [`ConfigError::InvalidValue`] saying what was expected.

use std::time::Duration;

use super::ConfigError;

/// What `Debug` output and error messages print instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// Whether a property's value is a secret that no `Debug` output or error
/// message may print: passwords (`sasl.password`, `ssl.key.password`, ...),
/// secrets (`sasl.oauthbearer.client.secret`), JAAS configurations (which
/// hold passwords) and tokens.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "token", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

/// `value`, or [`REDACTED`] when `key` names a secret.
pub fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) {
        REDACTED
    } else {
        value
    }
}

/// The error for `key`'s `value` (a secret's value is not repeated).
pub fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: shown(key, value).to_owned(),
        reason: reason.into(),
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, format!("expected {what}")))
}

fn at_least<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: &str,
    n: T,
    min: T,
) -> Result<T, ConfigError> {
    if n < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(n)
}

/// A duration the client times itself: at least `min` milliseconds.
pub fn millis(key: &str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    let ms: u64 = parse(key, value, "a whole number of milliseconds")?;
    at_least(key, value, ms, min).map(Duration::from_millis)
}

/// A duration the broker receives as an `int32` field: at least `min`
/// milliseconds and at most `i32::MAX`.
pub fn wire_millis(key: &str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    let t = millis(key, value, min)?;
    if t.as_millis() > i32::MAX as u128 {
        return Err(invalid(key, value, "must fit in 32 bits"));
    }
    Ok(t)
}

/// A count or size the broker receives as an `int32` field: at least `min`.
pub fn int32(key: &str, value: &str, min: i32) -> Result<i32, ConfigError> {
    let n: i32 = parse(key, value, "a 32-bit integer")?;
    at_least(key, value, n, min)
}

/// A count or size the client keeps: at least `min`.
pub fn count(key: &str, value: &str, min: usize) -> Result<usize, ConfigError> {
    let n: usize = parse(key, value, "a whole number")?;
    at_least(key, value, n, min)
}

/// `true` or `false`, in any case.
pub fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

/// A name: the trimmed value, which must not be empty.
pub fn non_empty(key: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(key, value, "must not be empty"));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_set_of_bounds() {
        assert_eq!(millis("k", " 5 ", 0).unwrap(), Duration::from_millis(5));
        assert!(millis("k", "0", 1).is_err());
        assert!(millis("k", "-1", 0).is_err());
        assert!(
            millis("k", "3000000000", 0).is_ok(),
            "a local timer may be long"
        );
        assert!(
            wire_millis("k", "3000000000", 0).is_err(),
            "a wire field is int32"
        );
        assert_eq!(
            wire_millis("k", "2147483647", 0).unwrap(),
            Duration::from_millis(i32::MAX as u64)
        );
        assert_eq!(int32("k", "7", 1).unwrap(), 7);
        assert!(int32("k", "0", 1).is_err());
        assert!(int32("k", "2147483648", 0).is_err());
        assert_eq!(count("k", "1024", 1024).unwrap(), 1024);
        assert!(count("k", "1023", 1024).is_err());
        assert!(boolean("k", "TRUE").unwrap());
        assert!(boolean("k", "yes").is_err());
        assert_eq!(non_empty("k", " g ").unwrap(), "g");
        assert!(non_empty("k", "  ").is_err());
        assert_eq!(
            count("max.request.size", "x", 1).unwrap_err().to_string(),
            "invalid value `x` for `max.request.size`: expected a whole number"
        );
    }
}
