//! `ledger delete`: one TDeleteFromConference.

use std::io::Write;
use std::time::Duration;

use ledger_schemas::Site;

use super::{Globals, parse_pair, parse_site};
use crate::CliError;
use crate::output::Format;

/// Arguments of `ledger delete`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeleteArgs {
    /// The requester's site: its command service decides, against its view.
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Site,
    /// The call.
    #[arg(long)]
    pub(crate) call: uuid::Uuid,
    /// The requester's DN (a present party of the call located at --site).
    #[arg(long)]
    pub(crate) this_dn: String,
    /// The party to delete: its party id from the LCTParty list, `dn@site`, or a bare DN.
    #[arg(long)]
    pub(crate) other_dn: String,
    /// The request id (idempotency key); a new one when absent. Resend with the same id to retry.
    #[arg(long)]
    pub(crate) request: Option<uuid::Uuid>,
    /// A reason recorded in the audit, as key=value (repeatable).
    #[arg(long = "reason", value_parser = parse_pair)]
    pub(crate) reasons: Vec<(String, String)>,
    /// An extension recorded in the audit, as key=value (repeatable).
    #[arg(long = "extension", value_parser = parse_pair)]
    pub(crate) extensions: Vec<(String, String)>,
}

/// The reply as JSON: UUIDs as text.
pub(crate) fn reply_json(reply: &ledger_schemas::DeleteReply) -> serde_json::Value {
    let party = |p: &ledger_schemas::LctParty| {
        serde_json::json!({
            "party": p.party.to_string(), "dn": p.dn.as_str(),
            "location": p.location.as_str(), "role": p.role.as_str(),
        })
    };
    let mut v = serde_json::json!({ "request": reply.request.map(|r| r.to_string()) });
    match &reply.outcome {
        Ok(a) => {
            v["ok"] = true.into();
            v["seq"] = a.seq.into();
            v["event"] = a.event.to_string().into();
            v["parties"] = a.parties.iter().map(party).collect();
        }
        Err(r) => {
            v["ok"] = false.into();
            v["error"] = serde_json::json!({
                "code": r.code.as_str(), "terr": r.code.terr(), "message": r.message,
                "candidates": r.candidates.iter().map(party).collect::<Vec<_>>(),
            });
        }
    }
    v
}

/// What `ledger delete` asks the process to exit with: 0 accepted, 2 refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The party was deleted (or had been, by the same request).
    Accepted,
    /// The request was refused; the reply says why.
    Refused,
}

/// `ledger delete`: sends one TDeleteFromConference and prints the reply.
///
/// # Errors
///
/// When NATS cannot be reached, no command service of the site answers, or the arguments break
/// the naming rules.
pub(crate) async fn delete(g: &Globals, args: DeleteArgs) -> Result<Answer, CliError> {
    use ledger_schemas::{DeleteReply, DeleteRequest, Dn, Message, Target};
    let request = DeleteRequest {
        request: args.request.unwrap_or_else(uuid::Uuid::now_v7),
        call: args.call,
        this_dn: Dn::new(&args.this_dn)?,
        other_dn: Target::parse(&args.other_dn)?,
        reasons: args.reasons.into_iter().collect(),
        extensions: args.extensions.into_iter().collect(),
    };
    let ep = g.connect("ledger-delete").await?;
    let client = &ep.nats.client;
    let subject = ledger_schemas::subject::delete_from_conference(args.site);
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject, request.encode().into()),
    )
    .await
    .map_err(|_| format!("no reply from {}'s command service within 10 s", args.site))?
    .map_err(|e| format!("no command service of {} answered: {e}", args.site))?;
    let reply = DeleteReply::decode(&answer.payload)?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", reply_json(&reply))?,
        _ => match &reply.outcome {
            Ok(a) => {
                writeln!(
                    out,
                    "deleted {}: party_deleted {} at stream sequence {}",
                    args.other_dn, a.event, a.seq
                )?;
                writeln!(out, "parties now in {}'s view:", args.site)?;
                for p in &a.parties {
                    writeln!(
                        out,
                        "  {}  {:<14} {:<8} {}",
                        p.party,
                        p.dn,
                        p.location,
                        p.role.as_str()
                    )?;
                }
            }
            Err(r) => {
                writeln!(
                    out,
                    "refused: {} (terr {}): {}",
                    r.code.as_str(),
                    r.code.terr(),
                    r.message
                )?;
                for p in &r.candidates {
                    writeln!(
                        out,
                        "  candidate {}  {:<14} {:<8} {}",
                        p.party,
                        p.dn,
                        p.location,
                        p.role.as_str()
                    )?;
                }
            }
        },
    }
    Ok(if reply.outcome.is_ok() {
        Answer::Accepted
    } else {
        Answer::Refused
    })
}
