//! Network helpers every component shares: reconnect [`backoff`] and I/O
//! errors in words ([`io_reason`]).
//!
//! A leaf: it imports nothing from the crate, so buses, readers and uplinks
//! can all use it without reaching into each other.

pub mod backoff;

pub use backoff::{jittered, words, Backoff};

/// A network error in words, without the "(os error 111)" noise; shared
/// by the buses and the uplinks so logs and events read alike.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by the peer".into(),
        std::io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        std::io::ErrorKind::TimedOut => "timed out".into(),
        std::io::ErrorKind::UnexpectedEof => "the peer closed the connection".into(),
        std::io::ErrorKind::BrokenPipe => "the peer closed the connection".into(),
        std::io::ErrorKind::HostUnreachable => "host unreachable".into(),
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        std::io::ErrorKind::AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}
