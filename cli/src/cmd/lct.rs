//! `ledger lct`: a site's stored LCTParty list of a call, also as the EventUserEvent's key-value
//! pairs that T-Library clients parse.

use std::io::Write;

use ledger_replay::list_json;
use ledger_schemas::{LctList, Message, Site, subject};
use ledger_services::Stores;

use super::{Globals, parse_site};
use crate::CliError;
use crate::output::{Format, time};

/// Arguments of `ledger lct`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LctArgs {
    /// The viewing site.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Site,
    /// The call.
    #[arg(long)]
    pub(crate) call: uuid::Uuid,
}

/// `ledger lct`.
///
/// # Errors
///
/// When NATS cannot be reached or the site keeps no list of the call.
pub(crate) async fn lct(g: &Globals, args: LctArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-lct").await?;
    let stores = Stores::open(&ep.nats.js).await?;
    let key = subject::lct_key(args.site, args.call);
    let Some(bytes) = stores.lct.get(&key).await? else {
        return Err(format!(
            "{} keeps no list of call {} (sip-enable-call-info off, the call ended in its view, or an unknown call)",
            args.site, args.call
        )
        .into());
    };
    let list = LctList::decode(&bytes)?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Genesys => write!(out, "{}", genesys(&list))?,
        Format::Json => {
            let mut v = list_json(&list);
            v["call"] = list.call.to_string().into();
            writeln!(out, "{v}")?;
        }
        _ => {
            writeln!(
                out,
                "{} of call {} as of stream sequence {} ({})",
                list.site,
                list.call,
                list.seq,
                time(list.ts)
            )?;
            for (n, p) in list.parties.iter().enumerate() {
                writeln!(
                    out,
                    "  LCTParty{n:<3} {}  {:<14} {:<8} {}",
                    p.party,
                    p.dn,
                    p.location,
                    p.role.as_str()
                )?;
            }
            for (n, s) in list.supervisors.iter().enumerate() {
                writeln!(
                    out,
                    "  LCTSupervisor{n:<3} {}  {:<14} {:<8} {}",
                    s.party,
                    s.dn,
                    s.location,
                    s.mode.as_str()
                )?;
            }
        }
    }
    Ok(())
}

/// The list as the EventUserEvent's key-value pairs, one `key=value` a line, `n` from 0 in list
/// order; a supervisor's `monitoredDN` is the DN of the party it monitors (empty when that party
/// is not in the list).
pub(crate) fn genesys(list: &LctList) -> String {
    let mut out = String::new();
    for (n, p) in list.parties.iter().enumerate() {
        out.push_str(&format!("LCTParty{n}={}\n", p.party));
        out.push_str(&format!("LCTParty{n}_dn={}\n", p.dn));
        out.push_str(&format!("LCTParty{n}_location={}\n", p.location));
        out.push_str(&format!("LCTParty{n}_role={}\n", p.role.as_str()));
    }
    out.push_str(&format!("LCTPartiesLength={}\n", list.parties.len()));
    for (n, s) in list.supervisors.iter().enumerate() {
        let monitored = s
            .monitors
            .and_then(|m| list.parties.iter().find(|p| p.party == m))
            .map(|p| p.dn.to_string())
            .unwrap_or_default();
        out.push_str(&format!("LCTSupervisor{n}={}\n", s.party));
        out.push_str(&format!("LCTSupervisor{n}_dn={}\n", s.dn));
        out.push_str(&format!("LCTSupervisor{n}_location={}\n", s.location));
        out.push_str(&format!("LCTSupervisor{n}_mode={}\n", s.mode.as_str()));
        out.push_str(&format!("LCTSupervisor{n}_monitoredDN={monitored}\n"));
    }
    out.push_str(&format!("LCTSupervisorLength={}\n", list.supervisors.len()));
    out
}
