//! Option changes on the audit record, made by the site's leading projector: each change of the
//! site's keys in `LEDGER_CONFIG` (by any client) is recorded once on
//! `ledger.audit.<site>.options`, then takes effect in the leader's view.
//!
//! "Once", across leaders: each record carries the `LEDGER_CONFIG` revision of its change
//! (header `Ledger-Config-Revision`, and `Nats-Msg-Id` `<site>.options.<revision>`). A new
//! leader reads the last record, rebuilds the values in force at its revision from the keys'
//! history, and replays the changes after it. A record is published expecting the subject's
//! last sequence the leader knows, so a replaced leader's late record is refused; the refused
//! leader reads the last record again and skips what is already there.

use async_nats::jetstream::{self, kv, message::PublishMessage, stream::DirectGetErrorKind};
use futures::StreamExt;
use ledger_schemas::{
    ConfigKey, Message as _, OptionChanged, OptionName, Site, SiteOptions, subject,
};
use uuid::Uuid;

use super::ProjectorError;
use crate::clock::now_us;
use crate::fence::is_wrong_last_sequence;
use crate::site::keys::{StoredKey, since};
use crate::{Nats, Stores};

/// Header of an option change record: the `LEDGER_CONFIG` revision of the change.
const REVISION_HEADER: &str = "Ledger-Config-Revision";

/// Attempts to record one change against records made meanwhile by another leader.
const ATTEMPTS: usize = 3;

/// What recording a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    /// Recorded; the options in force changed to these.
    Changed(SiteOptions),
    /// Recorded (or already on the record), and the options in force are as they were: a
    /// refused value, the same value written again.
    Same,
    /// Nothing to record: not an option of this site, or already on the record.
    Ignored,
}

/// The leader's record of its site's options.
pub(super) struct OptionLog {
    site: Site,
    js: jetstream::Context,
    stores: Stores,
    /// The text of each option in force (`None`: unset), in `OptionName::ALL` order.
    values: [Option<String>; 3],
    options: SiteOptions,
    /// The stream sequence of the last record on the site's options subject.
    last_record: u64,
    /// The `LEDGER_CONFIG` revision of the last change on the record.
    recorded: u64,
    changes: kv::Watch,
}

impl std::fmt::Debug for OptionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptionLog")
            .field("site", &self.site)
            .field("options", &self.options)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &'static str) -> impl FnOnce(async_nats::Error) -> ProjectorError {
    ProjectorError::unavailable(what)
}

impl OptionLog {
    /// Reads the record as a new leader: the last change recorded, the values then in force,
    /// and the changes made since (while no leader recorded them), to record next with
    /// [`Self::record`] before anything else; later changes come from [`Self::next`].
    ///
    /// # Errors
    ///
    /// [`ProjectorError`] when NATS fails.
    pub(super) async fn start(
        nats: &Nats,
        stores: &Stores,
        site: Site,
    ) -> Result<(Self, Vec<StoredKey>), ProjectorError> {
        let (last_record, recorded) = last_record(stores, site).await?;
        // Every revision of the site's keys the bucket keeps (at most 16 each).
        let filter = format!("{site}.>");
        let history = since(&nats.client, &stores.config, &filter, 1)
            .await
            .map_err(unavailable("reading the options' history"))?;
        let after = history.last().map_or(0, |k| k.revision).max(recorded);
        let changes = stores
            .config
            .watch_from_revision(&filter, after + 1)
            .await
            .map_err(|e| unavailable("watching the options")(e.into()))?;
        let mut log = Self {
            site,
            js: nats.js.clone(),
            stores: stores.clone(),
            values: [None, None, None],
            options: SiteOptions::default(),
            last_record,
            recorded,
            changes,
        };
        let (done, backlog): (Vec<_>, Vec<_>) =
            history.into_iter().partition(|k| k.revision <= recorded);
        for k in done {
            log.apply_recorded(&k);
        }
        Ok((log, backlog))
    }

    /// Applies a change that is already on the record.
    fn apply_recorded(&mut self, k: &StoredKey) {
        let Some((slot, option)) = self.option_of(&k.key) else {
            return;
        };
        match k.operation {
            kv::Operation::Put => {
                // A refused value left the previous one in force.
                if self.options.set(option, &k.value).is_ok() {
                    self.values[slot] = Some(OptionChanged::value_text(&k.value));
                }
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                self.options.reset(option);
                self.values[slot] = None;
            }
        }
    }

    /// The slot and option of a key of this site; `None` for any other key.
    fn option_of(&self, key: &str) -> Option<(usize, OptionName)> {
        let key = ConfigKey::parse(key).filter(|k| k.site == self.site)?;
        let slot = OptionName::ALL.iter().position(|o| *o == key.option)?;
        Some((slot, key.option))
    }

    /// The options in force, as recorded.
    pub(super) fn options(&self) -> SiteOptions {
        self.options
    }

    /// The next change of the site's keys (cancel-safe); `None` when the watch ended.
    pub(super) async fn next(&mut self) -> Option<Result<StoredKey, kv::WatcherError>> {
        let entry = self.changes.next().await?;
        Some(entry.map(|e| StoredKey {
            key: e.key,
            revision: e.revision,
            operation: e.operation,
            value: e.value,
            marker_seq: None,
            expires: false,
        }))
    }

    /// Records `change` (a revision of one of the site's keys) and applies it to the options in
    /// force.
    ///
    /// # Errors
    ///
    /// [`ProjectorError`] when NATS fails, or the record kept changing under this leader.
    pub(super) async fn record(&mut self, change: &StoredKey) -> Result<Recorded, ProjectorError> {
        let Some((slot, option)) = self.option_of(&change.key) else {
            return Ok(Recorded::Ignored);
        };
        if change.revision <= self.recorded {
            return Ok(Recorded::Ignored);
        }
        let mut next = self.options;
        let (new, refused) = match change.operation {
            kv::Operation::Put => {
                let refused = next.set(option, &change.value).is_err();
                (Some(OptionChanged::value_text(&change.value)), refused)
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                next.reset(option);
                (None, false)
            }
        };
        let record = OptionChanged {
            id: Uuid::now_v7(),
            ts: now_us(),
            site: self.site,
            option,
            old: self.values[slot].clone(),
            new: new.clone(),
            refused,
        };
        self.publish(&record, change.revision).await?;
        self.recorded = change.revision;
        if refused {
            tracing::warn!(site = %self.site, key = %change.key, "refused an invalid option value; the previous value stays");
            return Ok(Recorded::Same);
        }
        self.values[slot] = new;
        let changed = next != self.options;
        self.options = next;
        tracing::info!(site = %self.site, key = %change.key, value = next.value(option), "option changed");
        Ok(if changed {
            Recorded::Changed(next)
        } else {
            Recorded::Same
        })
    }

    async fn publish(
        &mut self,
        record: &OptionChanged,
        revision: u64,
    ) -> Result<(), ProjectorError> {
        let subject = subject::audit_options(self.site);
        for _ in 0..ATTEMPTS {
            let message = PublishMessage::build()
                .payload(record.encode().into())
                .message_id(format!("{}.options.{revision}", self.site))
                .expected_last_subject_sequence(self.last_record)
                .header(REVISION_HEADER, revision.to_string().as_str());
            let acked = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(ack) => {
                    self.last_record = ack.sequence;
                    return Ok(());
                }
                Err(e) if is_wrong_last_sequence(&e) => {
                    // Another leader recorded meanwhile (a replaced one, late): read its record.
                    let (last, recorded) = last_record(&self.stores, self.site).await?;
                    self.last_record = last;
                    if recorded >= revision {
                        return Ok(());
                    }
                }
                Err(e) => return Err(unavailable("recording an option change")(e.into())),
            }
        }
        Err(unavailable("recording an option change")(
            "the record kept changing under this leader".into(),
        ))
    }
}

/// The stream sequence of the last option change record of `site` and the `LEDGER_CONFIG`
/// revision it records; zeros when there is none.
async fn last_record(stores: &Stores, site: Site) -> Result<(u64, u64), ProjectorError> {
    match stores
        .audit
        .direct_get_last_for_subject(subject::audit_options(site))
        .await
    {
        Ok(msg) => {
            let revision = msg
                .headers
                .get(REVISION_HEADER)
                .and_then(|v| v.as_str().parse().ok())
                .unwrap_or(0);
            Ok((msg.sequence, revision))
        }
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok((0, 0)),
        Err(e) => Err(unavailable("reading the option change record")(e.into())),
    }
}
