//! Ring buffer of capture files with dumpcap's file naming (`-b filesize:KB|duration:S|files:N`).
//!
//! For `-w DIR/NAME.EXT` the files are `DIR/NAME_NNNNN_YYYYmmddHHMMSS.EXT`: NNNNN the file's
//! number counted from 00001 (modulo 100000, as dumpcap does), the time the file was opened
//! in local time. The extension is what follows the last `.` of the last path component;
//! without one, the name ends after the time. A file is complete on its own (section header,
//! interface descriptions, statistics at the end); beyond `files:N` the oldest is deleted.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;

/// dumpcap numbers ring files modulo this (RINGBUFFER_MAX_NUM_FILES).
const NUMBER_MODULUS: u64 = 100_000;

/// When to switch files and how many to keep.
#[derive(Debug)]
pub(super) struct Ring {
    prefix: PathBuf,
    suffix: OsString,
    filesize: Option<u64>,
    duration: Option<Duration>,
    files: Option<u32>,
    opened: u64,
    kept: VecDeque<PathBuf>,
    zone: TimeZone,
}

impl Ring {
    /// A ring for `path` (the `-w` argument); at least one of `filesize_kb` (kB = 1000
    /// bytes, as dumpcap counts) and `duration` must say when to switch files. `files` of
    /// `None` or 0 keeps every file.
    pub fn new(
        path: &Path,
        filesize_kb: Option<u64>,
        duration: Option<Duration>,
        files: Option<u32>,
    ) -> crate::Result<Ring> {
        let argument = |message: &str| crate::Error::Argument {
            field: "ring buffer".into(),
            message: message.into(),
        };
        if filesize_kb.is_none() && duration.is_none() {
            return Err(argument(
                "needs filesize:KB or duration:S to know when to switch files",
            ));
        }
        if filesize_kb == Some(0) || duration == Some(Duration::ZERO) {
            return Err(argument("filesize and duration must be greater than 0"));
        }
        let Some(name) = path.file_name() else {
            return Err(argument(&format!(
                "{} does not name a file",
                path.display()
            )));
        };
        let name = name.as_bytes();
        let (stem, suffix) = match name.iter().rposition(|&b| b == b'.') {
            Some(dot) => (&name[..dot], &name[dot..]),
            None => (name, &[][..]),
        };
        Ok(Ring {
            prefix: path.with_file_name(OsString::from_vec(stem.to_vec())),
            suffix: OsString::from_vec(suffix.to_vec()),
            filesize: filesize_kb.map(|kb| kb.saturating_mul(1000)),
            duration,
            files: files.filter(|&n| n > 0),
            opened: 0,
            kept: VecDeque::new(),
            zone: TimeZone::system(),
        })
    }

    /// The name of the next file, opened at `now`.
    pub fn next_path(&mut self, now: SystemTime) -> PathBuf {
        self.opened += 1;
        file_name(&self.prefix, &self.suffix, self.opened, now, &self.zone)
    }

    /// Records that `path` is now being written; returns the files to delete (the oldest
    /// beyond `files:N`, the current one counted).
    pub fn retire(&mut self, path: PathBuf) -> Vec<PathBuf> {
        self.kept.push_back(path);
        let keep = self.files.map_or(usize::MAX, |n| n as usize);
        let excess = self.kept.len().saturating_sub(keep);
        self.kept.drain(..excess).collect()
    }

    /// True when the current file must be closed before the next frame: it holds frames and
    /// has reached the size limit, or it has been open for the duration.
    pub fn due(&self, size: u64, frames: u64, age: Duration) -> bool {
        let full = self
            .filesize
            .is_some_and(|limit| frames > 0 && size >= limit);
        let old = self.duration.is_some_and(|limit| age >= limit);
        full || old
    }
}

/// `{prefix}_{number % 100000:05}_{local time %Y%m%d%H%M%S}{suffix}`, dumpcap's pattern.
fn file_name(
    prefix: &Path,
    suffix: &OsString,
    number: u64,
    time: SystemTime,
    zone: &TimeZone,
) -> PathBuf {
    let stamp = match jiff::Timestamp::try_from(time) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y%m%d%H%M%S")
            .to_string(),
        Err(_) => "19691231235959".to_owned(),
    };
    let mut name = prefix.as_os_str().to_owned();
    name.push(format!("_{:05}_{stamp}", number % NUMBER_MODULUS));
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_ring(path: &str, files: Option<u32>) -> Ring {
        let mut ring = Ring::new(Path::new(path), Some(10), None, files).unwrap();
        ring.zone = TimeZone::UTC;
        ring
    }

    // 2024-07-14 16:44:26 UTC
    const TIME: u64 = 1_720_975_466;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn names_follow_dumpcap() {
        let mut ring = utc_ring("/tmp/cap.d/log.pcapng", None);
        assert_eq!(
            ring.next_path(at(TIME)),
            Path::new("/tmp/cap.d/log_00001_20240714164426.pcapng")
        );
        assert_eq!(
            ring.next_path(at(TIME + 61)),
            Path::new("/tmp/cap.d/log_00002_20240714164527.pcapng")
        );
    }

    #[test]
    fn suffix_is_after_the_last_dot_of_the_file_name_only() {
        let mut ring = utc_ring("/tmp/cap.d/log", None);
        assert_eq!(
            ring.next_path(at(TIME)),
            Path::new("/tmp/cap.d/log_00001_20240714164426")
        );
        let mut ring = utc_ring("out.pcapng.gz", None);
        assert_eq!(
            ring.next_path(at(TIME)),
            Path::new("out.pcapng_00001_20240714164426.gz")
        );
    }

    #[test]
    fn numbers_wrap_like_dumpcap() {
        let zone = TimeZone::UTC;
        let name = file_name(
            Path::new("x"),
            &OsString::from(".pcapng"),
            100_001,
            at(0),
            &zone,
        );
        assert_eq!(name, Path::new("x_00001_19700101000000.pcapng"));
    }

    #[test]
    fn local_time_names_use_the_zone() {
        let zone = TimeZone::fixed(jiff::tz::offset(2));
        let name = file_name(Path::new("x"), &OsString::new(), 3, at(TIME), &zone);
        assert_eq!(name, Path::new("x_00003_20240714184426"));
    }

    #[test]
    fn retire_keeps_the_newest_files() {
        let mut ring = utc_ring("x.pcapng", Some(2));
        assert!(ring.retire("1".into()).is_empty());
        assert!(ring.retire("2".into()).is_empty());
        assert_eq!(ring.retire("3".into()), vec![PathBuf::from("1")]);
        assert_eq!(ring.retire("4".into()), vec![PathBuf::from("2")]);
        let mut unlimited = utc_ring("x.pcapng", Some(0));
        for n in 0..10 {
            assert!(unlimited.retire(n.to_string().into()).is_empty());
        }
    }

    #[test]
    fn due_by_size_needs_a_frame_and_by_duration_does_not() {
        let ring = Ring::new(Path::new("x"), Some(1), Some(Duration::from_secs(5)), None).unwrap();
        assert!(!ring.due(999, 3, Duration::ZERO));
        assert!(ring.due(1000, 3, Duration::ZERO));
        assert!(!ring.due(5000, 0, Duration::ZERO));
        assert!(ring.due(10, 0, Duration::from_secs(5)));
    }

    #[test]
    fn a_ring_needs_a_switch_condition_and_a_file_name() {
        let err = Ring::new(Path::new("x"), None, None, Some(3)).unwrap_err();
        assert!(err.is_input());
        assert!(err.to_string().contains("filesize"), "{err}");
        assert!(Ring::new(Path::new("x"), Some(0), None, None).is_err());
        assert!(Ring::new(Path::new("/"), Some(1), None, None).is_err());
    }
}
