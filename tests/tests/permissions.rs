//! Per-site permissions with the example configuration `deploy/sites-permissions.conf`, and TLS
//! with the connection flags, against real nats-server processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{CallBuilder, eventually, ledger_in, request, site};
use ledger_schemas::{DeleteReply, LctList, Message, OptionName, Role, subject};
use ledger_services::{Connection, Nats, Publisher, Secret, Stores};
use ledger_test_harness::{LedgerProcess, NatsServer};
use uuid::Uuid;

/// The example, with its passwords defined (a deployment sets them in the server's environment).
fn sites_config() -> String {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sites-permissions.conf");
    let mut conf = String::new();
    for (var, _) in USERS {
        conf.push_str(&format!("{var}: \"{}\"\n", password(var)));
    }
    conf.push_str(&std::fs::read_to_string(example).unwrap());
    conf
}

/// Each user's password variable, and its user name.
const USERS: [(&str, &str); 8] = [
    ("OPERATOR_PASSWORD", "operator"),
    ("SITEA_PRODUCER_PASSWORD", "SiteA-producer"),
    ("SITEA_SERVICES_PASSWORD", "SiteA-services"),
    ("SITEA_AGENTS_PASSWORD", "SiteA-agents"),
    ("SITEB_PRODUCER_PASSWORD", "SiteB-producer"),
    ("SITEB_SERVICES_PASSWORD", "SiteB-services"),
    ("SITEB_AGENTS_PASSWORD", "SiteB-agents"),
    ("READER_PASSWORD", "reader"),
];

fn password(var: &str) -> String {
    format!("pw-{}", var.to_lowercase())
}

fn password_of(user: &str) -> String {
    let (var, _) = USERS.iter().find(|(_, u)| *u == user).unwrap();
    password(var)
}

/// The inbox prefix the example gives `user`.
fn inbox_of(user: &str) -> Option<String> {
    match user.split_once('-') {
        Some((site, role)) => Some(format!("_INBOX.{site}.{role}")),
        None if user == "reader" => Some("_INBOX.reader".to_owned()),
        None => None,
    }
}

async fn connect_as(url: &str, user: &str) -> Nats {
    let mut c = Connection::to(url).name(user);
    c.user = Some(user.to_owned());
    c.password = Some(Secret::new(password_of(user)));
    c.inbox_prefix = inbox_of(user);
    c.timeout = Duration::from_secs(2);
    c.connect().await.unwrap()
}

/// The `ledger` flags that connect as `user`.
fn flags_as(url: &str, user: &str) -> Vec<String> {
    let mut flags = vec![
        "--server".to_owned(),
        url.to_owned(),
        "--user".to_owned(),
        user.to_owned(),
        "--password".to_owned(),
        password_of(user),
    ];
    if let Some(inbox) = inbox_of(user) {
        flags.extend(["--inbox-prefix".to_owned(), inbox]);
    }
    flags
}

async fn stored_events(operator: &Nats) -> u64 {
    let mut stream = operator
        .js
        .get_stream(subject::EVENTS_STREAM)
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sites_credentials_write_only_that_sites_record() {
    let server = NatsServer::start_with_config(&sites_config()).unwrap();
    let url = server.url();
    let home = tempfile::tempdir().unwrap();

    // The operator creates the streams and buckets and turns on SiteA's options.
    let out = ledger_in(home.path())
        .arg("provision")
        .args(flags_as(url, "operator"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let operator = connect_as(url, "operator").await;
    let stores = Stores::open(&operator.js).await.unwrap();
    for (option, value) in [
        (OptionName::SipEnableCallInfo, "true"),
        (OptionName::SipRemoteDelFromConf, "true"),
        (OptionName::UseDataFrom, "current"),
    ] {
        let key = ledger_schemas::ConfigKey {
            site: site("SiteA"),
            option,
        };
        stores
            .config
            .put(key.to_string(), value.as_bytes().to_vec().into())
            .await
            .unwrap();
    }

    // SiteA's services, with SiteA's credentials and no right to create streams.
    let mut serve_args = vec!["serve".to_owned(), "--site".to_owned(), "SiteA".to_owned()];
    serve_args.extend(["--no-provision", "--lease-ttl", "2"].map(str::to_owned));
    serve_args.extend(flags_as(url, "SiteA-services"));
    let args: Vec<&str> = serve_args.iter().map(String::as_str).collect();
    let services = LedgerProcess::start(&args).unwrap();

    // SiteA's producer publishes a call of SiteA's parties.
    let producer = Publisher::new(connect_as(url, "SiteA-producer").await.js);
    let c = CallBuilder::new();
    let parties: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    for (i, p) in parties.iter().enumerate() {
        producer
            .publish(&c.join("SiteA", *p, &format!("700{i}"), Role::Agent))
            .await
            .unwrap();
    }
    assert_eq!(stored_events(&operator).await, 4);

    // ... but no event of another site, and no party_deleted.
    let other_site = producer
        .publish(&c.join("SiteB", Uuid::now_v7(), "7009", Role::Agent))
        .await;
    assert!(other_site.is_err(), "SiteA's producer published for SiteB");
    let deleted = c.delete("SiteA", parties[3], parties[0], "7000");
    assert!(
        producer.publish(&deleted).await.is_err(),
        "a producer published party_deleted"
    );
    assert_eq!(stored_events(&operator).await, 4, "nothing more stored");

    // SiteA's agents ask SiteA's command service, which deletes, records and answers.
    let agents = connect_as(url, "SiteA-agents").await;
    let req = request(c.call, "7000", &parties[3].to_string());
    let reply = eventually(
        Duration::from_secs(30),
        "SiteA's command service",
        || async {
            let m = agents
                .client
                .request(
                    subject::delete_from_conference(site("SiteA")),
                    req.encode().into(),
                )
                .await
                .ok()?;
            let reply = DeleteReply::decode(&m.payload).unwrap();
            reply.outcome.is_ok().then_some(reply)
        },
    )
    .await;
    let accepted = reply.outcome.unwrap();
    assert_eq!(stored_events(&operator).await, 5);
    // SiteA's projector wrote SiteA's list.
    let list = eventually(Duration::from_secs(30), "SiteA's list", || async {
        let bytes = stores
            .lct
            .get(subject::lct_key(site("SiteA"), c.call))
            .await
            .ok()??;
        let list = LctList::decode(&bytes).unwrap();
        (list.seq == accepted.seq).then_some(list)
    })
    .await;
    assert_eq!(list.parties.len(), 3);

    // With SiteA's services' credentials: no serving SiteB's commands, no writing SiteB's list,
    // audit or projector keys.
    let a_services = connect_as(url, "SiteA-services").await;
    let _sub = a_services
        .client
        .subscribe(subject::delete_from_conference(site("SiteB")))
        .await
        .unwrap();
    a_services.client.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = operator
        .client
        .request(
            subject::delete_from_conference(site("SiteB")),
            request(c.call, "7000", "7001").encode().into(),
        )
        .await;
    assert!(
        asked.is_err(),
        "SiteA's services received SiteB's commands: {asked:?}"
    );
    let a_js = &a_services.js;
    let b_key = subject::lct_key(site("SiteB"), c.call);
    let lct = a_js.get_key_value(subject::LCT_BUCKET).await.unwrap();
    assert!(
        lct.put(&b_key, "x".into()).await.is_err(),
        "wrote SiteB's list"
    );
    assert!(stores.lct.get(&b_key).await.unwrap().is_none());
    let projector = a_js.get_key_value("LEDGER_PROJECTOR").await.unwrap();
    assert!(
        projector.put("lease.SiteB", "x".into()).await.is_err(),
        "took SiteB's lease"
    );
    let audit = a_js
        .publish(subject::audit(site("SiteB"), c.call), "x".into())
        .await
        .unwrap()
        .await;
    assert!(audit.is_err(), "wrote SiteB's audit");
    // Nor may the services create or delete a stream.
    assert!(
        a_js.delete_stream(subject::EVENTS_STREAM).await.is_err(),
        "SiteA's services deleted the event stream"
    );

    // A reader reads the record with the `ledger` command, and writes nothing.
    let out = ledger_in(home.path())
        .args(["audit", "--format", "json"])
        .args(flags_as(url, "reader"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains(&req.request.to_string()), "{lines}");
    assert!(lines.contains("\"ok\":true"), "{lines}");
    let reader = Publisher::new(connect_as(url, "reader").await.js);
    assert!(
        reader
            .publish(&c.join("SiteA", Uuid::now_v7(), "7008", Role::Agent))
            .await
            .is_err(),
        "a reader published an event"
    );
    assert_eq!(stored_events(&operator).await, 5, "4 joins and 1 delete");
    assert!(
        !services.log().contains("Permissions Violation"),
        "SiteA's services needed a right the example does not give:\n{}",
        services.log()
    );

    // SiteA's services' credentials cannot serve SiteB: the refusal is in the log.
    let mut wrong = vec!["serve".to_owned(), "--site".to_owned(), "SiteB".to_owned()];
    wrong.extend(["--no-provision", "--only", "commands"].map(str::to_owned));
    wrong.extend(flags_as(url, "SiteA-services"));
    let args: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let impostor = LedgerProcess::start(&args).unwrap();
    eventually(
        Duration::from_secs(20),
        "the refusal in the log",
        || async {
            impostor
                .log()
                .contains("Permissions Violation for Subscription to \"ledger.cmd.SiteB")
                .then_some(())
        },
    )
    .await;
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca_cert.pem());
        for (name, sans) in [("server", true), ("client", false)] {
            let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            if sans {
                params
                    .subject_alt_names
                    .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn tls_with_a_client_certificate_connects_with_the_connection_flags() {
    let pki = Pki::new();
    let server = NatsServer::start_with_config(&format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n",
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    ))
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = server.url().replace("nats://", "tls://");
    let run = |extra: &[String]| {
        ledger_in(home.path())
            .args(["provision", "--server", &url])
            .args(extra)
            .output()
            .unwrap()
    };
    let full: Vec<String> = [
        ("--tlsca", "ca.pem"),
        ("--tlscert", "client.pem"),
        ("--tlskey", "client-key.pem"),
    ]
    .iter()
    .flat_map(|(flag, file)| [(*flag).to_owned(), pki.path(file)])
    .collect();
    let out = run(&full);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("LEDGER_EVENTS"));
    // The same from the environment variables of the `nats` CLI.
    let out = ledger_in(home.path())
        .args(["provision", "--server", &url])
        .env("NATS_CA", pki.path("ca.pem"))
        .env("NATS_CERT", pki.path("client.pem"))
        .env("NATS_KEY", pki.path("client-key.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the client certificate the server refuses; without the CA the client does.
    for (what, flags) in [("no client certificate", &full[..2]), ("no CA", &full[2..])] {
        let out = run(flags);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: connected");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    }
}
