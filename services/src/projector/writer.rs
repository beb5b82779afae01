//! The projector's write side: LCTParty list writes overlapped with reading the next batch, and
//! checkpoints that make the index right before acknowledging.
//!
//! - One task of list writes is in flight at a time, so writes to one key, and publications on
//!   one subject, stay in stream order. Reading and folding go on meanwhile; when the task
//!   completes, the next one writes the latest list of every call that changed in between. The
//!   slower the writes, the more each one coalesces.
//! - Index changes accumulate between checkpoints: a call that starts and ends between two
//!   checkpoints never touches the index.
//! - A checkpoint waits for the writes in flight, records the calls that became active, then
//!   acknowledges the last event handled, then removes the calls that ended. So at any moment
//!   the index lists every call that is in progress as of the acknowledged floor.

use std::collections::HashMap;
use std::time::Instant;

use async_nats::jetstream::Message;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ledger_schemas::{Message as _, subject};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Effects, ListEffect, ProjectorError, SiteContext, index_key, unavailable};

/// A batch's list writes in flight.
pub(super) struct Writing {
    /// The task that makes them.
    pub(super) task: JoinHandle<Result<(), ProjectorError>>,
    /// The stream sequence they bring the lists up to.
    through: u64,
}

/// The write side of one leading projector.
pub(super) struct Writer {
    ctx: SiteContext,
    /// Index changes since the last checkpoint: `Some(first_seq)` to record, `None` to remove.
    index: HashMap<Uuid, Option<u64>>,
    held: Option<Message>,
    held_events: usize,
    last_checkpoint: Instant,
    /// Every list write up to this stream sequence is confirmed.
    written: u64,
}

impl Writer {
    /// A writer for a leader that takes over at `floor`: the stored lists are current as of it.
    pub(super) fn new(ctx: &SiteContext, floor: u64) -> Self {
        Self {
            ctx: ctx.clone(),
            index: HashMap::new(),
            held: None,
            held_events: 0,
            last_checkpoint: Instant::now(),
            written: floor,
        }
    }

    /// The stream sequence up to which every list write is confirmed.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Records that `writing` completed with `result`.
    pub(super) fn finished(
        &mut self,
        writing: Writing,
        result: Result<Result<(), ProjectorError>, tokio::task::JoinError>,
    ) -> Result<(), ProjectorError> {
        result.map_err(|e| unavailable("writing LCTParty lists")(e.into()))??;
        self.written = self.written.max(writing.through);
        Ok(())
    }

    /// Waits for the list writes in flight, if any.
    pub(super) async fn settle(&mut self, writing: Option<Writing>) -> Result<(), ProjectorError> {
        match writing {
            Some(mut w) => {
                let result = (&mut w.task).await;
                self.finished(w, result)
            }
            None => Ok(()),
        }
    }

    /// Records a batch's index changes and starts its list writes, returning the task that
    /// makes them (`None` when there are none). Callers keep one such task at a time, so writes
    /// to one key stay in stream order: no task may be in flight.
    pub(super) fn start(&mut self, fx: Effects) -> Option<Writing> {
        for (call, first_seq) in fx.index_puts {
            self.index.insert(call, Some(first_seq));
        }
        for call in fx.index_deletes {
            // Recorded since the last checkpoint: nothing to undo. Else remove it then.
            if self.index.remove(&call).is_none() {
                self.index.insert(call, None);
            }
        }
        if fx.lists.is_empty() {
            self.written = self.written.max(fx.through);
            return None;
        }
        Some(Writing {
            task: tokio::spawn(write_lists(self.ctx.clone(), fx.lists)),
            through: fx.through,
        })
    }

    /// Holds `msg`, the last of `events` handled events, to be acknowledged at the checkpoint.
    pub(super) fn hold(&mut self, msg: Message, events: usize) {
        self.held = Some(msg);
        self.held_events += events;
    }

    /// Whether enough events or time have passed since the last checkpoint.
    pub(super) fn checkpoint_due(&self) -> bool {
        self.held.is_some()
            && (self.held_events >= self.ctx.config.ack_every
                || self.last_checkpoint.elapsed() >= self.ctx.config.ack_interval)
    }

    /// Makes everything handled so far durable and acknowledges it. `writing` is the task in
    /// flight, if any; `fx` the effects not yet started.
    pub(super) async fn checkpoint(
        &mut self,
        writing: Option<Writing>,
        fx: Effects,
    ) -> Result<(), ProjectorError> {
        self.settle(writing).await?;
        let next = self.start(fx);
        self.settle(next).await?;
        let index = &self.ctx.stores.projector;
        let site = self.ctx.site;
        let (puts, deletes): (Vec<_>, Vec<_>) =
            self.index.drain().partition(|(_, first)| first.is_some());
        let mut writes: FuturesUnordered<_> = puts
            .into_iter()
            .map(|(call, first)| async move {
                let value = Bytes::from(first.unwrap_or_default().to_string());
                index.put(index_key(site, call), value).await.map(drop)
            })
            .collect();
        while let Some(done) = writes.next().await {
            done.map_err(|e| unavailable("recording calls in progress")(e.into()))?;
        }
        if let Some(msg) = self.held.take() {
            msg.double_ack()
                .await
                .map_err(unavailable("acknowledging events"))?;
        }
        self.held_events = 0;
        self.last_checkpoint = Instant::now();
        // After the acknowledgement: until then a restart must still re-fold these calls.
        let mut removals: FuturesUnordered<_> = deletes
            .into_iter()
            .map(|(call, _)| async move { (call, index.delete(index_key(site, call)).await) })
            .collect();
        while let Some((call, result)) = removals.next().await {
            if let Err(e) = result {
                // Harmless: the next leader finds the call ended and removes it then.
                tracing::warn!(%site, %call, error = %e, "could not remove an ended call from the index");
            }
        }
        Ok(())
    }
}

/// Writes a batch's lists (all at once, then waits for every confirmation), then publishes them:
/// the EventUserEvent goes out once the list is stored, so a reader of KV sees it too.
async fn write_lists(ctx: SiteContext, lists: Vec<ListEffect>) -> Result<(), ProjectorError> {
    let site = ctx.site;
    let lct = &ctx.stores.lct;
    let mut publications: Vec<(String, Bytes)> = Vec::with_capacity(lists.len());
    let mut writes = FuturesUnordered::new();
    for effect in lists {
        let (call, bytes) = match effect {
            ListEffect::Put(list) => (list.call, Some(Bytes::from(list.encode()))),
            ListEffect::End(list) => {
                publications.push((subject::lct(site, list.call), Bytes::from(list.encode())));
                (list.call, None)
            }
            ListEffect::Forget(call) => (call, None),
        };
        let key = subject::lct_key(site, call);
        if let Some(bytes) = &bytes {
            publications.push((subject::lct(site, call), bytes.clone()));
        }
        writes.push(async move {
            match bytes {
                Some(b) => lct
                    .put(key, b)
                    .await
                    .map(drop)
                    .map_err(async_nats::Error::from),
                None => lct.delete(key).await.map_err(async_nats::Error::from),
            }
        });
    }
    while let Some(done) = writes.next().await {
        done.map_err(unavailable("writing LCTParty lists"))?;
    }
    for (subject, bytes) in publications {
        ctx.client
            .publish(subject, bytes)
            .await
            .map_err(|e| unavailable("publishing LCTParty lists")(e.into()))?;
    }
    Ok(())
}
