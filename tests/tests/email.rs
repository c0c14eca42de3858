//! The e-mail channel against a real SMTP server (aiosmtpd, TLS, login)
//! started by the test on a free loopback port: an alert recorded by the
//! service's case handling arrives as a mail to the on-duty staff member,
//! over STARTTLS and over implicit TLS, with the login from the credentials
//! file; a webhook that is down beside it delays nothing; a mail server that
//! is down at first gets the mail once it is up (retried with backoff); an
//! alert store that fails stops no mail and adds one about itself.

use gridwatch_analytics::alerts::directory::{token_sha256, Directory};
use gridwatch_analytics::dispatch::Cases;
use gridwatch_analytics::notify::email::{self, EmailConfig, EmailTls};
use gridwatch_analytics::notify::webhook::{self, Endpoint, WebhookConfig};
use gridwatch_analytics::store::Store;
use gridwatch_analytics::AnalyticsConfig;
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use gridwatch_tests::smtp::{tls_certificates, Certificates, SmtpSink, SmtpTls};
use gridwatch_tests::{free_port, TempDir};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const USER: &str = "gridwatch";
const PASSWORD: &str = "s3cret-smtp";

fn directory() -> Arc<Directory> {
    let text = format!(
        "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\nbackups = [\"zhao\"]\n\
         [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
         [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\nemail = \"wang.li@cell07.example.org\"\n\
         [[users]]\nname = \"zhao\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\nemail = \"zhao.min@cell07.example.org\"\n",
        token_sha256("w"),
        token_sha256("z")
    );
    Arc::new(Directory::from_toml_str(&text, "directory.toml").unwrap())
}

fn alert(ts: i64) -> Alert {
    let mut values = BTreeMap::new();
    values.insert("peak".to_owned(), 7.01);
    let mut thresholds = BTreeMap::new();
    thresholds.insert("overcurrent_a".to_owned(), 5.5);
    Alert {
        schema: 1,
        id: format!("socket_overcurrent:yard-a/gw-1/pile-1#3:{ts}"),
        rule: "socket_overcurrent".into(),
        entity: "yard-a/gw-1/pile-1#3".into(),
        cell: "cell-07".into(),
        site: "yard-a".into(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(ts),
        title: "Overcurrent on socket 3 of pile-1 at yard-a: 7.01 A for 30 s (limit 5.5 A)".into(),
        summary: "Socket 3 drew 7.01 A for 30 s; cut the socket and inspect.".into(),
        evidence: Evidence {
            values,
            thresholds,
            window_start: Timestamp(ts - 30_000),
            window_end: Timestamp(ts),
            ..Evidence::default()
        },
    }
}

struct Setup {
    dir: TempDir,
    certs: Certificates,
}

fn setup() -> Setup {
    let dir = TempDir::new("email");
    let certs = tls_certificates(dir.path());
    std::fs::write(
        dir.path().join("smtp.credentials"),
        format!("{USER}\n{PASSWORD}\n"),
    )
    .unwrap();
    Setup { dir, certs }
}

fn config(s: &Setup, port: u16, tls: EmailTls) -> EmailConfig {
    EmailConfig {
        server: Some("127.0.0.1".into()),
        port: Some(port),
        tls,
        from: Some("Gridwatch <alerts@gridwatch.example.org>".into()),
        credentials_file: Some(s.dir.path().join("smtp.credentials")),
        ca_file: Some(s.certs.ca.clone()),
        timeout_ms: 5_000,
        retry_min_ms: 200,
        retry_max_ms: 1_000,
        max_attempts: 20,
        ..EmailConfig::default()
    }
}

/// Records one alert through the service's case handling, with the e-mail
/// channel and (optionally) a webhook beside it.
fn record(email: &EmailConfig, webhook_url: Option<&str>, stop: &CancellationToken) -> Cases {
    let directory = directory();
    let sender = email::start(email, directory.clone(), stop)
        .expect("e-mail channel starts")
        .expect("server set");
    let hook = webhook_url.map(|u| {
        webhook::spawn(
            WebhookConfig::default(),
            Endpoint::parse(u).unwrap(),
            b"k".to_vec(),
            stop.clone(),
        )
    });
    let mut cases = Cases::new(
        Store::open_in_memory().unwrap(),
        directory,
        &AnalyticsConfig::default(),
    )
    .with_webhook(hook)
    .with_channel(Some(sender));
    assert!(cases.record(&alert(1_764_000_000_000)));
    cases
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

fn check_mail(mail: &str) {
    assert_eq!(header(mail, "X-Sink-TLS"), Some("yes"), "{mail}");
    assert_eq!(header(mail, "X-Sink-Auth-User"), Some(USER), "{mail}");
    assert_eq!(
        header(mail, "X-Sink-Rcpt-To"),
        Some("wang.li@cell07.example.org"),
        "only the on-duty staff member is told at first: {mail}"
    );
    assert_eq!(
        header(mail, "X-Sink-Mail-From"),
        Some("alerts@gridwatch.example.org")
    );
    let subject = header(mail, "Subject").expect("a subject");
    assert!(
        subject.starts_with("[Gridwatch] CRITICAL Overcurrent on socket 3"),
        "{subject}"
    );
    assert!(mail.contains("wang <wang.li@cell07.example.org>"), "{mail}");
    // The body is the rendering staff read in the console: numbers, limits, what to do.
    let flat = quoted_printable(mail);
    for needle in [
        "7.01 A",
        "overcurrent_a = 5.5",
        "site yard-a",
        "case:     1",
    ] {
        assert!(
            flat.contains(needle),
            "the mail mentions {needle:?}: {flat}"
        );
    }
}

/// Undoes the body's quoted-printable encoding (soft line breaks, `=XX`).
fn quoted_printable(text: &str) -> String {
    let bytes = text.replace("=\r\n", "").replace("\r\n", "\n").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_mailed_over_starttls_while_a_dead_webhook_waits() {
    let s = setup();
    let sink = SmtpSink::start(0, SmtpTls::Starttls, &s.certs, USER, PASSWORD);
    let stop = CancellationToken::new();
    // Nothing listens on the webhook's port: it retries on its own task.
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let _cases = record(
        &config(&s, sink.port(), EmailTls::Starttls),
        Some(&dead),
        &stop,
    );
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1, "one mail within 15 s");
    check_mail(&mails[0]);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_mailed_over_implicit_tls() {
    let s = setup();
    let sink = SmtpSink::start(0, SmtpTls::Implicit, &s.certs, USER, PASSWORD);
    let stop = CancellationToken::new();
    let _cases = record(&config(&s, sink.port(), EmailTls::Implicit), None, &stop);
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1, "one mail within 15 s");
    check_mail(&mails[0]);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_is_down_gets_the_mail_when_it_returns() {
    let s = setup();
    let port = free_port();
    let stop = CancellationToken::new();
    let _cases = record(&config(&s, port, EmailTls::Starttls), None, &stop);
    // A few attempts fail against the closed port before the server starts.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sink = SmtpSink::start(port, SmtpTls::Starttls, &s.certs, USER, PASSWORD);
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1, "the retried mail arrives");
    check_mail(&mails[0]);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_never_gets_the_login_or_the_mail() {
    let s = setup();
    // Implicit-TLS server, but the channel expects STARTTLS on a plain
    // connection: the handshake cannot happen, nothing is sent in clear.
    let sink = SmtpSink::start(0, SmtpTls::Implicit, &s.certs, USER, PASSWORD);
    let stop = CancellationToken::new();
    let mut c = config(&s, sink.port(), EmailTls::Starttls);
    c.max_attempts = 2;
    c.timeout_ms = 1_000;
    let _cases = record(&c, None, &stop);
    let mails = sink.wait_for(1, Duration::from_secs(3)).await;
    assert!(mails.is_empty(), "no mail without TLS: {mails:?}");
    stop.cancel();
}

/// The alert store loses its tables under the running service: the next
/// alert is still mailed, and so is the one alert saying the store fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_mailed_when_the_store_fails_with_one_alert_about_it() {
    let s = setup();
    let sink = SmtpSink::start(0, SmtpTls::Starttls, &s.certs, USER, PASSWORD);
    let stop = CancellationToken::new();
    let directory = directory();
    let sender = email::start(
        &config(&s, sink.port(), EmailTls::Starttls),
        directory.clone(),
        &stop,
    )
    .expect("e-mail channel starts")
    .expect("server set");
    let path = s.dir.path().join("alerts.sqlite");
    let mut cases = Cases::new(
        Store::open_file(&path).unwrap(),
        directory,
        &AnalyticsConfig::default(),
    )
    .with_channel(Some(sender));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE audit; DROP TABLE alerts;")
        .unwrap();
    assert!(cases.record(&alert(1_764_000_000_000)));
    assert!(cases.record(&alert(1_764_000_060_000)));
    assert_eq!(cases.store_failures(), 2);
    let mails = sink.wait_for(3, Duration::from_secs(15)).await;
    let subjects: Vec<&str> = mails
        .iter()
        .map(|m| header(m, "Subject").unwrap_or(""))
        .collect();
    assert_eq!(
        mails.len(),
        3,
        "two alerts and one about the store: {subjects:?}"
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("Overcurrent on socket 3"))
            .count(),
        2,
        "{subjects:?}"
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("The alert store cannot record alerts"))
            .count(),
        1,
        "{subjects:?}"
    );
    for m in &mails {
        assert_eq!(
            header(m, "X-Sink-Rcpt-To"),
            Some("wang.li@cell07.example.org"),
            "{m}"
        );
    }
    stop.cancel();
}
