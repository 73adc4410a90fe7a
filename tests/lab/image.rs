//! The test VM image (kernel and initramfs), built once by build-image.sh into
//! `target/lab-image/<hash of the script>/` and reused by every later run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

const SCRIPT: &str = include_str!("build-image.sh");
const SCRIPT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/build-image.sh");

/// Paths of a built image.
#[derive(Clone, Debug)]
pub struct Image {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// The image, built on first use (once per process; concurrent processes build into private
/// directories and the first rename wins).
pub fn image() -> Result<Image, String> {
    static BUILT: OnceLock<Image> = OnceLock::new();
    static BUILDING: Mutex<()> = Mutex::new(());
    if let Some(image) = BUILT.get() {
        return Ok(image.clone());
    }
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(image) = BUILT.get() {
        return Ok(image.clone());
    }
    let image = build()?;
    Ok(BUILT.get_or_init(|| image).clone())
}

fn build() -> Result<Image, String> {
    let dir = cache_root().join(format!("{:016x}", fnv1a(SCRIPT.as_bytes())));
    let image = Image {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
    };
    if image.kernel.exists() && image.initrd.exists() {
        return Ok(image);
    }
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = super::run(Command::new("bash").arg(SCRIPT_PATH).arg(&tmp));
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("building the lab VM image failed: {e}"));
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process finished first; its image is the same.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    remove_stale(&dir);
    if image.kernel.exists() && image.initrd.exists() {
        Ok(image)
    } else {
        Err(format!("no image in {} after building", dir.display()))
    }
}

/// Removes images built by earlier versions of the script (complete ones only: a
/// `<hash>.tmp<pid>` may be another process's build in progress).
fn remove_stale(current: &Path) {
    let (Some(root), Some(name)) = (current.parent(), current.file_name()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name();
        let is_image = other.len() == 16
            && other
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
        if is_image && other != name {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `target/lab-image`, found from the test executable (target/<profile>/deps/<exe>).
fn cache_root() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    target.join("lab-image")
}

/// FNV-1a, 64 bits: a stable content hash for the cache key.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
