//! Reading Call Ledger's history back, and following it as it is written, through the core's
//! fold.
//!
//! - [`History`] reads stored messages with batched direct gets: a call's, or a subject's.
//! - [`fold`] turns a call's messages into [`Step`]s: each event and the parties after it;
//!   [`lists_at`] gives every site's list at a moment.
//! - [`Subscription`] follows party events as they are stored, ephemeral or durable, filtered,
//!   each with the parties after it in a view.
//! - [`audit_trail`] reads decisions, conference changes and option changes in time order, over
//!   a time window that costs what it holds; [`read_audit`] reads the decisions alone.
//! - [`EventFeed`] reads every party event in stream order from a position, as the services
//!   fold the log; [`events_filter`] is the subject filter of such a reader.
//! - [`stats`] recounts the statistics from both streams, and reads the stored figures.
//! - [`verify`] checks that the lists and the audit agree with the log (`ledger verify`).

mod at;
mod audit;
mod fold;
mod follow;
mod read;
pub mod stats;
mod subscribe;
mod trail;
mod verify;
mod window;

pub use at::{Cut, list_json, lists_at};
pub use audit::{AuditEntry, read_audit};
pub use fold::{Step, StepEvent, Viewpoint, fold, party_json};
pub use follow::{EventFeed, Followed, ReadAhead, events_filter, feed_consumer, feed_messages};
pub use read::{History, ReadError, StoredMessage};
pub use subscribe::{
    Counts, DnFilter, Durability, DurableInfo, Filter, Observed, Options, SUBSCRIPTION_METADATA,
    Start, SubscribeError, Subscription, durables, remove_durable,
};
pub use trail::{AuditQuery, Outcome, Trail, TrailLine, audit_trail};
pub use verify::{SiteReport, SiteToCheck, Verification, verify};
pub use window::{MARGIN_US, Window, read_window};
