//! Subjects, KV keys, and the names of the streams and buckets.

use uuid::Uuid;

use crate::event::EventKind;
use crate::names::Site;

/// The stream of party events.
pub const EVENTS_STREAM: &str = "LEDGER_EVENTS";
/// The subjects of [`EVENTS_STREAM`].
pub const EVENTS_SUBJECTS: &str = "ledger.ev.>";
/// The stream of audit records.
pub const AUDIT_STREAM: &str = "LEDGER_AUDIT";
/// The subjects of [`AUDIT_STREAM`].
pub const AUDIT_SUBJECTS: &str = "ledger.audit.>";
/// The KV bucket of LCTParty lists, keyed `<site>.<call>`.
pub const LCT_BUCKET: &str = "LEDGER_LCT";
/// The KV bucket of options, keyed `<site>.<section>.<option>`.
pub const CONFIG_BUCKET: &str = "LEDGER_CONFIG";

/// Why a subject or key is not one of the contract's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} is not of the form {form}: {reason}")]
pub struct SubjectError {
    what: &'static str,
    text: String,
    form: &'static str,
    reason: String,
}

impl SubjectError {
    pub(crate) fn new(
        what: &'static str,
        text: &str,
        form: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            what,
            text: text.to_owned(),
            form,
            reason: reason.into(),
        }
    }
}

/// Writes `id` in the contract's text form (lowercase, hyphenated) without allocating.
pub fn push_uuid(out: &mut String, id: Uuid) {
    let mut buf = Uuid::encode_buffer();
    out.push_str(id.hyphenated().encode_lower(&mut buf));
}

/// Parses a UUID written in the contract's text form: exactly 36 characters, hyphenated, lowercase.
pub fn parse_uuid_token(token: &str) -> Option<Uuid> {
    if token.len() != 36 || token.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(token).ok()
}

/// `ledger.ev.<call>.<site>.<kind>`: where a party event is published.
pub fn event(call: Uuid, site: Site, kind: EventKind) -> String {
    let mut s = String::with_capacity(10 + 36 + 1 + site.as_str().len() + 1 + 13);
    s.push_str("ledger.ev.");
    push_uuid(&mut s, call);
    s.push('.');
    s.push_str(site.as_str());
    s.push('.');
    s.push_str(kind.as_str());
    s
}

/// `ledger.ev.<call>.>`: every event of one call (the optimistic-concurrency filter).
pub fn call_events(call: Uuid) -> String {
    let mut s = String::with_capacity(49);
    s.push_str("ledger.ev.");
    push_uuid(&mut s, call);
    s.push_str(".>");
    s
}

/// `ledger.lct.<site>.<call>`: where a site publishes a call's LCTParty list (the EventUserEvent).
pub fn lct(site: Site, call: Uuid) -> String {
    let mut s = String::with_capacity(11 + site.as_str().len() + 1 + 36);
    s.push_str("ledger.lct.");
    s.push_str(site.as_str());
    s.push('.');
    push_uuid(&mut s, call);
    s
}

/// `<site>.<call>`: the key of a call's LCTParty list in [`LCT_BUCKET`].
pub fn lct_key(site: Site, call: Uuid) -> String {
    let mut s = String::with_capacity(site.as_str().len() + 1 + 36);
    s.push_str(site.as_str());
    s.push('.');
    push_uuid(&mut s, call);
    s
}

/// `ledger.cmd.<site>.delete_from_conference`: where a site serves TDeleteFromConference.
pub fn delete_from_conference(site: Site) -> String {
    format!("ledger.cmd.{site}.delete_from_conference")
}

/// `ledger.audit.<site>.<call>`: where a site records its decisions about a call.
pub fn audit(site: Site, call: Uuid) -> String {
    let mut s = String::with_capacity(13 + site.as_str().len() + 1 + 36);
    s.push_str("ledger.audit.");
    s.push_str(site.as_str());
    s.push('.');
    push_uuid(&mut s, call);
    s
}

/// The last token of [`audit_options`]: it tells option changes from decisions about a call.
pub const OPTIONS_TOKEN: &str = "options";

/// `ledger.audit.<site>.options`: where a site's option changes are recorded.
pub fn audit_options(site: Site) -> String {
    format!("ledger.audit.{site}.{OPTIONS_TOKEN}")
}

/// The parts of an event subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSubject {
    /// The call.
    pub call: Uuid,
    /// The site that published the event (its origin).
    pub site: Site,
    /// The event's kind.
    pub kind: EventKind,
}

impl EventSubject {
    /// Parses `ledger.ev.<call>.<site>.<kind>`.
    ///
    /// # Errors
    ///
    /// [`SubjectError`] naming the part that is wrong.
    pub fn parse(subject: &str) -> Result<Self, SubjectError> {
        const FORM: &str = "ledger.ev.<call>.<site>.<kind>";
        let err = |reason: String| SubjectError::new("event subject", subject, FORM, reason);
        let rest = subject
            .strip_prefix("ledger.ev.")
            .ok_or_else(|| err("it does not start with `ledger.ev.`".into()))?;
        let mut parts = rest.split('.');
        let (Some(call), Some(site), Some(kind), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("it does not have exactly five tokens".into()));
        };
        let call = parse_uuid_token(call)
            .ok_or_else(|| err(format!("{call:?} is not a lowercase hyphenated UUID")))?;
        let site = Site::new(site).map_err(|e| err(e.to_string()))?;
        let kind = EventKind::parse(kind)
            .ok_or_else(|| err(format!("{kind:?} is not a party event kind")))?;
        Ok(Self { call, site, kind })
    }

    /// The subject text.
    pub fn to_subject(&self) -> String {
        event(self.call, self.site, self.kind)
    }
}

/// Parses a `<site>.<call>` key of [`LCT_BUCKET`].
///
/// # Errors
///
/// [`SubjectError`] when the key is not of that form.
pub fn parse_lct_key(key: &str) -> Result<(Site, Uuid), SubjectError> {
    const FORM: &str = "<site>.<call>";
    let err = |reason: &str| SubjectError::new("LCT key", key, FORM, reason);
    let (site, call) = key.split_once('.').ok_or_else(|| err("no `.`"))?;
    let site = Site::new(site).map_err(|e| err(&e.to_string()))?;
    let call = parse_uuid_token(call).ok_or_else(|| err("the call is not a UUID"))?;
    Ok((site, call))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "0192f3a4-5b6c-7d8e-9f01-23456789abcd";

    #[test]
    fn event_subject_round_trips() {
        let call = Uuid::parse_str(CALL).unwrap();
        let site = Site::new("SiteA").unwrap();
        let s = event(call, site, EventKind::PartyJoined);
        assert_eq!(s, format!("ledger.ev.{CALL}.SiteA.party_joined"));
        let parsed = EventSubject::parse(&s).unwrap();
        assert_eq!(parsed.call, call);
        assert_eq!(parsed.site, site);
        assert_eq!(parsed.kind, EventKind::PartyJoined);
        assert_eq!(parsed.to_subject(), s);
    }

    #[test]
    fn event_subject_refuses_other_forms() {
        for bad in [
            "ledger.ev.x.SiteA.party_joined".to_string(),
            format!("ledger.ev.{}.SiteA.party_joined", CALL.to_uppercase()),
            format!("ledger.ev.{CALL}.SiteA.party_waved"),
            format!("ledger.ev.{CALL}.SiteA.party_joined.extra"),
            format!("ledger.ev.{CALL}.SiteA"),
            format!("ledger.lct.{CALL}.SiteA.party_joined"),
        ] {
            assert!(EventSubject::parse(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn other_subjects_and_keys() {
        let call = Uuid::parse_str(CALL).unwrap();
        let site = Site::new("B").unwrap();
        assert_eq!(call_events(call), format!("ledger.ev.{CALL}.>"));
        assert_eq!(lct(site, call), format!("ledger.lct.B.{CALL}"));
        assert_eq!(lct_key(site, call), format!("B.{CALL}"));
        assert_eq!(audit(site, call), format!("ledger.audit.B.{CALL}"));
        assert_eq!(
            delete_from_conference(site),
            "ledger.cmd.B.delete_from_conference"
        );
        assert_eq!(parse_lct_key(&lct_key(site, call)).unwrap(), (site, call));
        assert!(parse_lct_key("B").is_err());
    }
}
