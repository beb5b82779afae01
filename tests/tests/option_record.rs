//! Option changes on the audit record (`ledger.audit.<site>.options`), recorded once by the
//! site's leading projector, before they take effect in its view, across leaders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use ledger_schemas::{ConfigKey, Message, OptionChanged, OptionName, subject};

async fn records(l: &Ledger) -> Vec<OptionChanged> {
    l.nats
        .history
        .read_filtered(
            subject::AUDIT_STREAM,
            &subject::audit_options(site("SiteA")),
            1,
            None,
        )
        .await
        .unwrap()
        .iter()
        .map(|m| OptionChanged::decode(&m.payload).unwrap())
        .collect()
}

async fn wait_records(l: &Ledger, n: usize) -> Vec<OptionChanged> {
    eventually(WAIT, &format!("{n} option records"), || async {
        let r = records(l).await;
        (r.len() >= n).then_some(r)
    })
    .await
}

fn summary(r: &[OptionChanged]) -> Vec<(OptionName, Option<&str>, Option<&str>, bool)> {
    r.iter()
        .map(|c| (c.option, c.old.as_deref(), c.new.as_deref(), c.refused))
        .collect()
}

#[tokio::test]
async fn option_changes_valid_and_invalid_are_on_the_record_once_across_leaders() {
    let l = Ledger::start().await;
    let first = l.serve(&["SiteA"], test_config());
    eventually(WAIT, "a leader", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.role == ledger_services::Role::Leader)
    })
    .await;
    let second = l.serve(&["SiteA"], test_config());
    l.set_option("SiteA", OptionName::SipEnableCallInfo, "true")
        .await;
    l.set_option("SiteA", OptionName::SipEnableCallInfo, "maybe")
        .await;
    l.set_option("SiteA", OptionName::UseDataFrom, "current")
        .await;
    let key = ConfigKey {
        site: site("SiteA"),
        option: OptionName::UseDataFrom,
    };
    l.stores.config.delete(key.to_string()).await.unwrap();
    // Another site's change is not SiteA's to record.
    l.set_option("SiteB", OptionName::SipEnableCallInfo, "true")
        .await;
    let r = wait_records(&l, 4).await;
    use OptionName::*;
    assert_eq!(
        summary(&r),
        vec![
            (SipEnableCallInfo, None, Some("true"), false),
            (SipEnableCallInfo, Some("true"), Some("maybe"), true),
            (UseDataFrom, None, Some("current"), false),
            (UseDataFrom, Some("current"), None, false),
        ]
    );
    // The leader stops; the other instance takes over and records nothing again.
    first.stop().await;
    let leader = eventually(WAIT, "the standby leading", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.role == ledger_services::Role::Leader)
    })
    .await;
    l.set_option("SiteA", OptionName::SipRemoteDelFromConf, "true")
        .await;
    let r = wait_records(&l, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r2 = records(&l).await;
    assert_eq!(r2.len(), 5, "{:?}", summary(&r2));
    assert_eq!(
        summary(&r[4..]),
        vec![(SipRemoteDelFromConf, None, Some("true"), false)]
    );
    // The changes took effect in the view: call info on, and counted once by each leader.
    let status = l.status("SiteA").await.unwrap();
    assert_eq!(status.instance, leader.instance);
    assert_eq!(status.counters.options_recorded, 1);
    second.stop().await;
}

#[tokio::test]
async fn changes_made_while_no_projector_ran_are_recorded_at_the_next_take_over() {
    let l = Ledger::start().await;
    let first = l.serve(&["SiteA"], test_config());
    l.set_option("SiteA", OptionName::SipEnableCallInfo, "true")
        .await;
    wait_records(&l, 1).await;
    first.stop().await;
    l.set_option("SiteA", OptionName::SipEnableCallInfo, "false")
        .await;
    l.set_option("SiteA", OptionName::SipRemoteDelFromConf, "yes")
        .await;
    let second = l.serve(&["SiteA"], test_config());
    let r = wait_records(&l, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(records(&l).await.len(), 3);
    use OptionName::*;
    assert_eq!(
        summary(&r[1..]),
        vec![
            (SipEnableCallInfo, Some("true"), Some("false"), false),
            (SipRemoteDelFromConf, None, Some("yes"), true),
        ]
    );
    second.stop().await;
}
