//! A serial port opened for a field bus: raw bytes, a fixed baud rate and
//! parity, read and written without blocking a thread.
//!
//! RS-485 adapters appear as `/dev/ttyUSB0` or `/dev/ttyAMA0`; a
//! pseudo-terminal (`/dev/pts/N`, used by the simulators) behaves the same.

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg, SpecialCharacterIndices};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

/// Parity of each character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit (8N1).
    None,
    /// Even parity (8E1), what DL/T 645 meters use.
    Even,
}

/// An open serial port.
pub struct SerialPort {
    fd: AsyncFd<File>,
    path: PathBuf,
}

/// The termios speed of `baud`, for the rates field buses use.
pub fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        600 => BaudRate::B600,
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        _ => return None,
    })
}

impl SerialPort {
    /// Opens `path` in raw mode at `baud`, 8 data bits, `parity`, 1 stop bit.
    pub fn open(path: &Path, baud: u32, parity: Parity) -> io::Result<Self> {
        let rate = baud_rate(baud).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{baud} baud is not a supported serial speed"),
            )
        })?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(path)?;
        let mut t = termios::tcgetattr(&file).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a serial port ({e})", path.display()),
            )
        })?;
        termios::cfmakeraw(&mut t);
        termios::cfsetspeed(&mut t, rate).map_err(io::Error::from)?;
        t.control_flags &= !(ControlFlags::CSIZE | ControlFlags::CSTOPB | ControlFlags::PARODD);
        t.control_flags |= ControlFlags::CS8 | ControlFlags::CLOCAL | ControlFlags::CREAD;
        match parity {
            Parity::None => t.control_flags &= !ControlFlags::PARENB,
            Parity::Even => t.control_flags |= ControlFlags::PARENB,
        }
        // MIN 1: with O_NONBLOCK, "nothing yet" is EAGAIN and a read of 0
        // bytes means hang-up (with MIN 0 it would mean both).
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        match termios::tcsetattr(&file, SetArg::TCSANOW, &t) {
            Ok(()) => {}
            // A pseudo-terminal has no parity bit: Linux drops PARENB and
            // glibc then reports EINVAL. The simulators' lines are such
            // terminals; a real adapter that cannot do parity is reported.
            Err(nix::errno::Errno::EINVAL) if parity != Parity::None => {
                t.control_flags &= !ControlFlags::PARENB;
                termios::tcsetattr(&file, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
                let pty = termios::tcgetattr(&file).is_ok()
                    && path.to_string_lossy().starts_with("/dev/pts/");
                if !pty {
                    tracing::warn!(
                        "{} does not do parity; using it without (meters on it may not \
                         understand the gateway)",
                        path.display()
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
        // SAFETY: the `File` owns its descriptor and the `AsyncFd` owns the
        // `File`, so the descriptor stays open and is not reused while it is
        // registered: the I/O-safety condition of `register`.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// The port's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops whatever arrived and was not read (a late answer to an earlier
    /// request must not be taken for the next one).
    pub fn discard_input(&self) -> io::Result<()> {
        termios::tcflush(self.fd.get_ref(), termios::FlushArg::TCIFLUSH).map_err(io::Error::from)
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|f| f.get_ref().write(bytes)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Reads what has arrived, waiting until something has.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|f| f.get_ref().read(buf)) {
                Ok(Ok(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the port hung up (adapter unplugged?)",
                    ))
                }
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}
