//! The subject filter of a consumer that reads every party event.

use async_nats::jetstream::stream;
use ledger_schemas::subject;

/// The filter of a consumer reading every party event of the event stream whose settings are
/// `events`: none when the stream holds the event subjects alone, as the ledger provisions it
/// (and requires when it finds one); the events' wildcard otherwise.
///
/// A filter costs the server dearly on this stream: each call's events have subjects of their
/// own, and the server counts a filtered consumer's pending messages subject by subject when it
/// creates it (about 0.2 s per million events, nats-server 2.15.1), and again each time an
/// ordered consumer is made again after a gap. Without a filter it reads the count off the
/// stream's state (about 2 ms), and delivers faster too.
pub fn events_filter(events: &stream::Config) -> String {
    if events.subjects == [subject::EVENTS_SUBJECTS] {
        String::new()
    } else {
        subject::EVENTS_SUBJECTS.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filter_when_the_stream_holds_events_alone() {
        let mut events = stream::Config {
            subjects: vec![subject::EVENTS_SUBJECTS.to_owned()],
            ..Default::default()
        };
        assert_eq!(events_filter(&events), "");
        events.subjects.push("other.>".to_owned());
        assert_eq!(events_filter(&events), subject::EVENTS_SUBJECTS);
        events.subjects = vec!["ledger.ev.*.A.>".to_owned()];
        assert_eq!(events_filter(&events), subject::EVENTS_SUBJECTS);
    }
}
