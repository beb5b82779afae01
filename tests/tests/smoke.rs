//! Smoke tests against real nats-server processes: provisioning and an event round trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use ledger_schemas::{
    Dn, EventBody, Joined, Message, MonitorMode, PartyEvent, Role, Site, subject,
};
use ledger_services::{Connection, ProvisionError, StoreConfig, ledger_stream_config, provision};
use ledger_test_harness::{Cluster, NatsServer};
use uuid::Uuid;

fn joined() -> PartyEvent {
    PartyEvent {
        id: Uuid::now_v7(),
        call: Uuid::now_v7(),
        site: Site::new("SiteA").unwrap(),
        ts: 1,
        party: Uuid::now_v7(),
        body: EventBody::Joined(Joined {
            dn: Dn::new("7001").unwrap(),
            role: Role::Agent,
            mode: MonitorMode::Normal,
            monitors: None,
        }),
    }
}

#[tokio::test]
async fn provisioning_creates_the_contracts_streams_and_buckets_idempotently() {
    let server = NatsServer::start().unwrap();
    let client = Connection::to(server.url()).connect().await.unwrap().client;
    let js = jetstream::new(client);
    let store = StoreConfig::default();
    // Two services starting at the same time both succeed.
    let (a, b) = tokio::join!(provision(&js, &store), provision(&js, &store));
    let mut stores = a.unwrap();
    b.unwrap();
    let events = stores.events.info().await.unwrap().config.clone();
    assert_eq!(events.name, "LEDGER_EVENTS");
    assert_eq!(events.subjects, vec!["ledger.ev.>"]);
    assert!(events.deny_delete && events.deny_purge);
    assert_eq!(events.duplicate_window, Duration::from_secs(120));
    assert_eq!(events.max_age, Duration::ZERO);
    assert_eq!(events.storage, jetstream::stream::StorageType::File);
    let audit = stores.audit.info().await.unwrap().config.clone();
    assert_eq!(audit.subjects, vec!["ledger.audit.>"]);
    assert!(audit.deny_delete && audit.deny_purge);
    assert_eq!(stores.lct.status().await.unwrap().history(), 1);
    assert_eq!(stores.config.status().await.unwrap().history(), 16);
    // A third start after the fact finds them as they are.
    provision(&js, &store).await.unwrap();
}

#[tokio::test]
async fn an_event_round_trips_through_jetstream_once_despite_a_retried_publish() {
    let server = NatsServer::start().unwrap();
    let client = Connection::to(server.url()).connect().await.unwrap().client;
    let js = jetstream::new(client);
    let mut stores = provision(&js, &StoreConfig::default()).await.unwrap();
    let event = joined();
    let publish = || {
        PublishMessage::build()
            .payload(event.encode().into())
            .message_id(event.id.to_string())
    };
    let first = js
        .send_publish(event.subject(), publish())
        .await
        .unwrap()
        .await
        .unwrap();
    let again = js
        .send_publish(event.subject(), publish())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate, "the retried publish was stored twice");
    assert_eq!(again.sequence, first.sequence);
    let stored = stores.events.get_raw_message(first.sequence).await.unwrap();
    let decoded = PartyEvent::decode_on(stored.subject.as_str(), &stored.payload).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(stores.events.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn the_per_call_sequence_check_refuses_a_stale_expectation() {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(Connection::to(server.url()).connect().await.unwrap().client);
    provision(&js, &StoreConfig::default()).await.unwrap();
    let event = joined();
    let seq = js
        .publish(event.subject(), event.encode().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let conditional = |expected: u64| {
        PublishMessage::build()
            .payload(event.encode().into())
            .expected_last_subject_sequence(expected)
            .header(
                "Nats-Expected-Last-Subject-Sequence-Subject",
                subject::call_events(event.call).as_str(),
            )
    };
    let stale = js
        .send_publish(event.subject(), conditional(seq - 1))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), PublishErrorKind::WrongLastSequence);
    js.send_publish(event.subject(), conditional(seq))
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_existing_stream_with_incompatible_settings_is_refused_and_left_alone() {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(Connection::to(server.url()).connect().await.unwrap().client);
    let mut wrong = ledger_stream_config(
        subject::EVENTS_STREAM,
        subject::EVENTS_SUBJECTS,
        &StoreConfig::default(),
    );
    wrong.deny_delete = false;
    wrong.deny_purge = false;
    js.create_stream(wrong).await.unwrap();
    let err = provision(&js, &StoreConfig::default()).await.unwrap_err();
    assert!(matches!(err, ProvisionError::Incompatible { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("deny_delete: found false, need true"),
        "{text}"
    );
    let mut s = js.get_stream(subject::EVENTS_STREAM).await.unwrap();
    assert!(
        !s.info().await.unwrap().config.deny_delete,
        "it was changed"
    );
}

#[tokio::test]
async fn a_three_node_cluster_serves_replicated_streams() {
    let cluster = Cluster::start(3).unwrap();
    let client = Connection::to(cluster.urls())
        .connect()
        .await
        .unwrap()
        .client;
    let js = jetstream::new(client);
    let store = StoreConfig {
        replicas: 3,
        ..StoreConfig::default()
    };
    // The cluster elects its JetStream leader after the nodes meet: retry until it serves.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut stores = loop {
        match provision(&js, &store).await {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("cluster never served JetStream: {e}"),
        }
    };
    let info = stores.events.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let event = joined();
    js.publish(event.subject(), event.encode().into())
        .await
        .unwrap()
        .await
        .unwrap();
}
