//! A serial RFID reader on a pseudo-terminal, speaking the gateway's line
//! protocol (`gridwatch_gateway::readers::line`).
//!
//! The simulator holds the pty's master end and publishes the slave's path
//! as a symbolic link at a fixed place (as `socat … link=` does), so the
//! gateway's config names one stable "port". When the reader disappears
//! the pty is closed and the link removed; when it returns, a new pty is
//! linked at the same place — like a USB adapter unplugged and plugged in.

use gridwatch_gateway::readers::line::{encode_heartbeat, encode_tag};
use gridwatch_gateway::readers::Direction;
use nix::sys::termios::{self, SetArg};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Ways the simulated reader misbehaves on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFault {
    /// A tag line whose checksum does not match.
    BadChecksum,
    /// A tag line cut short (no checksum), then the next line.
    Truncated,
    /// Line noise: bytes that are no line of the protocol.
    Garbage,
    /// A line far longer than the protocol allows.
    Overlong,
}

struct Pty {
    master: File,
    _slave: OwnedFd,
}

/// The simulated reader.
pub struct SerialReaderSim {
    link: PathBuf,
    pty: Option<Pty>,
}

impl SerialReaderSim {
    /// Opens a pty and links its slave end at `link` (replacing a stale link).
    pub fn open(link: &Path) -> anyhow::Result<Self> {
        let mut sim = Self {
            link: link.to_owned(),
            pty: None,
        };
        sim.reappear()?;
        Ok(sim)
    }

    /// The stable path the gateway opens.
    pub fn link(&self) -> &Path {
        &self.link
    }

    /// Reports a read of `tag`.
    pub fn read(&mut self, tag: &str, direction: Option<Direction>) -> anyhow::Result<()> {
        self.write(encode_tag(tag, direction).as_bytes())
    }

    /// Sends a heartbeat line.
    pub fn heartbeat(&mut self) -> anyhow::Result<()> {
        self.write(encode_heartbeat().as_bytes())
    }

    /// Sends something wrong in the way `fault` says.
    pub fn inject(&mut self, fault: LineFault) -> anyhow::Result<()> {
        let bytes: Vec<u8> = match fault {
            LineFault::BadChecksum => {
                let mut line = encode_tag("BADSUM1", None).into_bytes();
                let star = line.iter().position(|&b| b == b'*').unwrap_or(0);
                line[star + 1] = if line[star + 1] == b'0' { b'1' } else { b'0' };
                line
            }
            LineFault::Truncated => {
                let line = encode_tag("CUTSHORT1", None);
                format!("{}\r\n", &line[..line.len() / 2]).into_bytes()
            }
            LineFault::Garbage => b"\x00\xff\x13garbage\xfe\n".to_vec(),
            LineFault::Overlong => {
                let mut v = vec![b'$'; 300];
                v.push(b'\n');
                v
            }
        };
        self.write(&bytes)
    }

    /// The reader disappears: the pty closes and the link goes.
    pub fn disappear(&mut self) {
        self.pty = None;
        let _ = std::fs::remove_file(&self.link);
    }

    /// The reader returns on a new pty, linked at the same place.
    pub fn reappear(&mut self) -> anyhow::Result<()> {
        let pair = nix::pty::openpty(None, None)?;
        // Raw mode from the start: no echo back into the master, no line editing.
        let mut t = termios::tcgetattr(pair.slave.as_fd())?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(pair.slave.as_fd(), SetArg::TCSANOW, &t)?;
        let path = nix::unistd::ttyname(pair.slave.as_fd())?;
        let _ = std::fs::remove_file(&self.link);
        std::os::unix::fs::symlink(&path, &self.link).map_err(|e| {
            anyhow::anyhow!(
                "cannot link {} to {}: {e}",
                self.link.display(),
                path.display()
            )
        })?;
        self.pty = Some(Pty {
            master: File::from(pair.master),
            _slave: pair.slave,
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let pty = self
            .pty
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("the simulated reader has disappeared"))?;
        pty.master.write_all(bytes)?;
        Ok(())
    }
}

impl Drop for SerialReaderSim {
    fn drop(&mut self) {
        self.disappear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_gateway::readers::line::{Frame, LineDecoder, LineError};
    use std::io::Read;

    #[test]
    fn what_the_sim_writes_the_gateway_decoder_reads_faults_included() {
        let dir = tempfile::tempdir().expect("tmp");
        let link = dir.path().join("rfid0");
        let mut sim = SerialReaderSim::open(&link).expect("pty");
        let mut port = File::open(&link).expect("opens through the link");
        sim.read("A1B2", Some(Direction::Out)).expect("write");
        sim.inject(LineFault::BadChecksum).expect("write");
        sim.inject(LineFault::Truncated).expect("write");
        sim.heartbeat().expect("write");
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        let mut decoder = LineDecoder::default();
        while got.len() < 4 {
            let n = port.read(&mut buf).expect("read");
            decoder.feed(&buf[..n], &mut got);
        }
        assert_eq!(
            got[0].1,
            Ok(Frame::Tag {
                id: "A1B2".into(),
                direction: Some(Direction::Out)
            })
        );
        assert!(matches!(got[1].1, Err(LineError::BadChecksum { .. })));
        assert_eq!(got[2].1, Err(LineError::NoChecksum));
        assert_eq!(got[3].1, Ok(Frame::Heartbeat));
        sim.disappear();
        assert!(!link.exists());
        sim.reappear().expect("new pty");
        assert!(link.exists());
    }
}
