//! The encrypted P1 frame of Luxembourg's Smarty and Austria's Sagemcom T210-D-r: a DLMS
//! general-glo-ciphering APDU around the telegram.
//!
//! Layout (Smarty P1 specification v1.1.3 §3.2.5): `DB 08 <system title:8> 82 <len:2> 30
//! <frame counter:4> <ciphertext> <tag:12>`, with len = 17 + plaintext length. AES-128-GCM,
//! IV = system title || frame counter, AAD = 0x30 || the authentication key. Smarty publishes
//! one authentication key for every meter ([`AUTH_KEY`]); meters that use another exist, which
//! is why readers can be given theirs, or decrypt without checking the tag and trust the
//! telegram's CRC instead ([`decrypt_unchecked`], docs/quirks.md).

use aes_gcm::aead::AeadInOut;
use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::consts::U12;
use aes_gcm::{AesGcm, KeyInit};
use core::fmt;
use ctr::cipher::{KeyIvInit, StreamCipher};

type Cipher = AesGcm<Aes128, U12, U12>;
/// GCM's keystream: AES in counter mode with a 32-bit big-endian counter after the 96-bit IV.
type Keystream = ctr::Ctr32BE<Aes128>;

pub const TAG_GENERAL_GLO_CIPHERING: u8 = 0xDB;
pub const SECURITY_CONTROL: u8 = 0x30;
/// The authentication key of the Smarty P1 specification §3.2.5, published for every meter.
pub const AUTH_KEY: [u8; 16] =
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF];
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 18;
pub const TAG_LEN: usize = 12;
/// Frame bytes beyond the plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not `DB 08 .. 82 .. .. 30`.
    BadHeader,
    /// The length field promises more bytes than were given.
    Truncated,
    /// The GCM tag does not match: wrong key, or the frame was corrupted.
    BadTag,
    /// The plaintext is longer than the two-byte length field allows.
    TooLong,
    /// Decrypted without the tag, the frame did not hold a telegram: the key is wrong.
    NotATelegram,
    /// Decrypted without the tag, the telegram's CRC does not match: wrong key or damage.
    PlaintextCrc,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::BadHeader => "not a general-glo-ciphering frame (expected DB 08 .. 82 .. .. 30)",
            FrameError::Truncated => "frame shorter than its length field says",
            FrameError::BadTag => "authentication tag mismatch: wrong key or corrupted frame",
            FrameError::TooLong => "telegram too long for one frame",
            FrameError::NotATelegram => "decrypted without the tag check, the frame holds no telegram: wrong key",
            FrameError::PlaintextCrc => {
                "decrypted without the tag check, the telegram's CRC does not match: wrong key or corrupted frame"
            }
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

fn aad(auth_key: &[u8; 16]) -> [u8; 17] {
    let mut a = [0u8; 17];
    a[0] = SECURITY_CONTROL;
    a[1..].copy_from_slice(auth_key);
    a
}

fn nonce(system_title: &[u8; 8], frame_counter: u32) -> aes_gcm::Nonce<U12> {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(system_title);
    iv[8..].copy_from_slice(&frame_counter.to_be_bytes());
    iv.into()
}

/// Encrypts a plaintext telegram into a frame, appended to `out`.
#[cfg(feature = "alloc")]
pub fn encrypt(
    key: &[u8; 16],
    auth_key: &[u8; 16],
    system_title: &[u8; 8],
    frame_counter: u32,
    plaintext: &[u8],
    out: &mut alloc::vec::Vec<u8>,
) -> Result<(), FrameError> {
    let len = plaintext.len() + 17;
    if len > usize::from(u16::MAX) {
        return Err(FrameError::TooLong);
    }
    out.push(TAG_GENERAL_GLO_CIPHERING);
    out.push(0x08);
    out.extend_from_slice(system_title);
    out.push(0x82);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(SECURITY_CONTROL);
    out.extend_from_slice(&frame_counter.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(plaintext);
    let cipher = Cipher::new(key.into());
    let tag = cipher
        .encrypt_inout_detached(&nonce(system_title, frame_counter), &aad(auth_key), (&mut out[start..]).into())
        .map_err(|_| FrameError::TooLong)?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// The fixed fields of a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub system_title: [u8; 8],
    pub frame_counter: u32,
    /// Total frame length in bytes, header and tag included.
    pub frame_len: usize,
}

/// Parses the 18-byte header; `Ok(None)` when fewer than 18 bytes are available yet.
pub fn parse_header(bytes: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
    let check = |i: usize, v: u8| bytes.get(i).is_none_or(|b| *b == v);
    if !(check(0, TAG_GENERAL_GLO_CIPHERING) && check(1, 0x08) && check(10, 0x82) && check(13, SECURITY_CONTROL)) {
        return Err(FrameError::BadHeader);
    }
    if bytes.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut system_title = [0u8; 8];
    system_title.copy_from_slice(&bytes[2..10]);
    let len = usize::from(u16::from_be_bytes([bytes[11], bytes[12]]));
    if len < 17 {
        return Err(FrameError::BadHeader);
    }
    let frame_counter = u32::from_be_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
    Ok(Some(FrameHeader { system_title, frame_counter, frame_len: 13 + len }))
}

/// Decrypts a complete frame in place, checking its tag against `auth_key`; returns the
/// plaintext slice of `frame`.
pub fn decrypt_in_place<'a>(key: &[u8; 16], auth_key: &[u8; 16], frame: &'a mut [u8]) -> Result<&'a [u8], FrameError> {
    let (header, body_end) = complete_frame(frame)?;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&frame[body_end..header.frame_len]);
    let cipher = Cipher::new(key.into());
    cipher
        .decrypt_inout_detached(
            &nonce(&header.system_title, header.frame_counter),
            &aad(auth_key),
            (&mut frame[HEADER_LEN..body_end]).into(),
            &tag.into(),
        )
        .map_err(|_| FrameError::BadTag)?;
    Ok(&frame[HEADER_LEN..body_end])
}

/// Decrypts a complete frame in place without checking its tag: GCM's keystream is AES-CTR
/// from counter 2 (counter 1 encrypts the tag). This gives up authentication; the caller must
/// check the telegram's CRC. A plaintext that does not start with `/` means a wrong key.
pub fn decrypt_unchecked<'a>(key: &[u8; 16], frame: &'a mut [u8]) -> Result<&'a [u8], FrameError> {
    let (header, body_end) = complete_frame(frame)?;
    let mut iv = [0u8; 16];
    iv[..12].copy_from_slice(&nonce(&header.system_title, header.frame_counter));
    iv[15] = 2;
    let mut keystream = Keystream::new(key.into(), &iv.into());
    let body = &mut frame[HEADER_LEN..body_end];
    keystream.apply_keystream(body);
    if body.first() != Some(&b'/') {
        return Err(FrameError::NotATelegram);
    }
    Ok(&frame[HEADER_LEN..body_end])
}

/// The header of a frame that is all there, and where its ciphertext ends.
fn complete_frame(frame: &[u8]) -> Result<(FrameHeader, usize), FrameError> {
    let header = parse_header(frame)?.ok_or(FrameError::Truncated)?;
    if frame.len() < header.frame_len {
        return Err(FrameError::Truncated);
    }
    Ok((header, header.frame_len - TAG_LEN))
}

/// Parses a 32-digit hex key.
pub fn parse_key(hex: &str) -> Option<[u8; 16]> {
    let b = hex.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *k = (hi * 16 + lo) as u8;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const KEY: [u8; 16] = [0xAA; 16];

    #[test]
    fn round_trip() {
        let plain = b"/Lux5\\253694471_M\r\n\r\n1-3:0.2.8(42)\r\n!1234\r\n";
        let mut frame = Vec::new();
        encrypt(&KEY, &AUTH_KEY, b"SAG10307", 7, plain, &mut frame).unwrap();
        assert_eq!(frame.len(), plain.len() + OVERHEAD);
        assert_eq!(&frame[..2], &[0xDB, 0x08]);
        assert_eq!(&frame[10..14], &[0x82, 0x00, (plain.len() + 17) as u8, 0x30]);
        assert_eq!(&frame[14..18], &[0, 0, 0, 7]);
        assert_ne!(&frame[18..18 + plain.len()], &plain[..], "the telegram is not sent in clear");
        let header = parse_header(&frame).unwrap().unwrap();
        assert_eq!(header.frame_len, frame.len());
        let mut unchecked = frame.clone();
        assert_eq!(decrypt_unchecked(&KEY, &mut unchecked).unwrap(), plain, "CTR from counter 2 is GCM's keystream");
        assert_eq!(decrypt_in_place(&KEY, &AUTH_KEY, &mut frame).unwrap(), plain);
    }

    #[test]
    fn another_authentication_key_fails_the_tag_but_not_unchecked_decryption() {
        let plain = b"/EST5\\253710000_A\r\n\r\n1-3:0.2.8(50)\r\n!1234\r\n";
        let mut frame = Vec::new();
        encrypt(&KEY, &[0xBB; 16], b"SAG10307", 9, plain, &mut frame).unwrap();
        assert_eq!(decrypt_in_place(&KEY, &AUTH_KEY, &mut frame.clone()), Err(FrameError::BadTag));
        assert_eq!(decrypt_in_place(&KEY, &[0xBB; 16], &mut frame.clone()).unwrap(), plain);
        assert_eq!(decrypt_unchecked(&KEY, &mut frame.clone()).unwrap(), plain);
        assert_eq!(decrypt_unchecked(&[0xAB; 16], &mut frame.clone()), Err(FrameError::NotATelegram));
    }

    #[test]
    fn wrong_key_or_corruption_fails_the_tag() {
        let mut frame = Vec::new();
        encrypt(&KEY, &AUTH_KEY, b"SYSTEMID", 1, b"/X5\r\n\r\n!0000\r\n", &mut frame).unwrap();
        let mut other = frame.clone();
        assert_eq!(decrypt_in_place(&[0xAB; 16], &AUTH_KEY, &mut other), Err(FrameError::BadTag));
        let mut flipped = frame.clone();
        flipped[20] ^= 1;
        assert_eq!(decrypt_in_place(&KEY, &AUTH_KEY, &mut flipped), Err(FrameError::BadTag));
    }

    #[test]
    fn keys_parse_from_hex() {
        assert_eq!(parse_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Some([0xAA; 16]));
        assert_eq!(parse_key("000102030405060708090a0b0c0d0e0f").unwrap()[15], 15);
        assert_eq!(parse_key("AAAA"), None);
        assert_eq!(parse_key("GGAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), None);
    }
}
