//! Framing of the host-rig protocol: `COBS(version ‖ postcard(message) ‖ CRC-32C) 0x00`.
//!
//! COBS makes the zero byte a frame delimiter, so a reader that starts mid-stream, or loses
//! bytes, resynchronises at the next zero. The CRC catches what USB or a confused host garbles;
//! the version byte makes a host and a firmware of different releases fail with a clear error
//! instead of misreading each other. Empty frames (two zeros in a row) are skipped, so a host
//! may send a zero first to flush whatever a previous session left half-written.

use serde::Serialize;
use serde::de::Deserialize;

use super::{DeviceMsg, ErrorCode, HostMsg, MAX_BODY, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// CRC-32C (Castagnoli) with a 1 KiB table: good burst detection for frames up to a kilobyte,
/// and small enough for the firmware's flash budget.
const CRC32C: crc::Crc<u32, crc::Table<1>> = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISCSI);

const CRC_LEN: usize = 4;

/// Why a frame could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// Not valid COBS.
    Cobs,
    /// More bytes before the delimiter than the reader holds; they were dropped.
    Oversize,
    /// Too short to hold a version byte and a CRC.
    Short,
    Crc,
    /// Another protocol version (the byte received).
    Version(u8),
    /// The body is not a message of this version, or has bytes after the message.
    Message,
    /// The output buffer is too small for the message (writing only).
    BufferTooSmall,
}

impl FrameError {
    /// The [`ErrorCode`] and argument the rig reports for this error.
    pub fn code(self) -> (ErrorCode, u32) {
        match self {
            FrameError::Cobs => (ErrorCode::Cobs, 0),
            FrameError::Oversize | FrameError::BufferTooSmall => (ErrorCode::Oversize, 0),
            FrameError::Short | FrameError::Message => (ErrorCode::Message, 0),
            FrameError::Crc => (ErrorCode::Crc, 0),
            FrameError::Version(v) => (ErrorCode::Version, u32::from(v)),
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::Cobs => f.write_str("not valid COBS"),
            FrameError::Oversize => f.write_str("frame longer than the reader's buffer"),
            FrameError::Short => f.write_str("frame too short for a version byte and a CRC"),
            FrameError::Crc => f.write_str("CRC mismatch"),
            FrameError::Version(v) => {
                write!(f, "protocol version {v}, expected {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}")
            }
            FrameError::Message => f.write_str("no valid message in the frame"),
            FrameError::BufferTooSmall => f.write_str("message too large for the frame buffer"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// Writes `msg` as one frame into `out` and returns its length, delimiter included. `scratch`
/// holds the unencoded body; [`MAX_BODY`] bytes always suffice for both buffers' needs
/// (`out` needs [`super::MAX_FRAME`]).
pub fn encode<T: Serialize>(msg: &T, scratch: &mut [u8], out: &mut [u8]) -> Result<usize, FrameError> {
    encode_versioned(PROTOCOL_VERSION, msg, scratch, out)
}

/// [`encode`] with another version byte: what a host or firmware of another release sends, for
/// testing that the other side names the mismatch.
pub fn encode_versioned<T: Serialize>(
    version: u8,
    msg: &T,
    scratch: &mut [u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let limit = scratch.len().min(MAX_BODY);
    if limit < 1 + CRC_LEN {
        return Err(FrameError::BufferTooSmall);
    }
    scratch[0] = version;
    let body_end = {
        let (_, rest) = scratch[..limit - CRC_LEN].split_at_mut(1);
        1 + postcard::to_slice(msg, rest).map_err(|_| FrameError::BufferTooSmall)?.len()
    };
    let crc = CRC32C.checksum(&scratch[..body_end]);
    scratch[body_end..body_end + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let n = cobs::try_encode(&scratch[..body_end + CRC_LEN], out).map_err(|_| FrameError::BufferTooSmall)?;
    *out.get_mut(n).ok_or(FrameError::BufferTooSmall)? = 0;
    Ok(n + 1)
}

/// Reads a host message from a frame body returned by [`FrameReader::push`].
pub fn decode_host(body: &[u8]) -> Result<HostMsg<'_>, FrameError> {
    decode_exact(body)
}

/// Reads a rig message from a frame body returned by [`FrameReader::push`].
pub fn decode_device(body: &[u8]) -> Result<DeviceMsg<'_>, FrameError> {
    decode_exact(body)
}

fn decode_exact<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(FrameError::Message),
    }
}

/// Push-based frame reassembly into a fixed buffer of `N` bytes: bytes arrive in whatever
/// pieces USB delivers, message bodies come out. Never allocates, never panics, and holds at
/// most `N` bytes whatever it is fed.
#[derive(Debug, Clone)]
pub struct FrameReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    pub const fn new() -> Self {
        FrameReader { buf: [0; N], len: 0, overflowed: false }
    }

    /// Forgets a partly received frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    /// Consumes `data` up to and including the next frame delimiter. Returns how many bytes
    /// were consumed and, when a non-empty frame ended, its checked body (postcard bytes, the
    /// version and CRC stripped) or why it was refused. Call again with the rest of `data`.
    pub fn push<'s>(&'s mut self, data: &[u8]) -> (usize, Option<Result<&'s [u8], FrameError>>) {
        let (used, frame) = self.push_versioned(data);
        (used, frame.map(|f| f.map(|f| f.body)))
    }

    /// [`FrameReader::push`], with the version each frame was framed in: the version to answer
    /// its sender in.
    pub fn push_versioned<'s>(&'s mut self, data: &[u8]) -> (usize, Option<Result<Frame<'s>, FrameError>>) {
        for (i, &b) in data.iter().enumerate() {
            if b != 0 {
                if self.len < N {
                    self.buf[self.len] = b;
                    self.len += 1;
                } else {
                    self.overflowed = true;
                }
                continue;
            }
            let (len, overflowed) = (self.len, self.overflowed);
            self.reset();
            if overflowed {
                return (i + 1, Some(Err(FrameError::Oversize)));
            }
            if len == 0 {
                continue;
            }
            return (i + 1, Some(check(&mut self.buf[..len])));
        }
        (data.len(), None)
    }
}

/// A checked frame: the protocol version it was framed in, and its postcard body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub version: u8,
    pub body: &'a [u8],
}

/// COBS-decodes a frame in place and checks its CRC and version.
fn check(frame: &mut [u8]) -> Result<Frame<'_>, FrameError> {
    let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    if n < 1 + CRC_LEN {
        return Err(FrameError::Short);
    }
    let (body, crc) = frame[..n].split_at(n - CRC_LEN);
    if CRC32C.checksum(body).to_le_bytes() != crc {
        return Err(FrameError::Crc);
    }
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&body[0]) {
        return Err(FrameError::Version(body[0]));
    }
    Ok(Frame { version: body[0], body: &body[1..] })
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use proptest::prelude::*;

    const CAP: usize = MAX_FRAME;

    fn frame_of<T: Serialize>(msg: &T) -> std::vec::Vec<u8> {
        let mut scratch = [0u8; MAX_BODY];
        let mut out = [0u8; MAX_FRAME];
        let n = encode(msg, &mut scratch, &mut out).expect("fits");
        out[..n].to_vec()
    }

    /// Feeds `bytes` in pieces of `piece` and collects every outcome (bodies re-decoded).
    fn read_all(bytes: &[u8], piece: usize) -> std::vec::Vec<Result<std::vec::Vec<u8>, FrameError>> {
        let mut reader = FrameReader::<CAP>::new();
        let mut got = std::vec::Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            let mut pos = 0;
            while pos < chunk.len() {
                let (used, frame) = reader.push(&chunk[pos..]);
                pos += used;
                if let Some(r) = frame {
                    got.push(r.map(<[u8]>::to_vec));
                }
            }
        }
        got
    }

    fn sample_plan() -> FaultPlan {
        let mut plan = FaultPlan { skew_ppm: -20_000, gap: 128, ..FaultPlan::default() };
        plan.faults.push(Fault::Break { after: 0, length: 800 }).unwrap();
        plan.faults.push(Fault::Flip { char: 3, bit: 9 }).unwrap();
        plan.faults.push(Fault::Glitch { char: 7, at: 896, width: 64, mark: false }).unwrap();
        plan.faults.push(Fault::Idle { after: 9, length: 256 * 20 }).unwrap();
        plan
    }

    fn sample_measured() -> Measured {
        let mut readings = heapless::Vec::new();
        for (quantity, value, resolution) in [
            (Quantity::LineOpen, Some(4_321), 2),
            (Quantity::LineLoaded, Some(1_528), 2),
            (Quantity::Rise, Some(3_472), 16),
            (Quantity::Fall, None, 16),
            (Quantity::Request, Some(5_012), 2),
            (Quantity::OutputHigh, Some(3_299), 2),
            (Quantity::SupplyAverage, Some(81_200), 100),
            (Quantity::SupplyPeak, Some(312_000), 100),
            (Quantity::SupplyVoltage, Some(4_968), 4),
        ] {
            readings.push(Reading { quantity, value, resolution }).unwrap();
        }
        Measured {
            circuit: Circuit { sense_input_ohms: 300_000, known_load_ohms: 10_000, threshold_mv: 2_400 },
            readings,
        }
    }

    #[test]
    fn version_2_appends_messages_so_version_1_frames_still_read() {
        // The discriminants of version 1 are unchanged: Cancel is still 5, Error still 7, and
        // the new messages come after them.
        let mut scratch = [0u8; MAX_BODY];
        let body = |msg: &HostMsg<'_>, scratch: &mut [u8]| postcard::to_slice(msg, scratch).unwrap().to_vec();
        assert_eq!(body(&HostMsg::Cancel, &mut scratch), [5]);
        assert_eq!(body(&HostMsg::Measure(MeasureRequest { supply_window_ms: 1 }), &mut scratch)[0], 6);
        let dev =
            postcard::to_slice(&DeviceMsg::Error { code: ErrorCode::Sensor, arg: 0 }, &mut scratch).unwrap().to_vec();
        assert_eq!(dev, [7, 9, 0]);
        assert_eq!(postcard::to_slice(&DeviceMsg::Measured(sample_measured()), &mut scratch).unwrap()[0], 8);
        // A frame in version 1 is read, and the reader says which version it was.
        let mut out = [0u8; MAX_FRAME];
        let n = encode_versioned(1, &HostMsg::Hello, &mut scratch, &mut out).unwrap();
        let mut reader = FrameReader::<CAP>::new();
        let (_, frame) = reader.push_versioned(&out[..n]);
        let frame = frame.unwrap().unwrap();
        assert_eq!((frame.version, decode_host(frame.body).unwrap()), (1, HostMsg::Hello));
        let n = encode(&HostMsg::Hello, &mut scratch, &mut out).unwrap();
        let (_, frame) = reader.push_versioned(&out[..n]);
        assert_eq!(frame.unwrap().unwrap().version, PROTOCOL_VERSION);
    }

    #[test]
    fn every_host_message_round_trips() {
        let data = b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(000671.578*kWh)\r\n!";
        let plan = sample_plan();
        let msgs = [
            HostMsg::Hello,
            HostMsg::ConfigureLine(LineConfig::P1),
            HostMsg::SetRequestMode(RequestMode::Ignore),
            HostMsg::ConfigureCapture(CaptureConfig::TTL),
            HostMsg::Send(SendChunk { id: 7, offset: 0, last: true, plan, data }),
            HostMsg::Cancel,
            HostMsg::Measure(MeasureRequest { supply_window_ms: 500 }),
        ];
        for msg in msgs {
            let frame = frame_of(&msg);
            assert_eq!(frame.iter().filter(|&&b| b == 0).count(), 1, "one delimiter, at the end");
            let got = read_all(&frame, 5);
            let body = got[0].as_ref().unwrap();
            assert_eq!(decode_host(body).unwrap(), msg);
        }
    }

    #[test]
    fn every_device_message_round_trips() {
        let mut captured = heapless::Vec::new();
        for i in 0..MAX_CAPTURED {
            captured.push(Captured { byte: i as u8, flags: flags::FRAMING, at_us: u64::MAX - i as u64 }).unwrap();
        }
        let status = Status {
            line: LineConfig::P1,
            capture: CaptureConfig::TTL,
            request_mode: RequestMode::Honour,
            request_high: true,
        };
        let msgs = [
            DeviceMsg::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                firmware: "0.1.0",
                mode: Mode::Standalone,
                profile: "iskra-am550",
                pins: PinMap { data: 0, request: 3, capture: 5, led: 25 },
                capabilities: caps::SEND | caps::CAPTURE,
                max_chunk: MAX_CHUNK as u16,
                status,
            }),
            DeviceMsg::Status(status),
            DeviceMsg::RequestEdge { high: false, at_us: 123_456 },
            DeviceMsg::Captured(captured),
            DeviceMsg::SendComplete { id: 1, bytes: 632 },
            DeviceMsg::SendAborted { id: 2, bytes: 17, reason: AbortReason::RequestDropped },
            DeviceMsg::Overrun { buffer: Buffer::CaptureFifo, lost: 1 },
            DeviceMsg::Error { code: ErrorCode::Version, arg: 9 },
            DeviceMsg::Measured(sample_measured()),
        ];
        for msg in msgs {
            let frame = frame_of(&msg);
            assert!(frame.len() <= MAX_FRAME);
            let got = read_all(&frame, 64);
            assert_eq!(decode_device(got[0].as_ref().unwrap()).unwrap(), msg);
        }
    }

    #[test]
    fn a_full_chunk_fits_a_frame() {
        let data = [0xAA; MAX_CHUNK];
        let mut plan = FaultPlan { skew_ppm: i32::MIN, gap: u32::MAX, ..FaultPlan::default() };
        while plan.faults.push(Fault::Glitch { char: u32::MAX, at: u32::MAX, width: u32::MAX, mark: true }).is_ok() {}
        let msg = HostMsg::Send(SendChunk { id: u16::MAX, offset: u32::MAX, last: true, plan, data: &data });
        assert_eq!(decode_host(read_all(&frame_of(&msg), 64)[0].as_ref().unwrap()).unwrap(), msg);
    }

    #[test]
    fn corruption_is_caught_and_the_next_frame_still_reads() {
        let frame = frame_of(&HostMsg::ConfigureLine(LineConfig::P1));
        let mut bad = frame.clone();
        bad[3] ^= 0x10;
        let mut stream = bad;
        stream.extend_from_slice(&frame);
        let got = read_all(&stream, 3);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0], Err(FrameError::Crc | FrameError::Cobs)), "{:?}", got[0]);
        assert_eq!(decode_host(got[1].as_ref().unwrap()).unwrap(), HostMsg::ConfigureLine(LineConfig::P1));
    }

    #[test]
    fn frames_of_another_version_are_named() {
        let mut scratch = [0u8; MAX_BODY];
        let mut out = [0u8; MAX_FRAME];
        let n = encode_versioned(PROTOCOL_VERSION + 3, &HostMsg::Hello, &mut scratch, &mut out).unwrap();
        assert_eq!(read_all(&out[..n], 7), vec![Err(FrameError::Version(PROTOCOL_VERSION + 3))]);
    }

    #[test]
    fn other_versions_are_named() {
        let mut scratch = [0u8; 16];
        scratch[0] = PROTOCOL_VERSION + 1;
        scratch[1] = 0; // HostMsg::Hello
        let crc = CRC32C.checksum(&scratch[..2]).to_le_bytes();
        scratch[2..6].copy_from_slice(&crc);
        let mut out = [0u8; 16];
        let n = cobs::encode(&scratch[..6], &mut out);
        out[n] = 0;
        assert_eq!(read_all(&out[..=n], 64), vec![Err(FrameError::Version(PROTOCOL_VERSION + 1))]);
    }

    #[test]
    fn oversize_frames_are_dropped_whole() {
        let mut stream = vec![1u8; 3 * CAP];
        stream.push(0);
        stream.extend(frame_of(&HostMsg::Cancel));
        let got = read_all(&stream, 100);
        assert_eq!(got[0], Err(FrameError::Oversize));
        assert_eq!(decode_host(got[1].as_ref().unwrap()).unwrap(), HostMsg::Cancel);
    }

    #[test]
    fn empty_frames_are_skipped_and_trailing_bytes_refused() {
        let mut stream = vec![0, 0, 0];
        stream.extend(frame_of(&HostMsg::Hello));
        assert_eq!(read_all(&stream, 1).len(), 1);
        // A valid body with one byte too many.
        assert_eq!(decode_host(&[0, 0]), Err(FrameError::Message));
        assert_eq!(decode_host(&[0]), Ok(HostMsg::Hello));
        assert_eq!(decode_host(&[200]), Err(FrameError::Message));
    }

    #[test]
    fn a_small_output_buffer_is_an_error() {
        let mut scratch = [0u8; MAX_BODY];
        let mut out = [0u8; 4];
        assert_eq!(
            encode(&HostMsg::ConfigureLine(LineConfig::P1), &mut scratch, &mut out),
            Err(FrameError::BufferTooSmall)
        );
        let mut tiny = [0u8; 3];
        assert_eq!(encode(&HostMsg::Hello, &mut tiny, &mut [0u8; 64]), Err(FrameError::BufferTooSmall));
    }

    proptest! {
        /// Whatever arrives, in whatever pieces, the reader and both decoders return without
        /// panicking and never hold more than their buffer.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), piece in 1usize..200) {
            for r in read_all(&bytes, piece).into_iter().flatten() {
                let _ = decode_host(&r);
                let _ = decode_device(&r);
            }
        }

        /// Arbitrary bodies with a valid frame around them: the message decoders never panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_host(&body);
            let _ = decode_device(&body);
        }

        /// Garbage before a valid frame costs at most the frames it overlaps: the valid frame
        /// that follows a delimiter always comes through.
        #[test]
        fn the_reader_resynchronises(garbage in proptest::collection::vec(any::<u8>(), 0..300), id in any::<u16>(),
                                     data in proptest::collection::vec(any::<u8>(), 0..MAX_CHUNK), piece in 1usize..80) {
            let msg = HostMsg::Send(SendChunk { id, offset: 0, last: false, plan: FaultPlan::default(), data: &data });
            let mut stream = garbage.clone();
            stream.push(0);
            stream.extend(frame_of(&msg));
            let got = read_all(&stream, piece);
            let last = got.last().unwrap().as_ref().unwrap();
            prop_assert_eq!(decode_host(last).unwrap(), msg);
        }

        /// Any single flipped bit inside a frame is reported as an error, never as a message.
        #[test]
        fn single_bit_errors_are_detected(bit in 0usize..8, at in any::<prop::sample::Index>(), skew in any::<i32>()) {
            let msg = HostMsg::Send(SendChunk { id: 1, offset: 0, last: true,
                plan: FaultPlan { skew_ppm: skew, ..FaultPlan::default() }, data: b"/KFM5KAIFA-METER\r\n\r\n!1E1D\r\n" });
            let mut frame = frame_of(&msg);
            let i = at.index(frame.len() - 1);
            frame[i] ^= 1 << bit;
            for body in read_all(&frame, 16).into_iter().flatten() {
                prop_assert!(false, "corrupted frame read as {:?}", decode_host(&body));
            }
        }
    }
}
