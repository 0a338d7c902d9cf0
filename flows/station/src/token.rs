//! [`Token`]: the defguard authorization token, a secret.

use core::fmt;
use core::str::FromStr;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// What every rendering of a [`Token`] shows instead of its value.
pub const REDACTED: &str = "<redacted>";

/// The authorization token the station presents to defguard (`--token`,
/// `DEFGUARD_TOKEN`).
///
/// The value is zeroized when the token is dropped, and `Debug`, `Display` and `Serialize`
/// all show `<redacted>` instead of it. The only way to read it is [`Token::expose`], meant
/// for the one place that puts it into the `authorization` request metadata.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Token(String);

impl Token {
    /// Wraps `value`; the string is moved, not copied.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value. Do not log, print or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token is the empty string (which configuration treats as "unset").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({REDACTED})")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl FromStr for Token {
    type Err = core::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_value() {
        let token = Token::new("hunter2-secret".to_owned());
        assert_eq!(token.expose(), "hunter2-secret");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(format!("{token:#?}"), "Token(<redacted>)");
        assert_eq!(token.to_string(), "<redacted>");
    }
}
