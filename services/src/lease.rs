//! One projector per site: a lease in KV that one instance holds and renews, and that a
//! standby instance takes over when it goes stale.
//!
//! The lease is the key `lease.<site>` of the internal bucket `LEDGER_PROJECTOR`, holding the
//! holder's instance id. It is created atomically (`create` fails when the key exists), renewed
//! with a revision check every third of its time-to-live, and taken over, again with a revision
//! check, once the server's timestamp of its last renewal is older than the time-to-live. So the
//! instance that created it first wins, and keeps it while it lives; a clean stop deletes it
//! and the standby takes over at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use ledger_schemas::Site;
use tokio::sync::watch;
use uuid::Uuid;

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
    kv: kv::Store,
    key: String,
    site: Site,
    instance: Uuid,
    revision: u64,
    ttl: Duration,
}

fn micros_now() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i128)
}

impl Lease {
    /// The key of `site`'s lease.
    pub fn key(site: Site) -> String {
        format!("lease.{site}")
    }

    /// Waits until this instance holds `site`'s lease; `None` when `shutdown` fired first.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Unavailable`] when KV cannot be reached.
    pub async fn acquire(
        kv: &kv::Store,
        site: Site,
        instance: Uuid,
        ttl: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<Self>, LeaseError> {
        let key = Self::key(site);
        let value = bytes::Bytes::from(instance.to_string());
        let unavailable = |source: async_nats::Error| LeaseError::Unavailable { site, source };
        let mut logged = false;
        loop {
            if *shutdown.borrow() {
                return Ok(None);
            }
            let taken = match kv.create(&key, value.clone()).await {
                Ok(revision) => Some(revision),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                    match kv.entry(&key).await.map_err(|e| unavailable(e.into()))? {
                        Some(entry) => {
                            let age_us = micros_now() - entry.created.unix_timestamp_nanos() / 1000;
                            let stale = entry.operation != Operation::Put
                                || age_us > ttl.as_micros() as i128;
                            if stale {
                                kv.update(&key, value.clone(), entry.revision).await.ok()
                            } else {
                                None
                            }
                        }
                        None => None,
                    }
                }
                Err(e) => return Err(unavailable(e.into())),
            };
            if let Some(revision) = taken {
                return Ok(Some(Self {
                    kv: kv.clone(),
                    key,
                    site,
                    instance,
                    revision,
                    ttl,
                }));
            }
            if !logged {
                tracing::info!(%site, "another instance projects this site; standing by");
                logged = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(ttl / 4) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// How often to renew.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// The holder's instance id.
    pub fn instance(&self) -> Uuid {
        self.instance
    }

    /// Renews the lease.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Lost`] when another instance took it over.
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        let value = bytes::Bytes::from(self.instance.to_string());
        match self.kv.update(&self.key, value, self.revision).await {
            Ok(revision) => {
                self.revision = revision;
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(LeaseError::Lost { site: self.site })
            }
            Err(e) => Err(LeaseError::Unavailable {
                site: self.site,
                source: e.into(),
            }),
        }
    }

    /// Gives the lease up so that a standby takes over at once.
    pub async fn release(self) {
        if let Err(e) = self
            .kv
            .delete_expect_revision(&self.key, Some(self.revision))
            .await
        {
            tracing::warn!(site = %self.site, error = %e, "could not release the projector lease; it expires by itself");
        }
    }
}
