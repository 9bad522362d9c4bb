//! Fuzzing of every parser of untrusted input, on stable Rust.
//!
//! The module sits in the relay (behind the `fuzzing` feature, and in its unit tests) rather
//! than in a crate of its own because most parsers are private to their adapter: reaching them
//! from inside the crate needs no public API grown for fuzzing's sake.
//!
//! A [`Target`] is one parser (or one HTTP endpoint driven in-process through the router) taking
//! raw bytes. It returns a short *outcome* (`ok:…`, `rejected:…`) and panics when an invariant
//! breaks (a 5xx, a refusal without a reason, a normalised number that is not E.164).
//! [`run`] feeds it inputs from [`Inputs`]: the target's valid sample payloads mutated byte-wise
//! and, for JSON, structure-aware (a node replaced, removed or retyped), spliced with each other,
//! or random bytes. This driver is guided by behaviour: an input whose outcome was not seen before
//! (a new rejection reason, a new kind of event) joins the corpus and is mutated further, which
//! walks the parsers deeper one distinct code path's answer at a time. The same targets also run
//! under AFL++ with coverage instrumented on stable Rust (the `cti-fuzz-afl` crate, `cargo xtask
//! fuzz <target> --engine afl`), which starts from the corpus [`write_seeds`] writes.
//!
//! A panic, or an input running longer than the hang limit, stops the run with the input
//! ([`Finding`]); `cargo xtask fuzz` saves it and prints how to reproduce it.

mod targets;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// One parser under fuzzing.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    /// Valid sample payloads, the starting corpus.
    seeds: fn() -> Vec<Vec<u8>>,
    /// Builds the parser's state (a runtime and router, a tracker) once per run; the closure
    /// parses one input and names its outcome.
    runner: fn() -> Runner,
}

/// One input in, its outcome's name out (panics on a broken invariant).
pub type Runner = Box<dyn FnMut(&[u8]) -> String>;

impl Target {
    /// The target's sample payloads.
    pub fn seeds(&self) -> Vec<Vec<u8>> {
        (self.seeds)()
    }

    /// A fresh runner.
    pub fn runner(&self) -> Runner {
        (self.runner)()
    }
}

/// Every target, in the order `fuzz all` runs them.
pub fn targets() -> &'static [Target] {
    targets::ALL
}

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    targets().iter().find(|t| t.name == name)
}

/// How long and how a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Stop after this many inputs (deterministic: the tests' bound)...
    pub max_inputs: Option<u64>,
    /// ...or after this long.
    pub max_time: Option<Duration>,
    /// An input running longer is a hang.
    pub hang_after: Duration,
    /// How often `progress` is called.
    pub report_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0x5eed,
            max_inputs: None,
            max_time: None,
            hang_after: Duration::from_secs(1),
            report_every: Duration::from_secs(1),
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub inputs: u64,
    pub elapsed: Duration,
    pub corpus: usize,
    pub outcomes: usize,
}

impl Progress {
    pub fn per_sec(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A run that ended without a finding.
#[derive(Debug, Clone)]
pub struct Summary {
    pub progress: Progress,
    /// The distinct outcomes seen, sorted (what the inputs reached).
    pub outcomes: Vec<String>,
}

/// What stops a run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Finding {
    #[error("panic after {inputs} inputs: {message}")]
    Panic {
        input: Vec<u8>,
        message: String,
        inputs: u64,
    },
    #[error("hang: an input ran for more than {limit:?} (after {inputs} inputs)")]
    Hang {
        input: Vec<u8>,
        limit: Duration,
        inputs: u64,
    },
}

impl Finding {
    pub fn input(&self) -> &[u8] {
        match self {
            Finding::Panic { input, .. } | Finding::Hang { input, .. } => input,
        }
    }
}

/// Writes `target`'s sample payloads into `dir` (created if missing), one file each named
/// `sample-NN`: the starting corpus of an engine that reads its inputs from files (AFL++, see
/// `cargo xtask fuzz --engine afl`). Returns the files written, in the samples' order.
pub fn write_seeds(
    target: &Target,
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (i, sample) in target.seeds().iter().enumerate() {
        let file = dir.join(format!("sample-{i:02}"));
        std::fs::write(&file, sample)?;
        files.push(file);
    }
    Ok(files)
}

/// Runs one input through a fresh runner of `target`: what `--reproduce` does.
pub fn reproduce(target: &Target, input: &[u8]) -> Result<String, String> {
    let mut runner = target.runner();
    std::panic::catch_unwind(AssertUnwindSafe(|| runner(input))).map_err(|p| panic_message(&*p))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// What the worker thread shares with the watchdog.
struct Shared {
    /// The input being run (for a hang's report).
    current: Mutex<Vec<u8>>,
    /// When it started, in microseconds since the run's start; `u64::MAX`: between inputs.
    started_us: AtomicU64,
    inputs: AtomicU64,
    corpus: AtomicU64,
    outcomes: AtomicU64,
}

enum Done {
    Finished(Vec<String>),
    Panicked(Vec<u8>, String),
}

/// Fuzzes `target` until `options` says stop or a finding. `progress` is called every
/// `report_every`. A hang leaves the worker thread stuck on its input: the caller (a process)
/// is expected to exit.
pub fn run(
    target: &'static Target,
    options: &Options,
    mut progress: impl FnMut(&Progress),
) -> Result<Summary, Finding> {
    let shared = Arc::new(Shared {
        current: Mutex::new(Vec::new()),
        started_us: AtomicU64::new(u64::MAX),
        inputs: AtomicU64::new(0),
        corpus: AtomicU64::new(0),
        outcomes: AtomicU64::new(0),
    });
    let start = Instant::now();
    let (done_tx, done_rx) = mpsc::channel();
    let worker = {
        let shared = shared.clone();
        let options = options.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name))
            .spawn(move || {
                let done = work(target, &options, &shared, start);
                let _ = done_tx.send(done);
            })
            .map_err(|e| Finding::Panic {
                input: Vec::new(),
                message: format!("no worker thread: {e}"),
                inputs: 0,
            })?
    };
    let snapshot = |shared: &Shared| Progress {
        inputs: shared.inputs.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        corpus: shared.corpus.load(Ordering::Relaxed) as usize,
        outcomes: shared.outcomes.load(Ordering::Relaxed) as usize,
    };
    let mut last_report = Instant::now();
    loop {
        match done_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Done::Finished(outcomes)) => {
                let _ = worker.join();
                return Ok(Summary {
                    progress: snapshot(&shared),
                    outcomes,
                });
            }
            Ok(Done::Panicked(input, message)) => {
                let _ = worker.join();
                return Err(Finding::Panic {
                    input,
                    message,
                    inputs: shared.inputs.load(Ordering::Relaxed),
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Finding::Panic {
                    input: Vec::new(),
                    message: "the worker stopped without a word".into(),
                    inputs: shared.inputs.load(Ordering::Relaxed),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let started = shared.started_us.load(Ordering::Acquire);
        if started != u64::MAX {
            let now = start.elapsed().as_micros() as u64;
            if now.saturating_sub(started) > options.hang_after.as_micros() as u64 {
                let input = shared.current.lock().clone();
                return Err(Finding::Hang {
                    input,
                    limit: options.hang_after,
                    inputs: shared.inputs.load(Ordering::Relaxed),
                });
            }
        }
        if last_report.elapsed() >= options.report_every {
            last_report = Instant::now();
            progress(&snapshot(&shared));
        }
    }
}

/// Most inputs the corpus holds: mutating a few thousand interesting inputs is enough.
const MAX_CORPUS: usize = 4096;

fn work(target: &Target, options: &Options, shared: &Shared, start: Instant) -> Done {
    let mut runner = target.runner();
    let mut inputs = Inputs::new(options.seed, target.seeds());
    let mut seen: HashSet<String> = HashSet::new();
    // The samples themselves first: they must pass as they always did.
    let mut queue: Vec<Vec<u8>> = target.seeds();
    queue.reverse();
    let mut count = 0u64;
    loop {
        if options.max_inputs.is_some_and(|max| count >= max)
            || options.max_time.is_some_and(|max| start.elapsed() >= max)
        {
            let mut outcomes: Vec<String> = seen.into_iter().collect();
            outcomes.sort();
            return Done::Finished(outcomes);
        }
        let input = queue.pop().unwrap_or_else(|| inputs.generate());
        *shared.current.lock() = input.clone();
        shared
            .started_us
            .store(start.elapsed().as_micros() as u64, Ordering::Release);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| runner(&input)));
        shared.started_us.store(u64::MAX, Ordering::Release);
        count += 1;
        shared.inputs.store(count, Ordering::Relaxed);
        match result {
            Ok(outcome) => {
                if seen.len() < 100_000 && seen.insert(outcome) {
                    inputs.keep(input);
                    shared.outcomes.store(seen.len() as u64, Ordering::Relaxed);
                    shared
                        .corpus
                        .store(inputs.corpus.len() as u64, Ordering::Relaxed);
                }
            }
            Err(payload) => return Done::Panicked(input, panic_message(&*payload)),
        }
    }
}

/// Names an outcome by its kind and reason, with numbers (positions, lengths) taken out so a
/// reason's many columns count as one outcome.
pub(crate) fn outcome(kind: &str, reason: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 1 + reason.len().min(80));
    out.push_str(kind);
    out.push(':');
    let mut last_digit = false;
    for c in reason.chars().take(80) {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
        } else {
            out.push(c);
            last_digit = false;
        }
    }
    out
}

/// Generates inputs: mutations of the corpus, or random bytes.
#[derive(Debug)]
pub struct Inputs {
    rng: StdRng,
    corpus: Vec<Vec<u8>>,
}

/// Tokens worth inserting: the syntax of the formats parsed, edge numbers, odd characters.
const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\"\"",
    b"\\u0000",
    b"\\ud800",
    b"{}",
    b"[]",
    b"<",
    b">",
    b"</",
    b"/>",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"&#0;",
    b"&xx;",
    b"<?xml?>",
    b"<!--",
    b"-->",
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"\n\n",
    b": ",
    b"Content-Length: ",
    b"Content-Length: 99999999\n\n",
    b"Content-Type: text/event-json\n",
    b"sip:",
    b"tel:",
    b"+",
    b"+41",
    b"00",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x93\x9e",
    b"\xff",
    b"\x00",
    b"%",
    b"SIP/2.0",
    b"Event: ",
    b"Uniqueid: ",
    b"Unique-ID",
    b"xmlns=\"urn:x\"",
    b"@",
    b";",
    b"=",
];

/// Strings a JSON node may become.
const STRINGS: &[&str] = &[
    "",
    " ",
    "+41441234567",
    "044 123 45 67",
    "0",
    "+",
    "+999999999999999999999",
    "tel:+41441234567",
    "sip:1001@127.0.0.1",
    "ringing",
    "answered",
    "ended",
    "inbound",
    "outbound",
    "2026-11-24T10:00:00Z",
    "not a time",
    "\u{0}",
    "\u{202e}evil",
    "é",
    "9999-99-99T99:99:99Z",
];

impl Inputs {
    pub fn new(seed: u64, corpus: Vec<Vec<u8>>) -> Self {
        Inputs {
            rng: StdRng::seed_from_u64(seed),
            corpus,
        }
    }

    /// Adds an input worth mutating further.
    fn keep(&mut self, input: Vec<u8>) {
        if self.corpus.len() < MAX_CORPUS {
            self.corpus.push(input);
        } else {
            let at = self.rng.gen_range(0..self.corpus.len());
            self.corpus[at] = input;
        }
    }

    /// The next input.
    pub fn generate(&mut self) -> Vec<u8> {
        if self.corpus.is_empty() || self.rng.gen_ratio(1, 20) {
            let len = self.rng.gen_range(0..256);
            return (0..len).map(|_| self.rng.r#gen()).collect();
        }
        let base = self.corpus[self.rng.gen_range(0..self.corpus.len())].clone();
        if self.rng.gen_ratio(1, 3)
            && let Ok(mut value) = serde_json::from_slice::<Value>(&base)
        {
            for _ in 0..self.rng.gen_range(1..=3) {
                self.mutate_json(&mut value, 0);
            }
            return serde_json::to_vec(&value).unwrap_or(base);
        }
        let mut input = base;
        for _ in 0..self.rng.gen_range(1..=4) {
            self.mutate_bytes(&mut input);
        }
        input
    }

    fn mutate_bytes(&mut self, input: &mut Vec<u8>) {
        let len = input.len();
        let at = |rng: &mut StdRng| rng.gen_range(0..=len);
        match self.rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = self.rng.gen_range(0..len);
                input[i] ^= 1 << self.rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = self.rng.gen_range(0..len);
                input[i] = self.rng.r#gen();
            }
            2 if len > 0 => {
                let from = self.rng.gen_range(0..len);
                let to = (from + self.rng.gen_range(1..=16)).min(len);
                input.drain(from..to);
            }
            3 if len > 0 => {
                // A slice copied elsewhere (repeated fields, nested elements).
                let from = self.rng.gen_range(0..len);
                let to = (from + self.rng.gen_range(1..=64)).min(len);
                let piece = input[from..to].to_vec();
                let i = at(&mut self.rng);
                input.splice(i..i, piece);
            }
            4 => {
                let token = DICTIONARY[self.rng.gen_range(0..DICTIONARY.len())];
                let i = at(&mut self.rng);
                input.splice(i..i, token.iter().copied());
            }
            5 if len > 0 => {
                let keep = self.rng.gen_range(0..len);
                input.truncate(keep);
            }
            6 if !self.corpus.is_empty() => {
                // The head of this input, the tail of another.
                let other = &self.corpus[self.rng.gen_range(0..self.corpus.len())];
                let cut = self.rng.gen_range(0..=len);
                let from = self.rng.gen_range(0..=other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            7 => {
                let i = at(&mut self.rng);
                let n = self.rng.gen_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.r#gen()).collect();
                input.splice(i..i, bytes);
            }
            _ if len > 0 => {
                // An ASCII digit somewhere changed: lengths, versions, sequence numbers.
                if let Some(i) = (0..8)
                    .map(|_| self.rng.gen_range(0..len))
                    .find(|&i| input[i].is_ascii_digit())
                {
                    input[i] = b'0' + self.rng.gen_range(0..10);
                }
            }
            _ => input.push(self.rng.r#gen()),
        }
    }

    fn mutate_json(&mut self, value: &mut Value, depth: usize) {
        // Go deeper with some probability, else change this node.
        let descend = depth < 8 && self.rng.gen_ratio(3, 4);
        match value {
            Value::Object(map) if descend && !map.is_empty() => {
                let keys: Vec<String> = map.keys().cloned().collect();
                let key = &keys[self.rng.gen_range(0..keys.len())];
                if self.rng.gen_ratio(1, 8) {
                    map.remove(key);
                } else if let Some(child) = map.get_mut(key) {
                    self.mutate_json(child, depth + 1);
                }
            }
            Value::Array(items) if descend && !items.is_empty() => {
                let i = self.rng.gen_range(0..items.len());
                match self.rng.gen_range(0..8) {
                    0 => {
                        items.remove(i);
                    }
                    1 => {
                        let copy = items[i].clone();
                        items.push(copy);
                    }
                    _ => self.mutate_json(&mut items[i], depth + 1),
                }
            }
            _ => *value = self.json_leaf(value),
        }
    }

    fn json_leaf(&mut self, old: &Value) -> Value {
        match self.rng.gen_range(0..10) {
            0 => Value::Null,
            1 => Value::Bool(self.rng.r#gen()),
            2 => Value::from(self.rng.r#gen::<i64>()),
            3 => serde_json::Number::from_f64(self.rng.r#gen::<f64>() * 1e12)
                .map_or(Value::Null, Value::Number),
            4 => Value::from(self.rng.gen_range(0u64..5)),
            5 => Value::Object(serde_json::Map::new()),
            6 => Value::Array(vec![old.clone(), old.clone()]),
            7 => Value::from("x".repeat(self.rng.gen_range(0..5000))),
            8 => match old {
                // The same text changed a little.
                Value::String(s) => {
                    let mut bytes = s.clone().into_bytes();
                    self.mutate_bytes(&mut bytes);
                    Value::from(String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => Value::from(STRINGS[self.rng.gen_range(0..STRINGS.len())]),
            },
            _ => Value::from(STRINGS[self.rng.gen_range(0..STRINGS.len())]),
        }
    }
}

/// Bytes as a Rust byte-string literal's content: what a crash report prints.
pub fn escaped(input: &[u8]) -> String {
    input.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target, a few thousand inputs each from a fixed seed: deterministic, so a failure
    /// here is a failure every time (and `cargo xtask fuzz <target>` runs them for longer).
    #[test]
    fn every_target_survives_a_short_run() {
        let options = Options {
            seed: 2026,
            max_inputs: Some(3_000),
            // Generous: debug builds on a loaded machine; a real hang never ends.
            hang_after: Duration::from_secs(20),
            ..Options::default()
        };
        for target in targets() {
            match run(target, &options, |_| {}) {
                Ok(summary) => assert_eq!(summary.progress.inputs, 3_000, "{}", target.name),
                Err(finding) => panic!(
                    "{}: {finding}\ninput: b\"{}\"",
                    target.name,
                    escaped(finding.input())
                ),
            }
        }
    }

    #[test]
    fn the_samples_are_accepted_where_valid() {
        // A sample the parser refuses would leave the fuzzer mutating garbage: each target's
        // first sample must reach its parser's success path.
        for target in targets() {
            let mut runner = target.runner();
            let first = target.seeds().into_iter().next().expect("a sample");
            let outcome = runner(&first);
            assert!(outcome.starts_with("ok"), "{}: {outcome}", target.name);
        }
    }

    #[test]
    fn the_seed_corpus_holds_every_sample_of_every_target() {
        let dir = std::env::temp_dir().join(format!("cti-fuzz-seeds-{}", std::process::id()));
        for target in targets() {
            let at = dir.join(target.name);
            let files = write_seeds(target, &at).expect("seeds written");
            let samples = target.seeds();
            assert!(!samples.is_empty(), "{} has no samples", target.name);
            assert_eq!(files.len(), samples.len(), "{}", target.name);
            let mut written: Vec<Vec<u8>> = std::fs::read_dir(&at)
                .expect("the seed directory")
                .map(|entry| std::fs::read(entry.expect("an entry").path()).expect("a seed"))
                .collect();
            written.sort();
            let mut expected = samples;
            expected.sort();
            assert_eq!(written, expected, "{}", target.name);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    static BOOM: Target = Target {
        name: "boom",
        about: "panics on its sample",
        seeds: || vec![b"fine".to_vec(), b"boom".to_vec()],
        runner: || {
            Box::new(|input| {
                assert!(input != b"boom", "boom");
                outcome("ok", "")
            })
        },
    };

    static STUCK: Target = Target {
        name: "stuck",
        about: "never returns",
        seeds: || vec![b"stuck".to_vec()],
        runner: || {
            Box::new(|_| {
                loop {
                    std::thread::park();
                }
            })
        },
    };

    #[test]
    fn a_panic_stops_the_run_with_its_input() {
        let found = run(&BOOM, &Options::default(), |_| {}).expect_err("a panic");
        assert!(matches!(&found, Finding::Panic { message, .. } if message == "boom"));
        assert_eq!(found.input(), b"boom");
        assert!(reproduce(&BOOM, b"boom").is_err());
        assert!(reproduce(&BOOM, b"fine").is_ok());
    }

    #[test]
    fn a_hang_stops_the_run_with_its_input() {
        let options = Options {
            hang_after: Duration::from_millis(10),
            ..Options::default()
        };
        // The stuck worker stays parked: the test process's end takes it.
        let found = run(&STUCK, &options, |_| {}).expect_err("a hang");
        assert!(matches!(found, Finding::Hang { .. }));
        assert_eq!(found.input(), b"stuck");
    }

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let corpus = vec![br#"{"a":[1,"b"]}"#.to_vec(), b"Event: x\r\n\r\n".to_vec()];
        let mut one = Inputs::new(7, corpus.clone());
        let mut two = Inputs::new(7, corpus);
        for _ in 0..1000 {
            assert_eq!(one.generate(), two.generate());
        }
    }

    #[test]
    fn outcomes_ignore_positions() {
        assert_eq!(
            outcome("rejected", "expected value at line 1 column 12"),
            outcome("rejected", "expected value at line 1 column 7")
        );
    }
}
