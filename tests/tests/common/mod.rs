//! Shared set-up of the black-box tests: a real server, the ledger's streams, event builders.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use ledger_schemas::{
    ConfigKey, DeletedBy, Dn, EventBody, Joined, LctList, Message, MonitorMode, OptionName,
    PartyEvent, Role, Site, subject,
};
use ledger_services::{
    Config, Connection, Nats, Publisher, Role as ProjectorRole, ServeHandle, Status, Stores,
    now_us, provision,
};
use ledger_test_harness::NatsServer;
use uuid::Uuid;

/// Connects to `url` as client `name`.
pub async fn connect(url: &str, name: &str) -> Nats {
    Connection::to(url).name(name).connect().await.unwrap()
}

pub fn site(s: &str) -> Site {
    Site::new(s).unwrap()
}

/// A real nats-server with the ledger's streams and buckets.
pub struct Ledger {
    pub server: NatsServer,
    pub nats: Nats,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub stores: Stores,
    pub publisher: Publisher,
}

impl Ledger {
    pub async fn start() -> Self {
        Self::start_on(NatsServer::start().unwrap()).await
    }

    /// The ledger's streams and buckets on `server`.
    pub async fn start_on(server: NatsServer) -> Self {
        let nats = connect(server.url(), "test").await;
        let (client, js) = (nats.client.clone(), nats.js.clone());
        let stores = provision(&js, &Config::default().store).await.unwrap();
        let publisher = Publisher::new(js.clone());
        Self {
            server,
            nats,
            client,
            js,
            stores,
            publisher,
        }
    }

    pub fn url(&self) -> &str {
        self.server.url()
    }

    pub async fn publish(&self, event: &PartyEvent) -> u64 {
        self.publisher.publish(event).await.unwrap().seq
    }

    /// Publishes raw bytes on a subject of the event stream and returns their sequence.
    pub async fn publish_raw(&self, subject: String, payload: Vec<u8>) -> u64 {
        self.js
            .publish(subject, payload.into())
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    }

    pub async fn set_option(&self, at: &str, option: OptionName, value: &str) {
        let key = ConfigKey {
            site: site(at),
            option,
        }
        .to_string();
        self.stores
            .config
            .put(key, value.as_bytes().to_vec().into())
            .await
            .unwrap();
    }

    /// call_info on; propagation on or off.
    pub async fn configure(&self, at: &str, propagate: bool) {
        self.set_option(at, OptionName::SipEnableCallInfo, "true")
            .await;
        let word = if propagate { "current" } else { "original" };
        self.set_option(at, OptionName::UseDataFrom, word).await;
    }

    pub async fn lct(&self, at: &str, call: Uuid) -> Option<LctList> {
        self.stores
            .lct
            .get(subject::lct_key(site(at), call))
            .await
            .unwrap()
            .map(|b| LctList::decode(&b).unwrap())
    }

    /// The site's status, preferring the leader's answer when a standby answers too; `None`
    /// while nothing answers.
    pub async fn status(&self, at: &str) -> Option<Status> {
        let all = self.statuses(at).await;
        let leader = all.iter().position(|s| s.role == ProjectorRole::Leader);
        match leader {
            Some(i) => all.into_iter().nth(i),
            None => all.into_iter().next(),
        }
    }

    /// Every answer to the site's status request within half a second.
    pub async fn statuses(&self, at: &str) -> Vec<Status> {
        use futures::StreamExt;
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(inbox.clone()).await.unwrap();
        self.client
            .publish_with_reply(ledger_services::status_subject(site(at)), inbox, "".into())
            .await
            .unwrap();
        let mut all = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
            if msg.status.is_some() {
                // No responders (yet).
                break;
            }
            all.push(serde_json::from_slice::<Status>(&msg.payload).unwrap());
        }
        all
    }

    /// Runs the ledger's services for `sites` in this process until the handle is stopped.
    pub fn serve(&self, sites: &[&str], config: Config) -> Serving {
        let sites: Vec<Site> = sites.iter().map(|s| site(s)).collect();
        Serving(ServeHandle::spawn(self.nats.clone(), sites, config))
    }
}

/// In-process services, stopped cleanly by [`Serving::stop`].
pub struct Serving(ServeHandle);

impl Serving {
    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(20), self.0.stop())
            .await
            .expect("services did not stop within 20 s")
            .unwrap();
    }
}

/// Polls `check` until it returns `Some`, or fails after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub const WAIT: Duration = Duration::from_secs(20);

/// Builds the events of one call.
pub struct CallBuilder {
    pub call: Uuid,
}

impl CallBuilder {
    pub fn new() -> Self {
        Self {
            call: Uuid::now_v7(),
        }
    }

    pub fn event(&self, at: &str, party: Uuid, body: EventBody) -> PartyEvent {
        PartyEvent {
            id: Uuid::now_v7(),
            call: self.call,
            site: site(at),
            ts: now_us(),
            party,
            body,
        }
    }

    pub fn join(&self, at: &str, party: Uuid, dn: &str, role: Role) -> PartyEvent {
        self.event(
            at,
            party,
            EventBody::Joined(Joined {
                dn: Dn::new(dn).unwrap(),
                role,
                mode: MonitorMode::Normal,
                monitors: None,
            }),
        )
    }

    pub fn supervise(&self, at: &str, party: Uuid, dn: &str, monitors: Uuid) -> PartyEvent {
        self.event(
            at,
            party,
            EventBody::Joined(Joined {
                dn: Dn::new(dn).unwrap(),
                role: Role::Supervisor,
                mode: MonitorMode::Coach,
                monitors: Some(monitors),
            }),
        )
    }

    pub fn leave(&self, at: &str, party: Uuid) -> PartyEvent {
        self.event(
            at,
            party,
            EventBody::Left {
                reason: Some("hangup".into()),
            },
        )
    }

    pub fn delete(&self, at: &str, party: Uuid, by: Uuid, by_dn: &str) -> PartyEvent {
        self.event(
            at,
            party,
            EventBody::Deleted {
                by: DeletedBy {
                    party: by,
                    dn: Dn::new(by_dn).unwrap(),
                    site: site(at),
                },
                request: Uuid::now_v7(),
            },
        )
    }
}

/// The parties of a list as (dn, location) pairs, in order.
pub fn names(list: &LctList) -> Vec<(String, String)> {
    list.parties
        .iter()
        .map(|p| (p.dn.to_string(), p.location.to_string()))
        .collect()
}

/// Test settings: a short lease so that take-overs happen within a test.
pub fn test_config() -> Config {
    Config::default().lease_ttl(Duration::from_secs(2))
}

/// A three-site conference: the customer and agent 7001 at SiteA, agent 7001 at SiteB (same DN,
/// other site), agent 7003 at SiteC, and supervisor 7100 at SiteA monitoring SiteA's agent.
pub struct Conference {
    pub call: CallBuilder,
    pub customer: Uuid,
    pub a7001: Uuid,
    pub b7001: Uuid,
    pub c7003: Uuid,
    pub supervisor: Uuid,
}

impl Ledger {
    /// Every site: call info, remote delete and propagation on.
    pub async fn all_options_on(&self, sites: &[&str]) {
        for s in sites {
            self.configure(s, true).await;
            self.set_option(s, OptionName::SipRemoteDelFromConf, "true")
                .await;
        }
    }

    pub async fn conference(&self) -> Conference {
        let c = CallBuilder::new();
        let conf = Conference {
            customer: Uuid::now_v7(),
            a7001: Uuid::now_v7(),
            b7001: Uuid::now_v7(),
            c7003: Uuid::now_v7(),
            supervisor: Uuid::now_v7(),
            call: c,
        };
        let c = &conf.call;
        self.publish(&c.join("SiteA", conf.customer, "+14155550100", Role::Customer))
            .await;
        self.publish(&c.join("SiteA", conf.a7001, "7001", Role::Agent))
            .await;
        self.publish(&c.join("SiteB", conf.b7001, "7001", Role::Agent))
            .await;
        self.publish(&c.join("SiteC", conf.c7003, "7003", Role::Agent))
            .await;
        self.publish(&c.supervise("SiteA", conf.supervisor, "7100", conf.a7001))
            .await;
        conf
    }

    /// Sends raw bytes to a site's command service, retrying while it is not yet listening.
    pub async fn request_raw(&self, at: &str, payload: Vec<u8>) -> Vec<u8> {
        let subject = subject::delete_from_conference(site(at));
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self
                .client
                .request(subject.clone(), payload.clone().into())
                .await
            {
                Ok(reply) => return reply.payload.to_vec(),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("no command service of {at} answered: {e}"),
            }
        }
    }

    pub async fn delete(
        &self,
        at: &str,
        request: &ledger_schemas::DeleteRequest,
    ) -> ledger_schemas::DeleteReply {
        let bytes = self.request_raw(at, request.encode()).await;
        ledger_schemas::DeleteReply::decode(&bytes).unwrap()
    }

    /// The `party_deleted` events stored for a call.
    pub async fn deletions(&self, call: Uuid) -> Vec<PartyEvent> {
        self.nats
            .history
            .read_call(call, 1, None)
            .await
            .unwrap()
            .into_iter()
            .map(|m| PartyEvent::decode_on(&m.subject, &m.payload).unwrap())
            .filter(|e| matches!(e.body, EventBody::Deleted { .. }))
            .collect()
    }

    pub async fn audit(&self, call: Uuid) -> Vec<ledger_schemas::AuditRecord> {
        ledger_replay::read_audit(&self.js, None, Some(call))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.record.unwrap())
            .collect()
    }
}

/// A request from `this_dn` to delete `other_dn` in `call`.
pub fn request(call: Uuid, this_dn: &str, other_dn: &str) -> ledger_schemas::DeleteRequest {
    ledger_schemas::DeleteRequest {
        request: Uuid::now_v7(),
        call,
        this_dn: Dn::new(this_dn).unwrap(),
        other_dn: ledger_schemas::Target::parse(other_dn).unwrap(),
        reasons: Default::default(),
        extensions: Default::default(),
    }
}

/// The refusal code of a reply, or `None` when accepted.
pub fn code(reply: &ledger_schemas::DeleteReply) -> Option<ledger_schemas::RefusalCode> {
    reply.code()
}

/// Calls of a customer and three agents at two sites; half of them end.
pub fn traffic(calls: usize) -> Vec<PartyEvent> {
    let mut events = Vec::new();
    let builders: Vec<_> = (0..calls).map(|_| CallBuilder::new()).collect();
    let parties: Vec<[Uuid; 4]> = (0..calls)
        .map(|_| {
            [
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
            ]
        })
        .collect();
    for (i, c) in builders.iter().enumerate() {
        let p = parties[i];
        events.push(c.join("SiteA", p[0], "+14155550100", Role::Customer));
        events.push(c.join("SiteA", p[1], "7001", Role::Agent));
        events.push(c.join("SiteB", p[2], "7001", Role::Agent));
        events.push(c.join("SiteA", p[3], "7004", Role::Agent));
    }
    for (i, c) in builders.iter().enumerate() {
        let p = parties[i];
        events.push(c.leave("SiteA", p[3]));
        if i % 2 == 0 {
            for party in &p[..3] {
                events.push(c.leave(if *party == p[2] { "SiteB" } else { "SiteA" }, *party));
            }
        }
    }
    events
}

/// Every call's SiteA list equals the fold of the log (propagation on at SiteA).
pub async fn assert_lists_equal_the_fold(l: &Ledger, events: &[PartyEvent]) {
    let mut calls: Vec<Uuid> = events.iter().map(|e| e.call).collect();
    calls.dedup();
    for call in calls {
        let messages = l.nats.history.read_call(call, 1, None).await.unwrap();
        let view = ledger_replay::Viewpoint::Site {
            site: site("SiteA"),
            propagates: true,
        };
        let steps = ledger_replay::fold(call, &messages, view);
        let folded = steps.last().map(|s| s.parties.clone()).unwrap_or_default();
        let kv = l.lct("SiteA", call).await;
        match kv {
            Some(list) => {
                assert_eq!(list.parties, folded, "call {call}");
                assert_eq!(Some(list.seq), steps.iter().map(|s| s.seq).max());
            }
            None => assert!(folded.is_empty(), "call {call} has no list but {folded:?}"),
        }
    }
}

/// The site's floor: every event up to it is handled.
pub async fn floor_of(l: &Ledger, at: &str) -> u64 {
    l.stores
        .projector
        .get(format!("floor.{at}"))
        .await
        .unwrap()
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .unwrap_or(0)
}

/// The `ledger` binary with no NATS settings from the environment, and `home` as its home,
/// `nats` CLI folder, data folder and temporary folder.
/// Runs `ledger <args> --server <the test's server>` with `home` as its home, and asserts it
/// succeeded (printing its standard error when not).
pub fn ledger_ok(l: &Ledger, home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = ledger_in(home)
        .args(args)
        .args(["--server", l.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn ledger_in(home: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(ledger_test_harness::ledger_binary().unwrap());
    for var in [
        "NATS_URL",
        "NATS_CONTEXT",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_TOKEN",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_CERT",
        "NATS_KEY",
        "NATS_CA",
        "LEDGER_DATA",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HOME", home)
        .env("TMPDIR", home.join("tmp"));
    let _ = std::fs::create_dir_all(home.join("tmp"));
    cmd
}
