//! QEMU's stream framing: each frame travels as a 4-byte big-endian length, then the frame
//! (`-netdev stream`, `-netdev socket,listen=|connect=`, and linkscope's own `tcp://`,
//! `unix://`, `exec://` and `stdio` endpoints).
//!
//! A [`Decoder`] reads into a buffer of one maximum frame plus its header and cuts whole
//! frames out of it, many per read; whatever a peer sends, it holds at most one partial frame
//! ([`Decoder::CAPACITY`] bytes). A length of 0 (QEMU reads it as nothing, a sender that
//! lost its framing) or above [`MAX_FRAME`] is a [`FramingError`]: the connection is no
//! longer framed and must be closed.
//!
//! An [`Encoder`] is a connection's bounded output queue: whole frames with their headers
//! appended to one buffer, written with as few `write` calls as the socket allows, many
//! frames each. A frame that does not fit is refused (the caller counts it dropped), never
//! split, so the stream stays framed.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// The largest frame the framing carries (the length field's limit as the relay enforces
/// it).
pub const MAX_FRAME: usize = 65_535;

/// The length header's size.
pub const HEADER: usize = 4;

/// A peer broke the framing: the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A length of 0.
    #[error("the peer sent a frame length of 0")]
    ZeroLength,
    /// A length above [`MAX_FRAME`].
    #[error("the peer sent a frame length of {0}, more than {MAX_FRAME}")]
    TooLong(u32),
}

/// What one [`Decoder::fill`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// This many bytes arrived.
    Read(usize),
    /// The peer closed its side.
    Closed,
    /// The buffer is full of whole frames not yet taken: take some before filling again.
    Full,
}

/// Cuts frames out of a byte stream; see the [module documentation](self).
#[derive(Debug)]
pub struct Decoder {
    buffer: Box<[u8]>,
    /// Start of the first byte not yet taken.
    start: usize,
    /// End of the bytes read.
    end: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// The most bytes a decoder ever holds: one maximum frame and its header.
    pub const CAPACITY: usize = HEADER + MAX_FRAME;

    pub fn new() -> Decoder {
        Decoder {
            buffer: vec![0; Decoder::CAPACITY].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Forgets everything buffered (a new connection starts a new stream).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Bytes read and not yet taken as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// One `read` from `source` into the free part of the buffer (moving a partial frame to
    /// the front first when that makes room). `WouldBlock` and other errors are passed on.
    pub fn fill(&mut self, source: &mut impl Read) -> io::Result<Fill> {
        if self.end == self.buffer.len() {
            if self.start == 0 {
                return Ok(Fill::Full);
            }
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match source.read(&mut self.buffer[self.end..])? {
            0 => Ok(Fill::Closed),
            n => {
                self.end += n;
                Ok(Fill::Read(n))
            }
        }
    }

    /// Appends bytes that arrived some other way; returns how many fitted (the rest must be
    /// offered again after frames were taken).
    pub fn extend(&mut self, bytes: &[u8]) -> usize {
        if self.buffer.len() - self.end < bytes.len() && self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = bytes.len().min(self.buffer.len() - self.end);
        self.buffer[self.end..self.end + n].copy_from_slice(&bytes[..n]);
        self.end += n;
        n
    }

    /// The next whole frame buffered, if any, without taking it (see [`Decoder::advance`]).
    pub fn peek(&self) -> Result<Option<&[u8]>, FramingError> {
        let have = &self.buffer[self.start..self.end];
        let Some(header) = have.first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len == 0 {
            return Err(FramingError::ZeroLength);
        }
        if len as usize > MAX_FRAME {
            return Err(FramingError::TooLong(len));
        }
        Ok(have.get(HEADER..HEADER + len as usize))
    }

    /// Takes the frame [`Decoder::peek`] returned.
    pub fn advance(&mut self) {
        if let Ok(Some(frame)) = self.peek() {
            self.start += HEADER + frame.len();
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
        }
    }
}

/// A connection's bounded output queue of framed frames; see the [module
/// documentation](self).
#[derive(Debug)]
pub struct Encoder {
    buffer: Vec<u8>,
    /// First byte not yet written.
    head: usize,
    /// The end offset (in `buffer`) of each queued frame not wholly written, in order.
    ends: VecDeque<usize>,
    limit: usize,
}

impl Encoder {
    /// A queue that holds at most `limit` bytes (at least one maximum frame and header).
    pub fn new(limit: usize) -> Encoder {
        Encoder {
            buffer: Vec::new(),
            head: 0,
            ends: VecDeque::new(),
            limit: limit.max(Decoder::CAPACITY),
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.buffer.len() - self.head
    }

    /// Frames queued and not wholly written.
    pub fn queued_frames(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Queues `frame` with its header; false (nothing queued) when it is empty, longer than
    /// [`MAX_FRAME`], or the queue has no room for it.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if frame.is_empty() || frame.len() > MAX_FRAME {
            return false;
        }
        if self.queued_bytes() + HEADER + frame.len() > self.limit {
            return false;
        }
        if self.head > 0 && self.head * 2 >= self.buffer.len() {
            self.compact();
        }
        self.buffer
            .extend_from_slice(&(frame.len() as u32).to_be_bytes());
        self.buffer.extend_from_slice(frame);
        self.ends.push_back(self.buffer.len());
        true
    }

    fn compact(&mut self) {
        let head = self.head;
        self.buffer.drain(..head);
        for end in &mut self.ends {
            *end -= head;
        }
        self.head = 0;
    }

    /// Writes queued bytes to `sink` until it would block or the queue is empty; returns the
    /// frames wholly written. `WouldBlock` is not an error here; other errors are passed on.
    pub fn flush(&mut self, sink: &mut impl Write) -> io::Result<usize> {
        let mut done = 0;
        while self.head < self.buffer.len() {
            match sink.write(&self.buffer[self.head..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.head += n;
                    while self.ends.front().is_some_and(|&end| end <= self.head) {
                        self.ends.pop_front();
                        done += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.head == self.buffer.len() {
            self.buffer.clear();
            self.head = 0;
        }
        Ok(done)
    }

    /// Empties the queue (the connection is gone); returns the frames not wholly written.
    pub fn clear(&mut self) -> usize {
        let lost = self.ends.len();
        self.buffer.clear();
        self.ends.clear();
        self.head = 0;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    fn take_all(decoder: &mut Decoder) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.peek()? {
            out.push(frame.to_vec());
            decoder.advance();
        }
        Ok(out)
    }

    /// A reader that hands out its bytes `chunk` at a time, then WouldBlock.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.bytes.len() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.chunk.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn many_frames_in_one_read_and_one_frame_over_many_reads() {
        let frames: Vec<Vec<u8>> = (1..=50u8).map(|n| vec![n; usize::from(n) * 7]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let bytes = framed(&refs);
        for chunk in [1, 3, 4, 5, 64, 1000, bytes.len()] {
            let mut src = Trickle {
                bytes: bytes.clone(),
                at: 0,
                chunk,
            };
            let mut decoder = Decoder::new();
            let mut got = Vec::new();
            loop {
                match decoder.fill(&mut src) {
                    Ok(Fill::Read(_)) => got.extend(take_all(&mut decoder).unwrap()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, frames, "chunk {chunk}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn a_maximum_frame_fits_and_the_buffer_never_grows() {
        let big = vec![0xab; MAX_FRAME];
        let small = [1u8, 2, 3];
        let bytes = framed(&[&small, &big, &small]);
        let mut src = Trickle {
            bytes,
            at: 0,
            chunk: usize::MAX,
        };
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        loop {
            match decoder.fill(&mut src) {
                Ok(Fill::Read(_)) => got.extend(take_all(&mut decoder).unwrap()),
                Ok(Fill::Full) => panic!("a whole frame fits"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                other => panic!("{other:?}"),
            }
            assert!(decoder.buffered() <= Decoder::CAPACITY);
        }
        assert_eq!(got, [small.to_vec(), big, small.to_vec()]);
        assert_eq!(decoder.buffer.len(), Decoder::CAPACITY);
    }

    #[test]
    fn zero_and_oversized_lengths_break_the_stream() {
        let mut decoder = Decoder::new();
        decoder.extend(&framed(&[b"ok"]));
        decoder.extend(&0u32.to_be_bytes());
        assert_eq!(take_all(&mut decoder), Err(FramingError::ZeroLength));
        let mut decoder = Decoder::new();
        decoder.extend(&65_536u32.to_be_bytes());
        assert_eq!(take_all(&mut decoder), Err(FramingError::TooLong(65_536)));
        let mut decoder = Decoder::new();
        decoder.extend(&u32::MAX.to_be_bytes());
        assert_eq!(take_all(&mut decoder), Err(FramingError::TooLong(u32::MAX)));
    }

    #[test]
    fn a_full_buffer_of_whole_frames_asks_to_take_first() {
        let mut decoder = Decoder::new();
        let frame = vec![7u8; 1000];
        while decoder.extend(&framed(&[&frame])) == HEADER + frame.len() {}
        let mut src = Trickle {
            bytes: vec![0; 10],
            at: 0,
            chunk: 10,
        };
        assert_eq!(decoder.buffered(), Decoder::CAPACITY);
        assert_eq!(decoder.fill(&mut src).unwrap(), Fill::Full);
        decoder.advance();
        assert_eq!(decoder.fill(&mut src).unwrap(), Fill::Read(10));
        assert!(decoder.buffered() <= Decoder::CAPACITY);
    }

    /// A writer that accepts `room` bytes in `chunk`-sized writes, then WouldBlock.
    struct Tight {
        written: Vec<u8>,
        room: usize,
        chunk: usize,
        writes: usize,
    }

    impl Write for Tight {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room).min(self.chunk);
            self.written.extend_from_slice(&buf[..n]);
            self.room -= n;
            self.writes += 1;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_encoder_writes_many_frames_per_write_and_resumes_partial_writes() {
        let mut encoder = Encoder::new(0);
        let frames: Vec<Vec<u8>> = (0..100u8).map(|n| vec![n; 64]).collect();
        for f in &frames {
            assert!(encoder.push(f));
        }
        let mut sink = Tight {
            written: Vec::new(),
            room: 1000,
            chunk: usize::MAX,
            writes: 0,
        };
        let done = encoder.flush(&mut sink).unwrap();
        assert_eq!(done, 1000 / 68);
        assert_eq!(sink.writes, 1);
        assert_eq!(encoder.queued_frames(), 100 - done);
        sink.room = usize::MAX;
        sink.chunk = 333;
        assert_eq!(encoder.flush(&mut sink).unwrap(), 100 - done);
        assert!(encoder.is_empty());
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        assert_eq!(sink.written, framed(&refs));
    }

    #[test]
    fn the_encoder_is_bounded_and_refuses_what_the_framing_cannot_carry() {
        let mut encoder = Encoder::new(Decoder::CAPACITY);
        assert!(!encoder.push(&[]));
        assert!(!encoder.push(&vec![0; MAX_FRAME + 1]));
        assert!(encoder.push(&vec![0; MAX_FRAME]));
        assert!(!encoder.push(&[1]), "no room left");
        assert_eq!(encoder.queued_bytes(), Decoder::CAPACITY);
        let mut sink = Tight {
            written: Vec::new(),
            room: 10,
            chunk: usize::MAX,
            writes: 0,
        };
        assert_eq!(encoder.flush(&mut sink).unwrap(), 0);
        assert!(encoder.push(&[1; 6]), "written bytes make room");
        assert_eq!(encoder.clear(), 2);
        assert!(encoder.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_nor_grow_the_decoder(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut decoder = Decoder::new();
            decoder.extend(&bytes);
            while let Ok(Some(_)) = decoder.peek() {
                decoder.advance();
            }
            proptest::prop_assert!(decoder.buffered() <= Decoder::CAPACITY);
        }
    }
}
