//! Creating the contract's streams and buckets when absent, idempotently.

use std::time::Duration;

use async_nats::jetstream::{
    self, Context,
    context::CreateStreamErrorKind,
    kv,
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};
use ledger_schemas::subject;

/// Settings of the streams and buckets. The contract's defaults: one replica, no age limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Replicas of every stream and bucket (1, or 3 on a cluster). Default 1.
    pub replicas: usize,
    /// Age limit of the event and audit streams; zero means none. Default none.
    pub max_age: Duration,
    /// How long the marker of a deleted key stays in `LEDGER_LCT` and `LEDGER_PROJECTOR` (an
    /// ended call's list, a removed index entry, an expired lease) before the server removes
    /// it, in whole seconds. While the marker exists, a late write from a replaced projector is
    /// refused; after it, a key that projector had never seen would accept it. Default one hour,
    /// far longer than a replaced projector can go on writing (see the README's "Two projectors
    /// of one site"); one marker per call ended is kept that long.
    pub marker_ttl: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            max_age: Duration::ZERO,
            marker_ttl: Duration::from_secs(3600),
        }
    }
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A stream or bucket exists with settings the ledger cannot work with. It is left as it is.
    #[error(
        "{name} exists with settings incompatible with the ledger ({differences}); it was left unchanged: fix or remove it by hand"
    )]
    Incompatible {
        /// The stream or bucket.
        name: String,
        /// What differs, as `setting: found X, need Y`.
        differences: String,
    },
    /// JetStream could not be reached or refused the request.
    #[error("cannot provision {name}: {source}")]
    Unavailable {
        /// The stream or bucket.
        name: String,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
}

/// Handles to the provisioned streams and buckets.
#[derive(Debug, Clone)]
pub struct Stores {
    /// `LEDGER_EVENTS`.
    pub events: stream::Stream,
    /// `LEDGER_AUDIT`.
    pub audit: stream::Stream,
    /// `LEDGER_LCT`.
    pub lct: kv::Store,
    /// `LEDGER_CONFIG`.
    pub config: kv::Store,
    /// `LEDGER_PROJECTOR`: internal to the services (projector leases and the index of calls in
    /// progress), not part of the wire contract.
    pub projector: kv::Store,
    /// `LEDGER_STATS`: each site's figures and real-time state (see `schemas/`).
    pub stats: kv::Store,
}

impl Stores {
    /// The streams and buckets as they exist, without creating or changing any (for readers).
    ///
    /// # Errors
    ///
    /// [`ProvisionError::Unavailable`] when one is missing or JetStream cannot be reached.
    pub async fn open(js: &Context) -> Result<Self, ProvisionError> {
        let stream = |name: &'static str| async move {
            js.get_stream(name).await.map_err(|e| unavailable(name, e))
        };
        let bucket = |name: &'static str| async move {
            js.get_key_value(name)
                .await
                .map_err(|e| unavailable(name, e))
        };
        Ok(Self {
            events: stream(subject::EVENTS_STREAM).await?,
            audit: stream(subject::AUDIT_STREAM).await?,
            lct: bucket(subject::LCT_BUCKET).await?,
            config: bucket(subject::CONFIG_BUCKET).await?,
            projector: bucket(PROJECTOR_BUCKET).await?,
            stats: bucket(ledger_schemas::STATS_BUCKET).await?,
        })
    }
}

/// The internal bucket of projector leases and active-call indexes.
pub const PROJECTOR_BUCKET: &str = "LEDGER_PROJECTOR";

/// The contract's settings of an append-only ledger stream.
pub fn ledger_stream_config(name: &str, subjects: &str, store: &StoreConfig) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects.to_owned()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: store.max_age,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: Duration::from_secs(120),
        num_replicas: store.replicas,
        allow_direct: true,
        ..Default::default()
    }
}

fn kv_config(bucket: &str, history: i64, store: &StoreConfig) -> kv::Config {
    kv::Config {
        bucket: bucket.to_owned(),
        history,
        storage: StorageType::File,
        num_replicas: store.replicas,
        ..Default::default()
    }
}

/// Creates (or finds) the streams and buckets of the contract. Several services may call this at
/// once: creating with identical settings is idempotent on the server.
///
/// # Errors
///
/// [`ProvisionError::Incompatible`] when one exists with other essential settings;
/// [`ProvisionError::Unavailable`] when JetStream cannot be reached.
pub async fn provision(js: &Context, store: &StoreConfig) -> Result<Stores, ProvisionError> {
    let events = ensure_stream(
        js,
        ledger_stream_config(subject::EVENTS_STREAM, subject::EVENTS_SUBJECTS, store),
    )
    .await?;
    let audit = ensure_stream(
        js,
        ledger_stream_config(subject::AUDIT_STREAM, subject::AUDIT_SUBJECTS, store),
    )
    .await?;
    // Deleted lists leave markers that expire (per-message TTL), and nothing else expires there.
    let lct = ensure_kv(js, kv_config(subject::LCT_BUCKET, 1, store)).await?;
    ensure_ttl(js, subject::LCT_BUCKET, None).await?;
    let config = ensure_kv(js, kv_config(subject::CONFIG_BUCKET, 16, store)).await?;
    // The projector lease expires by the server's clock and leaves a marker a standby sees.
    let projector = ensure_kv(js, kv_config(PROJECTOR_BUCKET, 1, store)).await?;
    ensure_ttl(js, PROJECTOR_BUCKET, Some(store.marker_ttl)).await?;
    // Keys of calls no longer in progress are deleted, leaving markers that expire.
    let stats = ensure_kv(js, kv_config(ledger_schemas::STATS_BUCKET, 1, store)).await?;
    ensure_ttl(js, ledger_schemas::STATS_BUCKET, None).await?;
    Ok(Stores {
        events,
        audit,
        lct,
        config,
        projector,
        stats,
    })
}

/// Turns on per-message time-to-live on a bucket's stream (nats-server 2.11+; it cannot be
/// turned off again), and with `markers`, the markers the server leaves when a message expires,
/// kept that long. Done on buckets created by earlier versions too.
async fn ensure_ttl(
    js: &Context,
    bucket: &str,
    markers: Option<Duration>,
) -> Result<(), ProvisionError> {
    let name = format!("KV_{bucket}");
    let mut stream = js
        .get_stream(&name)
        .await
        .map_err(|e| unavailable(bucket, e))?;
    let mut config = stream
        .info()
        .await
        .map_err(|e| unavailable(bucket, e))?
        .config
        .clone();
    let markers = markers.map(crate::config::whole_seconds);
    if config.allow_message_ttl && (markers.is_none() || config.subject_delete_marker_ttl.is_some())
    {
        return Ok(());
    }
    config.allow_message_ttl = true;
    if markers.is_some() {
        config.subject_delete_marker_ttl = markers;
    }
    js.update_stream(&config)
        .await
        .map_err(|e| unavailable(bucket, e))?;
    Ok(())
}

fn unavailable(name: &str, source: impl Into<async_nats::Error>) -> ProvisionError {
    ProvisionError::Unavailable {
        name: name.to_owned(),
        source: source.into(),
    }
}

fn name_in_use(err: &jetstream::context::CreateStreamError) -> bool {
    matches!(err.kind(), CreateStreamErrorKind::JetStream(e)
        if e.error_code() == jetstream::ErrorCode::STREAM_NAME_EXIST)
}

async fn ensure_stream(
    js: &Context,
    want: stream::Config,
) -> Result<stream::Stream, ProvisionError> {
    let name = want.name.clone();
    match js.create_stream(want.clone()).await {
        Ok(s) => Ok(s),
        Err(err) if name_in_use(&err) => {
            let mut found = js
                .get_stream(&name)
                .await
                .map_err(|e| unavailable(&name, e))?;
            let have = found
                .info()
                .await
                .map_err(|e| unavailable(&name, e))?
                .config
                .clone();
            check_compatible(&name, &have, &want)?;
            tracing::info!(stream = %name, "using the existing stream (settings differ in non-essential ways)");
            Ok(found)
        }
        Err(err) => Err(unavailable(&name, err)),
    }
}

async fn ensure_kv(js: &Context, want: kv::Config) -> Result<kv::Store, ProvisionError> {
    let name = want.bucket.clone();
    let history = want.history;
    match js.create_key_value(want).await {
        Ok(s) => Ok(s),
        Err(err) => {
            // The bucket may exist with other settings: compare its stream with what we need.
            let stream_name = format!("KV_{name}");
            let Ok(mut existing) = js.get_stream(&stream_name).await else {
                return Err(unavailable(&name, err));
            };
            let have = existing
                .info()
                .await
                .map_err(|e| unavailable(&name, e))?
                .config
                .clone();
            let mut diffs = Vec::new();
            if have.max_messages_per_subject != history {
                diffs.push(format!(
                    "history: found {}, need {history}",
                    have.max_messages_per_subject
                ));
            }
            if have.storage != StorageType::File {
                diffs.push(format!("storage: found {:?}, need File", have.storage));
            }
            if !diffs.is_empty() {
                return Err(ProvisionError::Incompatible {
                    name,
                    differences: diffs.join("; "),
                });
            }
            js.get_key_value(&name)
                .await
                .map_err(|e| unavailable(&name, e))
        }
    }
}

/// A per-subject limit as the server means it: 0 and -1 both mean none (a clustered server
/// reports -1 for a stream created with 0).
fn per_subject(limit: i64) -> String {
    if limit <= 0 {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}

/// Compares the settings the ledger depends on; other differences (replicas, age limit,
/// duplicate window) are an operator's choice and accepted.
fn check_compatible(
    name: &str,
    have: &stream::Config,
    want: &stream::Config,
) -> Result<(), ProvisionError> {
    let mut diffs = Vec::new();
    let mut cmp = |what: &str, h: String, w: String| {
        if h != w {
            diffs.push(format!("{what}: found {h}, need {w}"));
        }
    };
    cmp(
        "subjects",
        format!("{:?}", have.subjects),
        format!("{:?}", want.subjects),
    );
    cmp(
        "storage",
        format!("{:?}", have.storage),
        format!("{:?}", want.storage),
    );
    cmp(
        "retention",
        format!("{:?}", have.retention),
        format!("{:?}", want.retention),
    );
    cmp(
        "discard",
        format!("{:?}", have.discard),
        format!("{:?}", want.discard),
    );
    cmp(
        "deny_delete",
        have.deny_delete.to_string(),
        want.deny_delete.to_string(),
    );
    cmp(
        "deny_purge",
        have.deny_purge.to_string(),
        want.deny_purge.to_string(),
    );
    cmp(
        "max_msgs_per_subject",
        per_subject(have.max_messages_per_subject),
        per_subject(want.max_messages_per_subject),
    );
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(ProvisionError::Incompatible {
            name: name.to_owned(),
            differences: diffs.join("; "),
        })
    }
}
