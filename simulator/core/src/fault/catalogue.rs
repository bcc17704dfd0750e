//! The human side of the fault catalogue: a one-line description, the field problem it comes
//! from, and a TOML example for each fault (`p1sim faults`).

/// One entry: name, what it does, where it is seen, an example `[[fault]]` table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub name: &'static str,
    pub description: &'static str,
    pub seen: &'static str,
    pub example: &'static str,
}

/// Every fault of [`super::Fault`], in the order `p1sim faults` lists them.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        name: "wrong-crc",
        description: "the CRC digits are replaced by a wrong value",
        seen: "line noise; a Sagemcom T211 passing only every ~8th CRC, ndokter/dsmr_parser#91 \
               (docs/quirks.md#wrong-crc)",
        example: "kind = \"wrong-crc\"",
    },
    Entry {
        name: "lowercase-crc",
        description: "the CRC is written in lowercase hex",
        seen: "DIY simulators printing %04x; dsmr_parser's regex needs uppercase (docs/quirks.md#lowercase-crc)",
        example: "kind = \"lowercase-crc\"",
    },
    Entry {
        name: "unpadded-crc",
        description: "leading zeros of the CRC are dropped (!B9F)",
        seen: "the NWA Warmtelink heat unit, ndokter/dsmr_parser PR #173 (docs/quirks.md#unpadded-crc)",
        example: "kind = \"unpadded-crc\"",
    },
    Entry {
        name: "missing-crc",
        description: "nothing follows the `!`",
        seen: "a DSMR 4+ telegram sent like DSMR 2.2, which has no CRC (docs/quirks.md#missing-crc)",
        example: "kind = \"missing-crc\"",
    },
    Entry {
        name: "truncate",
        description: "the telegram stops after N bytes, or at a random point",
        seen: "Request dropped mid-telegram: DSMR 5.0.2 §5.7.1 stops sending at once \
               (docs/quirks.md#truncated-telegrams)",
        example: "kind = \"truncate\"\nat = \"random\"",
    },
    Entry {
        name: "garbage-before",
        description: "random bytes (never `/`) before the telegram",
        seen: "line noise while idle; a reader opened mid-telegram (docs/quirks.md#noise-between-telegrams)",
        example: "kind = \"garbage-before\"\nbytes = 16",
    },
    Entry {
        name: "garbage-after",
        description: "random bytes (never `/`) after the telegram",
        seen: "gateway trailers after `!` on EasyMeter (docs/quirks.md#gateway-trailer-and-0xff-padding)",
        example: "kind = \"garbage-after\"\nbytes = 8",
    },
    Entry {
        name: "slash-inside",
        description: "a `/` inside a data value (CRC recomputed unless crc = \"keep\")",
        seen: "Holley DTSD545 /HLY5/D545-METER breaks `/`-based framing (docs/quirks.md#slash-inside-a-telegram)",
        example: "kind = \"slash-inside\"\ncrc = \"recompute\"",
    },
    Entry {
        name: "nul-after-crc",
        description: "a NUL byte between the CRC and CRLF",
        seen: "accepted by dsmr_parser since its 'NULL value fix in checksum', PR #26 (docs/quirks.md#nul-after-the-crc)",
        example: "kind = \"nul-after-crc\"",
    },
    Entry {
        name: "ff-padding",
        description: "0xFF bytes after the telegram",
        seen: "EasyMeter through a COM-1 gateway; UnicodeDecodeError on 0xFF \
               (docs/quirks.md#gateway-trailer-and-0xff-padding)",
        example: "kind = \"ff-padding\"\nbytes = 64",
    },
    Entry {
        name: "drop-line",
        description: "a data line is lost (CRC kept unless crc = \"recompute\")",
        seen: "readers losing lines when reading in 500-byte chunks (docs/quirks.md#lost-and-repeated-lines)",
        example: "kind = \"drop-line\"\nline = 3",
    },
    Entry {
        name: "duplicate-line",
        description: "a data line arrives twice (CRC kept unless crc = \"recompute\")",
        seen: "buffer handling bugs in serial bridges (docs/quirks.md#lost-and-repeated-lines)",
        example: "kind = \"duplicate-line\"",
    },
    Entry {
        name: "lf-only",
        description: "lines end in LF instead of CRLF (CRC over the LF text unless crc = \"keep\")",
        seen: "logs and simulators that lost the CR; node-dsmr-parser splits on CRLF only \
               (docs/quirks.md#lf-only-line-endings)",
        example: "kind = \"lf-only\"",
    },
    Entry {
        name: "oversize",
        description: "a long text message in 0-0:96.13.0 (1024 characters = 2048 hex digits)",
        seen: "buffers of 1500, 2048 or 3000 bytes in readers (docs/quirks.md#oversize-telegrams)",
        example: "kind = \"oversize\"\nchars = 1024",
    },
    Entry {
        name: "bit-flip",
        description: "bits flipped at a bit-error rate or at exact (byte, bit) positions",
        seen: "long or noisy cables, overloaded Raspberry Pi UARTs (docs/quirks.md#bit-errors)",
        example: "kind = \"bit-flip\"\nber = 1e-4\n# or: positions = [[12, 3], [40, 7]]",
    },
    Entry {
        name: "placeholder",
        description: "a placeholder value: clock-not-set, no-data or ghost-mbus",
        seen: "000101010000W on new L+G meters, 632525252525W on Fluvius, Iskra's empty channel 1 \
               (docs/quirks.md#placeholder-timestamps, docs/quirks.md#ghost-m-bus-channel)",
        example: "kind = \"placeholder\"\nvalue = \"clock-not-set\"",
    },
    Entry {
        name: "lowercase-units",
        description: "units in lowercase (kwh, kw, v, a)",
        seen: "node-dsmr-parser's lowercase spec example test (docs/quirks.md#lowercase-units)",
        example: "kind = \"lowercase-units\"",
    },
    Entry {
        name: "space-after-obis",
        description: "a space between an OBIS code and its first bracket",
        seen: "esphome-libs' 'Whitespace after OBIS ID' test (docs/quirks.md#space-after-the-obis-code)",
        example: "kind = \"space-after-obis\"",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_points_at_its_field_problem() {
        // `cargo xtask tidy` checks that each anchor exists in docs/quirks.md.
        for e in CATALOGUE {
            assert!(e.seen.contains("docs/quirks.md#"), "{}: `seen` names no section of docs/quirks.md", e.name);
        }
    }

    #[test]
    fn every_example_parses_as_its_fault() {
        for e in CATALOGUE {
            let f: super::super::Fault = toml::from_str(e.example).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(f.name(), e.name);
        }
    }
}
