//! One projector per site, decided by the server: a lease in KV that expires by the server's
//! own clock.
//!
//! The lease is the key `lease.<site>` of the internal bucket `LEDGER_PROJECTOR`, holding the
//! holder's instance id, written with a per-message time-to-live (`Nats-TTL`, nats-server
//! 2.11+). Taking it and renewing it are fenced writes ([`crate::fence`]): the first expects
//! the key absent or deleted, a renewal expects the revision of the last one. When the holder
//! stops renewing, the server removes the value after the time-to-live and leaves a marker;
//! a standby watching the key sees it and takes the lease. No machine's clock is compared with
//! another's.
//!
//! The holder also keeps a local deadline ([`Standing`]): the time it sent its last confirmed
//! renewal plus the time-to-live, less a margin. The server cannot have expired the lease
//! before that, so until then nobody else can hold it; after it, the holder writes nothing,
//! whether or not it could reach the server.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use ledger_schemas::Site;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::fence::{Fence, FenceError, Marker};
use crate::site::keys::latest_one;

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another instance holds it now.
    #[error("the projector lease of {site} was taken over by another instance")]
    Lost {
        /// The site.
        site: Site,
    },
    /// KV could not be reached.
    #[error("the projector lease of {site} cannot be read or written: {source}")]
    Unavailable {
        /// The site.
        site: Site,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
}

/// A held lease.
#[derive(Debug)]
pub struct Lease {
    fence: Fence,
    key: String,
    site: Site,
    instance: Uuid,
    revision: u64,
    ttl: Duration,
    /// When the write that took or last renewed the lease was sent.
    sent_at: Instant,
}

/// The key of `site`'s lease.
pub fn lease_key(site: Site) -> String {
    format!("lease.{site}")
}

impl Lease {
    /// One attempt to take `site`'s lease for `instance`: `None` while another instance holds
    /// it (the server has not expired it).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn try_acquire(
        kv: &kv::Store,
        fence: &Fence,
        site: Site,
        instance: Uuid,
        ttl: Duration,
    ) -> Result<Option<Self>, LeaseError> {
        Self::try_acquire_key(kv, fence, lease_key(site), site, instance, ttl).await
    }

    /// As [`Lease::try_acquire`], for the lease under `key` (another role of the site).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn try_acquire_key(
        kv: &kv::Store,
        fence: &Fence,
        key: String,
        site: Site,
        instance: Uuid,
        ttl: Duration,
    ) -> Result<Option<Self>, LeaseError> {
        let unavailable = |source| LeaseError::Unavailable { site, source };
        let expected = match latest_one(kv, &key).await.map_err(unavailable)? {
            None => 0,
            Some(k) if k.operation != Operation::Put => k.revision,
            // Ours from an earlier term of this process; or written without a time-to-live
            // (by a version before server-side expiry), which would never expire by itself.
            Some(k) if k.value == instance.to_string().as_bytes() || !k.expires => k.revision,
            Some(_) => return Ok(None),
        };
        let sent_at = Instant::now();
        let value = Bytes::from(instance.to_string());
        match fence.put(&key, value, expected, Some(ttl)).await {
            Ok(revision) => Ok(Some(Self {
                fence: fence.clone(),
                key,
                site,
                instance,
                revision,
                ttl,
                sent_at,
            })),
            // Another standby was faster.
            Err(FenceError::Refused { .. }) => Ok(None),
            Err(FenceError::Unavailable { source, .. }) => Err(unavailable(source.into())),
        }
    }

    /// Waits until this instance holds `site`'s lease; `None` when `shutdown` fired first.
    /// A standby watches the key, and tries again as soon as the holder's lease is gone
    /// (released, or expired by the server), or every time-to-live in case a change was missed.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn acquire(
        kv: &kv::Store,
        fence: &Fence,
        site: Site,
        instance: Uuid,
        ttl: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<Self>, LeaseError> {
        Self::acquire_key(kv, fence, lease_key(site), site, instance, ttl, shutdown).await
    }

    /// As [`Lease::acquire`], for the lease under `key` (another role of the site).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn acquire_key(
        kv: &kv::Store,
        fence: &Fence,
        key: String,
        site: Site,
        instance: Uuid,
        ttl: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<Self>, LeaseError> {
        let unavailable = |e: kv::WatchError| LeaseError::Unavailable {
            site,
            source: e.into(),
        };
        let mut seen = kv
            .watch(key.clone())
            .await
            .map_err(unavailable)?
            .map(|entry| match entry {
                Ok(e) if e.operation == Operation::Put => Seen::Held,
                _ => Seen::Vacated,
            });
        let mut logged = false;
        loop {
            if *shutdown.borrow() {
                return Ok(None);
            }
            if let Some(lease) =
                Self::try_acquire_key(kv, fence, key.clone(), site, instance, ttl).await?
            {
                return Ok(Some(lease));
            }
            if !logged {
                tracing::info!(%site, "another instance projects this site; standing by");
                logged = true;
            }
            if wait_turn(&mut seen, ttl, shutdown).await == Turn::Shutdown {
                return Ok(None);
            }
        }
    }

    /// The holder's instance id.
    pub fn instance(&self) -> Uuid {
        self.instance
    }

    /// Whether the lease of `site` names `instance` now.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn names(kv: &kv::Store, site: Site, instance: Uuid) -> Result<bool, LeaseError> {
        Self::names_key(kv, &lease_key(site), site, instance).await
    }

    /// Whether the lease under `key` (another role of `site`) names `instance` now.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn names_key(
        kv: &kv::Store,
        key: &str,
        site: Site,
        instance: Uuid,
    ) -> Result<bool, LeaseError> {
        let found = latest_one(kv, key)
            .await
            .map_err(|source| LeaseError::Unavailable { site, source })?;
        Ok(found.is_some_and(|k| {
            k.operation == Operation::Put && k.value == instance.to_string().as_bytes()
        }))
    }

    /// Gives the lease up so that a standby takes over at once.
    pub async fn release(self) {
        let marker = Marker {
            ttl: self.ttl * 10,
            seq: None,
            purge: true,
        };
        if let Err(e) = self.fence.delete(&self.key, self.revision, marker).await {
            tracing::warn!(site = %self.site, error = %e, "could not release the projector lease; the server expires it");
        }
    }
}

/// Renews a lease: the real one, or a scripted one in tests.
pub(crate) trait Renew {
    /// Renews once; returns the new revision.
    fn renew(&mut self) -> impl Future<Output = Result<u64, LeaseError>> + Send;
}

impl Renew for Lease {
    async fn renew(&mut self) -> Result<u64, LeaseError> {
        let value = Bytes::from(self.instance.to_string());
        let sent_at = Instant::now();
        match self
            .fence
            .put(&self.key, value, self.revision, Some(self.ttl))
            .await
        {
            Ok(revision) => {
                self.revision = revision;
                self.sent_at = sent_at;
                Ok(revision)
            }
            Err(FenceError::Refused { .. }) => Err(LeaseError::Lost { site: self.site }),
            Err(FenceError::Unavailable { source, .. }) => Err(LeaseError::Unavailable {
                site: self.site,
                source: source.into(),
            }),
        }
    }
}

/// What a standby saw of the lease key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Someone wrote or renewed it.
    Held,
    /// It was released, or the server expired it.
    Vacated,
}

/// How a standby's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Try to take the lease now.
    Attempt,
    /// Stop.
    Shutdown,
}

/// Waits for a standby's next attempt: at once when the lease is seen vacated, else after
/// `poll` (a missed change costs at most that), or until shutdown. Renewals seen meanwhile
/// change nothing.
pub(crate) async fn wait_turn<S: Stream<Item = Seen> + Unpin>(
    seen: &mut S,
    poll: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Turn {
    let deadline = Instant::now() + poll;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Turn::Shutdown,
            _ = tokio::time::sleep_until(deadline) => return Turn::Attempt,
            next = seen.next() => match next {
                Some(Seen::Vacated) => return Turn::Attempt,
                Some(Seen::Held) => {}
                // The watch ended: poll.
                None => {
                    tokio::select! {
                        _ = shutdown.changed() => return Turn::Shutdown,
                        _ = tokio::time::sleep_until(deadline) => return Turn::Attempt,
                    }
                }
            },
        }
    }
}

/// What a leader knows of its lease: it may write until `valid_until`, unless `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Until when nobody else can hold the lease (this machine's monotonic clock).
    pub valid_until: Instant,
    /// The lease was lost or has expired: write nothing more.
    pub lost: bool,
}

impl Standing {
    /// The standing after a write sent at `sent_at` took or renewed a lease of `ttl`: the server
    /// expires it no earlier than `ttl` after it stored it; a margin of a tenth covers clocks
    /// that run at slightly different rates.
    pub fn renewed(sent_at: Instant, ttl: Duration) -> Self {
        Self {
            valid_until: sent_at + ttl - ttl / 10,
            lost: false,
        }
    }

    /// Whether the holder may still write.
    pub fn may_write(&self) -> bool {
        !self.lost && Instant::now() < self.valid_until
    }
}

/// How keeping a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Asked to stop: the lease may be released.
    Stopped,
    /// Another instance took it.
    Lost,
    /// No renewal was confirmed in time: the server may have expired it.
    Expired,
}

/// Renews a lease taken or last renewed at `sent_at` every third of `ttl`, publishing each
/// [`Standing`] on `tx`, until `stop`, a lost lease, or a lease that could not be renewed before
/// its standing ran out. A renewal that fails for lack of NATS is retried every tenth of `ttl`.
pub(crate) async fn keep<R: Renew>(
    lease: &mut R,
    sent_at: Instant,
    ttl: Duration,
    tx: &watch::Sender<Standing>,
    stop: &mut oneshot::Receiver<()>,
) -> Kept {
    let mut standing = Standing::renewed(sent_at, ttl);
    tx.send_replace(standing);
    let mut next = sent_at + ttl / 3;
    let ended = loop {
        tokio::select! {
            _ = &mut *stop => break Kept::Stopped,
            _ = tokio::time::sleep_until(next.min(standing.valid_until)) => {}
        }
        if Instant::now() >= standing.valid_until {
            break Kept::Expired;
        }
        let sent_at = Instant::now();
        let attempt = tokio::time::timeout_at(standing.valid_until, lease.renew());
        let outcome = tokio::select! {
            _ = &mut *stop => break Kept::Stopped,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(Ok(_)) => {
                standing = Standing::renewed(sent_at, ttl);
                tx.send_replace(standing);
                next = sent_at + ttl / 3;
            }
            Ok(Err(LeaseError::Lost { .. })) => break Kept::Lost,
            Ok(Err(e @ LeaseError::Unavailable { .. })) => {
                tracing::warn!(error = %e, "could not renew the projector lease; retrying");
                next = Instant::now() + ttl / 10;
            }
            Err(_) => break Kept::Expired,
        }
    };
    if ended != Kept::Stopped {
        standing.lost = true;
        tx.send_replace(standing);
    }
    ended
}

/// A lease kept by a task of its own, so that slow writes never delay a renewal.
#[derive(Debug)]
pub struct Keeper {
    standing: watch::Receiver<Standing>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Starts keeping `lease`.
    pub fn start(mut lease: Lease) -> Self {
        let (tx, standing) = watch::channel(Standing::renewed(lease.sent_at, lease.ttl));
        let (stop_tx, mut stop) = oneshot::channel();
        let task = tokio::spawn(async move {
            let (sent_at, ttl, site) = (lease.sent_at, lease.ttl, lease.site);
            match keep(&mut lease, sent_at, ttl, &tx, &mut stop).await {
                Kept::Stopped => lease.release().await,
                Kept::Lost => {
                    tracing::warn!(%site, "the projector lease was taken by another instance")
                }
                Kept::Expired => {
                    tracing::warn!(%site, "the projector lease could not be renewed in time")
                }
            }
        });
        Self {
            standing,
            stop: Some(stop_tx),
            task,
        }
    }

    /// The lease's standing, updated at every renewal.
    pub fn standing(&self) -> watch::Receiver<Standing> {
        self.standing.clone()
    }

    /// Stops renewing and releases the lease, so that a standby takes over at once.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // Dropped without `release` (stepping down): stop renewing at once.
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
