//! The projector's writes to KV, every one fenced ([`crate::fence`]): lists in `LEDGER_LCT`,
//! index entries and the floor in `LEDGER_PROJECTOR`.
//!
//! - **Lists.** One task of list writes is in flight at a time ([`Writing`]), so writes to one
//!   key, and publications on one subject, keep the order of the stream. The task stores every
//!   list with the revision it expects, then publishes the lists whose writes succeeded, each
//!   only while the lease's standing still allows writing. The task is aborted when it is
//!   dropped: a leader that steps down leaves nothing writing behind it.
//! - **Index and floor.** Written at checkpoints by the leader ([`super::leader`]).
//!
//! A refused write is reported, not retried: the leader finds out whether it was replaced, or
//! saw a replaced leader's late write (see [`super::leader`]).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ledger_schemas::{Message as _, Site, subject};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::lists::{IndexWrite, ListOp, ListWrite};
use super::{ProjectorError, SiteContext};
use crate::fence::{Fence, FenceError, Marker};
use crate::lease::Standing;
use crate::site::floor::{floor_key, floor_value};
use crate::site::index::{index_key, index_value};

/// The outcome of one fenced write: the key's new revision, or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Stored at this revision.
    Stored(u64),
    /// Another instance wrote the key since this one last knew it.
    Refused,
}

/// A cycle of list writes in flight; aborted when dropped.
#[derive(Debug)]
pub(super) struct Writing {
    task: JoinHandle<Result<Vec<(Uuid, Written)>, ProjectorError>>,
    /// The stream sequence the cycle brings the lists up to.
    pub(super) through: u64,
}

impl Writing {
    /// Waits for the cycle to end.
    pub(super) async fn finish(&mut self) -> Result<Vec<(Uuid, Written)>, ProjectorError> {
        match (&mut self.task).await {
            Ok(outcome) => outcome,
            Err(e) => Err(ProjectorError::unavailable("writing LCTParty lists")(
                e.into(),
            )),
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fenced writers of one leading projector.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    site: Site,
    client: async_nats::Client,
    lct: Fence,
    internal: Fence,
    marker_ttl: Duration,
    standing: watch::Receiver<Standing>,
}

impl Writer {
    /// The writers of `ctx`'s site for a leader whose lease's standing is `standing`.
    pub(super) fn new(ctx: &SiteContext, standing: watch::Receiver<Standing>) -> Self {
        Self {
            site: ctx.site,
            client: ctx.nats.client.clone(),
            lct: Fence::new(ctx.nats.js.clone(), &ctx.stores.lct),
            internal: Fence::new(ctx.nats.js.clone(), &ctx.stores.projector),
            marker_ttl: ctx.config.store.marker_ttl,
            standing,
        }
    }

    /// Starts a cycle of list writes bringing the lists up to `through`.
    pub(super) fn start(&self, writes: Vec<ListWrite>, through: u64) -> Writing {
        Writing {
            task: tokio::spawn(self.clone().write_lists(writes)),
            through,
        }
    }

    /// Stores every list (all at once, then waits for every answer), then publishes the ones
    /// stored: the EventUserEvent goes out once the list is in KV, so a reader of KV sees it too.
    ///
    /// Each list is encoded once, for its write and its publication, so the publications go out
    /// in a tight loop: a pause of the process can catch lists handed to the client library and
    /// not yet sent (they go out when it resumes, perhaps after a successor's newer ones), and
    /// the shorter the loop, the less often it does.
    async fn write_lists(
        self,
        writes: Vec<ListWrite>,
    ) -> Result<Vec<(Uuid, Written)>, ProjectorError> {
        let encoded: Vec<Bytes> = writes
            .iter()
            .map(|w| match &w.op {
                ListOp::Put(list) | ListOp::End(list) => Bytes::from(list.encode()),
                // Neither stored nor published.
                ListOp::Forget { .. } | ListOp::Verify { .. } => Bytes::new(),
            })
            .collect();
        let mut pending: FuturesUnordered<_> = writes
            .iter()
            .zip(&encoded)
            .enumerate()
            .map(|(i, (w, value))| {
                let key = subject::lct_key(self.site, w.call);
                let this = &self;
                async move {
                    let result = match &w.op {
                        ListOp::Put(_) => this.lct.put(&key, value.clone(), w.expected, None).await,
                        ListOp::End(list) => {
                            this.lct
                                .delete(&key, w.expected, this.marker(list.seq))
                                .await
                        }
                        ListOp::Forget { seq } | ListOp::Verify { seq } => {
                            this.lct.delete(&key, w.expected, this.marker(*seq)).await
                        }
                    };
                    (i, result)
                }
            })
            .collect();
        let mut outcomes = vec![Written::Refused; writes.len()];
        while let Some((i, result)) = pending.next().await {
            outcomes[i] = match result {
                Ok(revision) => Written::Stored(revision),
                Err(FenceError::Refused { .. }) => Written::Refused,
                Err(e @ FenceError::Unavailable { .. }) => {
                    return Err(ProjectorError::unavailable("writing LCTParty lists")(
                        e.into(),
                    ));
                }
            };
        }
        drop(pending);
        for ((w, outcome), list) in writes.iter().zip(&outcomes).zip(encoded) {
            if !matches!(
                (&w.op, outcome),
                (ListOp::Put(_) | ListOp::End(_), Written::Stored(_))
            ) {
                continue;
            }
            // A leader whose standing ran out publishes nothing more: its successor may have
            // published newer lists already.
            if !self.standing.borrow().may_write() {
                break;
            }
            self.client
                .publish(subject::lct(self.site, w.call), list)
                .await
                .map_err(|e| ProjectorError::unavailable("publishing LCTParty lists")(e.into()))?;
        }
        Ok(writes.iter().map(|w| w.call).zip(outcomes).collect())
    }

    fn marker(&self, seq: u64) -> Marker {
        Marker {
            ttl: self.marker_ttl,
            seq: Some(seq),
            purge: false,
        }
    }

    /// Makes index writes (all at once) and returns each outcome.
    ///
    /// # Errors
    ///
    /// [`ProjectorError::Unavailable`] when NATS fails.
    pub(super) async fn write_index(
        &self,
        writes: Vec<IndexWrite>,
    ) -> Result<Vec<(IndexWrite, Written)>, ProjectorError> {
        let mut pending: FuturesUnordered<_> = writes
            .into_iter()
            .map(|w| async move {
                let key = index_key(self.site, w.call);
                let result = match w.first_seq {
                    Some(first) => {
                        self.internal
                            .put(&key, index_value(first), w.expected, None)
                            .await
                    }
                    None => {
                        let marker = Marker {
                            ttl: self.marker_ttl,
                            seq: None,
                            purge: true,
                        };
                        self.internal.delete(&key, w.expected, marker).await
                    }
                };
                (w, result)
            })
            .collect();
        let mut outcomes = Vec::with_capacity(pending.len());
        while let Some((w, result)) = pending.next().await {
            outcomes.push((w, written(result, "recording calls in progress")?));
        }
        Ok(outcomes)
    }

    /// Writes the floor, expecting its key at `expected`.
    ///
    /// # Errors
    ///
    /// [`ProjectorError::Unavailable`] when NATS fails.
    pub(super) async fn write_floor(
        &self,
        seq: u64,
        expected: u64,
    ) -> Result<Written, ProjectorError> {
        let result = self
            .internal
            .put(&floor_key(self.site), floor_value(seq), expected, None)
            .await;
        written(result, "writing the floor")
    }
}

fn written(result: Result<u64, FenceError>, what: &'static str) -> Result<Written, ProjectorError> {
    match result {
        Ok(revision) => Ok(Written::Stored(revision)),
        Err(FenceError::Refused { .. }) => Ok(Written::Refused),
        Err(e @ FenceError::Unavailable { .. }) => Err(ProjectorError::unavailable(what)(e.into())),
    }
}
