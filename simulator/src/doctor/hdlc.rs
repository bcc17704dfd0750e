//! HDLC frames as DLMS/COSEM HAN meters send them instead of P1 telegrams (the Norwegian HAN
//! port, and Aidon and Kamstrup meters in Sweden set to it): a `0x7E` flag, a frame format field
//! of type `0xA` with an 11-bit length, addresses, control, a header check sequence, the
//! information field and a frame check sequence (CRC-16/X.25, least significant byte first),
//! then the next flag (IEC 62056-46 §6.4). The information field of a push is an LLC header
//! `E6 E7 00` and a data-notification APDU (tag `0x0F`, IEC 62056-6-2 / DLMS Green Book).

use p1sim_core::crc::crc16_hdlc;

const FLAG: u8 = 0x7E;
const LLC: [u8; 3] = [0xE6, 0xE7, 0x00];
const DATA_NOTIFICATION: u8 = 0x0F;

/// What an HDLC scan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hdlc {
    /// Frames between flags whose format field and length fit.
    pub frames: u64,
    /// Of those, frames whose frame check sequence matches.
    pub valid: u64,
    /// Valid frames carrying a DLMS data-notification.
    pub notifications: u64,
    /// Bytes inside valid frames, flags included.
    pub bytes: u64,
}

impl Hdlc {
    /// Whether the capture holds HDLC at all: frames that check out, not a chance `0x7E 0xA.`.
    pub fn found(&self) -> bool {
        self.valid > 0
    }
}

/// Scans `bytes` for HDLC frames.
pub fn scan(bytes: &[u8]) -> Hdlc {
    let mut found = Hdlc::default();
    let mut i = 0;
    while i + 3 < bytes.len() {
        if bytes[i] != FLAG || bytes[i + 1] >> 4 != 0xA {
            i += 1;
            continue;
        }
        let len = usize::from(bytes[i + 1] & 0x07) << 8 | usize::from(bytes[i + 2]);
        let end = i + 1 + len;
        // The shortest frame: format (2), two one-byte addresses, control and the FCS.
        if len < 7 || end >= bytes.len() || bytes[end] != FLAG {
            i += 1;
            continue;
        }
        found.frames += 1;
        let frame = &bytes[i + 1..end];
        if !check(frame) {
            i += 1;
            continue;
        }
        found.valid += 1;
        found.bytes += len as u64 + 2;
        if information(frame).is_some_and(|info| info.starts_with(&LLC) && info.get(3) == Some(&DATA_NOTIFICATION)) {
            found.notifications += 1;
        }
        // The closing flag may open the next frame.
        i = end;
    }
    found
}

/// Whether the frame check sequence over the frame (format field to the byte before the FCS)
/// matches.
fn check(frame: &[u8]) -> bool {
    let (body, fcs) = frame.split_at(frame.len() - 2);
    crc16_hdlc(body) == u16::from_le_bytes([fcs[0], fcs[1]])
}

/// The information field of a checked frame: after the format field, the two addresses (1-4
/// bytes each, the last with its low bit set), the control byte and the header check sequence.
fn information(frame: &[u8]) -> Option<&[u8]> {
    let mut at = 2;
    for _ in 0..2 {
        let len = frame.get(at..)?.iter().take(4).position(|b| b & 1 == 1)? + 1;
        at += len;
    }
    at += 1 + 2;
    let hcs_ok = crc16_hdlc(frame.get(..at - 2)?) == u16::from_le_bytes([*frame.get(at - 2)?, *frame.get(at - 1)?]);
    (hcs_ok && at <= frame.len() - 2).then(|| &frame[at..frame.len() - 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A push as Aidon's HAN description draws it: format A0 2A, destination 0x41, source
    /// 0x0883 (two bytes), control 0x13, then the LLC header and a data-notification carrying one
    /// OBIS code (1-0:1.7.0) and a double-long-unsigned value; HCS and FCS computed here.
    fn push() -> Vec<u8> {
        let mut header = vec![0xA0, 0x00, 0x41, 0x08, 0x83, 0x13];
        let hcs = crc16_hdlc(&header);
        header.extend_from_slice(&hcs.to_le_bytes());
        let info = [
            0xE6, 0xE7, 0x00, 0x0F, 0x40, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x09, 0x06, 0x01, 0x00, 0x01, 0x07, 0x00,
            0xFF, 0x06, 0x00, 0x00, 0x04, 0xD2,
        ];
        header.extend_from_slice(&info);
        let len = header.len() + 2;
        header[0] = 0xA0 | (len >> 8) as u8;
        header[1] = len as u8;
        // The length changed the header: recompute both check sequences.
        let hcs = crc16_hdlc(&header[..6]);
        header[6..8].copy_from_slice(&hcs.to_le_bytes());
        let fcs = crc16_hdlc(&header);
        header.extend_from_slice(&fcs.to_le_bytes());
        let mut frame = vec![FLAG];
        frame.extend_from_slice(&header);
        frame.push(FLAG);
        frame
    }

    #[test]
    fn finds_checked_frames_and_their_notifications() {
        let one = push();
        let mut stream = b"noise".to_vec();
        for _ in 0..3 {
            stream.extend_from_slice(&one);
        }
        let h = scan(&stream);
        assert_eq!((h.frames, h.valid, h.notifications), (3, 3, 3), "{h:?}");
        assert_eq!(h.bytes, 3 * one.len() as u64);
        assert!(h.found());
    }

    #[test]
    fn a_damaged_frame_or_a_chance_flag_is_not_hdlc() {
        let mut bad = push();
        bad[20] ^= 0x10;
        let h = scan(&bad);
        assert_eq!((h.frames, h.valid), (1, 0));
        assert!(!scan(b"~\xA0\x07 not a frame ~").found());
        assert!(!scan(b"/ISK5\\2M550T-1012\r\n\r\n!ABCD\r\n").found());
        assert!(!scan(&[]).found() && !scan(&[FLAG, 0xA0]).found());
    }
}
