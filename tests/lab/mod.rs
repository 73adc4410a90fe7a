// Shared by several test binaries (the lab suite, the namespace tests), each using a part of it.
#![allow(dead_code)]

//! The lab: real QEMU VMs, network namespaces as hosts, taps, lldpd, kernel bridges and
//! tshark, driven from integration tests.
//!
//! Every test that uses it first calls [`prereq::ready`] (VM tests: [`prereq::vm_image`],
//! which also provides the VM image) with what it needs; a missing prerequisite skips the
//! test with a printed reason, or fails it under `LINKSCOPE_REQUIRE_LAB=1`. Everything made
//! here (VMs, namespaces, taps, daemons, capture processes) is owned by a value that tears it
//! down on drop, so a failing test leaves nothing behind. The slot limit in [`vm`] (two VMs
//! at once) holds per process; cargo runs test binaries one after another, so VM tests live
//! in tests/lab_vm.rs and tests/lab_measure.rs only.

pub mod capture;
pub mod daemons;
pub mod image;
pub mod netns;
pub mod plan;
pub mod prereq;
pub mod scenario;
pub mod vm;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A name unique in this machine for this run: `prefix`, the process id and a counter.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id())
}

/// Runs `cmd`, returning its stdout, or an error with the command line, status and stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Sends `signal` (e.g. "TERM") to process `pid`.
pub fn signal(pid: u32, signal: &str) -> Result<(), String> {
    run(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string()))
    .map(drop)
}

/// Reserves a free UDP port on 127.0.0.1 the way the rules ask: bind port 0 and read it back.
/// The sockets are closed before returning, so the ports are free for QEMU to bind; the
/// ports of one call are distinct.
pub fn free_udp_ports<const N: usize>() -> [u16; N] {
    let sockets: Vec<std::net::UdpSocket> = (0..N)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| sockets[i].local_addr().expect("local_addr").port())
}
