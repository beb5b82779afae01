//! The contract's "TDeleteFromConference" and "Audit" sections against a real nats-server, with
//! the command services (and projectors) running as in `ledger serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::{Ledger, WAIT, code, eventually, request, site, test_config};
use ledger_schemas::{DeleteReply, EventBody, Message, OptionName, RefusalCode, Role, subject};
use ledger_services::Config;
use uuid::Uuid;

const SITES: [&str; 3] = ["SiteA", "SiteB", "SiteC"];

async fn refused(l: &Ledger, at: &str, call: Uuid, this_dn: &str, other_dn: &str) -> DeleteReply {
    let reply = l.delete(at, &request(call, this_dn, other_dn)).await;
    assert!(reply.outcome.is_err(), "accepted: {reply:?}");
    reply
}

fn assert_refused(reply: &DeleteReply, expected: RefusalCode, terr: u32) {
    let refusal = reply.outcome.as_ref().unwrap_err();
    assert_eq!(refusal.code, expected, "{}", refusal.message);
    assert_eq!(refusal.code.terr(), terr);
}

#[tokio::test]
async fn bad_request_an_undecodable_request_gets_a_reply_without_request_id_and_no_audit() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let bytes = l.request_raw("SiteA", b"\x93\x01\x02".to_vec()).await;
    let reply = DeleteReply::decode(&bytes).unwrap();
    assert_eq!(reply.request, None);
    assert_refused(&reply, RefusalCode::BadRequest, 53);
    let audit = ledger_replay::read_audit(&l.js, None, None).await.unwrap();
    assert!(audit.is_empty(), "an undecodable request is not recorded");
    serving.stop().await;
}

#[tokio::test]
async fn bad_request_a_malformed_field_keeps_the_request_id_and_is_audited() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let (id, call) = (Uuid::now_v7(), Uuid::now_v7());
    let raw = rmpv::Value::Map(vec![
        ("v".into(), 1.into()),
        (
            "request".into(),
            rmpv::Value::Binary(id.as_bytes().to_vec()),
        ),
        ("call".into(), rmpv::Value::Binary(call.as_bytes().to_vec())),
        ("this_dn".into(), "70 01".into()),
        ("other_dn".into(), "7002".into()),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &raw).unwrap();
    let reply = DeleteReply::decode(&l.request_raw("SiteA", bytes).await).unwrap();
    assert_eq!(reply.request, Some(id));
    assert_refused(&reply, RefusalCode::BadRequest, 53);
    let records = l.audit(call).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].request, raw, "the request as received");
    assert_eq!(records[0].reply, reply, "the reply as sent");
    // A newer schema version is refused the same way, never misread.
    let mut newer = request(call, "7001", "7002").encode();
    newer[3] = 2; // the map's first key is `v`: fixmap, fixstr "v" (2 bytes), then the value
    let reply = DeleteReply::decode(&l.request_raw("SiteA", newer).await).unwrap();
    assert_refused(&reply, RefusalCode::BadRequest, 53);
    assert!(reply.outcome.unwrap_err().message.contains("version 2"));
    serving.stop().await;
}

#[tokio::test]
async fn unknown_call_when_no_party_is_present_in_the_sites_view() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let reply = refused(&l, "SiteA", Uuid::now_v7(), "7001", "7002").await;
    assert_refused(&reply, RefusalCode::UnknownCall, 56);
    serving.stop().await;
}

/// Three sites with every option on, their services running, and the standard conference.
async fn conference_running() -> (Ledger, common::Serving, Uuid) {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let call = l.conference().await.call.call;
    (l, serving, call)
}

/// Sets an option and waits until a request shows it in force.
async fn refused_once_in_force(
    l: &Ledger,
    at: &str,
    call: Uuid,
    this: &str,
    other: &str,
    want: RefusalCode,
) -> DeleteReply {
    eventually(WAIT, &format!("{want:?}"), || async {
        let r = l.delete(at, &request(call, this, other)).await;
        (code(&r) == Some(want)).then_some(r)
    })
    .await
}

#[tokio::test]
async fn requester_not_in_call_when_this_dn_is_absent_or_located_at_another_site() {
    let (l, serving, call) = conference_running().await;
    assert_refused(
        &refused(&l, "SiteA", call, "9999", "7003").await,
        RefusalCode::RequesterNotInCall,
        470,
    );
    // 7003 is in the call, but at SiteC: it cannot request through SiteA.
    assert_refused(
        &refused(&l, "SiteA", call, "7003", "+14155550100").await,
        RefusalCode::RequesterNotInCall,
        470,
    );
    assert!(l.deletions(call).await.is_empty());
    serving.stop().await;
}

#[tokio::test]
async fn not_a_conference_with_fewer_than_three_parties_in_the_view() {
    let (l, serving, call) = conference_running().await;
    // Without propagation SiteC sees its own agent only.
    l.set_option("SiteC", OptionName::UseDataFrom, "original")
        .await;
    let r = refused_once_in_force(
        &l,
        "SiteC",
        call,
        "7003",
        "7001@SiteB",
        RefusalCode::NotAConference,
    )
    .await;
    assert_refused(&r, RefusalCode::NotAConference, 496);
    serving.stop().await;
}

#[tokio::test]
async fn party_not_in_call_when_other_dn_matches_no_present_party() {
    let (l, serving, call) = conference_running().await;
    assert_refused(
        &refused(&l, "SiteA", call, "7001", "4242").await,
        RefusalCode::PartyNotInCall,
        470,
    );
    assert_refused(
        &refused(&l, "SiteA", call, "7001", &Uuid::now_v7().to_string()).await,
        RefusalCode::PartyNotInCall,
        470,
    );
    serving.stop().await;
}

#[tokio::test]
async fn invalid_target_when_the_requester_names_itself() {
    let (l, serving, call) = conference_running().await;
    assert_refused(
        &refused(&l, "SiteA", call, "7001", "7001@SiteA").await,
        RefusalCode::InvalidTarget,
        53,
    );
    serving.stop().await;
}

/// Turns `option` off at SiteA: a remote delete is refused with `expected`, nothing is deleted.
async fn remote_target_refused_with_option_off(option: OptionName, expected: RefusalCode) {
    let (l, serving, call) = conference_running().await;
    l.set_option("SiteA", option, "false").await;
    let r = refused_once_in_force(&l, "SiteA", call, "7001", "7003", expected).await;
    assert_refused(&r, expected, 1005);
    assert!(l.deletions(call).await.is_empty());
    serving.stop().await;
}

#[tokio::test]
async fn call_info_disabled_for_a_remote_target() {
    remote_target_refused_with_option_off(
        OptionName::SipEnableCallInfo,
        RefusalCode::CallInfoDisabled,
    )
    .await;
}

#[tokio::test]
async fn remote_delete_disabled_for_a_remote_target() {
    remote_target_refused_with_option_off(
        OptionName::SipRemoteDelFromConf,
        RefusalCode::RemoteDeleteDisabled,
    )
    .await;
}

#[tokio::test]
async fn not_authorized_when_an_agent_deletes_a_supervisor() {
    let (l, serving, call) = conference_running().await;
    assert_refused(
        &refused(&l, "SiteA", call, "7001", "7100").await,
        RefusalCode::NotAuthorized,
        472,
    );
    // A supervisor may request, and is not refused for being one.
    let r = l.delete("SiteA", &request(call, "7100", "7003")).await;
    assert!(r.outcome.is_ok(), "{r:?}");
    serving.stop().await;
}

#[tokio::test]
async fn an_option_flipped_at_run_time_is_obeyed_by_the_next_request() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    l.set_option("SiteA", OptionName::SipRemoteDelFromConf, "false")
        .await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let r = l
        .delete("SiteA", &request(c.call.call, "7001", "7003"))
        .await;
    assert_refused(&r, RefusalCode::RemoteDeleteDisabled, 1005);
    l.set_option("SiteA", OptionName::SipRemoteDelFromConf, "true")
        .await;
    let accepted = eventually(WAIT, "the option to take effect", || async {
        let r = l
            .delete("SiteA", &request(c.call.call, "7001", "7003"))
            .await;
        r.outcome.is_ok().then_some(r)
    })
    .await;
    let a = accepted.outcome.unwrap();
    let dns: Vec<_> = a.parties.iter().map(|p| p.dn.to_string()).collect();
    assert_eq!(
        dns,
        ["+14155550100", "7001", "7001"],
        "SiteA's view after the delete"
    );
    serving.stop().await;
}

#[tokio::test]
async fn a_remote_delete_is_appended_and_reaches_every_sites_list() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let call = c.call.call;
    let req = request(call, "7001", &c.c7003.to_string());
    let reply = l.delete("SiteA", &req).await;
    let accepted = reply.outcome.unwrap();
    let deleted = l.deletions(call).await;
    assert_eq!(deleted.len(), 1);
    let e = &deleted[0];
    assert_eq!(
        (e.id, e.party, e.site),
        (accepted.event, c.c7003, site("SiteA"))
    );
    match &e.body {
        EventBody::Deleted { by, request } => {
            assert_eq!(
                (by.party, by.dn.as_str(), by.site),
                (c.a7001, "7001", site("SiteA"))
            );
            assert_eq!(*request, req.request);
        }
        other => panic!("{other:?}"),
    }
    // The projectors of all three sites apply it (propagation on everywhere).
    for s in SITES {
        eventually(WAIT, &format!("{s}'s list without 7003"), || async {
            let list = l.lct(s, call).await?;
            (list.seq == accepted.seq && list.parties.len() == 3).then_some(())
        })
        .await;
    }
    serving.stop().await;
}

#[tokio::test]
async fn a_local_delete_needs_neither_remote_option() {
    let l = Ledger::start().await;
    l.configure("SiteA", false).await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = common::CallBuilder::new();
    let (p1, p2, p3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    l.publish(&c.join("SiteA", p1, "7001", Role::Agent)).await;
    l.publish(&c.join("SiteA", p2, "7002", Role::Agent)).await;
    l.publish(&c.join("SiteA", p3, "+14155550100", Role::Customer))
        .await;
    let reply = l.delete("SiteA", &request(c.call, "7001", "7002")).await;
    assert!(reply.outcome.is_ok(), "{reply:?}");
    serving.stop().await;
}

#[tokio::test]
async fn duplicate_dn_names_across_sites_are_refused_with_both_candidates_and_named_exactly() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let call = c.call.call;
    let reply = refused(&l, "SiteC", call, "7003", "7001").await;
    assert_refused(&reply, RefusalCode::AmbiguousParty, 53);
    let mut ids: Vec<_> = reply
        .outcome
        .unwrap_err()
        .candidates
        .iter()
        .map(|p| p.party)
        .collect();
    ids.sort();
    let mut both = vec![c.a7001, c.b7001];
    both.sort();
    assert_eq!(ids, both);
    assert!(
        l.deletions(call).await.is_empty(),
        "nothing deleted on ambiguity"
    );
    // dn@site deletes exactly the one at SiteB.
    let reply = l
        .delete("SiteC", &request(call, "7003", "7001@SiteB"))
        .await;
    assert!(reply.outcome.is_ok(), "{reply:?}");
    let deleted = l.deletions(call).await;
    assert_eq!(
        deleted.iter().map(|e| e.party).collect::<Vec<_>>(),
        vec![c.b7001]
    );
    // The bare DN now names one party; by party id, the remaining one goes too.
    let reply = l
        .delete("SiteC", &request(call, "7003", &c.a7001.to_string()))
        .await;
    assert!(reply.outcome.is_ok(), "{reply:?}");
    let deleted = l.deletions(call).await;
    assert_eq!(
        deleted.iter().map(|e| e.party).collect::<Vec<_>>(),
        vec![c.b7001, c.a7001]
    );
    serving.stop().await;
}

#[tokio::test]
async fn racing_deletes_of_one_party_from_several_requesters_and_instances_store_exactly_one() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    // Two processes' worth of services for every site: two command service instances each.
    let first = l.serve(&SITES, test_config());
    let second = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let call = c.call.call;
    // Warm both instances up (each answers the first request once it follows the stream).
    for _ in 0..4 {
        refused(&l, "SiteA", call, "7001", "4242").await;
    }
    let requests = [
        ("SiteA", "7001"),
        ("SiteA", "+14155550100"),
        ("SiteB", "7001"),
        ("SiteA", "7001"),
        ("SiteB", "7001"),
        ("SiteA", "+14155550100"),
    ];
    let target = c.c7003.to_string();
    let built: Vec<_> = requests
        .iter()
        .map(|(at, dn)| (*at, request(call, dn, &target)))
        .collect();
    let replies = futures::future::join_all(built.iter().map(|(at, req)| l.delete(at, req))).await;
    let accepted = replies.iter().filter(|r| r.outcome.is_ok()).count();
    assert_eq!(accepted, 1, "{replies:#?}");
    for r in replies.iter().filter(|r| r.outcome.is_err()) {
        assert!(
            matches!(
                code(r),
                Some(RefusalCode::PartyNotInCall | RefusalCode::Conflict)
            ),
            "{r:?}"
        );
    }
    assert_eq!(
        l.deletions(call).await.len(),
        1,
        "exactly one party_deleted"
    );
    assert_eq!(
        l.audit(call).await.len(),
        4 + requests.len(),
        "every decision recorded"
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn conflict_when_concurrent_changes_keep_winning_with_no_retry_left() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let config = Config {
        max_attempts: 1,
        ..test_config()
    };
    let first = l.serve(&["SiteA"], config.clone());
    let second = l.serve(&["SiteA"], config);
    // Rounds of concurrent deletes of different parties of one call through two instances:
    // appends that race for the same call sequence lose, and with one attempt they answer
    // `conflict`. Each round deletes each party at most once.
    let mut conflicts = 0;
    for _ in 0..10 {
        let c = common::CallBuilder::new();
        let parties: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
        for (i, p) in parties.iter().enumerate() {
            l.publish(&c.join("SiteA", *p, &format!("70{i:02}"), Role::Agent))
                .await;
        }
        refused(&l, "SiteA", c.call, "7000", "4242").await;
        refused(&l, "SiteA", c.call, "7000", "4242").await;
        let built: Vec<_> = (1..8)
            .map(|i| request(c.call, "7000", &format!("70{i:02}")))
            .collect();
        let replies =
            futures::future::join_all(built.iter().map(|req| l.delete("SiteA", req))).await;
        conflicts += replies
            .iter()
            .filter(|r| code(r) == Some(RefusalCode::Conflict))
            .count();
        let accepted = replies.iter().filter(|r| r.outcome.is_ok()).count();
        assert_eq!(l.deletions(c.call).await.len(), accepted);
        for r in &replies {
            if let Err(refusal) = &r.outcome {
                assert_eq!(refusal.code, RefusalCode::Conflict, "{}", refusal.message);
                assert_eq!(refusal.code.terr(), 52);
            }
        }
        if conflicts > 0 {
            break;
        }
    }
    assert!(conflicts > 0, "no append ever lost the race");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn a_resent_request_is_answered_as_the_first_time_also_after_a_restart() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let req = request(c.call.call, "7001", "7003");
    let first = l.delete("SiteA", &req).await.outcome.unwrap();
    let again = l.delete("SiteA", &req).await.outcome.unwrap();
    assert_eq!((again.seq, again.event), (first.seq, first.event));
    serving.stop().await;
    // A new process: its view is rebuilt from the stream.
    let serving = l.serve(&SITES, test_config());
    let after = l.delete("SiteA", &req).await.outcome.unwrap();
    assert_eq!((after.seq, after.event), (first.seq, first.event));
    assert_eq!(l.deletions(c.call.call).await.len(), 1, "no second event");
    serving.stop().await;
}

#[tokio::test]
async fn every_decision_is_audited_before_the_reply_with_the_view_and_options() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let call = c.call.call;
    let mut req = request(call, "7001", "7003");
    req.reasons
        .insert("comment".into(), "wrong transfer".into());
    req.extensions.insert("AttributeTimeout".into(), "5".into());
    let reply = l.delete("SiteA", &req).await;
    // The record exists as soon as the reply is in hand.
    let records = l.audit(call).await;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.site, site("SiteA"));
    assert_eq!(r.reply, reply);
    assert_eq!(r.request_text("this_dn"), Some("7001"));
    assert_eq!(r.request_text("other_dn"), Some("7003"));
    assert_eq!(r.request_call(), Some(call));
    let rendered = format!("{:?}", r.request);
    assert!(rendered.contains("wrong transfer") && rendered.contains("AttributeTimeout"));
    assert_eq!(
        r.view_seq, 5,
        "checked against the view at the conference's last event"
    );
    assert!(r.config.call_info && r.config.remote_delete && r.config.propagates());
    serving.stop().await;
}

#[tokio::test]
async fn unavailable_when_the_audit_cannot_be_written_and_a_retry_is_answered_as_the_first() {
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    refused(&l, "SiteA", c.call.call, "7001", "4242").await;
    l.js.delete_stream(subject::AUDIT_STREAM).await.unwrap();
    let req = request(c.call.call, "7001", "7003");
    let reply = l.delete("SiteA", &req).await;
    assert_refused(&reply, RefusalCode::Unavailable, 58);
    let message = reply.outcome.unwrap_err().message;
    assert!(
        !message.contains("stream"),
        "the cause stays in the logs: {message}"
    );
    // With the audit stream back, the retry is answered ok, with the one event stored.
    ledger_services::provision(&l.js, &Config::default().store)
        .await
        .unwrap();
    let retry = l.delete("SiteA", &req).await;
    assert!(retry.outcome.is_ok(), "{retry:?}");
    assert_eq!(l.deletions(c.call.call).await.len(), 1);
    serving.stop().await;
}

#[tokio::test]
async fn the_command_service_is_a_discoverable_nats_micro_service() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA", "SiteB"], test_config());
    refused(&l, "SiteA", Uuid::now_v7(), "7001", "7002").await;
    refused(&l, "SiteB", Uuid::now_v7(), "7001", "7002").await;
    let ping = l
        .client
        .request("$SRV.PING.ledger-command", "".into())
        .await
        .unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["name"], "ledger-command");
    let inbox = l.client.new_inbox();
    let mut sub = l.client.subscribe(inbox.clone()).await.unwrap();
    l.client
        .publish_with_reply("$SRV.INFO.ledger-command", inbox, "".into())
        .await
        .unwrap();
    let mut subjects = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut sub),
    )
    .await
    {
        let info: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        subjects.push(info["endpoints"][0]["subject"].as_str().unwrap().to_owned());
        assert_eq!(info["endpoints"][0]["queue_group"], "q");
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "ledger.cmd.SiteA.delete_from_conference",
            "ledger.cmd.SiteB.delete_from_conference"
        ]
    );
    serving.stop().await;
}

#[tokio::test]
async fn racing_deletes_on_a_replicated_stream_of_a_three_node_cluster_store_exactly_one() {
    use ledger_services::{Publisher, ServeHandle, StoreConfig, provision};
    let cluster = ledger_test_harness::Cluster::start(3).unwrap();
    let nats = common::connect(&cluster.urls(), "test").await;
    let client = nats.client.clone();
    let js = async_nats::jetstream::new(client.clone());
    let store = StoreConfig {
        replicas: 3,
        ..StoreConfig::default()
    };
    // The cluster elects its JetStream leader after the nodes meet: retry until it serves.
    let stores = eventually(
        Duration::from_secs(30),
        "the cluster's JetStream",
        || async { provision(&js, &store).await.ok() },
    )
    .await;
    for option in [
        OptionName::SipEnableCallInfo,
        OptionName::SipRemoteDelFromConf,
    ] {
        let key = ledger_schemas::ConfigKey {
            site: site("SiteA"),
            option,
        }
        .to_string();
        stores.config.put(key, "true".into()).await.unwrap();
    }
    let config = Config {
        store,
        max_attempts: 5,
        ..test_config()
    };
    // Two instances, each connected to another node.
    let other = common::connect(cluster.nodes[1].url(), "test-2").await;
    let first = ServeHandle::spawn(nats.clone(), vec![site("SiteA")], config.clone());
    let second = ServeHandle::spawn(other, vec![site("SiteA")], config);
    let publisher = Publisher::new(js.clone());
    let c = common::CallBuilder::new();
    let parties: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    for (i, p) in parties.iter().enumerate() {
        publisher
            .publish(&c.join("SiteA", *p, &format!("70{i:02}"), Role::Agent))
            .await
            .unwrap();
    }
    let ask = |req: ledger_schemas::DeleteRequest| {
        let client = client.clone();
        async move {
            let subject = subject::delete_from_conference(site("SiteA"));
            let reply = eventually(WAIT, "a command service", || async {
                client
                    .request(subject.clone(), req.encode().into())
                    .await
                    .ok()
            })
            .await;
            DeleteReply::decode(&reply.payload).unwrap()
        }
    };
    // Different parties of one call at once: every append expects the same call sequence, so
    // the losers are refused (10164 or 10071), catch up and retry; one party at a time wins.
    let built: Vec<_> = (1..5)
        .map(|i| request(c.call, "7000", &format!("70{i:02}")))
        .collect();
    let replies = futures::future::join_all(built.into_iter().map(ask)).await;
    for r in &replies {
        assert!(
            r.outcome.is_ok() || code(r) == Some(RefusalCode::Conflict),
            "{r:?}"
        );
    }
    let accepted = replies.iter().filter(|r| r.outcome.is_ok()).count();
    let events = nats.history.read_call(c.call, 1, None).await.unwrap();
    let deleted = events
        .iter()
        .filter(|m| m.subject.ends_with("party_deleted"))
        .count();
    assert_eq!(deleted, accepted, "one party_deleted per accepted request");
    assert!(accepted >= 1);
    // The same party from both instances at once: exactly one event.
    let target = parties[9].to_string();
    let racing: Vec<_> = (0..4).map(|_| request(c.call, "7000", &target)).collect();
    let replies = futures::future::join_all(racing.into_iter().map(ask)).await;
    assert_eq!(
        replies.iter().filter(|r| r.outcome.is_ok()).count(),
        1,
        "{replies:#?}"
    );
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn a_resent_request_for_a_call_that_has_ended_is_answered_as_the_first_time_after_a_restart()
{
    let l = Ledger::start().await;
    l.all_options_on(&SITES).await;
    let serving = l.serve(&SITES, test_config());
    let c = l.conference().await;
    let req = request(c.call.call, "7001", "7003");
    let first = l.delete("SiteA", &req).await.outcome.unwrap();
    for (at, party) in [
        ("SiteA", c.customer),
        ("SiteA", c.a7001),
        ("SiteB", c.b7001),
        ("SiteA", c.supervisor),
    ] {
        l.publish(&c.call.leave(at, party)).await;
    }
    serving.stop().await;
    // A new process knows only the calls in progress; the ended call is read back on demand.
    let serving = l.serve(&SITES, test_config());
    let again = l.delete("SiteA", &req).await.outcome.unwrap();
    assert_eq!((again.seq, again.event), (first.seq, first.event));
    assert_eq!(l.deletions(c.call.call).await.len(), 1, "no second event");
    // A new request about the ended call is refused: no party is present.
    let other = l
        .delete("SiteA", &request(c.call.call, "7001", "7002"))
        .await;
    assert_eq!(code(&other), Some(RefusalCode::UnknownCall));
    serving.stop().await;
}
