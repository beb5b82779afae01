//! `ledger demo`: the product at work, on a private server, in readable sections.

use std::io::Write;
use std::time::Duration;

use ledger_schemas::{
    ConfigKey, DeleteReply, DeleteRequest, Dn, EventBody, Joined, LctList, Message, MonitorMode,
    OptionName, PartyEvent, Role, Site, Target, subject,
};
use ledger_services::{Config, Nats, Publisher, ServeHandle, StoreConfig, now_us, provision};
use uuid::Uuid;

use super::Globals;
use super::audit::print_trail;
use super::replay::print_replay;
use crate::CliError;
use crate::embedded::{self, Embedded};
use crate::output::Format;

/// Arguments of `ledger demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DemoArgs {}

/// `ledger demo`: always on a private embedded server in a temporary folder, unless a server is
/// named with `--server` on the command line itself (never one named only by the environment or
/// a context).
///
/// # Errors
///
/// When the server or the services cannot start, or a step does not happen in time.
pub(crate) async fn demo(g: &Globals, _args: DemoArgs, server_flag: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let folder = tempfile::Builder::new().prefix("ledger-demo-").tempdir()?;
    let mut server = None;
    let url = match (&g.conn.server, server_flag) {
        (Some(url), true) => url.clone(),
        _ => {
            let s = Embedded::start(&embedded::Options {
                data: folder.path().to_path_buf(),
                port: None,
                state: false,
                command: "demo".into(),
            })?;
            let url = s.url().to_owned();
            server = Some(s);
            url
        }
    };
    let (mut conn, _) = g.conn.connection("ledger-demo")?;
    conn.servers = url.clone();
    let nats = conn.connect().await?;
    heading(&mut out, "1. A server and two sites")?;
    match server {
        Some(_) => writeln!(
            out,
            "A private nats-server {url} (JetStream, sync_interval: always) in {}.",
            folder.path().display()
        )?,
        None => writeln!(out, "The nats-server at {url}.")?,
    }
    let (a, b) = (Site::new("SiteA")?, Site::new("SiteB")?);
    let stores = provision(&nats.js, &StoreConfig::default()).await?;
    for site in [a, b] {
        for (option, value) in [
            (OptionName::SipEnableCallInfo, "true"),
            (OptionName::SipRemoteDelFromConf, "true"),
            (OptionName::UseDataFrom, "current"),
        ] {
            let key = ConfigKey { site, option }.to_string();
            stores
                .config
                .put(key, value.as_bytes().to_vec().into())
                .await?;
        }
    }
    let services = ServeHandle::spawn(nats.clone(), vec![a, b], Config::default());
    writeln!(
        out,
        "SiteA and SiteB served (projector and command service each), with"
    )?;
    writeln!(
        out,
        "  TServer/sip-enable-call-info = true, TServer/sip-remote-del-from-conf = true,"
    )?;
    writeln!(out, "  extrouter/use-data-from = current.")?;

    heading(&mut out, "2. A multi-site conference")?;
    let call = Uuid::now_v7();
    let people = Conference::new();
    let publisher = Publisher::new(nats.js.clone());
    let events = people.events(call, a, b)?;
    for (what, event) in &events {
        let stored = publisher.publish(event).await?;
        writeln!(out, "  seq {:>3}  {what}", stored.seq)?;
    }
    let last = events.len();
    for site in [a, b] {
        let list = wait_list(&stores, site, call, |l| {
            l.parties.len() == 3 && l.supervisors.len() == 1
        })
        .await?;
        writeln!(
            out,
            "\n{site}'s LCTParty list (KV LEDGER_LCT {site}.{call}, also published on ledger.lct.{site}.{call}):"
        )?;
        print_list(&mut out, &list)?;
    }
    writeln!(
        out,
        "\nThe call ({last} events) is a conference in both views: three parties and a supervisor."
    )?;

    heading(&mut out, "3. TDeleteFromConference, refused and accepted")?;
    writeln!(
        out,
        "7001 at SiteA asks to delete \"7001\" (a bare DN): two parties have that DN."
    )?;
    let reply = delete(&nats, a, call, "7001", "7001").await?;
    print_reply(&mut out, &reply)?;
    writeln!(
        out,
        "\n7001 at SiteA (an agent) asks to delete the supervisor 7100."
    )?;
    let reply = delete(&nats, a, call, "7001", &people.supervisor.to_string()).await?;
    print_reply(&mut out, &reply)?;
    writeln!(
        out,
        "\n7001 at SiteA deletes SiteB's 7001 by its party id from the list, {}.",
        people.agent_b
    )?;
    let reply = delete(&nats, a, call, "7001", &people.agent_b.to_string()).await?;
    print_reply(&mut out, &reply)?;
    for site in [a, b] {
        let list = wait_list(&stores, site, call, |l| l.parties.len() == 2).await?;
        writeln!(out, "\n{site}'s list after the delete:")?;
        print_list(&mut out, &list)?;
    }

    heading(&mut out, "4. The audit of the call")?;
    let query = ledger_replay::AuditQuery {
        call: Some(call),
        ..Default::default()
    };
    print_trail(&nats, &query, Format::Table, &mut out).await?;
    heading(&mut out, "5. The replay of the call (global view)")?;
    print_replay(&nats, call, None, Format::Table, &mut out).await?;

    services.stop().await?;
    drop(server);
    writeln!(
        out,
        "\nDone: the services and the server have stopped; nothing is left running."
    )?;
    Ok(())
}

fn heading(out: &mut impl Write, title: &str) -> std::io::Result<()> {
    writeln!(out, "\n== {title} ==")
}

/// The people of the demo's conference.
struct Conference {
    customer: Uuid,
    agent_a: Uuid,
    agent_b: Uuid,
    supervisor: Uuid,
}

impl Conference {
    fn new() -> Self {
        Self {
            customer: Uuid::now_v7(),
            agent_a: Uuid::now_v7(),
            agent_b: Uuid::now_v7(),
            supervisor: Uuid::now_v7(),
        }
    }

    fn events(&self, call: Uuid, a: Site, b: Site) -> Result<Vec<(String, PartyEvent)>, CliError> {
        let join = |site: Site,
                    party: Uuid,
                    dn: &str,
                    role: Role,
                    monitors: Option<Uuid>|
         -> Result<PartyEvent, CliError> {
            Ok(PartyEvent {
                id: Uuid::now_v7(),
                call,
                site,
                ts: now_us(),
                party,
                body: EventBody::Joined(Joined {
                    dn: Dn::new(dn)?,
                    role,
                    mode: if monitors.is_some() {
                        MonitorMode::Coach
                    } else {
                        MonitorMode::Normal
                    },
                    monitors,
                }),
            })
        };
        Ok(vec![
            (
                "customer +14155550100 joins at SiteA".into(),
                join(a, self.customer, "+14155550100", Role::Customer, None)?,
            ),
            (
                "agent 7001 joins at SiteA".into(),
                join(a, self.agent_a, "7001", Role::Agent, None)?,
            ),
            (
                "agent 7001 joins at SiteB (the same DN at another site)".into(),
                join(b, self.agent_b, "7001", Role::Agent, None)?,
            ),
            (
                "supervisor 7100 joins at SiteA, coaching SiteA's 7001".into(),
                join(
                    a,
                    self.supervisor,
                    "7100",
                    Role::Supervisor,
                    Some(self.agent_a),
                )?,
            ),
        ])
    }
}

/// Waits (up to 10 s) until `site`'s stored list of `call` satisfies `ready`.
async fn wait_list(
    stores: &ledger_services::Stores,
    site: Site,
    call: Uuid,
    ready: impl Fn(&LctList) -> bool,
) -> Result<LctList, CliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(bytes) = stores.lct.get(subject::lct_key(site, call)).await?
            && let Ok(list) = LctList::decode(&bytes)
            && ready(&list)
        {
            return Ok(list);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{site}'s list of the call did not appear within 10 s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_list(out: &mut impl Write, list: &LctList) -> std::io::Result<()> {
    crate::output::lct_table(out, list)?;
    writeln!(out, "  (as of stream sequence {})", list.seq)
}

/// One TDeleteFromConference through `site`'s command service (retried while none listens yet).
async fn delete(
    nats: &Nats,
    site: Site,
    call: Uuid,
    this_dn: &str,
    other_dn: &str,
) -> Result<DeleteReply, CliError> {
    let request = DeleteRequest {
        request: Uuid::now_v7(),
        call,
        this_dn: Dn::new(this_dn)?,
        other_dn: Target::parse(other_dn)?,
        reasons: Default::default(),
        extensions: Default::default(),
    };
    let subject = subject::delete_from_conference(site);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match nats
            .client
            .request(subject.clone(), request.encode().into())
            .await
        {
            Ok(reply) => return Ok(DeleteReply::decode(&reply.payload)?),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(format!("{site}'s command service did not answer: {e}").into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn print_reply(out: &mut impl Write, reply: &DeleteReply) -> std::io::Result<()> {
    match &reply.outcome {
        Ok(a) => writeln!(
            out,
            "  accepted: party_deleted stored at sequence {} (event {}); the requester's view now has {} parties",
            a.seq,
            a.event,
            a.parties.len()
        ),
        Err(r) => {
            writeln!(
                out,
                "  refused: {} (terr {}): {}",
                r.code.as_str(),
                r.code.terr(),
                r.message
            )?;
            for c in &r.candidates {
                writeln!(
                    out,
                    "    candidate {}  {}@{}  {}",
                    c.party,
                    c.dn,
                    c.location,
                    c.role.as_str()
                )?;
            }
            Ok(())
        }
    }
}
