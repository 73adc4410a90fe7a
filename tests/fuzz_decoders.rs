//! A bounded fuzz run of every decoder on the stable toolchain, part of `cargo test`: the
//! corpus kept in fuzz/corpus/<target>/ is replayed, then a seeded mutator derives inputs
//! from it for a fixed time per target (LINKSCOPE_FUZZ_SECONDS, default 7 s: 63 s over the
//! nine targets, two at a time). Inputs a decoder accepts join the seeds. A panic fails the
//! test and prints the input in hex, to be added to the corpus once fixed; the seed is
//! printed so a run can be repeated (LINKSCOPE_FUZZ_SEED).
//!
//! The targets are the cargo-fuzz ones (fuzz/targets.rs): `cargo +nightly fuzz run TARGET`
//! explores further with coverage feedback.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: small, fast, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that sit on boundaries of length and count fields.
const INTERESTING: [u32; 12] = [
    0,
    1,
    2,
    3,
    4,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0xffff_fff0,
    0xffff_ffff,
];

/// One to four stacked mutations of `input`; `other` is another seed to splice in.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max_len: usize) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next() as u8;
            }
            2 if len > 0 => {
                let at = rng.below(len);
                input[at] = INTERESTING[rng.below(8)] as u8;
            }
            3 if len >= 4 => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(len - 1);
                let bytes = match rng.below(4) {
                    0 => (value as u16).to_be_bytes().to_vec(),
                    1 => (value as u16).to_le_bytes().to_vec(),
                    2 => value.to_be_bytes().to_vec(),
                    _ => value.to_le_bytes().to_vec(),
                };
                let end = (at + bytes.len()).min(len);
                input[at..end].copy_from_slice(&bytes[..end - at]);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                input.drain(at..end);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let copy = input[at..end].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            8 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.extend(std::iter::repeat_n(0, 1 + rng.below(8))),
        }
    }
    input.truncate(max_len);
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `target` on `input`; a panic fails the test with the input.
fn run_one(name: &str, target: fn(&[u8]) -> bool, input: &[u8], seed: u64) -> bool {
    match catch_unwind(AssertUnwindSafe(|| target(input))) {
        Ok(accepted) => accepted,
        Err(_) => panic!(
            "fuzz target `{name}` panicked (seed {seed}) on this input ({} bytes, hex), \
             add it to fuzz/corpus/{name}/ with the fix:\n{}",
            input.len(),
            hex(input)
        ),
    }
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let seeds: Vec<Vec<u8>> = entries.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "{}: no seeds", dir.display());
    seeds
}

fn fuzz(name: &str, target: fn(&[u8]) -> bool, max_len: usize) {
    let seconds: f64 = std::env::var("LINKSCOPE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7.0);
    let seed = std::env::var("LINKSCOPE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut seeds = corpus(name);
    for input in &seeds {
        run_one(name, target, input, seed);
    }
    let replayed = seeds.len();
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut runs, mut accepted) = (0u64, 0u64);
    while Instant::now() < deadline {
        for _ in 0..64 {
            let mut input = seeds[rng.below(seeds.len())].clone();
            let other = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &mut input, &other, max_len);
            runs += 1;
            if run_one(name, target, &input, seed) {
                accepted += 1;
                if seeds.len() < 512 {
                    seeds.push(input);
                } else {
                    let at = replayed + rng.below(seeds.len() - replayed);
                    seeds[at] = input;
                }
            }
        }
    }
    eprintln!(
        "fuzz {name}: seed {seed}, {replayed} corpus inputs replayed, {runs} mutated inputs \
         in {seconds} s, {accepted} accepted by the decoder, no panic"
    );
    assert!(runs > 0);
}

#[test]
fn fuzz_classify() {
    fuzz("classify", targets::classify, 2048);
}

#[test]
fn fuzz_lldp() {
    fuzz("lldp", targets::lldp, 2048);
}

#[test]
fn fuzz_stp() {
    fuzz("stp", targets::stp, 512);
}

#[test]
fn fuzz_lacp() {
    fuzz("lacp", targets::lacp, 512);
}

#[test]
fn fuzz_marker() {
    fuzz("marker", targets::marker, 512);
}

#[test]
fn fuzz_bench() {
    fuzz("bench", targets::bench, 2048);
}

#[test]
fn fuzz_mapping() {
    fuzz("mapping", targets::mapping, 4096);
}

#[test]
fn fuzz_meter() {
    fuzz("meter", targets::meter, 2048);
}

#[test]
fn fuzz_savefile() {
    fuzz("savefile", targets::savefile, 64 << 10);
}
