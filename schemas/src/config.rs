//! The three options of a site, their keys in `LEDGER_CONFIG` and their text values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{Site, Word};

/// One of the three options that govern a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionName {
    /// `TServer/sip-enable-call-info`: keep and publish LCTParty lists.
    SipEnableCallInfo,
    /// `TServer/sip-remote-del-from-conf`: accept deleting a party located at another site.
    SipRemoteDelFromConf,
    /// `extrouter/use-data-from`: `current` turns on Party Events propagation.
    UseDataFrom,
}

impl OptionName {
    /// Every option, in the contract's order.
    pub const ALL: [Self; 3] = [
        Self::SipEnableCallInfo,
        Self::SipRemoteDelFromConf,
        Self::UseDataFrom,
    ];

    /// `<section>.<option>`: the key without the site, as the audit's `config` map names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SipEnableCallInfo => "TServer.sip-enable-call-info",
            Self::SipRemoteDelFromConf => "TServer.sip-remote-del-from-conf",
            Self::UseDataFrom => "extrouter.use-data-from",
        }
    }

    /// Parses `<section>.<option>`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A key of `LEDGER_CONFIG`: `<site>.<section>.<option>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigKey {
    /// The site the option belongs to.
    pub site: Site,
    /// The option.
    pub option: OptionName,
}

impl ConfigKey {
    /// Parses `<site>.<section>.<option>`; `None` for a key that names no known option.
    pub fn parse(key: &str) -> Option<Self> {
        let (site, option) = key.split_once('.')?;
        Some(Self {
            site: Site::new(site).ok()?,
            option: OptionName::parse(option)?,
        })
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.site, self.option.as_str())
    }
}

/// A value that an option does not take. The option keeps its previous value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option} does not take {value:?}: {expected}")]
pub struct InvalidOptionValue {
    /// The option.
    pub option: &'static str,
    /// The refused value, lossily decoded.
    pub value: String,
    /// What the option takes.
    pub expected: &'static str,
}

/// The options in force at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SiteOptions {
    /// `TServer/sip-enable-call-info`. Default `false`.
    pub call_info: bool,
    /// `TServer/sip-remote-del-from-conf`. Default `false`.
    pub remote_delete: bool,
    /// `extrouter/use-data-from`. Default `original`.
    pub use_data_from: Word,
}

impl Default for SiteOptions {
    fn default() -> Self {
        Self {
            call_info: false,
            remote_delete: false,
            use_data_from: Word::new("original").unwrap_or_else(|_| unreachable!()),
        }
    }
}

impl SiteOptions {
    /// Whether Party Events propagation is on (`extrouter/use-data-from = current`).
    pub fn propagates(&self) -> bool {
        self.use_data_from == *"current"
    }

    /// Sets `option` from its text value.
    ///
    /// # Errors
    ///
    /// [`InvalidOptionValue`] when the value is not one the option takes; nothing changes then.
    pub fn set(&mut self, option: OptionName, value: &[u8]) -> Result<(), InvalidOptionValue> {
        let invalid = |expected| InvalidOptionValue {
            option: option.as_str(),
            // Cut: a value of any size may be written to the bucket, and this text is logged.
            value: match value.get(..crate::bounds::QUOTE_BYTES) {
                Some(head) if head.len() < value.len() => {
                    format!("{}…", String::from_utf8_lossy(head))
                }
                _ => String::from_utf8_lossy(value).into_owned(),
            },
            expected,
        };
        match option {
            OptionName::SipEnableCallInfo | OptionName::SipRemoteDelFromConf => {
                let flag = match value {
                    b"true" => true,
                    b"false" => false,
                    _ => return Err(invalid("`true` or `false`")),
                };
                if option == OptionName::SipEnableCallInfo {
                    self.call_info = flag;
                } else {
                    self.remote_delete = flag;
                }
            }
            OptionName::UseDataFrom => {
                const EXPECTED: &str = "`current` or another word of [A-Za-z0-9_-]{1,32}";
                let text = std::str::from_utf8(value).map_err(|_| invalid(EXPECTED))?;
                self.use_data_from = Word::new(text).map_err(|_| invalid(EXPECTED))?;
            }
        }
        Ok(())
    }

    /// Resets `option` to its default (its key was deleted).
    pub fn reset(&mut self, option: OptionName) {
        let default = Self::default();
        match option {
            OptionName::SipEnableCallInfo => self.call_info = default.call_info,
            OptionName::SipRemoteDelFromConf => self.remote_delete = default.remote_delete,
            OptionName::UseDataFrom => self.use_data_from = default.use_data_from,
        }
    }

    /// An option's value as text, as stored in `LEDGER_CONFIG`.
    pub fn value(&self, option: OptionName) -> &str {
        match option {
            OptionName::SipEnableCallInfo => bool_text(self.call_info),
            OptionName::SipRemoteDelFromConf => bool_text(self.remote_delete),
            OptionName::UseDataFrom => self.use_data_from.as_str(),
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The audit's `config` map: the three options by key without the site, values as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConfigMap {
    #[serde(rename = "TServer.sip-enable-call-info")]
    call_info: String,
    #[serde(rename = "TServer.sip-remote-del-from-conf")]
    remote_delete: String,
    #[serde(rename = "extrouter.use-data-from")]
    use_data_from: String,
}

impl From<&SiteOptions> for ConfigMap {
    fn from(o: &SiteOptions) -> Self {
        Self {
            call_info: o.value(OptionName::SipEnableCallInfo).to_owned(),
            remote_delete: o.value(OptionName::SipRemoteDelFromConf).to_owned(),
            use_data_from: o.value(OptionName::UseDataFrom).to_owned(),
        }
    }
}

impl TryFrom<ConfigMap> for SiteOptions {
    type Error = InvalidOptionValue;

    fn try_from(m: ConfigMap) -> Result<Self, InvalidOptionValue> {
        let mut o = Self::default();
        o.set(OptionName::SipEnableCallInfo, m.call_info.as_bytes())?;
        o.set(OptionName::SipRemoteDelFromConf, m.remote_delete.as_bytes())?;
        o.set(OptionName::UseDataFrom, m.use_data_from.as_bytes())?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contracts() {
        let o = SiteOptions::default();
        assert!(!o.call_info && !o.remote_delete && !o.propagates());
        assert_eq!(o.value(OptionName::UseDataFrom), "original");
    }

    #[test]
    fn keys_parse_and_print() {
        let k = ConfigKey::parse("SiteA.TServer.sip-remote-del-from-conf").unwrap();
        assert_eq!(k.site, Site::new("SiteA").unwrap());
        assert_eq!(k.option, OptionName::SipRemoteDelFromConf);
        assert_eq!(k.to_string(), "SiteA.TServer.sip-remote-del-from-conf");
        assert_eq!(ConfigKey::parse("SiteA.TServer.other"), None);
        assert_eq!(ConfigKey::parse("Site.A.extrouter.use-data-from"), None);
    }

    #[test]
    fn invalid_values_leave_the_option_unchanged() {
        let mut o = SiteOptions::default();
        o.set(OptionName::SipEnableCallInfo, b"true").unwrap();
        let err = o.set(OptionName::SipEnableCallInfo, b"yes").unwrap_err();
        assert_eq!(
            err.to_string(),
            "TServer.sip-enable-call-info does not take \"yes\": `true` or `false`"
        );
        assert!(o.call_info);
        o.set(OptionName::UseDataFrom, b"current").unwrap();
        assert!(o.propagates());
        assert!(o.set(OptionName::UseDataFrom, b"two words").is_err());
        assert!(o.set(OptionName::UseDataFrom, b"").is_err());
        assert!(o.propagates());
        o.reset(OptionName::UseDataFrom);
        assert!(!o.propagates());
    }
}
