//! The wire contract of Call Ledger (`shared/contract.md`, version 1) as Rust types.
//!
//! Every message is a MessagePack map with string keys and a schema version `v`; UUIDs are
//! 16-byte `bin` values (decoders also take the 36-character text form); times are microseconds
//! since the Unix epoch. This crate does no I/O: it holds the types, the codec ([`Message`]),
//! and the subject and key builders ([`subject`]).
//!
//! ```
//! use ledger_schemas::{EventBody, Joined, Message, PartyEvent, Role, MonitorMode, Dn, Site};
//! use uuid::Uuid;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let event = PartyEvent {
//!     id: Uuid::now_v7(),
//!     call: Uuid::now_v7(),
//!     site: Site::new("SiteA")?,
//!     ts: 1_764_000_000_000_000,
//!     party: Uuid::now_v7(),
//!     body: EventBody::Joined(Joined {
//!         dn: Dn::new("7001")?,
//!         role: Role::Agent,
//!         mode: MonitorMode::Normal,
//!         monitors: None,
//!     }),
//! };
//! let bytes = event.encode();
//! assert_eq!(PartyEvent::decode_on(&event.subject(), &bytes)?, event);
//! # Ok(())
//! # }
//! ```

mod audit;
mod codec;
mod config;
mod event;
mod extent;
mod lct;
mod names;
mod option_change;
mod reply;
mod request;
mod stats;
pub mod subject;
mod uuid_serde;

pub use audit::AuditRecord;
pub use codec::{DecodeError, Message, VERSION};
pub use config::{ConfigKey, InvalidOptionValue, OptionName, SiteOptions};
pub use event::{DeletedBy, EventBody, EventKind, Joined, MonitorMode, PartyEvent, Role};
pub use lct::{LctList, LctParty, LctSupervisor};
pub use names::{Dn, NameError, Site, Word};
pub use option_change::{OPTION_CHANGED, OptionChanged};
pub use reply::{Accepted, DeleteReply, Refusal, RefusalCode};
pub use request::{DeleteRequest, Target, bounds, quote};
pub use stats::{
    AgentNow, CallNow, Counts, FIGURES, Figures, MAX_CODES, SLOT_US, STATS_BUCKET,
    STATS_SUBJECT_PREFIX, SiteNow, StatsKey, slot_of,
};
pub use subject::{EventSubject, SubjectError};
