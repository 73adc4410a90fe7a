//! libpcap's capture-filter compiler, loaded at run time (dlopen through libloading), so
//! building linkscope needs no C library and a missing libpcap only matters when a filter
//! is used. A child of `sys`, the crate's one module with `unsafe`.
//!
//! [`Libpcap::compile`] turns an expression into classic BPF instructions with
//! `pcap_open_dead(DLT_EN10MB, snaplen)` and `pcap_compile`; the instructions are copied out
//! so the caller runs them without libpcap. [`Libpcap::offline_filter`] runs a program
//! through libpcap's own `pcap_offline_filter`, the reference the crate's interpreter is
//! tested against.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::Mutex;

use libloading::Library;

/// The shared objects tried, in order: Debian's libpcap0.8 (which tshark depends on), then
/// the development symlink other systems have.
const NAMES: [&str; 3] = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

/// `DLT_EN10MB`: Ethernet.
const DLT_EN10MB: c_int = 1;

/// `PCAP_NETMASK_UNKNOWN`: the filter's `ip broadcast` cannot be resolved.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;

/// The snapshot length libpcap uses for "whole frames".
const MAX_SNAPLEN: c_int = 262_144;

/// One classic BPF instruction, laid out as libpcap's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut Insn,
}

/// `struct pcap_pkthdr`.
#[repr(C)]
struct PktHdr {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile =
    unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type Close = unsafe extern "C" fn(*mut c_void);
type OfflineFilter = unsafe extern "C" fn(*const BpfProgram, *const PktHdr, *const u8) -> c_int;

/// Older libpcaps' compiler keeps global state: one compile at a time.
static COMPILING: Mutex<()> = Mutex::new(());

/// The loaded libpcap and the functions used, looked up once.
#[derive(Debug)]
pub struct Libpcap {
    open_dead: OpenDead,
    compile: Compile,
    geterr: GetErr,
    freecode: FreeCode,
    close: Close,
    offline_filter: OfflineFilter,
    /// Keeps the functions above loaded.
    _library: Library,
}

impl Libpcap {
    /// Loads the first of libpcap's names the dynamic loader finds; the error says which
    /// names were tried and what the loader said about the last.
    pub fn load() -> Result<Libpcap, String> {
        let mut last = String::new();
        for name in NAMES {
            // SAFETY: loading libpcap runs its initialisers, which only set up its own
            // state; it is a system library that tshark and tcpdump load the same way.
            match unsafe { Library::new(name) } {
                Ok(library) => {
                    return Ok(Libpcap {
                        open_dead: symbol(&library, b"pcap_open_dead\0")?,
                        compile: symbol(&library, b"pcap_compile\0")?,
                        geterr: symbol(&library, b"pcap_geterr\0")?,
                        freecode: symbol(&library, b"pcap_freecode\0")?,
                        close: symbol(&library, b"pcap_close\0")?,
                        offline_filter: symbol(&library, b"pcap_offline_filter\0")?,
                        _library: library,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("none of {} loads ({last})", NAMES.join(", ")))
    }

    /// Compiles `expression` for Ethernet frames of up to `snaplen` bytes (0: whole
    /// frames), optimised as tcpdump does; the error is libpcap's own message.
    pub fn compile(&self, expression: &str, snaplen: u32) -> Result<Vec<Insn>, String> {
        let text = CString::new(expression)
            .map_err(|_| "the expression contains a NUL byte".to_owned())?;
        let snaplen = match c_int::try_from(snaplen) {
            Ok(0) | Err(_) => MAX_SNAPLEN,
            Ok(n) => n,
        };
        let (open_dead, compile, geterr, freecode, close) = (
            self.open_dead,
            self.compile,
            self.geterr,
            self.freecode,
            self.close,
        );
        let _one_at_a_time = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: pcap_open_dead only allocates a handle; it is closed below on every path.
        let handle = unsafe { open_dead(DLT_EN10MB, snaplen) };
        if handle.is_null() {
            return Err("pcap_open_dead failed".into());
        }
        let mut program = BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        // SAFETY: the handle is live, `program` is a valid bpf_program for libpcap to fill,
        // and `text` is a NUL-terminated string that outlives the call.
        let rc = unsafe { compile(handle, &mut program, text.as_ptr(), 1, NETMASK_UNKNOWN) };
        let outcome = if rc == 0 {
            let instructions = if program.bf_insns.is_null() {
                Vec::new()
            } else {
                // SAFETY: on success libpcap filled `program` with `bf_len` instructions at
                // `bf_insns`, laid out as `Insn` (struct bpf_insn); we copy them before
                // pcap_freecode releases them.
                unsafe { std::slice::from_raw_parts(program.bf_insns, program.bf_len as usize) }
                    .to_vec()
            };
            // SAFETY: `program` was filled by pcap_compile and is freed exactly once.
            unsafe { freecode(&mut program) };
            Ok(instructions)
        } else {
            // SAFETY: pcap_geterr returns a NUL-terminated string owned by the live handle;
            // it is copied before the handle is closed.
            let message = unsafe { CStr::from_ptr(geterr(handle)) };
            Err(message.to_string_lossy().into_owned())
        };
        // SAFETY: the handle came from pcap_open_dead and is closed exactly once.
        unsafe { close(handle) };
        outcome
    }

    /// libpcap's verdict on `frame` (captured whole) for `program`: true when it matches.
    pub fn offline_filter(&self, program: &[Insn], frame: &[u8]) -> Result<bool, String> {
        let filter = self.offline_filter;
        let length = u32::try_from(frame.len()).map_err(|_| "frame too long".to_owned())?;
        let program = BpfProgram {
            bf_len: c_uint::try_from(program.len()).map_err(|_| "program too long".to_owned())?,
            bf_insns: program.as_ptr().cast_mut(),
        };
        let header = PktHdr {
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            caplen: length,
            len: length,
        };
        // SAFETY: pcap_offline_filter only reads the program (`bf_len` instructions that
        // live in the borrowed slice), the header, and `caplen` bytes of the frame.
        Ok(unsafe { filter(&program, &header, frame.as_ptr()) } != 0)
    }
}

/// A function of `library`, by its NUL-terminated name.
fn symbol<T: Copy>(library: &Library, name: &[u8]) -> Result<T, String> {
    // SAFETY: every `T` asked for is the function type of libpcap's documented prototype
    // for that name (pcap(3PCAP)); the copy is kept in a `Libpcap` together with the
    // library, which stays loaded as long as the copy can be called.
    unsafe { library.get::<T>(name) }
        .map(|symbol| *symbol)
        .map_err(|e| e.to_string())
}
