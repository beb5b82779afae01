//! The feed the projector and the command service fold the log with
//! (`ledger_replay::EventFeed`), against a real nats-server: every event handed over once, in
//! stream order, when the server loses the feed's consumer, when another reader takes messages
//! from it, when the connection drops, and when the server restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use ledger_replay::{EventFeed, ReadAhead};
use ledger_schemas::subject;

/// Longest wait for one event: a restarted server's lost consumer is noticed by its missing
/// heartbeats (10 s), then made again.
const ONE_EVENT: Duration = Duration::from_secs(60);

/// Reads `feed` until `seen` holds `upto` stream sequences.
async fn read_until(feed: &mut EventFeed, seen: &mut Vec<u64>, upto: usize) {
    while seen.len() < upto {
        let next = tokio::time::timeout(ONE_EVENT, feed.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {ONE_EVENT:?} after {}", seen.len()));
        let followed = next.expect("the feed ended").expect("the feed failed");
        seen.push(followed.seq);
    }
}

/// The name of the stream's one consumer: the feed's.
async fn only_consumer(stream: &mut async_nats::jetstream::stream::Stream) -> String {
    let names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(names.len(), 1, "only the feed's consumer: {names:?}");
    names.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_feed_hands_over_every_event_once_in_order_across_a_lost_consumer_a_reconnection_and_a_restart()
 {
    let mut l = Ledger::start().await;
    let events = traffic(500);
    l.publisher.publish_all(&events, 256).await.unwrap();
    let stored = events.len();
    let mut stream = l.stores.events.clone();
    stream.info().await.unwrap();
    // A narrow window, so that the server has not sent everything when it loses the consumer.
    let read_ahead = ReadAhead {
        messages: 50,
        ..ReadAhead::default()
    };
    let mut feed = EventFeed::start(&l.client, &stream, 1, read_ahead)
        .await
        .unwrap();
    assert_eq!(feed.pending_at_start(), stored as u64);
    let mut seen = Vec::new();
    read_until(&mut feed, &mut seen, 1_000).await;

    // The server loses the consumer (an operator deletes it, or its inactivity limit passed).
    let names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(names.len(), 1, "only the feed's consumer: {names:?}");
    for name in &names {
        stream.delete_consumer(name).await.unwrap();
    }
    read_until(&mut feed, &mut seen, 1_500).await;
    assert_eq!(
        feed.remade(),
        1,
        "made again once after its consumer was deleted"
    );

    // Another reader takes five messages from the feed's consumer: the feed sees a gap in
    // what its consumer delivered, and reads again from the last event it handed over. (The
    // pause lets the feed's own requests be served first, into its buffer.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let name = only_consumer(&mut stream).await;
    let inbox = l.client.new_inbox();
    let mut taken = l.client.subscribe(inbox.clone()).await.unwrap();
    l.client
        .publish_with_reply(
            format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{name}",
                subject::EVENTS_STREAM
            ),
            inbox,
            r#"{"batch":5,"no_wait":true}"#.into(),
        )
        .await
        .unwrap();
    for _ in 0..5 {
        let m = tokio::time::timeout(WAIT, taken.next())
            .await
            .unwrap()
            .unwrap();
        assert!(m.status.is_none(), "a message, not {:?}", m.status);
    }
    read_until(&mut feed, &mut seen, 1_800).await;
    assert_eq!(feed.remade(), 2, "made again once after the gap");

    // The connection drops, perhaps with messages on their way (lost, while the consumer on
    // the server goes on: a gap again).
    l.client.force_reconnect().await.unwrap();
    read_until(&mut feed, &mut seen, 2_000).await;

    // The server restarts: the consumer, kept in memory, is gone; the events, on disk, are not.
    l.server.restart().unwrap();
    read_until(&mut feed, &mut seen, stored).await;
    assert!(feed.remade() >= 2, "made again after the restart");

    // Following on: events stored after the restart arrive too.
    let more = traffic(5);
    eventually(
        Duration::from_secs(30),
        "publishing after the restart",
        || async { l.publisher.publish_all(&more, 64).await.ok() },
    )
    .await;
    read_until(&mut feed, &mut seen, stored + more.len()).await;

    let expected: Vec<u64> = (1..=(stored + more.len()) as u64).collect();
    assert_eq!(seen.len(), expected.len());
    let first_wrong = seen.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_wrong, None, "every event once, in stream order");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), feed.next())
            .await
            .is_err(),
        "nothing more than what was stored"
    );
}
