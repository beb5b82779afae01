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
//! - [`events_filter`] is the filter of a consumer that reads every party event.
//! - [`stats`] recounts the statistics from both streams, and reads the stored figures.
//! - [`verify`] checks that the lists and the audit agree with the log (`ledger verify`).

mod at;
mod audit;
mod filter;
mod fold;
mod read;
pub mod stats;
mod subscribe;
mod trail;
mod verify;
mod window;

pub use at::{Cut, list_json, lists_at};
pub use audit::{AuditEntry, read_audit};
pub use filter::events_filter;
pub use fold::{Step, StepEvent, Viewpoint, fold, party_json};
pub use read::{History, ReadError, StoredMessage};
pub use subscribe::{
    Counts, DnFilter, Durability, DurableInfo, Filter, Observed, Options, SUBSCRIPTION_METADATA,
    Start, SubscribeError, Subscription, durables, remove_durable,
};
pub use trail::{AuditQuery, Outcome, Trail, TrailLine, audit_trail};
pub use verify::{SiteReport, SiteToCheck, Verification, verify};
pub use window::{MARGIN_US, Window, read_window};
