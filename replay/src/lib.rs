//! Reading Call Ledger's history back: one call's stored events, folded through the core's
//! `evolve`, seen from everywhere or from one site.
//!
//! - [`read_call`] and [`read_filtered`] read stored messages with batched direct gets.
//! - [`fold`] turns a call's messages into [`Step`]s: each event and the parties after it.
//! - [`read_audit`] reads the decisions of the command services back.

mod audit;
mod fold;
mod read;

pub use audit::{AuditEntry, read_audit};
pub use fold::{Step, StepEvent, Viewpoint, fold};
pub use read::{ReadError, StoredMessage, read_call, read_filtered};
