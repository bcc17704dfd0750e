//! The normalized JSON form of a decoded telegram (`p1sim decode --json`, the conformance schema):
//!
//! `{"header": "ISK5\\2M550T-1012", "crc": "1E1D", "crc_ok": true, "objects": [{"obis": "1-0:1.8.1",
//! "values": [{"value": "001234.567", "unit": "kWh"}]}]}`
//!
//! Two fields appear only where they say something: `"end"` (`next-header`, `end-of-input` or
//! `silence`) for a telegram that came without `!`, and `"tag"` (`verified` or `unchecked`) for
//! one that came in an encrypted frame.
//!
//! Bytes are mapped one to one onto code points (Latin-1), so a corrupted byte such as 0xB1 shows
//! as `\u00b1` instead of being lost.

use alloc::vec::Vec;

use super::{End, Frame};

/// Appends one JSON object (no trailing newline) describing `frame`.
pub fn write_frame(frame: &Frame<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"header\": ");
    write_str(frame.header(), out);
    out.extend_from_slice(b", \"crc\": ");
    match frame.crc_text() {
        Some(c) => write_str(c, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b", \"crc_ok\": ");
    out.extend_from_slice(match frame.crc_ok() {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
    if frame.end() != End::Marker {
        out.extend_from_slice(b", \"end\": ");
        write_str(frame.end().name().as_bytes(), out);
    }
    if let Some(tag) = frame.tag {
        out.extend_from_slice(b", \"tag\": ");
        write_str(tag.name().as_bytes(), out);
    }
    out.extend_from_slice(b", \"objects\": [");
    for (i, o) in frame.objects().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"{\"obis\": ");
        write_str(o.obis_text, out);
        out.extend_from_slice(b", \"values\": [");
        for (j, (text, unit)) in o.values().enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"{\"value\": ");
            write_str(text, out);
            out.extend_from_slice(b", \"unit\": ");
            match unit {
                Some(u) => write_str(u, out),
                None => out.extend_from_slice(b"null"),
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
}

/// A JSON string of raw bytes, each byte one code point.
pub fn write_str(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7E => out.push(b),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoder, Event};

    #[test]
    fn the_documented_example() {
        let t = b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(001234.567*kWh)\r\n!";
        let crc = crate::crc::crc_hex(crate::crc::crc16(t));
        let mut input = t.to_vec();
        input.extend_from_slice(&crc);
        input.extend_from_slice(b"\r\n");
        let mut out = Vec::new();
        let mut d = Decoder::new();
        d.feed(&input, |ev| {
            if let Event::Telegram(f) = ev {
                write_frame(&f, &mut out);
            }
        });
        let expected = alloc::format!(
            "{{\"header\": \"ISK5\\\\2M550T-1012\", \"crc\": \"{}\", \"crc_ok\": true, \"objects\": [{{\"obis\": \"1-0:1.8.1\", \"values\": [{{\"value\": \"001234.567\", \"unit\": \"kWh\"}}]}}]}}",
            core::str::from_utf8(&crc).unwrap()
        );
        assert_eq!(core::str::from_utf8(&out).unwrap(), expected);
    }

    #[test]
    fn bytes_map_to_code_points() {
        let mut out = Vec::new();
        write_str(b"a\"\\\x01\xB1", &mut out);
        assert_eq!(out, b"\"a\\\"\\\\\\u0001\\u00b1\"");
    }
}
