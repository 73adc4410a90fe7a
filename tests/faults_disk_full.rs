//! A capture that fills its disk: `linkscope splice -w` on a 64 KiB tmpfs stops on ENOSPC
//! with the file ending on its last whole block, which Wireshark's readers take without an
//! error. Needs root (to mount the tmpfs) and tshark; skips with the reason otherwise, and
//! fails then under LINKSCOPE_REQUIRE_LAB=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use support::process::{Running, linkscope};
use support::wireshark::{have, pcapng_blocks, tshark_reads_cleanly};

fn skip(test: &str, why: &str) {
    let reason = format!("{test}: skipped: {why}");
    assert!(
        std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
        "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
    );
    eprintln!("{reason}");
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "linkscope-full-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "cannot mount a tmpfs (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn frame(tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 1400];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, tag]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

fn capture_until_the_disk_is_full(disk: &Path) -> (PathBuf, String, Option<i32>) {
    let end = || support::tunnel::end(Some(Duration::from_millis(20)));
    let (a, b) = (end(), end());
    let capture = disk.join("full.pcapng");
    let mut splice = Running(
        linkscope()
            .arg("splice")
            .arg("--a")
            .arg(a.local_addr().unwrap().to_string())
            .arg("--b")
            .arg(b.local_addr().unwrap().to_string())
            .arg("-w")
            .arg(&capture)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let to = b.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0; 2048];
    let mut tag = 0u8;
    let status = loop {
        if let Some(status) = splice.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the splice kept running on a full disk"
        );
        tag = tag.wrapping_add(1);
        for _ in 0..8 {
            a.send_to(&frame(tag), to).unwrap();
        }
        while b.recv_from(&mut buf).is_ok() {}
    };
    let stderr = splice.stderr();
    (capture, stderr, status.code())
}

#[test]
fn a_full_disk_ends_the_capture_on_its_last_whole_block() {
    let test = "a_full_disk_ends_the_capture_on_its_last_whole_block";
    if !have("tshark", test) || !have("capinfos", test) {
        return;
    }
    let disk = match SmallDisk::mount("64k") {
        Ok(disk) => disk,
        Err(why) => return skip(test, &why),
    };
    let (capture, stderr, code) = capture_until_the_disk_is_full(&disk.dir);
    assert_eq!(code, Some(1), "an I/O error exits 1: {stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("full.pcapng"),
        "the error names the file and the cause: {stderr}"
    );
    let bytes = std::fs::read(&capture).unwrap();
    let (blocks, _) = pcapng_blocks(&bytes)
        .unwrap_or_else(|torn| panic!("{} bytes, a torn block at byte offset {torn}", bytes.len()));
    assert!(blocks > 3, "frames were captured before the disk filled");
    let capinfos = Command::new("capinfos").arg(&capture).output().unwrap();
    let report = String::from_utf8_lossy(&capinfos.stdout).into_owned()
        + &String::from_utf8_lossy(&capinfos.stderr);
    assert!(capinfos.status.success(), "capinfos: {report}");
    assert!(!report.contains("error"), "capinfos: {report}");
    let frames = tshark_reads_cleanly(&capture).lines().count();
    assert!(frames + 3 <= blocks, "{frames} frames in {blocks} blocks");
}
