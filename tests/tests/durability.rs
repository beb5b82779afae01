//! What an acknowledged event survives, and the services across a nats-server restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::{CallBuilder, Ledger, eventually, names, request, test_config};
use ledger_schemas::Role;
use uuid::Uuid;

#[tokio::test]
async fn acknowledged_events_survive_a_killed_server_and_the_services_carry_on() {
    let mut l = Ledger::start().await;
    l.all_options_on(&["SiteA"]).await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = CallBuilder::new();
    let parties: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    for (i, p) in parties.iter().take(3).enumerate() {
        l.publish(&c.join("SiteA", *p, &format!("700{i}"), Role::Agent))
            .await;
    }
    eventually(common::WAIT, "the first list", || async {
        l.lct("SiteA", c.call)
            .await
            .filter(|x| x.parties.len() == 3)
    })
    .await;
    // SIGKILL: no chance to flush anything that was not already on disk.
    l.server.restart().unwrap();
    // The client reconnects by itself; the events acknowledged before the kill are all there.
    let stored = eventually(Duration::from_secs(30), "the stream back", || async {
        let mut s = l.stores.events.clone();
        s.info().await.ok().map(|i| i.state.messages)
    })
    .await;
    assert_eq!(stored, 3);
    // The projector and the command service carry on after the restart.
    l.publish(&c.join("SiteA", parties[3], "7003", Role::Customer))
        .await;
    eventually(
        Duration::from_secs(30),
        "the list after the restart",
        || async {
            l.lct("SiteA", c.call)
                .await
                .filter(|x| x.parties.len() == 4)
        },
    )
    .await;
    let reply = eventually(
        Duration::from_secs(30),
        "a delete after the restart",
        || async {
            let r = l.delete("SiteA", &request(c.call, "7000", "7001")).await;
            r.outcome.is_ok().then_some(r)
        },
    )
    .await;
    assert_eq!(reply.outcome.unwrap().parties.len(), 3);
    let list = eventually(
        Duration::from_secs(30),
        "the list after the delete",
        || async {
            l.lct("SiteA", c.call)
                .await
                .filter(|x| x.parties.len() == 3)
        },
    )
    .await;
    assert_eq!(names(&list)[1], ("7002".to_owned(), "SiteA".to_owned()));
    serving.stop().await;
}
