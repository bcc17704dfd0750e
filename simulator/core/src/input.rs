//! Reading what users hand p1sim: files through a size cap, and TOML tables whose every key keeps
//! its position, so that errors name the file, line, column and key of the real mistake.
//!
//! Every file p1sim reads whole goes through [`read_bounded`]: `/dev/zero`, a runaway generator
//! or a mistyped path to a disk image fails at once with the limit in the message, instead of
//! growing the process until the kernel kills it. Parsers of new file kinds (boards, test plans)
//! read through the same function with a limit of their own.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::profile::load::ProfileError;

const MIB: u64 = 1 << 20;

/// A cap on the size of one input file, with the words that name it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The most bytes accepted.
    pub bytes: u64,
    /// What the file is (`profile`, `events file`, ...), for messages.
    pub what: &'static str,
}

impl Limit {
    /// Profiles, fault scenarios and events files: far beyond any real one (the largest shipped
    /// profile is under 8 KiB; ten thousand events take about 1 MiB).
    pub const TOML: u64 = 16 * MIB;
    /// Meter state files: a real one is a few KiB (ten failures, thirteen months of peaks, a
    /// 1024-character message).
    pub const STATE: u64 = 16 * MIB;

    pub const fn new(what: &'static str, bytes: u64) -> Limit {
        Limit { bytes, what }
    }
}

impl core::fmt::Display for Limit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the {} limit for a {}", human_bytes(self.bytes), self.what)
    }
}

/// `16 MiB`, `64 KiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

/// Reads a whole file of at most `limit.bytes` bytes. Longer files (and endless ones such as
/// `/dev/zero`) fail after reading one byte past the limit, with an error that names it.
pub fn read_bounded(path: &Path, limit: Limit) -> std::io::Result<Vec<u8>> {
    match read_prefix(path, limit)? {
        Prefix { bytes, whole: true } => Ok(bytes),
        Prefix { whole: false, .. } => Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("it is larger than {limit}; is this the right file?"),
        )),
    }
}

/// The start of a file, at most `limit.bytes` of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub bytes: Vec<u8>,
    /// The file ended within the limit: `bytes` is all of it.
    pub whole: bool,
}

/// Reads at most `limit.bytes` bytes from the start of a file, for inputs where the first part
/// is as good as the whole (a capture of a serial line): a longer file, or an endless one, is
/// cut at the limit, and [`Prefix::whole`] says so.
pub fn read_prefix(path: &Path, limit: Limit) -> std::io::Result<Prefix> {
    let file = std::fs::File::open(path)?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(std::io::Error::other("it is a directory"));
    }
    let mut bytes = Vec::new();
    file.take(limit.bytes + 1).read_to_end(&mut bytes)?;
    let whole = bytes.len() as u64 <= limit.bytes;
    bytes.truncate(limit.bytes as usize);
    Ok(Prefix { bytes, whole })
}

/// [`read_bounded`] for text: the file must be UTF-8.
pub fn read_bounded_text(path: &Path, limit: Limit) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// One TOML table with the position of every key and value, e.g. one `[[fault]]` or `[[events]]`.
pub type LocatedTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// A located table, with where it sits in its file, turned into typed values with errors that
/// point at the offending key.
#[derive(Debug)]
pub struct TableAt<'a> {
    pub file: &'a str,
    pub text: &'a str,
    /// The whole table (from its `[[...]]` header).
    pub span: Range<usize>,
    pub table: &'a LocatedTable,
}

impl TableAt<'_> {
    /// The key's span, if the table has it.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.keys().find(|k| k.get_ref() == key).map(|k| k.span())
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Spanned<toml::Value>> {
        self.table.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }

    /// An error at `key` (or at the table's start when it has no such key).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ProfileError {
        let offset = self.key_span(key).map_or(self.span.start, |s| s.start);
        ProfileError::at(self.file, self.text, offset, Some(key), message)
    }

    /// An error about the table as a whole (a missing key).
    pub fn error_at_table(&self, key: &str, message: impl Into<String>) -> ProfileError {
        ProfileError::at(self.file, self.text, self.span.start, Some(key), message)
    }

    /// The table without the keys in `skip`, as a plain TOML table.
    pub fn plain(&self, skip: &[&str]) -> toml::Table {
        self.table
            .iter()
            .filter(|(k, _)| !skip.contains(&k.get_ref().as_str()))
            .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
            .collect()
    }

    /// Deserializes the table (less `skip`) as `T`. A type or value error is pinned on the key
    /// that causes it: the one serde names, or else the one whose removal changes the error.
    /// Keys `T` does not use are refused by name, also where serde would ignore them (the unit
    /// variants of an internally tagged enum): `T` is serialized back and every key it lost is
    /// unknown. `tag` names the key that picks the variant; `context` starts every message.
    pub fn parse<T: DeserializeOwned + serde::Serialize>(
        &self,
        skip: &[&str],
        tag: &str,
        context: &str,
    ) -> Result<T, ProfileError> {
        let plain = self.plain(skip);
        let value: T = match toml::Value::Table(plain.clone()).try_into::<T>() {
            Ok(v) => v,
            Err(e) => {
                let message = e.message().trim().to_string();
                let key = self.blame::<T>(&plain, &message, tag);
                return Err(match key {
                    Some(k) => self.error(&k, format!("{context}: {message}")),
                    None => self.error_at_table(tag, format!("{context}: {message}")),
                });
            }
        };
        let back = toml::Table::try_from(&value).unwrap_or_default();
        if let Some(extra) = plain.keys().find(|k| !back.contains_key(*k)) {
            let tag_value = plain.get(tag).and_then(toml::Value::as_str).unwrap_or("this");
            return Err(self.error(extra, format!("{context}: unknown key `{extra}` for {tag} {tag_value:?}")));
        }
        Ok(value)
    }

    /// Which key an error message is about.
    fn blame<T: DeserializeOwned>(&self, plain: &toml::Table, message: &str, tag: &str) -> Option<String> {
        for marker in ["unknown field `", "duplicate field `"] {
            if let Some(rest) = message.split(marker).nth(1) {
                let name = &rest[..rest.find('`')?];
                if plain.contains_key(name) {
                    return Some(name.to_string());
                }
            }
        }
        if message.contains("unknown variant") || message.contains(&format!("missing field `{tag}`")) {
            return Some(tag.to_string());
        }
        if message.starts_with("missing field") {
            return None;
        }
        // A bad value: the key whose removal makes the error go away or become "missing".
        plain.keys().filter(|k| k.as_str() != tag).find_map(|k| {
            let mut without = plain.clone();
            without.remove(k);
            match toml::Value::Table(without).try_into::<T>() {
                Ok(_) => Some(k.clone()),
                Err(e) if e.message().contains(&format!("missing field `{k}`")) => Some(k.clone()),
                Err(_) => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_oversized_files_fail_naming_the_limit() {
        let limit = Limit::new("profile", 1024);
        let e = read_bounded(Path::new("/dev/zero"), limit).unwrap_err();
        assert!(e.to_string().contains("1 KiB limit for a profile"), "{e}");
        let dir = std::env::temp_dir().join(format!("p1sim-input-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exact = dir.join("exact.toml");
        std::fs::write(&exact, vec![b'#'; 1024]).unwrap();
        assert_eq!(read_bounded(&exact, limit).unwrap().len(), 1024);
        assert_eq!(read_prefix(&exact, limit).unwrap(), Prefix { bytes: vec![b'#'; 1024], whole: true });
        std::fs::write(&exact, vec![b'#'; 1025]).unwrap();
        assert!(read_bounded(&exact, limit).is_err());
        assert_eq!(read_prefix(&exact, limit).unwrap(), Prefix { bytes: vec![b'#'; 1024], whole: false });
        let zeros = read_prefix(Path::new("/dev/zero"), limit).unwrap();
        assert_eq!((zeros.bytes.len(), zeros.whole), (1024, false), "an endless file is cut at the limit");
        assert!(read_bounded(&dir, limit).unwrap_err().to_string().contains("directory"));
        std::fs::write(&exact, [0xFF, 0xFE]).unwrap();
        assert!(read_bounded_text(&exact, limit).unwrap_err().to_string().contains("UTF-8"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(64 << 10), "64 KiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
