//! The lease's timing on a paused clock: renewals, step-down, and a standby's turn.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use ledger_schemas::Site;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::*;

const TTL: Duration = Duration::from_secs(3);

/// A lease whose renewals answer as scripted (`None`: never answers), recording when each was
/// asked.
struct Scripted {
    answers: VecDeque<Option<Result<u64, LeaseError>>>,
    asked: Vec<Instant>,
}

impl Scripted {
    fn new(answers: impl IntoIterator<Item = Option<Result<u64, LeaseError>>>) -> Self {
        Self {
            answers: answers.into_iter().collect(),
            asked: Vec::new(),
        }
    }
}

impl Renew for Scripted {
    async fn renew(&mut self) -> Result<u64, LeaseError> {
        self.asked.push(Instant::now());
        match self.answers.pop_front() {
            Some(Some(answer)) => answer,
            // Scripted to hang, or the script ran out: the renewal never completes.
            _ => std::future::pending().await,
        }
    }
}

fn site() -> Site {
    Site::new("SiteA").unwrap()
}

fn unavailable() -> Option<Result<u64, LeaseError>> {
    Some(Err(LeaseError::Unavailable {
        site: site(),
        source: "no NATS".into(),
    }))
}

async fn run(lease: &mut Scripted) -> (Kept, Instant, watch::Receiver<Standing>) {
    let start = Instant::now();
    let (tx, rx) = watch::channel(Standing::renewed(start, TTL));
    let (_stop_tx, mut stop) = oneshot::channel();
    let kept = keep(lease, start, TTL, &tx, &mut stop).await;
    (kept, start, rx)
}

#[tokio::test(start_paused = true)]
async fn a_held_lease_is_renewed_every_third_of_its_ttl() {
    let mut lease = Scripted::new((1..=6).map(|r| Some(Ok(r))));
    let (kept, start, rx) = run(&mut lease).await;
    // The script ran out: the seventh renewal hangs until the standing runs out.
    assert_eq!(kept, Kept::Expired);
    let offsets: Vec<Duration> = lease.asked.iter().map(|t| *t - start).collect();
    let expected: Vec<Duration> = (1..=7).map(|n| TTL / 3 * n).collect();
    assert_eq!(offsets, expected);
    assert!(rx.borrow().lost);
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_steps_down_when_its_standing_runs_out() {
    let mut lease = Scripted::new(std::iter::repeat_with(unavailable).take(100));
    let (kept, start, rx) = run(&mut lease).await;
    assert_eq!(kept, Kept::Expired);
    // Not a moment later than the server could expire the lease, less the margin.
    assert_eq!(Instant::now() - start, TTL - TTL / 10);
    // It retried every tenth of the ttl meanwhile.
    assert!(lease.asked.len() >= 5, "{} attempts", lease.asked.len());
    let standing = *rx.borrow();
    assert!(standing.lost && !standing.may_write());
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_hangs_ends_the_term_at_its_deadline() {
    let mut lease = Scripted::new([None]);
    let (kept, start, _) = run(&mut lease).await;
    assert_eq!(kept, Kept::Expired);
    assert_eq!(Instant::now() - start, TTL - TTL / 10);
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_by_another_instance_steps_down_at_once() {
    let mut lease = Scripted::new([Some(Ok(2)), Some(Err(LeaseError::Lost { site: site() }))]);
    let (kept, start, rx) = run(&mut lease).await;
    assert_eq!(kept, Kept::Lost);
    assert_eq!(Instant::now() - start, TTL / 3 * 2);
    assert!(rx.borrow().lost);
}

#[tokio::test(start_paused = true)]
async fn a_standing_allows_writes_only_until_its_deadline() {
    let standing = Standing::renewed(Instant::now(), TTL);
    assert!(standing.may_write());
    tokio::time::advance(TTL - TTL / 10 - Duration::from_millis(1)).await;
    assert!(standing.may_write());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!standing.may_write());
}

#[tokio::test(start_paused = true)]
async fn stopping_ends_keeping_without_marking_the_lease_lost() {
    let mut lease = Scripted::new(std::iter::repeat_with(|| Some(Ok(1))).take(100));
    let start = Instant::now();
    let (tx, rx) = watch::channel(Standing::renewed(start, TTL));
    let (stop_tx, mut stop) = oneshot::channel();
    let keeping = keep(&mut lease, start, TTL, &tx, &mut stop);
    let stopper = async {
        tokio::time::sleep(TTL * 2).await;
        let _ = stop_tx.send(());
    };
    let (kept, ()) = tokio::join!(keeping, stopper);
    assert_eq!(kept, Kept::Stopped);
    assert!(!rx.borrow().lost);
}

#[tokio::test(start_paused = true)]
async fn a_standby_attempts_at_once_when_the_lease_is_vacated() {
    let (_shutdown_tx, mut shutdown) = watch::channel(false);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut seen = tokio_stream_of(rx);
    let start = Instant::now();
    tx.send(Seen::Held).await.unwrap();
    let vacate = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        tx.send(Seen::Vacated).await.unwrap();
    };
    let (turn, ()) = tokio::join!(wait_turn(&mut seen, TTL, &mut shutdown), vacate);
    assert_eq!(turn, Turn::Attempt);
    assert_eq!(Instant::now() - start, Duration::from_millis(700));
}

#[tokio::test(start_paused = true)]
async fn renewals_seen_do_not_hurry_a_standby_which_polls_every_ttl() {
    let (_shutdown_tx, mut shutdown) = watch::channel(false);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut seen = tokio_stream_of(rx);
    let start = Instant::now();
    let renewals = async {
        for _ in 0..5 {
            tokio::time::sleep(TTL / 3).await;
            let _ = tx.send(Seen::Held).await;
        }
    };
    let waiting = async {
        let turn = wait_turn(&mut seen, TTL, &mut shutdown).await;
        (turn, Instant::now())
    };
    let ((turn, at), ()) = tokio::join!(waiting, renewals);
    assert_eq!(turn, Turn::Attempt);
    assert_eq!(at - start, TTL);
}

#[tokio::test(start_paused = true)]
async fn a_standby_whose_watch_ended_still_polls_and_stops_on_shutdown() {
    let (shutdown_tx, mut shutdown) = watch::channel(false);
    let mut ended = futures::stream::empty::<Seen>();
    let start = Instant::now();
    assert_eq!(
        wait_turn(&mut ended, TTL, &mut shutdown).await,
        Turn::Attempt
    );
    assert_eq!(Instant::now() - start, TTL);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let _ = shutdown_tx.send(true);
    };
    let (turn, ()) = tokio::join!(wait_turn(&mut ended, TTL, &mut shutdown), stop);
    assert_eq!(turn, Turn::Shutdown);
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Seen>,
) -> impl futures::Stream<Item = Seen> + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx))).boxed()
}
