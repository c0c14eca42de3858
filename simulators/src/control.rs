//! The one run-time control surface of the simulators: typed lines on
//! stdin, and the same lines over a small local TCP endpoint
//! (`--control 127.0.0.1:PORT`) that tests and scripts drive.
//!
//! A simulator supplies a [`Handler`] that carries out one line and says
//! what changed (or why not); this module only moves lines. On TCP every
//! line sent gets exactly one line back, `ok <what changed>` or
//! `error <why>`, so a script can check each command; the connection stays
//! open for more. Words a simulator does not know are answered with the
//! words it does and, for a near miss, the one probably meant
//! ([`unknown_word`]).

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Carries out one command line; `Ok` says what changed, `Err` why nothing
/// did. Shared by stdin and every TCP connection, hence `Fn + Send + Sync`.
pub type Handler = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// Longest command line accepted over TCP; a longer one is answered with an
/// error and the connection closed (nobody types 4 KiB of command).
const MAX_LINE: usize = 4096;

/// Binds the control endpoint. Only loopback addresses are accepted: the
/// endpoint has no authentication and injects faults.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "--control {addr}: the control endpoint listens on loopback only (127.0.0.1 or ::1); it has no authentication"
        );
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--control {addr}: cannot listen: {e}"))
}

/// Serves the control endpoint on `listener` until `shutdown`: one task per
/// connection, one answer line per command line.
pub fn serve_tcp(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("control endpoint: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (handler, shutdown) = (handler.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(e) = connection(stream, &handler, &shutdown).await {
                    tracing::info!("control connection from {peer} ended: {e}");
                }
            });
        }
    })
}

async fn connection(
    stream: tokio::net::TcpStream,
    handler: &Handler,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let mut limited = (&mut lines).take(MAX_LINE as u64 + 1);
        let n = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            n = limited.read_line(&mut line) => n?,
        };
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE && !line.ends_with('\n') {
            write
                .write_all(format!("error line longer than {MAX_LINE} bytes\n").as_bytes())
                .await?;
            return Ok(());
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let answer = match handler(text) {
            Ok(done) => format!("ok {}\n", one_line(&done)),
            Err(why) => format!("error {}\n", one_line(&why)),
        };
        write.write_all(answer.as_bytes()).await?;
    }
}

/// Multi-line answers (`status`, `help`) travel as one line over TCP.
fn one_line(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join(" | ")
}

/// Reads command lines from stdin until Ctrl-C or SIGTERM, printing what
/// each did (or why not, on stderr). When stdin closes (run in the
/// background, or by a script) it keeps serving until stopped.
pub async fn stdin_until_stopped(handler: Handler) {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let stop = crate::stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            next = stdin.next_line() => match next {
                Ok(Some(text)) if text.trim().is_empty() => {}
                Ok(Some(text)) => match handler(text.trim()) {
                    Ok(done) => println!("{done}"),
                    Err(why) => eprintln!("{why}"),
                },
                Ok(None) | Err(_) => {
                    stop.await;
                    return;
                }
            },
        }
    }
}

/// Stdin, and the TCP endpoint when `control` is given, until Ctrl-C or
/// SIGTERM: what every simulator with run-time commands calls last.
pub async fn run(handler: Handler, control: Option<SocketAddr>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let tcp = match control {
        Some(addr) => {
            let listener = bind(addr).await?;
            let bound = listener.local_addr()?;
            // The one line a script waits for before sending commands.
            println!("control endpoint on {bound}");
            Some(serve_tcp(listener, handler.clone(), shutdown.clone()))
        }
        None => None,
    };
    stdin_until_stopped(handler).await;
    shutdown.cancel();
    if let Some(task) = tcp {
        let _ = task.await;
    }
    Ok(())
}

/// The error for a word that is not one of `known`: names the word, the
/// closest known one when it is a likely typo, and all of them.
pub fn unknown_word(what: &str, word: &str, known: &[&str]) -> String {
    let near = known
        .iter()
        .map(|k| (edit_distance(&word.to_lowercase(), k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d);
    match near {
        Some((_, k)) => format!(
            "unknown {what} {word:?}; did you mean {k:?}? ({})",
            known.join(", ")
        ),
        None => format!("unknown {what} {word:?}; use one of {}", known.join(", ")),
    }
}

/// Levenshtein distance, for typo help on a handful of short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Parses a duration as written in commands and scenario files: `1500ms`,
/// `30s`, `5m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (t, 1000.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * unit_ms < 1e13 => Ok(
            std::time::Duration::from_millis((v * unit_ms).round() as u64),
        ),
        _ => Err(format!(
            "{text:?} is not a duration; write e.g. 30s, 5m, 2h or 1500ms"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        let err = parse_duration("soon").unwrap_err();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn a_typo_gets_the_word_meant_and_a_stranger_the_list() {
        let known = ["overcurrent", "over_temperature", "residual_current"];
        let e = unknown_word("fault", "overcurent", &known);
        assert!(e.contains("did you mean \"overcurrent\""), "{e}");
        let e = unknown_word("fault", "flood", &known);
        assert!(!e.contains("did you mean"), "{e}");
        assert!(
            e.contains("use one of overcurrent, over_temperature"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn tcp_answers_each_line_with_ok_or_error() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler: Handler = Arc::new(|text: &str| {
            if text == "ping" {
                Ok("pong\nand more".into())
            } else {
                Err(format!("no {text}"))
            }
        });
        let stop = CancellationToken::new();
        let task = serve_tcp(listener, handler, stop.clone());
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut answers = BufReader::new(r).lines();
        w.write_all(b"ping\n\nbogus\n").await.unwrap();
        assert_eq!(
            answers.next_line().await.unwrap().as_deref(),
            Some("ok pong | and more")
        );
        assert_eq!(
            answers.next_line().await.unwrap().as_deref(),
            Some("error no bogus")
        );
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_endpoint_refuses_to_listen_beyond_loopback() {
        let e = bind("0.0.0.0:0".parse().unwrap()).await.unwrap_err();
        assert!(e.to_string().contains("loopback only"), "{e}");
    }
}
