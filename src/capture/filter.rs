//! Capture filters in libpcap syntax (`not stp`, `udp port 53`, `vlan and arp`), as users of
//! tcpdump, dumpcap and ubridge write them.
//!
//! [`Filter::compile`] hands the expression to libpcap's own compiler, loaded at run time
//! (see [`crate::net::sys::pcap`]): the syntax and meaning are exactly libpcap's, and a
//! missing libpcap is an error only when a filter is used. The compiled classic BPF program
//! then runs here, in [`Filter::matches`], without libpcap: an interpreter with the
//! semantics of libpcap's `bpf_filter` (a load past the frame's end rejects the frame), which
//! the tests compare with libpcap's `pcap_offline_filter` on many frames.
//!
//! A filter only ever chooses which copies a consumer sees ([`Filtered`] wraps a copy-channel
//! consumer); forwarding is never filtered.

use crate::net::sys::pcap::{Insn, Libpcap};
use crate::splice::copy::{Consumer, CopyRecord, Next};

/// A compiled capture filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    expression: String,
    program: Vec<Insn>,
    ops: Vec<Op>,
}

/// Scratch memory words of classic BPF (`BPF_MEMWORDS`).
const MEMWORDS: usize = 16;

impl Filter {
    /// Compiles `expression` for Ethernet frames of up to `snaplen` bytes (0: whole frames).
    /// An invalid expression is an argument error carrying libpcap's message; a system
    /// without libpcap is [`crate::Error::Libpcap`].
    pub fn compile(expression: &str, snaplen: u32) -> crate::Result<Filter> {
        let libpcap = Libpcap::load().map_err(crate::Error::Libpcap)?;
        let program =
            libpcap
                .compile(expression, snaplen)
                .map_err(|message| crate::Error::Argument {
                    field: "capture filter".into(),
                    message: format!("{expression:?}: {message}"),
                })?;
        Ok(Filter {
            expression: expression.to_owned(),
            ops: decode(&program),
            program,
        })
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The compiled program.
    pub fn program(&self) -> &[Insn] {
        &self.program
    }

    /// Whether `frame` (a whole Ethernet frame) passes the filter.
    #[inline]
    pub fn matches(&self, frame: &[u8]) -> bool {
        execute(&self.ops, frame) != 0
    }
}

/// One classic BPF instruction, decoded once when the filter is compiled so that running it
/// is a single match per instruction. Memory indices are checked here; an instruction
/// libpcap's `bpf_filter` would not run becomes [`Op::Reject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    LdImm(u32),
    LdxImm(u32),
    LdAbsW(u32),
    LdAbsH(u32),
    LdAbsB(u32),
    LdIndW(u32),
    LdIndH(u32),
    LdIndB(u32),
    LdMem(u8),
    LdxMem(u8),
    LdLen,
    LdxLen,
    LdxMsh(u32),
    St(u8),
    Stx(u8),
    Alu(AluOp, Operand),
    Neg,
    Ja(u32),
    JeqK(u32, u8, u8),
    JgtK(u32, u8, u8),
    JgeK(u32, u8, u8),
    JsetK(u32, u8, u8),
    JmpX(Cond, u8, u8),
    RetK(u32),
    RetA,
    RetX,
    Tax,
    Txa,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Or,
    And,
    Lsh,
    Rsh,
    Mod,
    Xor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    K(u32),
    X,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
}

/// Decodes libpcap's instructions (`struct bpf_insn`, codes as in `<pcap/bpf.h>`).
fn decode(program: &[Insn]) -> Vec<Op> {
    program.iter().map(|i| decode_one(*i)).collect()
}

fn decode_one(Insn { code, jt, jf, k }: Insn) -> Op {
    let memory = |k: u32| u8::try_from(k).ok().filter(|&m| usize::from(m) < MEMWORDS);
    let operand = if code & 0x08 != 0 {
        Operand::X
    } else {
        Operand::K(k)
    };
    match code & 0x07 {
        // BPF_LD: size in 0x18 (W 0x00, H 0x08, B 0x10), mode in 0xe0.
        0x00 => match (code & 0xe0, code & 0x18) {
            (0x00, _) => Op::LdImm(k),
            (0x20, 0x00) => Op::LdAbsW(k),
            (0x20, 0x08) => Op::LdAbsH(k),
            (0x20, 0x10) => Op::LdAbsB(k),
            (0x40, 0x00) => Op::LdIndW(k),
            (0x40, 0x08) => Op::LdIndH(k),
            (0x40, 0x10) => Op::LdIndB(k),
            (0x60, _) => memory(k).map_or(Op::Reject, Op::LdMem),
            (0x80, _) => Op::LdLen,
            _ => Op::Reject,
        },
        // BPF_LDX
        0x01 => match code & 0xe0 {
            0x00 => Op::LdxImm(k),
            0x60 => memory(k).map_or(Op::Reject, Op::LdxMem),
            0x80 => Op::LdxLen,
            0xa0 => Op::LdxMsh(k),
            _ => Op::Reject,
        },
        0x02 => memory(k).map_or(Op::Reject, Op::St),
        0x03 => memory(k).map_or(Op::Reject, Op::Stx),
        // BPF_ALU
        0x04 => {
            let op = match code & 0xf0 {
                0x00 => AluOp::Add,
                0x10 => AluOp::Sub,
                0x20 => AluOp::Mul,
                0x30 => AluOp::Div,
                0x40 => AluOp::Or,
                0x50 => AluOp::And,
                0x60 => AluOp::Lsh,
                0x70 => AluOp::Rsh,
                0x80 => return Op::Neg,
                0x90 => AluOp::Mod,
                0xa0 => AluOp::Xor,
                _ => return Op::Reject,
            };
            Op::Alu(op, operand)
        }
        // BPF_JMP
        0x05 => {
            let cond = match code & 0xf0 {
                0x00 => return Op::Ja(k),
                0x10 => Cond::Eq,
                0x20 => Cond::Gt,
                0x30 => Cond::Ge,
                0x40 => Cond::Set,
                _ => return Op::Reject,
            };
            match (operand, cond) {
                (Operand::X, cond) => Op::JmpX(cond, jt, jf),
                (Operand::K(k), Cond::Eq) => Op::JeqK(k, jt, jf),
                (Operand::K(k), Cond::Gt) => Op::JgtK(k, jt, jf),
                (Operand::K(k), Cond::Ge) => Op::JgeK(k, jt, jf),
                (Operand::K(k), Cond::Set) => Op::JsetK(k, jt, jf),
            }
        }
        // BPF_RET: K 0x00, X 0x08, A 0x10.
        0x06 => match code & 0x18 {
            0x00 => Op::RetK(k),
            0x08 => Op::RetX,
            0x10 => Op::RetA,
            _ => Op::Reject,
        },
        // BPF_MISC: TAX 0x00, TXA 0x80.
        _ => match code & 0xf8 {
            0x00 => Op::Tax,
            0x80 => Op::Txa,
            _ => Op::Reject,
        },
    }
}

/// The 4 bytes of `frame` at `at`, big-endian; None past the end.
#[inline(always)]
fn word(frame: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    match frame.get(at..at.checked_add(4)?) {
        Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

/// The 2 bytes of `frame` at `at`, big-endian; None past the end.
#[inline(always)]
fn half(frame: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    match frame.get(at..at.checked_add(2)?) {
        Some(&[a, b]) => Some(u32::from(u16::from_be_bytes([a, b]))),
        _ => None,
    }
}

/// The byte of `frame` at `at`; None past the end.
#[inline(always)]
fn byte(frame: &[u8], at: u64) -> Option<u32> {
    frame.get(usize::try_from(at).ok()?).map(|&b| u32::from(b))
}

/// Runs a decoded program over `frame` as libpcap's `bpf_filter` does, returning the
/// program's result (0: reject). An empty program accepts everything; a load beyond the
/// frame, a division by zero or a jump out of the program rejects the frame.
#[inline]
fn execute(program: &[Op], frame: &[u8]) -> u32 {
    if program.is_empty() {
        return u32::MAX;
    }
    let length = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let (mut a, mut x) = (0u32, 0u32);
    let mut memory = [0u32; MEMWORDS];
    let mut pc = 0usize;
    macro_rules! fetch {
        ($value:expr) => {
            match $value {
                Some(v) => v,
                None => return 0,
            }
        };
    }
    while let Some(op) = program.get(pc) {
        pc += 1;
        match *op {
            Op::LdImm(k) => a = k,
            Op::LdxImm(k) => x = k,
            Op::LdAbsW(k) => a = fetch!(word(frame, u64::from(k))),
            Op::LdAbsH(k) => a = fetch!(half(frame, u64::from(k))),
            Op::LdAbsB(k) => a = fetch!(byte(frame, u64::from(k))),
            Op::LdIndW(k) => a = fetch!(word(frame, u64::from(k) + u64::from(x))),
            Op::LdIndH(k) => a = fetch!(half(frame, u64::from(k) + u64::from(x))),
            Op::LdIndB(k) => a = fetch!(byte(frame, u64::from(k) + u64::from(x))),
            Op::LdMem(m) => a = memory[usize::from(m)],
            Op::LdxMem(m) => x = memory[usize::from(m)],
            Op::LdLen => a = length,
            Op::LdxLen => x = length,
            Op::LdxMsh(k) => x = (fetch!(byte(frame, u64::from(k))) & 0x0f) << 2,
            Op::St(m) => memory[usize::from(m)] = a,
            Op::Stx(m) => memory[usize::from(m)] = x,
            Op::Alu(op, operand) => {
                let v = match operand {
                    Operand::K(k) => k,
                    Operand::X => x,
                };
                a = match op {
                    AluOp::Add => a.wrapping_add(v),
                    AluOp::Sub => a.wrapping_sub(v),
                    AluOp::Mul => a.wrapping_mul(v),
                    AluOp::Div => fetch!(a.checked_div(v)),
                    AluOp::Or => a | v,
                    AluOp::And => a & v,
                    AluOp::Lsh => a.checked_shl(v).unwrap_or(0),
                    AluOp::Rsh => a.checked_shr(v).unwrap_or(0),
                    AluOp::Mod => fetch!(a.checked_rem(v)),
                    AluOp::Xor => a ^ v,
                };
            }
            Op::Neg => a = a.wrapping_neg(),
            Op::Ja(k) => pc = fetch!(pc.checked_add(k as usize)),
            Op::JeqK(k, jt, jf) => pc += usize::from(if a == k { jt } else { jf }),
            Op::JgtK(k, jt, jf) => pc += usize::from(if a > k { jt } else { jf }),
            Op::JgeK(k, jt, jf) => pc += usize::from(if a >= k { jt } else { jf }),
            Op::JsetK(k, jt, jf) => pc += usize::from(if a & k != 0 { jt } else { jf }),
            Op::JmpX(cond, jt, jf) => {
                let taken = match cond {
                    Cond::Eq => a == x,
                    Cond::Gt => a > x,
                    Cond::Ge => a >= x,
                    Cond::Set => a & x != 0,
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            Op::RetK(k) => return k,
            Op::RetA => return a,
            Op::RetX => return x,
            Op::Tax => x = a,
            Op::Txa => a = x,
            Op::Reject => return 0,
        }
    }
    0
}

/// A copy-channel consumer that hands on only the frames a filter passes (all of them
/// without a filter).
#[derive(Debug)]
pub struct Filtered<C> {
    filter: Option<Filter>,
    inner: C,
}

impl<C> Filtered<C> {
    /// `inner`, seeing only the frames `filter` passes.
    pub fn new(inner: C, filter: Option<Filter>) -> Filtered<C> {
        Filtered { filter, inner }
    }

    /// The wrapped consumer.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: Consumer> Consumer for Filtered<C> {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        match &self.filter {
            Some(filter) if !filter.matches(record.data) => Ok(Next::Continue),
            _ => self.inner.record(record),
        }
    }

    fn flush(&mut self) -> crate::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &[Insn], frame: &[u8]) -> u32 {
        execute(&decode(program), frame)
    }

    /// libpcap, or None with the reason printed (a failure under LINKSCOPE_REQUIRE_LAB=1).
    fn libpcap(test: &str) -> Option<Libpcap> {
        match Libpcap::load() {
            Ok(l) => Some(l),
            Err(e) => {
                let reason = format!("{test}: skipped: libpcap does not load: {e}");
                assert!(
                    std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
                    "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
                );
                eprintln!("{reason}");
                None
            }
        }
    }

    /// Ethernet frames of many kinds: IPv4/IPv6 UDP, TCP and ICMP, ARP, VLAN-tagged (once
    /// and twice), STP (LLC), LLDP, LACP, runts and truncated headers.
    fn frames() -> Vec<Vec<u8>> {
        use etherparse::PacketBuilder;
        let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut out = Vec::new();
        let payload = [7u8; 20];
        let udp4 = PacketBuilder::ethernet2(a, b)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5353, 53);
        let mut f = Vec::new();
        udp4.write(&mut f, &payload).unwrap();
        out.push(f);
        let tcp4 = PacketBuilder::ethernet2(a, b)
            .ipv4([10, 0, 0, 2], [192, 168, 1, 1], 64)
            .tcp(40000, 80, 1, 1000)
            .syn();
        let mut f = Vec::new();
        tcp4.write(&mut f, &payload).unwrap();
        out.push(f);
        let icmp4 = PacketBuilder::ethernet2(b, a)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .icmpv4_echo_request(1, 2);
        let mut f = Vec::new();
        icmp4.write(&mut f, &payload).unwrap();
        out.push(f);
        let udp6 = PacketBuilder::ethernet2(a, b)
            .ipv6([0xfe; 16], [0xfd; 16], 64)
            .udp(546, 547);
        let mut f = Vec::new();
        udp6.write(&mut f, &payload).unwrap();
        out.push(f);
        let tagged = PacketBuilder::ethernet2(a, b)
            .single_vlan(100.try_into().unwrap())
            .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
            .udp(1000, 2000);
        let mut f = Vec::new();
        tagged.write(&mut f, &payload).unwrap();
        out.push(f);
        let twice = PacketBuilder::ethernet2(a, b)
            .double_vlan(10.try_into().unwrap(), 20.try_into().unwrap())
            .ipv4([10, 2, 0, 1], [10, 2, 0, 2], 64)
            .tcp(22, 3333, 5, 100);
        let mut f = Vec::new();
        twice.write(&mut f, &payload).unwrap();
        out.push(f);
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&a);
        arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&a);
        arp.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        out.push(arp);
        let mut stp = vec![0x01, 0x80, 0xc2, 0, 0, 0];
        stp.extend_from_slice(&a);
        stp.extend_from_slice(&[0, 38, 0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
        stp.resize(60, 0);
        out.push(stp);
        let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
        lldp.extend_from_slice(&a);
        lldp.extend_from_slice(&[0x88, 0xcc, 2, 7, 4, 2, 0, 0, 0, 0, 1, 0, 0]);
        out.push(lldp);
        let mut lacp = vec![0x01, 0x80, 0xc2, 0, 0, 0x02];
        lacp.extend_from_slice(&b);
        lacp.extend_from_slice(&[0x88, 0x09, 1, 1]);
        lacp.resize(124, 0);
        out.push(lacp);
        // Truncations of every frame so far: every load past the end.
        let whole = out.clone();
        for frame in &whole {
            for cut in [0, 1, 6, 12, 13, 14, 15, 18, 20, 23, 30, 34, 38, 42] {
                if cut < frame.len() {
                    out.push(frame[..cut].to_vec());
                }
            }
        }
        // Deterministic pseudo-random mutations of the header bytes.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for frame in &whole {
            for _ in 0..20 {
                let mut m = frame.clone();
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % m.len().min(60);
                m[at] = (seed >> 32) as u8;
                out.push(m);
            }
        }
        out
    }

    const EXPRESSIONS: &[&str] = &[
        "",
        "not stp",
        "stp",
        "udp",
        "tcp port 80",
        "udp port 53 or tcp port 22",
        "icmp",
        "arp",
        "ip6",
        "vlan",
        "vlan 100",
        "vlan and udp",
        "vlan and vlan and tcp",
        "ether proto 0x88cc",
        "ether proto 0x8809",
        "ether host 02:00:00:00:00:01",
        "ether dst 01:80:c2:00:00:00",
        "ether broadcast",
        "ether multicast",
        "host 10.0.0.1",
        "net 10.0.0.0/8 and not host 10.0.0.2",
        "src 10.0.0.2 and dst 192.168.1.1",
        "portrange 1-1024",
        "greater 100",
        "less 61",
        "tcp[tcpflags] & tcp-syn != 0",
        "ip[2:2] > 40",
        "ip[8] == 64 and udp[0:2] = 5353",
        "llc",
        "ip proto 17 or ip6 proto 17",
        "ether[12:2] = 0x0806",
        "len >= 60 and len <= 128",
        // Comparisons at their boundaries: 60-byte frames, a 48-byte IPv4 total length.
        "len > 60",
        "len < 60",
        "greater 60",
        "ip[2:2] > 48",
        "ip[2:2] >= 48 and ip[2:2] < 49",
        "ip[2:2] & 0x30 != 0",
        "ip[2:2] - 40 = 8",
        "ip[2:2] * 2 = 96 and ip[2:2] / 2 = 24 and ip[2:2] % 5 = 3",
        "ip[2:2] << 1 = 96 and ip[2:2] >> 1 = 24 and ip[2:2] | 16 = 48",
        "ip[2:2] ^ 16 = 32",
        "-ip[2:2] = -48",
        // Arithmetic between two loads (the optimiser cannot fold these): TTL 64.
        "ip[2:2] - ip[8] = 0xfffffff0",
        "ip[2:2] + ip[8] = 112",
    ];

    #[test]
    fn verdicts_match_libpcaps_on_many_frames() {
        let Some(libpcap) = libpcap("verdicts_match_libpcaps_on_many_frames") else {
            return;
        };
        let frames = frames();
        let mut checked = 0;
        for expression in EXPRESSIONS {
            let program = libpcap.compile(expression, 0).unwrap();
            let mut accepted = 0;
            for frame in &frames {
                let ours = run(&program, frame) != 0;
                let theirs = libpcap.offline_filter(&program, frame).unwrap();
                assert_eq!(ours, theirs, "{expression:?} on {frame:02x?}");
                accepted += usize::from(ours);
                checked += 1;
            }
            // Every expression but the empty one both passes and rejects some frame here, so
            // the comparison means something.
            assert!(accepted > 0, "{expression:?} passed no frame");
            if !expression.is_empty() {
                assert!(accepted < frames.len(), "{expression:?} passed every frame");
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn filter_compiles_through_libpcap_and_reports_its_message() {
        if libpcap("filter_compiles_through_libpcap_and_reports_its_message").is_none() {
            return;
        }
        let filter = Filter::compile("not stp", 0).unwrap();
        assert_eq!(filter.expression(), "not stp");
        assert!(!filter.program().is_empty());
        let frames = frames();
        assert!(!filter.matches(&frames[7]), "STP frame passed 'not stp'");
        assert!(
            filter.matches(&frames[0]),
            "UDP frame rejected by 'not stp'"
        );

        let err = Filter::compile("udp port", 0).unwrap_err();
        assert!(err.is_input());
        assert!(err.to_string().contains("syntax error"), "{err}");
        let err = Filter::compile("nonsense", 0).unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
    }

    #[test]
    fn the_interpreter_follows_bpf_on_hand_written_programs() {
        let insn = |code, jt, jf, k| Insn { code, jt, jf, k };
        // ldh [12]; jeq #0x0800, ret 96, ret 0
        let ip = [
            insn(0x28, 0, 0, 12),
            insn(0x15, 0, 1, 0x0800),
            insn(0x06, 0, 0, 96),
            insn(0x06, 0, 0, 0),
        ];
        let mut frame = vec![0u8; 14];
        assert_eq!(run(&ip, &frame), 0);
        frame[12] = 0x08;
        assert_eq!(run(&ip, &frame), 96);
        assert_eq!(run(&ip, &frame[..13]), 0, "a load past the end rejects");
        assert_eq!(run(&[], &frame), u32::MAX, "no program accepts");
        // ld #10; div x (x = 0) rejects; a jump past the end rejects.
        assert_eq!(run(&[insn(0x00, 0, 0, 10), insn(0x3c, 0, 0, 0)], &frame), 0);
        assert_eq!(run(&[insn(0x05, 0, 0, 5)], &frame), 0);
        // ldx 4*([0]&0xf); txa; ret a
        let msh = [
            insn(0xb1, 0, 0, 0),
            insn(0x87, 0, 0, 0),
            insn(0x16, 0, 0, 0),
        ];
        assert_eq!(run(&msh, &[0x45]), 20);
        // st M[3]; ld #0; ld M[3]; ret a; and M[16] rejects.
        let memory = [
            insn(0x00, 0, 0, 7),
            insn(0x02, 0, 0, 3),
            insn(0x00, 0, 0, 0),
            insn(0x60, 0, 0, 3),
            insn(0x16, 0, 0, 0),
        ];
        assert_eq!(run(&memory, &[]), 7);
        assert_eq!(run(&[insn(0x02, 0, 0, 16)], &[]), 0);
    }
}
