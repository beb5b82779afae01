//! Reading Call Ledger's history back: one call's stored events, folded through the core's
//! `evolve`, seen from everywhere or from one site.
//!
//! - [`History`] reads stored messages with batched direct gets: a call's, or a subject's.
//! - [`fold`] turns a call's messages into [`Step`]s: each event and the parties after it.
//! - [`read_audit`] reads the decisions of the command services back.

mod audit;
mod fold;
mod read;

pub use audit::{AuditEntry, read_audit};
pub use fold::{Step, StepEvent, Viewpoint, fold};
pub use read::{History, ReadError, StoredMessage};
