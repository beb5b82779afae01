//! Running the services of several sites in one process until a shutdown signal.

use std::future::Future;
use std::sync::{Arc, Mutex};

use async_nats::Client;
use futures::StreamExt;
use ledger_schemas::Site;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::command::{self, CommandContext};
use crate::options::{OptionsError, watch_options};
use crate::projector::{self, SiteContext};
use crate::stats::{self, StatsContext};
use crate::status::{Counters, Role, Status};
use crate::{Config, Nats, ProvisionError, Stores, provision};

/// Why the services could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The streams and buckets could not be provisioned.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A site's options could not be read.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The status endpoint could not be subscribed.
    #[error("cannot serve ledger.status.{site}: {source}")]
    Status {
        /// The site.
        site: Site,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
}

/// The subject of a site's status endpoint.
pub fn status_subject(site: Site) -> String {
    format!("ledger.status.{site}")
}

/// Provisions the streams and buckets, then runs the projector and the command service of each
/// site in `sites` until `shutdown` completes; each stops between two batches or two requests,
/// having acknowledged what it handled.
///
/// # Errors
///
/// [`ServeError`] when the services cannot start. Failures while running are logged and retried.
pub async fn serve(
    nats: Nats,
    sites: &[Site],
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let client = nats.client.clone();
    let stores = if config.provision {
        provision(&nats.js, &config.store).await?
    } else {
        Stores::open(&nats.js).await?
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let instance = uuid::Uuid::now_v7();
    let mut tasks = JoinSet::new();
    for &site in sites {
        let (options, watcher) =
            watch_options(stores.config.clone(), site, stop_rx.clone()).await?;
        let status = Arc::new(Mutex::new(Status {
            site: site.to_string(),
            role: if config.projector {
                Role::Standby
            } else {
                Role::Commands
            },
            instance: instance.to_string(),
            counters: Counters::default(),
        }));
        let status_sub =
            client
                .subscribe(status_subject(site))
                .await
                .map_err(|e| ServeError::Status {
                    site,
                    source: e.into(),
                })?;
        tasks.spawn(answer_status(
            client.clone(),
            status_sub,
            status.clone(),
            stop_rx.clone(),
        ));
        tasks.spawn(async move {
            let _ = watcher.await;
        });
        let commands = CommandContext {
            nats: nats.clone(),
            stores: stores.clone(),
            site,
            config: config.clone(),
            options: options.clone(),
            status: status.clone(),
        };
        if config.commands {
            tasks.spawn(command::run(commands, stop_rx.clone()));
        }
        let ctx = SiteContext {
            nats: nats.clone(),
            instance,
            stores: stores.clone(),
            site,
            config: config.clone(),
            options,
            status,
        };
        if config.projector {
            tasks.spawn(projector::run(ctx, stop_rx.clone()));
        }
        if config.stats {
            let stats = StatsContext {
                nats: nats.clone(),
                stores: stores.clone(),
                site,
                instance,
                config: config.clone(),
            };
            tasks.spawn(stats::run(stats, stop_rx.clone()));
        }
        tracing::info!(%site, "site services started");
    }
    shutdown.await;
    tracing::info!("shutting down: finishing the batches in hand");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not flush the connection before exit");
    }
    Ok(())
}

async fn answer_status(
    client: Client,
    mut requests: async_nats::Subscriber,
    status: Arc<Mutex<Status>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            msg = requests.next() => {
                let Some(msg) = msg else { return };
                let Some(reply) = msg.reply else { continue };
                let body = status
                    .lock()
                    .ok()
                    .and_then(|s| serde_json::to_vec(&*s).ok())
                    .unwrap_or_default();
                if let Err(e) = client.publish(reply, body.into()).await {
                    tracing::debug!(error = %e, "could not answer a status request");
                }
            }
        }
    }
}

/// The services of some sites running in a background task of this process (embedding, tests,
/// benchmarks). [`ServeHandle::stop`] stops them as SIGTERM stops `ledger serve`.
#[derive(Debug)]
pub struct ServeHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl ServeHandle {
    /// Starts [`serve`] for `sites` in a background task.
    pub fn spawn(nats: Nats, sites: Vec<Site>, config: Config) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            serve(nats, &sites, config, stop).await
        });
        Self {
            stop: Some(tx),
            task,
        }
    }

    /// Stops the services cleanly and waits for them.
    ///
    /// # Errors
    ///
    /// [`ServeError`] when they had failed to start.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            // The task panicked or was aborted: nothing is left running.
            Err(e) => {
                tracing::error!(error = %e, "the services' task ended abnormally");
                Ok(())
            }
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        // Dropped without `stop`: end the task rather than leave it running unowned.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}
