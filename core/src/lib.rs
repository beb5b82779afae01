//! The pure core of Call Ledger: no I/O, no async, no clock.
//!
//! - [`evolve`] folds one stored party event into its [`Call`]; anomalies are skipped and
//!   reported as a [`Skip`], never applied.
//! - [`View`] is one site's view of a call under its propagation setting, and gives the
//!   LCTParty list; [`global_lct_parties`] is the view of the whole call.
//! - [`list_change`] says what a site does with a call's list after a change (put, end, forget).
//! - [`Fold`] holds many calls folded from the log, with the holder's data beside each, and
//!   forgets calls that ended long enough ago.
//! - [`admit`] reads a TDeleteFromConference request and holds it to the contract's bounds.
//! - [`decide`] validates a TDeleteFromConference against a site's view and the options in
//!   force, returning the [`Deletion`] to append or the [`Refusal`](ledger_schemas::Refusal).
//! - [`stats`] counts each site's calls, conferences, CallObserved, durations and deletes per
//!   15-minute slot, and its calls in progress, from the same fold.
//!
//! The projectors, the command service and replay all fold with these same functions.
//!
//! ```
//! use ledger_core::{Call, View, evolve};
//! use ledger_schemas::{Dn, EventBody, Joined, MonitorMode, PartyEvent, Role, Site};
//! use uuid::Uuid;
//!
//! let site_a = Site::new("SiteA").unwrap();
//! let mut call = Call::new(Uuid::from_u128(1));
//! let join = PartyEvent {
//!     id: Uuid::from_u128(10),
//!     call: call.id(),
//!     site: site_a,
//!     ts: 1,
//!     party: Uuid::from_u128(100),
//!     body: EventBody::Joined(Joined {
//!         dn: Dn::new("7001").unwrap(),
//!         role: Role::Agent,
//!         mode: MonitorMode::Normal,
//!         monitors: None,
//!     }),
//! };
//! evolve(&mut call, 1, &join).unwrap();
//! assert!(evolve(&mut call, 1, &join).is_err()); // already read: nothing changes
//! let list = View::new(&call, site_a, false).lct_list();
//! assert_eq!(list.parties.len(), 1);
//! assert_eq!(list.seq, 1);
//! ```

mod admit;
mod call;
mod decide;
mod fold;
#[doc(hidden)]
pub mod fuzz;
mod lct;
pub mod stats;
mod view;

pub use admit::{Admitted, Inadmissible, admit};
pub use call::{At, Call, Change, Departure, Party, Skip, Stamp, evolve};
pub use decide::{Decision, Deletion, after_conflict, bad_request, decide, unavailable};
pub use fold::{Decoded, Fold, FoldCounters, Ingested};
pub use lct::{ListChange, Shown, list_change};
pub use view::{View, global_lct_parties, lct_party};
