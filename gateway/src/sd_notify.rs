//! Telling systemd how the gateway is doing (`sd_notify`), without libsystemd.
//!
//! The packaged unit is `Type=notify` with `WatchdogSec=`: systemd considers
//! the gateway started only once it sends `READY=1`, and restarts it when the
//! `WATCHDOG=1` pings stop (a wedged runtime, not only a crash). The protocol
//! is one datagram of `KEY=value` lines to the Unix socket named in
//! `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket); the interval
//! comes from `$WATCHDOG_USEC`. Outside systemd neither variable is set and
//! every call here does nothing, so `run` from a shell or a test is unchanged.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where systemd listens for this process's notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySocket(String);

impl NotifySocket {
    /// The socket named by `$NOTIFY_SOCKET`, if systemd started us with one.
    pub fn from_env() -> Option<NotifySocket> {
        NotifySocket::parse(&std::env::var("NOTIFY_SOCKET").ok()?)
    }

    /// A socket address as systemd writes it: an absolute path or `@name`.
    /// Anything else is not a notify socket (and is ignored, not an error:
    /// a stray variable must not stop the gateway).
    pub fn parse(value: &str) -> Option<NotifySocket> {
        (value.starts_with('/') || (value.starts_with('@') && value.len() > 1))
            .then(|| NotifySocket(value.to_owned()))
    }

    /// Sends one notification, e.g. `READY=1` or `WATCHDOG=1`.
    pub fn send(&self, state: &str) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        match self.0.strip_prefix('@') {
            Some(name) => send_abstract(&socket, name, state),
            None => socket.send_to(state.as_bytes(), &self.0).map(|_| ()),
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &str, state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, name: &str, _: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("abstract notify socket @{name} exists only on Linux"),
    ))
}

/// How often to ping, from `$WATCHDOG_USEC`: half the watchdog period, as
/// sd_watchdog_enabled(3) advises. `None` when no watchdog is set, the
/// value is not a number, or it is meant for another process
/// (`$WATCHDOG_PID`).
pub fn ping_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec = usec?.trim().parse::<u64>().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// Tells systemd the gateway is up and, when the unit has a watchdog, pings
/// it from the runtime until `shutdown`, then says `STOPPING=1`. Does
/// nothing outside systemd. A failed send is logged once per kind and never
/// stops the gateway (systemd itself then acts on the missing ping).
pub fn ready_and_watch(shutdown: CancellationToken) {
    let Some(socket) = NotifySocket::from_env() else {
        return;
    };
    if let Err(e) = socket.send("READY=1") {
        tracing::warn!("could not tell systemd the gateway is ready ({e})");
    }
    let interval = ping_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    );
    tokio::spawn(async move {
        if let Some(every) = interval {
            let mut tick = tokio::time::interval(every);
            let mut warned = false;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = socket.send("WATCHDOG=1") {
                            if !warned {
                                tracing::warn!("could not ping the systemd watchdog ({e})");
                                warned = true;
                            }
                        }
                    }
                }
            }
        } else {
            shutdown.cancelled().await;
        }
        let _ = socket.send("STOPPING=1");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_and_abstract_names_are_sockets() {
        assert!(NotifySocket::parse("/run/systemd/notify").is_some());
        assert!(NotifySocket::parse("@/org/freedesktop/systemd1/notify").is_some());
        assert_eq!(NotifySocket::parse(""), None);
        assert_eq!(NotifySocket::parse("@"), None);
        assert_eq!(NotifySocket::parse("run/notify"), None);
    }

    #[test]
    fn notifications_arrive_as_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let socket = NotifySocket::parse(path.to_str().unwrap()).unwrap();
        socket.send("READY=1").unwrap();
        socket.send("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_sockets_are_reached_by_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("gridwatch-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        NotifySocket::parse(&format!("@{name}"))
            .unwrap()
            .send("READY=1")
            .unwrap();
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let socket = NotifySocket::parse(dir.path().join("none").to_str().unwrap()).unwrap();
        assert!(socket.send("READY=1").is_err());
    }

    #[test]
    fn pings_come_at_half_the_watchdog_period_for_this_process_only() {
        assert_eq!(
            ping_interval(Some("20000000"), None, 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            ping_interval(Some("20000000"), Some("7"), 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(ping_interval(Some("20000000"), Some("8"), 7), None);
        assert_eq!(ping_interval(None, None, 7), None);
        assert_eq!(ping_interval(Some("0"), None, 7), None);
        assert_eq!(ping_interval(Some("soon"), None, 7), None);
    }
}
