//! Validated names: sites, DNs and option words.
//!
//! They are stored inline (no heap allocation) because every decoded event carries a site and most
//! carry a DN: the projector's hot path should not allocate for them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("{what} is empty")]
    Empty {
        /// What kind of name it is (`site`, `DN`, ...).
        what: &'static str,
    },
    /// The name is longer than the contract allows.
    #[error("{what} is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// What kind of name it is.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character the contract forbids.
    #[error("{what} {name:?} contains {ch:?}, which is not allowed")]
    BadChar {
        /// What kind of name it is.
        what: &'static str,
        /// The refused name.
        name: String,
        /// The first refused character.
        ch: char,
    },
}

/// A UTF-8 string of at most `N` bytes stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    fn new(s: &str) -> Self {
        // Callers have checked `s.len() <= N`, and every N used here is below 256.
        let mut bytes = [0; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Self {
            len: s.len() as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        // Built only from a `&str` cut at its own length, so always valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

fn check_len(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { what });
    }
    if s.len() > max {
        return Err(NameError::TooLong {
            what,
            len: s.len(),
            max,
        });
    }
    Ok(())
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check_token(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    check_len(what, s, max)?;
    match s.chars().find(|c| !token_char(*c)) {
        Some(ch) => Err(NameError::BadChar {
            what,
            name: s.to_owned(),
            ch,
        }),
        None => Ok(()),
    }
}

macro_rules! inline_name {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Inline<$max>);

        impl $name {
            /// The longest allowed name, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `s` and wraps it.
            ///
            /// # Errors
            ///
            /// [`NameError`] when `s` breaks the contract's naming rule.
            pub fn new(s: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(s)?;
                Ok(Self(Inline::new(s)))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so that width and alignment (`{:<8}`) apply in tables.
                f.pad(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

inline_name!(
    /// A site: `[A-Za-z0-9_-]{1,32}`. It is a NATS subject token and a location in LCTParty lists.
    Site,
    32,
    "site",
    |s| check_token("site", s, 32)
);

inline_name!(
    /// A DN: 1 to 64 bytes of UTF-8, no whitespace, no control characters, no `@`.
    Dn,
    64,
    "DN",
    |s| {
        check_len("DN", s, 64)?;
        match s
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '@')
        {
            Some(ch) => Err(NameError::BadChar {
                what: "DN",
                name: s.to_owned(),
                ch,
            }),
            None => Ok(()),
        }
    }
);

inline_name!(
    /// A one-word option value such as `current` or `original`: `[A-Za-z0-9_-]{1,32}`.
    Word,
    32,
    "word",
    |s| check_token("word", s, 32)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_accepts_the_contract_alphabet() {
        assert_eq!(Site::new("Site_A-1").unwrap().as_str(), "Site_A-1");
        assert_eq!(Site::new(&"x".repeat(32)).unwrap().as_str().len(), 32);
    }

    #[test]
    fn site_refuses_what_breaks_a_subject() {
        for bad in ["", "a.b", "a b", "a*", "a>", "é", &"x".repeat(33)] {
            assert!(Site::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dn_accepts_utf8_and_refuses_at_whitespace_control() {
        assert_eq!(Dn::new("7001").unwrap().as_str(), "7001");
        assert_eq!(Dn::new("agent.ü+1").unwrap().as_str(), "agent.ü+1");
        assert!(Dn::new(&"ü".repeat(32)).is_ok());
        for bad in [
            "",
            "70 01",
            "7001@A",
            "a\tb",
            "a\u{0}",
            "\u{a0}",
            &"x".repeat(65),
        ] {
            assert!(Dn::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_pad_in_tables() {
        assert_eq!(format!("[{:<7}]", Site::new("SiteA").unwrap()), "[SiteA  ]");
        assert_eq!(format!("[{:>6}]", Dn::new("7001").unwrap()), "[  7001]");
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let e = Dn::new("70 01").unwrap_err();
        assert_eq!(
            e.to_string(),
            "DN \"70 01\" contains ' ', which is not allowed"
        );
        let e = Site::new("").unwrap_err();
        assert_eq!(e.to_string(), "site is empty");
    }
}
