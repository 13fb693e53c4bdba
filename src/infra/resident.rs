//! Gives back the pages of lever's own code that only its start needed.
//!
//! Most of an idle lever's resident memory is not data but its executable: the kernel maps a
//! file's pages in 64 KiB windows around each page a process touches ("fault-around"), and
//! start-up (the command line, config, the store's schema, TLS roots) touches code all over
//! the binary, so ~6.5 MB of it stays mapped though an idle lever runs a small part. Once
//! lever is in its channels, [`forget_start_up_code`] tells the kernel it no longer needs
//! them (`madvise(MADV_DONTNEED)`). The pages stay in the page cache: what lever runs next
//! comes back on first use as a minor fault, no disk read, a few microseconds.
//!
//! Only mappings of lever's own executable that are not writable and hold no private copy are
//! dropped: for those, the file is the content, so dropping loses nothing. Relocated data
//! (RELRO) is read-only too but is a private copy; it is kept.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::ptr::NonNull;

/// What [`forget_start_up_code`] did, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// Resident kB in the mappings dropped, before.
    pub kb: u64,
    /// How many mappings.
    pub mappings: usize,
}

/// Drops lever's read-only, unmodified executable mappings from its resident set. Errors (no
/// /proc, an unexpected format) leave everything as it is: this only saves memory.
pub fn forget_start_up_code() -> std::io::Result<Forgotten> {
    let exe = fs::metadata("/proc/self/exe")?;
    let smaps = fs::read_to_string("/proc/self/smaps")?;
    let mut done = Forgotten::default();
    for mapping in parse_smaps(&smaps) {
        if !mapping.droppable(exe.dev(), exe.ino()) {
            continue;
        }
        let Some(start) = NonNull::new(mapping.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is one whole mapping of lever's executable that is not writable
        // and has no anonymous (private, modified) pages, so its content is the file's and
        // cannot change: after MADV_DONTNEED every access faults the same bytes back in from
        // the page cache. No Rust reference is invalidated; memory is unmapped from the page
        // tables only.
        let advised = unsafe {
            nix::sys::mman::madvise(
                start,
                mapping.end - mapping.start,
                nix::sys::mman::MmapAdvise::MADV_DONTNEED,
            )
        };
        if advised.is_ok() {
            done.kb += mapping.rss_kb;
            done.mappings += 1;
        }
    }
    Ok(done)
}

/// One mapping of /proc/self/smaps, the fields this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    shared: bool,
    dev: (u64, u64),
    inode: u64,
    rss_kb: u64,
    anonymous_kb: Option<u64>,
}

impl Mapping {
    fn droppable(&self, dev: u64, inode: u64) -> bool {
        self.dev == (nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
            && self.inode == inode
            && !self.writable
            && !self.shared
            && self.anonymous_kb == Some(0)
            && self.rss_kb > 0
    }
}

/// Parses smaps: a header line per mapping (`start-end perms offset major:minor inode path`),
/// then `Key: value kB` lines. Lines it does not understand are skipped.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(mapping) = parse_header(line) {
            out.push(mapping);
            continue;
        }
        let Some(last) = out.last_mut() else { continue };
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        match key {
            "Rss:" => last.rss_kb = value,
            "Anonymous:" => last.anonymous_kb = Some(value),
            _ => {}
        }
    }
    out
}

fn parse_header(line: &str) -> Option<Mapping> {
    let mut words = line.split_whitespace();
    let (start, end) = words.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = words.next()?.as_bytes();
    if perms.len() != 4 {
        return None;
    }
    let _offset = u64::from_str_radix(words.next()?, 16).ok()?;
    let (major, minor) = words.next()?.split_once(':')?;
    let dev = (
        u64::from_str_radix(major, 16).ok()?,
        u64::from_str_radix(minor, 16).ok()?,
    );
    let inode = words.next()?.parse().ok()?;
    Some(Mapping {
        start,
        end,
        writable: perms[1] == b'w',
        shared: perms[3] == b's',
        dev,
        inode,
        rss_kb: 0,
        anonymous_kb: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fd:01 1234                       /usr/bin/lever
Size:               1024 kB
Rss:                 900 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
55d0a0100000-55d0a0700000 r-xp 00100000 fd:01 1234                       /usr/bin/lever
Size:               6144 kB
Rss:                5000 kB
Anonymous:             0 kB
55d0a0700000-55d0a0750000 r--p 00700000 fd:01 1234                       /usr/bin/lever
Size:                320 kB
Rss:                 320 kB
Anonymous:           320 kB
55d0a0750000-55d0a0760000 rw-p 00750000 fd:01 1234                       /usr/bin/lever
Rss:                  40 kB
Anonymous:            40 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99                         /usr/lib/libc.so.6
Rss:                1400 kB
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  64 kB
Anonymous:            64 kB
";

    fn dev() -> u64 {
        nix::sys::stat::makedev(0xfd, 0x01)
    }

    #[test]
    fn only_the_executables_clean_read_only_mappings_are_dropped() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 6);
        let dropped: Vec<_> = maps.iter().filter(|m| m.droppable(dev(), 1234)).collect();
        assert_eq!(dropped.len(), 2, "{dropped:?}");
        assert_eq!(dropped[0].start, 0x55d0a0000000);
        assert_eq!(dropped[1].end, 0x55d0a0700000);
        assert_eq!(dropped[1].rss_kb, 5000);
        // RELRO (read-only but relocated), .data, another file and the stack stay.
        assert!(!maps[2].droppable(dev(), 1234));
        assert!(!maps[3].droppable(dev(), 1234));
        assert!(!maps[4].droppable(dev(), 1234));
        assert!(!maps[5].droppable(dev(), 1234));
    }

    #[test]
    fn a_mapping_whose_anonymous_count_is_unknown_is_kept() {
        let text =
            "55d0a0000000-55d0a0100000 r--p 00000000 fd:01 1234 /usr/bin/lever\nRss: 900 kB\n";
        let maps = parse_smaps(text);
        assert!(!maps[0].droppable(dev(), 1234));
    }

    #[test]
    fn forgetting_shrinks_the_resident_code_and_it_still_runs() {
        let resident = || -> u64 {
            let exe = fs::metadata("/proc/self/exe").expect("exe");
            let smaps = fs::read_to_string("/proc/self/smaps").expect("smaps");
            parse_smaps(&smaps)
                .iter()
                .filter(|m| m.droppable(exe.dev(), exe.ino()))
                .map(|m| m.rss_kb)
                .sum()
        };
        let before = resident();
        let done = forget_start_up_code().expect("forget");
        let after = resident();
        assert!(done.mappings > 0 && done.kb > 0, "{done:?}");
        // Reading smaps again ran code (and faulted some back in; so may the tests running
        // beside this one), but less than was there.
        assert!(
            after < before,
            "resident code {before} kB before, {after} kB after"
        );
        // Code and constant data read as before.
        assert_eq!(parse_smaps(SMAPS).len(), 6);
    }
}
