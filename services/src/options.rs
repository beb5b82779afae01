//! A site's three options, read from KV `LEDGER_CONFIG` and watched: a change reaches the
//! projector and the command service before their next event or request.

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use ledger_schemas::{ConfigKey, OptionName, Site, SiteOptions};
use tokio::sync::watch;

/// Why the options could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the options of {site} from LEDGER_CONFIG: {source}")]
pub struct OptionsError {
    site: Site,
    #[source]
    source: async_nats::Error,
}

/// Applies one KV entry to `options`; returns whether anything changed. An invalid value is
/// refused (logged) and the previous value stays.
pub fn apply_entry(
    options: &mut SiteOptions,
    site: Site,
    key: &str,
    op: Operation,
    value: &[u8],
) -> bool {
    let Some(k) = ConfigKey::parse(key).filter(|k| k.site == site) else {
        return false;
    };
    let before = *options;
    match op {
        Operation::Put => {
            if let Err(e) = options.set(k.option, value) {
                tracing::warn!(%site, key, error = %e, "refused an invalid option value; the previous value stays");
            }
        }
        Operation::Delete | Operation::Purge => options.reset(k.option),
    }
    if *options != before {
        tracing::info!(%site, key, value = options.value(k.option), "option changed");
    }
    *options != before
}

/// Every site with an option set in `LEDGER_CONFIG`, in name order, with its options in force
/// (a refused value leaves the default in force, as the services do).
///
/// # Errors
///
/// The bucket's error when it cannot be read.
pub async fn sites_options(kv: &kv::Store) -> Result<Vec<(Site, SiteOptions)>, async_nats::Error> {
    use futures::TryStreamExt;
    let keys: Vec<String> = kv.keys().await?.try_collect().await?;
    let mut sites: Vec<Site> = keys
        .iter()
        .filter_map(|k| ConfigKey::parse(k).map(|k| k.site))
        .collect();
    sites.sort();
    sites.dedup();
    let mut out = Vec::with_capacity(sites.len());
    for site in sites {
        let mut options = SiteOptions::default();
        for option in OptionName::ALL {
            if let Some(v) = kv.get(ConfigKey { site, option }.to_string()).await? {
                let _ = options.set(option, &v);
            }
        }
        out.push((site, options));
    }
    Ok(out)
}

/// Reads `site`'s options now, then keeps `watch::Receiver` up to date until `shutdown`.
///
/// # Errors
///
/// [`OptionsError`] when the bucket cannot be read at start.
pub async fn watch_options(
    kv: kv::Store,
    site: Site,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(watch::Receiver<SiteOptions>, tokio::task::JoinHandle<()>), OptionsError> {
    let err = |source: async_nats::Error| OptionsError { site, source };
    // Watch first, then read: a change between the two is seen by the watch.
    let mut updates = kv
        .watch(format!("{site}.>"))
        .await
        .map_err(|e| err(e.into()))?;
    let mut options = SiteOptions::default();
    for option in OptionName::ALL {
        let key = ConfigKey { site, option }.to_string();
        if let Some(value) = kv.get(&key).await.map_err(|e| err(e.into()))? {
            apply_entry(&mut options, site, &key, Operation::Put, &value);
        }
    }
    let (tx, rx) = watch::channel(options);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                entry = updates.next() => match entry {
                    Some(Ok(e)) => {
                        if apply_entry(&mut options, site, &e.key, e.operation, &e.value) {
                            tx.send_replace(options);
                        }
                    }
                    Some(Err(e)) => tracing::warn!(%site, error = %e, "watching LEDGER_CONFIG failed; retrying"),
                    None => {
                        tracing::error!(%site, "the LEDGER_CONFIG watch ended; options are frozen until restart");
                        return;
                    }
                },
            }
        }
    });
    Ok((rx, task))
}
