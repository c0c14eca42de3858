//! Finding frames in a byte stream from a serial line.
//!
//! An RS-485 or M-Bus line delivers a frame in pieces, often after preamble
//! bytes and
//! sometimes after noise from a transceiver switching direction; a meter
//! may also send a corrupt frame. The receiver keeps the bytes that may
//! still become a frame in a fixed buffer, hands out each frame once it is
//! complete, and reports each corrupt candidate while resynchronising on
//! the next start byte. Memory is bounded by [`Receiver::CAPACITY`] whatever
//! arrives.

use crate::frame::{decode, DecodeError, Frame, MAX_FRAME_LEN, START};

/// A stream decoder with a fixed buffer.
#[derive(Clone)]
pub struct Receiver {
    buf: [u8; Self::CAPACITY],
    len: usize,
    discarded: usize,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// Bytes held at most: two of the longest frames.
    pub const CAPACITY: usize = 2 * MAX_FRAME_LEN;

    /// An empty receiver.
    pub const fn new() -> Self {
        Self {
            buf: [0; Self::CAPACITY],
            len: 0,
            discarded: 0,
        }
    }

    /// Forgets everything received, e.g. before sending the next request so
    /// that a late answer to the previous one cannot be taken for this one.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes held that are not yet a frame.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Bytes dropped as not part of any frame (preamble bytes, noise, corrupt
    /// frames) since the receiver was made.
    pub fn discarded(&self) -> usize {
        self.discarded
    }

    /// Takes as many of `bytes` as fit and returns the rest, which the
    /// caller pushes again after taking frames out with [`Self::next_frame`].
    pub fn push<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        if self.len + bytes.len() > Self::CAPACITY {
            // Nothing before the first start byte can become a frame.
            self.drop_noise();
        }
        let n = bytes.len().min(Self::CAPACITY - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        &bytes[n..]
    }

    /// The next complete frame, the next corrupt candidate (dropped as it is
    /// reported), or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        self.drop_noise();
        if self.len == 0 {
            return None;
        }
        match decode(&self.buf[..self.len]) {
            Ok((frame, used)) => {
                self.consume(used);
                Some(Ok(frame))
            }
            Err(DecodeError::Incomplete) => {
                // A stray start byte can make the bytes after it look like
                // the head of a long frame; a real frame further on must
                // not wait behind it.
                let later = (1..self.len)
                    .filter(|&i| self.buf[i] == START)
                    .find_map(|i| decode(&self.buf[i..self.len]).ok().map(|ok| (i, ok)));
                if let Some((i, (frame, used))) = later {
                    self.discarded += i;
                    self.consume(i + used);
                    return Some(Ok(frame));
                }
                if self.len >= MAX_FRAME_LEN {
                    // Longer than any frame and still incomplete: not a frame.
                    self.consume(1);
                    self.discarded += 1;
                    return self.next_frame();
                }
                None
            }
            Err(e) => {
                // Resynchronise one byte after the rejected start byte.
                self.consume(1);
                self.discarded += 1;
                Some(Err(e))
            }
        }
    }

    fn drop_noise(&mut self) {
        let start = self.buf[..self.len]
            .iter()
            .position(|b| *b == START)
            .unwrap_or(self.len);
        self.discarded += start;
        self.consume(start);
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{Address, Control, Function, MeterType};
    use std::vec::Vec;

    fn frame(n: u8) -> Vec<u8> {
        frame_from("00000000000001", n)
    }

    fn frame_from(address: &str, n: u8) -> Vec<u8> {
        let f = Frame::new(
            MeterType::COLD_WATER,
            Address::parse(address).unwrap(),
            Control::answer(Function::ReadData),
            &[0x02, 0x81, 0, 0, n, 0, 0, 0],
        )
        .unwrap();
        let mut out = [0u8; 64];
        let used = f.encode(4, &mut out).unwrap();
        out[..used].to_vec()
    }

    #[test]
    fn frames_arrive_in_pieces() {
        let mut r = Receiver::new();
        let wire = [frame(1), frame(2)].concat();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            assert!(r.push(chunk).is_empty());
            while let Some(f) = r.next_frame() {
                got.push(f.unwrap().data()[4]);
            }
        }
        assert_eq!(got, [1, 2]);
        assert_eq!(r.discarded(), 8, "the preamble bytes");
        assert!(r.pending().is_empty());
    }

    #[test]
    fn a_corrupt_frame_is_reported_and_the_next_one_found() {
        let mut bad = frame(1);
        let cs = bad.len() - 2;
        bad[cs] ^= 0xFF;
        let mut r = Receiver::new();
        r.push(&[bad, frame(2)].concat());
        assert!(matches!(
            r.next_frame(),
            Some(Err(DecodeError::Checksum { .. }))
        ));
        let next = loop {
            match r.next_frame() {
                Some(Ok(f)) => break f,
                Some(Err(_)) => continue,
                None => panic!("the good frame was lost"),
            }
        };
        assert_eq!(next.data()[4], 2);
    }

    #[test]
    fn a_stray_start_byte_does_not_hold_back_a_frame() {
        // 68 then nine bytes then a real frame: the stray candidate's L is
        // the last noise byte, 60H, asking for 96 bytes that never come.
        let mut wire = std::vec![0x68, 0x10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x01, 0x60];
        let mut real = frame_from("00000000000001", 7);
        real.drain(..4);
        wire.extend_from_slice(&real);
        let mut r = Receiver::new();
        r.push(&wire);
        assert_eq!(r.next_frame().unwrap().unwrap().data()[4], 7);
        assert!(r.next_frame().is_none());
        assert_eq!(r.discarded(), 11);
    }

    #[test]
    fn noise_alone_never_fills_the_buffer() {
        let mut r = Receiver::new();
        for _ in 0..100 {
            let rest = r.push(&[0x68; 50]);
            assert!(rest.is_empty());
            while r.next_frame().is_some() {}
            assert!(r.pending().len() < MAX_FRAME_LEN);
        }
    }
}
