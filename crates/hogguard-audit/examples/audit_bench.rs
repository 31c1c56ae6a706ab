//! Throughput of acknowledged (fsynced) appends with group commit, side by side with one
//! fsync per append on the same disk, the disk's own fsync latency (the ceiling for writers that
//! wait for their appends), and the rate of `verify`.
//!
//! ```text
//! cargo run --release -p hogguard-audit --example audit_bench -- --dir /tmp/audit-bench \
//!     [--threads 8] [--seconds 5] [--rounds 3] [--verify-entries 500000] [--sweep 1,8,64,256]
//! ```
//!
//! `bench/audit/run.sh` runs it with the machine's description.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hogguard_audit::{AuditLog, AuditOptions, EntryInput, Outcome, verify};
use hogguard_scan::{ScanOptions, Scanner};

/// Command-line settings.
struct Settings {
    dir: PathBuf,
    threads: usize,
    seconds: f64,
    verify_entries: u64,
    sweep: Vec<usize>,
    rounds: usize,
}

fn parse_args() -> Settings {
    let mut settings = Settings {
        dir: std::env::temp_dir().join("hogguard-audit-bench"),
        threads: 8,
        seconds: 5.0,
        verify_entries: 500_000,
        sweep: Vec::new(),
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => settings.dir = PathBuf::from(value),
            "--threads" => settings.threads = value.parse().expect("--threads N"),
            "--seconds" => settings.seconds = value.parse().expect("--seconds S"),
            "--verify-entries" => {
                settings.verify_entries = value.parse().expect("--verify-entries N")
            }
            "--rounds" => settings.rounds = value.parse::<usize>().expect("--rounds N").max(1),
            "--sweep" => {
                settings.sweep = value
                    .split(',')
                    .map(|n| n.parse().expect("--sweep 1,8,64"))
                    .collect();
            }
            other => panic!("unknown flag {other}"),
        }
    }
    settings
}

/// A typical entry: a rotation with a few metadata members.
fn sample_input(thread: usize, n: u64) -> EntryInput {
    EntryInput::new(
        "key.rotate",
        format!("ops{thread}@acme.test"),
        "project 12345 / phs_...abcd",
        Outcome::Success,
    )
    .with_metadata("environment", "production")
    .with_metadata("attempt", n)
    .with_metadata(
        "scopes",
        serde_json::json!(["feature_flag:read", "insight:read"]),
    )
}

/// Runs `append` on `threads` threads for `duration`; returns acknowledged appends and the
/// time they took.
fn run_for(
    threads: usize,
    duration: Duration,
    append: impl Fn(usize, u64) + Sync,
) -> (u64, Duration) {
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (stop, count, append) = (&stop, &count, &append);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    append(thread, n);
                    n += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    (count.load(Ordering::Relaxed), started.elapsed())
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    for suffix in ["", ".checkpoint", ".lock"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    path
}

/// The disk's floor: one thread appends a line and fdatasyncs it, `samples` times, and the
/// latencies' percentiles bound what any blocking writer can do. Each of `threads` writers that
/// waits for its append needs at least one fsync per append, so `threads / p50` is the most
/// those writers can get from this disk whatever the log does.
fn fsync_floor(settings: &Settings, line_len: usize, samples: usize) {
    let path = fresh(&settings.dir, "fsync-floor.jsonl");
    let mut file = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut line = vec![b'x'; line_len - 1];
    line.push(b'\n');
    let mut latencies: Vec<f64> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            file.write_all(&line).unwrap();
            file.sync_data().unwrap();
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let p50 = at(0.5);
    println!(
        "fsync floor: append + fdatasync of one {line_len}-byte line, {samples} samples: p10 {:.0} us, p50 {p50:.0} us, p90 {:.0} us, p99 {:.0} us",
        at(0.1),
        at(0.9),
        at(0.99)
    );
    println!(
        "ceiling for {} writers that each wait for their append: {} / p50 = {:.0} appends/s (zero overhead)",
        settings.threads,
        settings.threads,
        settings.threads as f64 / p50 * 1e6
    );
    std::fs::remove_file(path).unwrap();
}

/// One fsync per append: each append writes a line of the same size as the log's and
/// fsyncs it before the next may start.
fn baseline(settings: &Settings, line_len: usize) -> f64 {
    let path = fresh(&settings.dir, "baseline.jsonl");
    let file = Mutex::new(
        File::options()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap(),
    );
    let mut line = vec![b'x'; line_len - 1];
    line.push(b'\n');
    let (count, took) = run_for(
        settings.threads,
        Duration::from_secs_f64(settings.seconds),
        |_, _| {
            let file = file.lock().unwrap();
            (&*file).write_all(&line).unwrap();
            file.sync_data().unwrap();
        },
    );
    let rate = count as f64 / took.as_secs_f64();
    println!(
        "baseline, one fsync per append, {} threads: {count} appends in {:.2} s = {rate:.0} appends/s",
        settings.threads,
        took.as_secs_f64()
    );
    std::fs::remove_file(path).unwrap();
    rate
}

/// Group commit through `AuditLog::append` (redaction, serialisation, hashing included).
fn group_commit(settings: &Settings, threads: usize, options: &AuditOptions) -> (f64, usize) {
    let path = fresh(&settings.dir, "group.jsonl");
    let log = AuditLog::open(&path, options).unwrap();
    let (count, took) = run_for(
        threads,
        Duration::from_secs_f64(settings.seconds),
        |thread, n| {
            log.append(sample_input(thread, n)).unwrap();
        },
    );
    log.close().unwrap();
    let rate = count as f64 / took.as_secs_f64();
    println!(
        "group commit, AuditLog::append, {threads} threads: {count} appends in {:.2} s = {rate:.0} appends/s",
        took.as_secs_f64()
    );
    let line_len = (std::fs::metadata(&path).unwrap().len() / count.max(1)) as usize;
    (rate, line_len)
}

/// Builds a log of `entries` entries (many writers, so the fsyncs are shared widely) and
/// times `verify` over it.
fn verify_rate(settings: &Settings, options: &AuditOptions) {
    let path = fresh(&settings.dir, "verify.jsonl");
    let log = AuditLog::open(&path, options).unwrap();
    let target = settings.verify_entries;
    let next = AtomicU64::new(0);
    let writers = 256;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..writers {
            let (log, next) = (&log, &next);
            scope.spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < target {
                    log.append(sample_input(thread, 0)).unwrap();
                }
            });
        }
    });
    log.close().unwrap();
    let built = started.elapsed();
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "verify corpus: {target} entries ({:.1} MB) written by {writers} threads in {:.1} s ({:.0} appends/s)",
        bytes as f64 / 1e6,
        built.as_secs_f64(),
        target as f64 / built.as_secs_f64()
    );
    let (mut rates, mut cpu_rates) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (started, cpu_before) = (Instant::now(), cpu_seconds());
        let report = verify(&path, None).unwrap();
        let (took, cpu) = (started.elapsed(), cpu_seconds() - cpu_before);
        assert!(report.is_ok() && report.entries == target, "{report:?}");
        rates.push(target as f64 / took.as_secs_f64());
        cpu_rates.push(target as f64 / cpu);
    }
    let rate = median(&mut rates);
    println!(
        "verify: {target} entries, median of 3 runs {rate:.0} entries/s ({:.0} MB/s), best {:.0} entries/s; {:.0} entries per CPU-second",
        rate * bytes as f64 / target as f64 / 1e6,
        rates[2],
        median(&mut cpu_rates)
    );
    std::fs::remove_file(path).unwrap();
}

/// CPU time this process has used, user and system, from `/proc/self/stat` (Linux; its
/// clock ticks are 1/100 s on every mainstream configuration).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let settings = parse_args();
    std::fs::create_dir_all(&settings.dir).unwrap();
    let scanner = Arc::new(Scanner::new(&[], ScanOptions::default()).unwrap());
    let options = AuditOptions::default().scanner(scanner);
    println!(
        "dir {}, {} writer threads, {} s per run",
        settings.dir.display(),
        settings.threads,
        settings.seconds
    );
    // Rounds alternate the two, so load from other processes affects both alike.
    let (mut groups, mut bases) = (Vec::new(), Vec::new());
    let mut line_len_of_last_round = 0;
    for _ in 0..settings.rounds {
        let (group, line_len) = group_commit(&settings, settings.threads, &options);
        groups.push(group);
        bases.push(baseline(&settings, line_len));
        line_len_of_last_round = line_len;
    }
    let (group, base) = (median(&mut groups), median(&mut bases));
    fsync_floor(&settings, line_len_of_last_round, 2000);
    println!(
        "median of {} rounds: group commit {group:.0} appends/s, baseline {base:.0} appends/s, ratio {:.1}x",
        settings.rounds,
        group / base
    );
    for &threads in &settings.sweep {
        group_commit(&settings, threads, &options);
    }
    if settings.verify_entries > 0 {
        verify_rate(&settings, &options);
    }
}
