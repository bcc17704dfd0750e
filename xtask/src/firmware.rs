//! `cargo xtask firmware`: builds the RP2040 rig firmware (its own workspace in `rig-firmware/`),
//! turns the ELF into a UF2 for BOOTSEL drag-and-drop, and reports flash and RAM use; and
//! `cargo xtask firmware-test`: lints the firmware (its own clippy, both builds) and runs it in the
//! rp2040js emulator harness.
//!
//! The UF2 writer is here rather than a tool to install: it is forty lines, and the only
//! maintained converter (`elf2uf2-rs`) drags in libudev for its flashing mode.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo_bin, ensure_target, root};

const TARGET: &str = "thumbv6m-none-eabi";
const BIN: &str = "p1sim-rig";

/// RP2040 family ID in UF2 block headers.
const RP2040_FAMILY: u32 = 0xE48B_FF56;
const FLASH: std::ops::Range<u32> = 0x1000_0000..0x1100_0000;
const RAM: std::ops::Range<u32> = 0x2000_0000..0x2004_2000;

/// What to build.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Pocket meter: a profile name or path; host-driven when `None`.
    pub profile: Option<String>,
    pub seed: Option<String>,
    pub key: Option<String>,
}

impl Options {
    /// Parses `--profile NAME [--seed N] [--key HEX]`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                "--profile" => o.profile = Some(value("--profile")?),
                "--seed" => o.seed = Some(value("--seed")?),
                "--key" => o.key = Some(value("--key")?),
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; use: cargo xtask firmware [--profile NAME [--seed N] [--key HEX]]"
                    ));
                }
            }
        }
        Ok(o)
    }
}

/// A built image: the UF2 the emulator tests load (the ELF sits next to it).
#[derive(Debug)]
pub struct Built {
    pub uf2: PathBuf,
}

/// Builds the firmware, writes the UF2 and prints the sizes.
pub fn build(opts: &Options) -> Result<Built, String> {
    ensure_target(TARGET)?;
    let dir = root().join("rig-firmware");
    // The two variants differ in features; separate target directories keep both cached.
    let (target_dir, stem) = match &opts.profile {
        None => (dir.join("target"), BIN.to_string()),
        Some(p) => {
            let name = Path::new(p).file_stem().map_or(p.clone(), |s| s.to_string_lossy().into_owned());
            (dir.join("target/standalone"), format!("{BIN}-{name}"))
        }
    };
    let mut cmd = Command::new(cargo_bin());
    cmd.args(["build", "--release", "--locked"]).current_dir(&dir).env("CARGO_TARGET_DIR", &target_dir);
    // The host workspace's settings must not reach the firmware build.
    cmd.env_remove("RUSTFLAGS").env_remove("CARGO_BUILD_TARGET");
    if let Some(p) = &opts.profile {
        // The pocket meter is a meter, not a test rig: no sensors.
        cmd.args(["--no-default-features", "--features", "standalone"]).env("P1SIM_PROFILE", p);
        match &opts.seed {
            Some(s) => cmd.env("P1SIM_SEED", s),
            None => cmd.env_remove("P1SIM_SEED"),
        };
        match &opts.key {
            Some(k) => cmd.env("P1SIM_KEY", k),
            None => cmd.env_remove("P1SIM_KEY"),
        };
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo for the firmware: {e}"))?;
    if !status.success() {
        return Err("the firmware build failed (see the cargo output above)".into());
    }
    let elf_in = target_dir.join(TARGET).join("release").join(BIN);
    let elf = fs::read(&elf_in).map_err(|e| format!("cannot read {}: {e}", elf_in.display()))?;
    let out_dir = root().join("target/rig-firmware");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let elf_out = out_dir.join(format!("{stem}.elf"));
    let uf2_out = out_dir.join(format!("{stem}.uf2"));
    fs::write(&elf_out, &elf).map_err(|e| format!("cannot write {}: {e}", elf_out.display()))?;
    let uf2 = elf_to_uf2(&elf)?;
    fs::write(&uf2_out, &uf2).map_err(|e| format!("cannot write {}: {e}", uf2_out.display()))?;
    let (flash, ram) = sizes(&elf)?;
    eprintln!(
        "xtask: firmware {}: flash {flash} B ({:.1} KiB), static RAM {ram} B ({:.1} KiB); UF2 {} blocks\n  {}\n  {}",
        opts.profile.as_deref().unwrap_or("host-driven"),
        f64::from(flash) / 1024.0,
        f64::from(ram) / 1024.0,
        uf2.len() / 512,
        elf_out.display(),
        uf2_out.display()
    );
    Ok(Built { uf2: uf2_out })
}

/// Lints the firmware with clippy, warnings denied, in both builds: it is its own workspace, so
/// the host workspace's clippy never sees it.
pub fn clippy() -> Result<(), String> {
    ensure_target(TARGET)?;
    let dir = root().join("rig-firmware");
    for features in [&[][..], &["--no-default-features", "--features", "standalone"][..]] {
        let status = Command::new(cargo_bin())
            .args(["clippy", "--release", "--locked"])
            .args(features)
            .args(["--", "-D", "warnings"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("P1SIM_PROFILE")
            .status()
            .map_err(|e| format!("cannot run cargo clippy for the firmware: {e}"))?;
        if !status.success() {
            return Err(format!("clippy found problems in the firmware ({})", features.join(" ")));
        }
    }
    Ok(())
}

/// Lints both firmware variants, builds the host-driven and a standalone image, then runs the
/// emulator tests on them.
pub fn test() -> Result<(), String> {
    clippy()?;
    let host = build(&Options::default())?;
    let pocket = build(&Options { profile: Some("iskra-am550".into()), ..Options::default() })?;
    let emu = root().join("rig-firmware/emulator");
    if !emu.join("node_modules/rp2040js/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&emu)
            .status()
            .map_err(|e| format!("cannot run npm (install Node 20 and npm): {e}"))?;
        if !status.success() {
            return Err(format!("npm ci failed in {}", emu.display()));
        }
    }
    let status = Command::new("node")
        .arg("test.mjs")
        .arg(&host.uf2)
        .arg(&pocket.uf2)
        .current_dir(&emu)
        .status()
        .map_err(|e| format!("cannot run node (install Node 20): {e}"))?;
    if !status.success() {
        return Err("emulator tests failed".into());
    }
    bench_on_emulator(&host.uf2)
}

/// `p1sim bench` against the host-driven firmware in the emulator, reached over TCP through
/// `bridge.mjs`, with a loopback standing in for a working board: the same client, plan and
/// phases as against a real rig.
fn bench_on_emulator(uf2: &Path) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let emu = root().join("rig-firmware/emulator");
    let mut bridge = Command::new("node")
        .arg("bridge.mjs")
        .arg(uf2)
        .current_dir(&emu)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run node bridge.mjs: {e}"))?;
    let mut lines = BufReader::new(bridge.stdout.take().expect("piped")).lines();
    let addr = match lines.next() {
        Some(Ok(l)) if l.starts_with("listening ") => l["listening ".len()..].to_string(),
        other => {
            let _ = bridge.kill();
            return Err(format!("the emulator bridge did not start: {other:?}"));
        }
    };
    let record = root().join("target/rig-firmware/bench-emulated.json");
    let status = Command::new(cargo_bin())
        .args(["run", "--quiet", "--locked", "-p", "p1sim", "--", "bench", "--rig"])
        .arg(format!("tcp://{addr}"))
        .args(["--plan", "rig-firmware/emulator/bench-plan.toml", "--patience", "40", "--serial-number", "emulated"])
        .arg("--json")
        .arg(&record)
        .current_dir(root())
        .status();
    drop(bridge.stdin.take());
    let _ = bridge.wait();
    for line in lines.map_while(Result::ok) {
        println!("bridge: {line}");
    }
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            Err(format!("p1sim bench against the emulated rig exited with {s}; the record is {}", record.display()))
        }
        Err(e) => Err(format!("cannot run p1sim bench: {e}")),
    }
}

/// A 32-bit little-endian ELF's program and section headers, as far as this needs them.
struct Elf<'a> {
    data: &'a [u8],
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Elf<'a>, String> {
        if data.len() < 52 || &data[..4] != b"\x7fELF" || data[4] != 1 || data[5] != 1 {
            return Err("not a 32-bit little-endian ELF file".into());
        }
        Ok(Elf { data })
    }

    fn u16(&self, at: usize) -> Result<u16, String> {
        self.data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or_else(|| "truncated ELF".into())
    }

    fn u32(&self, at: usize) -> Result<u32, String> {
        self.data
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated ELF".into())
    }

    /// PT_LOAD segments: (physical address, file offset, file size, memory size).
    fn loads(&self) -> Result<Vec<(u32, u32, u32, u32)>, String> {
        let (phoff, phentsize, phnum) = (self.u32(28)? as usize, self.u16(42)? as usize, self.u16(44)? as usize);
        let mut out = Vec::new();
        for i in 0..phnum {
            let h = phoff + i * phentsize;
            if self.u32(h)? == 1 {
                out.push((self.u32(h + 12)?, self.u32(h + 4)?, self.u32(h + 16)?, self.u32(h + 20)?));
            }
        }
        Ok(out)
    }

    /// Allocated sections: (address, size, is NOBITS).
    fn alloc_sections(&self) -> Result<Vec<(u32, u32, bool)>, String> {
        let (shoff, shentsize, shnum) = (self.u32(32)? as usize, self.u16(46)? as usize, self.u16(48)? as usize);
        let mut out = Vec::new();
        for i in 0..shnum {
            let h = shoff + i * shentsize;
            const SHF_ALLOC: u32 = 2;
            const SHT_NOBITS: u32 = 8;
            if self.u32(h + 8)? & SHF_ALLOC != 0 {
                out.push((self.u32(h + 12)?, self.u32(h + 20)?, self.u32(h + 4)? == SHT_NOBITS));
            }
        }
        Ok(out)
    }
}

/// Flash bytes (everything loaded into flash, `.data`'s initial values included) and static
/// RAM bytes (`.data`, `.bss`, `.uninit`; the stack comes on top).
fn sizes(elf: &[u8]) -> Result<(u32, u32), String> {
    let e = Elf::parse(elf)?;
    let flash = e.loads()?.iter().filter(|l| FLASH.contains(&l.0)).map(|l| l.2).sum();
    let ram = e.alloc_sections()?.iter().filter(|s| RAM.contains(&s.0)).map(|s| s.1).sum();
    Ok((flash, ram))
}

/// ELF to UF2: every loaded byte destined for flash, in 256-byte pages, one per 512-byte block.
pub fn elf_to_uf2(elf: &[u8]) -> Result<Vec<u8>, String> {
    let e = Elf::parse(elf)?;
    // Page address -> page contents; gaps inside a page stay zero, as elf2uf2 leaves them.
    let mut pages: std::collections::BTreeMap<u32, [u8; 256]> = std::collections::BTreeMap::new();
    for (addr, off, filesz, _) in e.loads()? {
        if filesz == 0 || !FLASH.contains(&addr) {
            continue;
        }
        let bytes = elf
            .get(off as usize..(off + filesz) as usize)
            .ok_or_else(|| format!("segment at {addr:#x} runs past the end of the ELF"))?;
        for (i, b) in bytes.iter().enumerate() {
            let a = addr + i as u32;
            pages.entry(a & !0xFF).or_insert([0; 256])[(a & 0xFF) as usize] = *b;
        }
    }
    if pages.is_empty() {
        return Err("the ELF has nothing to put in flash".into());
    }
    let total = pages.len() as u32;
    let mut out = Vec::with_capacity(pages.len() * 512);
    for (n, (addr, page)) in pages.iter().enumerate() {
        for word in [0x0A32_4655, 0x9E5D_5157, 0x0000_2000, *addr, 256, n as u32, total, RP2040_FAMILY] {
            out.extend_from_slice(&u32::to_le_bytes(word));
        }
        out.extend_from_slice(page);
        out.extend_from_slice(&[0; 476 - 256]);
        out.extend_from_slice(&u32::to_le_bytes(0x0AB1_6F30));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF with one PT_LOAD of `data` at `addr` and one allocated section.
    fn elf_with(addr: u32, data: &[u8], section: (u32, u32, u32)) -> Vec<u8> {
        let mut e = vec![0u8; 52];
        e[..6].copy_from_slice(b"\x7fELF\x01\x01");
        let phoff = 52u32;
        let shoff = phoff + 32;
        let data_off = shoff + 40;
        e[28..32].copy_from_slice(&phoff.to_le_bytes());
        e[32..36].copy_from_slice(&shoff.to_le_bytes());
        e[42..44].copy_from_slice(&32u16.to_le_bytes());
        e[44..46].copy_from_slice(&1u16.to_le_bytes());
        e[46..48].copy_from_slice(&40u16.to_le_bytes());
        e[48..50].copy_from_slice(&1u16.to_le_bytes());
        let mut ph = [0u8; 32];
        ph[0..4].copy_from_slice(&1u32.to_le_bytes());
        ph[4..8].copy_from_slice(&data_off.to_le_bytes());
        ph[12..16].copy_from_slice(&addr.to_le_bytes());
        ph[16..20].copy_from_slice(&(data.len() as u32).to_le_bytes());
        e.extend_from_slice(&ph);
        let mut sh = [0u8; 40];
        sh[4..8].copy_from_slice(&section.2.to_le_bytes());
        sh[8..12].copy_from_slice(&2u32.to_le_bytes());
        sh[12..16].copy_from_slice(&section.0.to_le_bytes());
        sh[20..24].copy_from_slice(&section.1.to_le_bytes());
        e.extend_from_slice(&sh);
        e.extend_from_slice(data);
        e
    }

    #[test]
    fn uf2_blocks_carry_256_byte_pages_for_the_rp2040() {
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let uf2 = elf_to_uf2(&elf_with(0x1000_0080, &data, (0x2000_0000, 1234, 8))).unwrap();
        assert_eq!(uf2.len(), 2 * 512, "bytes 0x80..0x1AC span two pages");
        let word =
            |b: usize, i: usize| u32::from_le_bytes(uf2[b * 512 + i * 4..b * 512 + i * 4 + 4].try_into().unwrap());
        assert_eq!(word(0, 0), 0x0A32_4655);
        assert_eq!(word(0, 3), 0x1000_0000);
        assert_eq!(word(1, 3), 0x1000_0100);
        assert_eq!((word(1, 5), word(1, 6), word(1, 7)), (1, 2, RP2040_FAMILY));
        assert_eq!(word(0, 127), 0x0AB1_6F30);
        // The page starts with the gap (zeros), then the data.
        assert_eq!(uf2[32 + 0x7F], 0);
        assert_eq!(uf2[32 + 0x80], 0);
        assert_eq!(uf2[32 + 0x81], 1);
        assert_eq!(uf2[512 + 32], (0x80u32) as u8);
    }

    #[test]
    fn sizes_split_flash_and_ram() {
        let elf = elf_with(0x1000_0000, &[1; 100], (0x2000_0000, 4096, 8));
        assert_eq!(sizes(&elf).unwrap(), (100, 4096));
        assert!(elf_to_uf2(b"not an elf").is_err());
        assert!(elf_to_uf2(&elf_with(0x2000_0000, &[1; 4], (0, 0, 0))).is_err());
    }

    #[test]
    fn arguments_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--profile", "iskra-am550", "--seed", "7"])).unwrap();
        assert_eq!(o.profile.as_deref(), Some("iskra-am550"));
        assert!(Options::parse(&args(&["--profile"])).is_err());
        assert!(Options::parse(&args(&["--bogus"])).is_err());
    }
}
