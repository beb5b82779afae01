#![allow(unreachable_pub)]
//! A burst of concurrent event publishes and delete requests, a fault in the middle of it, and
//! the checks that nothing acknowledged was lost or doubled. Every client resends whatever got no
//! answer, with the same event id or request id, as a well-behaved producer or agent would.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ledger_schemas::{
    DeleteReply, DeleteRequest, EventBody, Message, PartyEvent, RefusalCode, Role, subject,
};
use ledger_services::Publisher;
use ledger_test_harness::{LedgerProcess, NatsServer};
use tokio::time::Instant;
use uuid::Uuid;

use crate::common::{CallBuilder, Ledger, assert_lists_equal_the_fold, eventually, request, site};

/// The longest a burst may take, the fault and every resend included.
const LIMIT: Duration = Duration::from_secs(150);
/// How long a request waits for its answer before it is sent again.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Concurrent publishers, and concurrent requesters.
const TASKS: usize = 4;

/// What the burst sends: conferences set up before it, then calls and deletes at once.
pub struct Plan {
    /// Published before the burst: conferences of a requester, a customer, two more agents and
    /// `targets` agents to delete.
    pub setup: Vec<PartyEvent>,
    /// Per publisher, whole calls in order.
    pub burst: Vec<Vec<PartyEvent>>,
    /// Per requester: a delete of every target, the conferences interleaved.
    pub requests: Vec<Vec<DeleteRequest>>,
    /// Every conference's call, and the number of parties it has before the deletes.
    pub conferences: Vec<(Uuid, usize)>,
}

impl Plan {
    /// `conferences` calls of `targets` deletable agents each, and `calls` more calls of about
    /// seven events published during the deletes.
    pub fn new(conferences: usize, targets: usize, calls: usize) -> Self {
        let mut setup = Vec::new();
        let mut asks: Vec<Vec<DeleteRequest>> = Vec::new();
        let mut confs = Vec::new();
        for k in 0..conferences {
            let c = CallBuilder::new();
            setup.push(c.join("SiteA", Uuid::now_v7(), "7000", Role::Agent));
            setup.push(c.join(
                "SiteA",
                Uuid::now_v7(),
                &format!("+1415555{k:04}"),
                Role::Customer,
            ));
            setup.push(c.join("SiteB", Uuid::now_v7(), "7990", Role::Agent));
            setup.push(c.join("SiteA", Uuid::now_v7(), "7991", Role::Agent));
            let mut mine = Vec::new();
            for t in 0..targets {
                let party = Uuid::now_v7();
                let at = if t % 2 == 0 { "SiteA" } else { "SiteB" };
                setup.push(c.join(at, party, &format!("71{t:02}"), Role::Agent));
                mine.push(request(c.call, "7000", &party.to_string()));
            }
            confs.push((c.call, 4 + targets));
            asks.push(mine);
        }
        // Round-robin over the conferences, dealt to the requesters: requests for one call run
        // at once in different requesters, and race.
        let mut requests = vec![Vec::new(); TASKS];
        let mut n = 0;
        for t in 0..targets {
            for conf in &asks {
                requests[n % TASKS].push(conf[t].clone());
                n += 1;
            }
        }
        let mut burst = vec![Vec::new(); TASKS];
        for i in 0..calls {
            let c = CallBuilder::new();
            let (customer, a, b, s) = (
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
            );
            let events = &mut burst[i % TASKS];
            events.push(c.join("SiteA", customer, "+14155550100", Role::Customer));
            events.push(c.join("SiteA", a, "7001", Role::Agent));
            events.push(c.join("SiteB", b, "7002", Role::Agent));
            events.push(c.supervise("SiteA", s, "7100", a));
            events.push(c.leave("SiteA", s));
            events.push(c.leave("SiteB", b));
            if i % 2 == 0 {
                events.push(c.leave("SiteA", a));
                events.push(c.leave("SiteA", customer));
            }
        }
        Self {
            setup,
            burst,
            requests,
            conferences: confs,
        }
    }

    fn events(&self) -> usize {
        self.setup.len() + self.burst.iter().map(Vec::len).sum::<usize>()
    }

    fn request_count(&self) -> usize {
        self.requests.iter().map(Vec::len).sum()
    }
}

/// The fault injected once a third of the burst's events and a third of its requests are
/// answered.
pub enum Fault<'a> {
    /// nats-server killed with SIGKILL, restarted on the same port and store after the pause.
    KillServer(&'a mut NatsServer),
    /// `ledger serve` killed with SIGKILL, and a new one started with `args`.
    KillServe {
        /// The process killed.
        process: &'a mut LedgerProcess,
        /// Where the new process is kept.
        replacement: &'a mut Option<LedgerProcess>,
        /// Its arguments.
        args: &'a [&'a str],
    },
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Event id to the stream sequence its acknowledgement named.
    pub acked: HashMap<Uuid, u64>,
    /// Acknowledgements that said "already stored" (a resend of an event stored before).
    pub duplicates: usize,
    /// Publishes sent again after no acknowledgement.
    pub resent: usize,
    /// Request id to its final answer.
    pub finals: HashMap<Uuid, DeleteReply>,
    /// Requests sent more than once.
    pub resent_requests: usize,
    /// Answers `unavailable` or `conflict` (the client sends the request again).
    pub retry_answers: usize,
    /// Requests that got no answer in time.
    pub unanswered: usize,
    /// Burst events acknowledged, and requests answered, when the fault struck.
    pub fault_after: (usize, usize),
    /// Burst events, and requests, in all.
    pub totals: (usize, usize),
}

impl Report {
    /// Whether the fault struck in the middle of both the publishes and the requests.
    pub fn mid_burst(&self) -> bool {
        self.fault_after.0 < self.totals.0 && self.fault_after.1 < self.totals.1
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fault after {} of {} events and {} of {} requests; {} events acknowledged ({} as already \
             stored), {} publishes resent; {} requests answered finally, {} of them sent more than \
             once ({} unavailable/conflict answers, {} without an answer)",
            self.fault_after.0,
            self.totals.0,
            self.fault_after.1,
            self.totals.1,
            self.acked.len(),
            self.duplicates,
            self.resent,
            self.finals.len(),
            self.resent_requests,
            self.retry_answers,
            self.unanswered,
        )
    }
}

/// A burst ready to run: the conferences are set up and visible.
pub struct Burst {
    publisher: Publisher,
    client: async_nats::Client,
}

impl Burst {
    /// Publishes the plan's conferences and waits until SiteA's lists show them.
    pub async fn prepare(l: &Ledger, plan: &Plan) -> Self {
        l.publisher.publish_all(&plan.setup, 64).await.unwrap();
        for &(call, parties) in &plan.conferences {
            eventually(Duration::from_secs(60), "a conference's list", || async {
                l.lct("SiteA", call)
                    .await
                    .filter(|x| x.parties.len() == parties)
            })
            .await;
        }
        Self {
            publisher: l.publisher.clone(),
            client: l.client.clone(),
        }
    }

    /// Runs the burst, injects `fault` a third of the way through (`down`: how long a killed
    /// server stays down), and waits for every event and request to get a final answer.
    pub async fn run(self, plan: &Plan, fault: Fault<'_>, down: Duration) -> Report {
        let deadline = Instant::now() + LIMIT;
        let events = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let mut publishers = Vec::new();
        for chunk in plan.burst.clone() {
            publishers.push(tokio::spawn(publish(
                self.publisher.clone(),
                chunk,
                events.clone(),
                deadline,
            )));
        }
        let mut requesters = Vec::new();
        for chunk in plan.requests.clone() {
            requesters.push(tokio::spawn(ask(
                self.client.clone(),
                chunk,
                answered.clone(),
                deadline,
            )));
        }
        let burst_events = plan.events() - plan.setup.len();
        let third = |n: usize| n.div_ceil(3);
        while events.load(Ordering::Relaxed) < third(burst_events)
            || answered.load(Ordering::Relaxed) < third(plan.request_count())
        {
            assert!(
                Instant::now() < deadline,
                "the burst never got a third of the way"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let fault_after = (
            events.load(Ordering::Relaxed),
            answered.load(Ordering::Relaxed),
        );
        match fault {
            Fault::KillServer(server) => {
                server.kill();
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| server.restart()).unwrap();
            }
            Fault::KillServe {
                process,
                replacement,
                args,
            } => {
                process.kill9();
                tokio::time::sleep(down).await;
                *replacement = Some(LedgerProcess::start(args).unwrap());
            }
        }
        let mut report = Report {
            fault_after,
            totals: (burst_events, plan.request_count()),
            ..Report::default()
        };
        for p in publishers {
            let (acked, duplicates, resent) = tokio::time::timeout_at(deadline, p)
                .await
                .expect("publishers still busy at the time limit")
                .unwrap();
            report.acked.extend(acked);
            report.duplicates += duplicates;
            report.resent += resent;
        }
        for r in requesters {
            let t = tokio::time::timeout_at(deadline, r)
                .await
                .expect("requesters still busy at the time limit")
                .unwrap();
            report.finals.extend(t.finals);
            report.resent_requests += t.resent;
            report.retry_answers += t.retry_answers;
            report.unanswered += t.unanswered;
        }
        report
    }
}

/// Acknowledgements a publisher waits for at once: a kill finds many events in flight, some
/// stored without their acknowledgement sent.
const IN_FLIGHT: usize = 32;

/// Publishes the events, up to [`IN_FLIGHT`] at a time, each until it is acknowledged; returns
/// (acknowledged, duplicates, resends).
async fn publish(
    publisher: Publisher,
    events: Vec<PartyEvent>,
    progress: Arc<AtomicUsize>,
    deadline: Instant,
) -> (Vec<(Uuid, u64)>, usize, usize) {
    use futures::StreamExt;
    let (mut acked, mut duplicates, mut resent) = (Vec::new(), 0, 0);
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut settle = |(id, seq, duplicate, resends): (Uuid, u64, bool, usize)| {
        acked.push((id, seq));
        duplicates += usize::from(duplicate);
        resent += resends;
        progress.fetch_add(1, Ordering::Relaxed);
    };
    for event in events {
        while pending.len() >= IN_FLIGHT {
            if let Some(done) = pending.next().await {
                settle(done);
            }
        }
        pending.push(deliver(publisher.clone(), event, deadline));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while let Some(done) = pending.next().await {
        settle(done);
    }
    (acked, duplicates, resent)
}

/// Publishes one event until it is acknowledged, resending it with the same id.
async fn deliver(
    publisher: Publisher,
    event: PartyEvent,
    deadline: Instant,
) -> (Uuid, u64, bool, usize) {
    let mut resends = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), publisher.publish(&event)).await {
            Ok(Ok(p)) => return (event.id, p.seq, p.duplicate, resends),
            _ => {
                resends += 1;
                assert!(
                    Instant::now() < deadline,
                    "event {} never acknowledged",
                    event.id
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[derive(Default)]
struct Asked {
    finals: Vec<(Uuid, DeleteReply)>,
    resent: usize,
    retry_answers: usize,
    unanswered: usize,
}

/// Whether a reply ends the request: anything but `unavailable` and `conflict`, which ask the
/// client to send it again.
pub fn is_final(reply: &DeleteReply) -> bool {
    !matches!(
        reply.code(),
        Some(RefusalCode::Unavailable | RefusalCode::Conflict)
    )
}

/// Sends each request to SiteA until it gets a final answer.
async fn ask(
    client: async_nats::Client,
    requests: Vec<DeleteRequest>,
    progress: Arc<AtomicUsize>,
    deadline: Instant,
) -> Asked {
    let subject = subject::delete_from_conference(site("SiteA"));
    let mut t = Asked::default();
    for req in requests {
        let payload = Bytes::from(req.encode());
        let mut sends = 0;
        loop {
            sends += 1;
            let sent = client
                .send_request(
                    subject.clone(),
                    async_nats::Request::new()
                        .payload(payload.clone())
                        .timeout(Some(ANSWER_WITHIN)),
                )
                .await;
            match sent {
                Ok(m) => {
                    let reply = DeleteReply::decode(&m.payload).unwrap();
                    if is_final(&reply) {
                        t.finals.push((req.request, reply));
                        break;
                    }
                    t.retry_answers += 1;
                }
                Err(_) => t.unanswered += 1,
            }
            assert!(
                Instant::now() < deadline,
                "request {} never answered",
                req.request
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        t.resent += usize::from(sends > 1);
        progress.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t
}

/// One stored event and the `Nats-Msg-Id` it was published with.
struct Stored {
    seq: u64,
    msg_id: String,
    event: PartyEvent,
}

async fn stored_events(l: &Ledger) -> Vec<Stored> {
    let stream = l.js.get_stream(subject::EVENTS_STREAM).await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        let msg_id = m
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let event = PartyEvent::decode_on(&m.subject, &m.payload).unwrap();
        out.push(Stored { seq, msg_id, event });
    }
    out
}

/// After the burst: every acknowledged event stored exactly once, every planned event stored,
/// one `party_deleted` per request id with the answer naming it, an audit record of every
/// accepted delete agreeing with the answer, and every list equal to the fold of the log.
pub async fn assert_nothing_lost_or_doubled(l: &Ledger, plan: &Plan, report: &Report) {
    // The projector has written every list (it may have restarted, or its server did).
    let last =
        l.js.get_stream(subject::EVENTS_STREAM)
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .last_sequence;
    eventually(Duration::from_secs(90), "every list written", || async {
        l.status("SiteA")
            .await
            .filter(|s| s.counters.written_seq >= last)
    })
    .await;

    let stored = stored_events(l).await;
    let mut seqs_of: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for s in &stored {
        seqs_of.entry(s.event.id).or_default().push(s.seq);
    }
    let doubled: Vec<_> = seqs_of.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(doubled.is_empty(), "events stored twice: {doubled:?}");
    let lost: Vec<_> = report
        .acked
        .iter()
        .filter(|(id, seq)| seqs_of.get(id) != Some(&vec![**seq]))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged events missing or moved: {lost:?}"
    );
    let planned = plan.setup.iter().chain(plan.burst.iter().flatten());
    let missing = planned.filter(|e| !seqs_of.contains_key(&e.id)).count();
    assert_eq!(missing, 0, "planned events not stored");

    // Deletes: one party_deleted per request id, the one its final answer names.
    let mut deleted_by: HashMap<Uuid, Vec<(u64, Uuid)>> = HashMap::new();
    for s in &stored {
        if matches!(s.event.body, EventBody::Deleted { .. }) {
            let request: Uuid = s.msg_id.parse().unwrap();
            deleted_by
                .entry(request)
                .or_default()
                .push((s.seq, s.event.id));
        }
    }
    let requests = plan.request_count();
    assert_eq!(
        report.finals.len(),
        requests,
        "a final answer to every request"
    );
    let mut accepted = 0;
    for (request, reply) in &report.finals {
        let ok = reply.outcome.as_ref().unwrap_or_else(|r| {
            panic!("request {request} refused: {r:?} (every target is present once)")
        });
        assert_eq!(
            deleted_by.get(request),
            Some(&vec![(ok.seq, ok.event)]),
            "request {request}: its party_deleted"
        );
        accepted += 1;
    }
    assert_eq!(
        deleted_by.len(),
        accepted,
        "a party_deleted without an accepted request"
    );
    assert_eq!(
        stored.len(),
        plan.events() + accepted,
        "stored = planned events + accepted deletes"
    );

    // The audit: every accepted delete recorded, and no record gives another final answer.
    let audit = ledger_replay::read_audit(&l.js, None, None).await.unwrap();
    let mut recorded: HashMap<Uuid, usize> = HashMap::new();
    for entry in audit {
        let record = entry.record.unwrap();
        let Some(request) = record.reply.request else {
            continue;
        };
        if !is_final(&record.reply) {
            continue;
        }
        // A resend is answered with the same seq and event; `parties` is the view at the time.
        let key = |r: &DeleteReply| {
            r.outcome
                .as_ref()
                .map(|a| (a.seq, a.event))
                .map_err(|e| e.code)
        };
        let answer = &report.finals[&request];
        assert_eq!(
            key(&record.reply),
            key(answer),
            "the audit disagrees with the answer to {request}"
        );
        *recorded.entry(request).or_default() += 1;
    }
    assert_eq!(
        recorded.len(),
        accepted,
        "accepted deletes with an audit record"
    );

    // Every list equals the fold of the log.
    let mut one_per_call: Vec<PartyEvent> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in &stored {
        if seen.insert(s.event.call) {
            one_per_call.push(s.event.clone());
        }
    }
    assert_lists_equal_the_fold(l, &one_per_call).await;
    println!(
        "{} events stored once each ({} acknowledged in the burst), {accepted} deletes with one \
         party_deleted and an audit record each ({} audit records of final answers), {} lists \
         equal to the fold",
        stored.len(),
        report.acked.len(),
        recorded.values().sum::<usize>(),
        one_per_call.len()
    );
}
