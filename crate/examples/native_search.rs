//! The native baselines for `npm run bench`, searching the same data as the wasm builds
//! do in the browser, in two forms:
//! - the core itself, compiled for this CPU (`target-cpu=native`): its portable kernel,
//!   which LLVM packs into SSE registers only;
//! - a flat top-k scan written for the CPU with `std::arch` (AVX2 and FMA when the CPU
//!   has them, detected at run time, else the core's portable kernel), over the same
//!   prepared unit vectors: what this machine can do, the baseline the wasm scan is
//!   held to.
//!
//! And the machine's memory read bandwidth, which bounds any scan of data that does not
//! fit in cache: a sum over a buffer four times the last-level cache, best of 5.
//!
//! Usage: native_search BASE.f32 QUERIES.f32 DIM METRIC K [THREADS]
//! Loads the rows, prints one JSON line (insert rate, kernel, sizes), then times one
//! round for each line read from standard input and prints it as one JSON line: every
//! query once in each layout, and the bandwidth. Driven a round at a time, the rounds
//! can take turns with the browser's, so that both see the same machine. With
//! THREADS > 1 each search is also split over that many threads (each with its own
//! database and its own part of the rows), as a pool of workers splits it.

use quiver::{Database, Metric, Record, SearchOptions};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::with_capacity(bytes.len() / 4);
    quiver::store::read_f32(&bytes, &mut out);
    out
}

/// A memory database holding rows `first..` of `base` (ids are row numbers), loaded in
/// batches of 1,000; returns it and the seconds the inserts took.
fn load(base: &[f32], first: usize, dim: usize, metric: Metric) -> (Database, f64) {
    let mut db = Database::open_in_memory("native").unwrap();
    db.create_collection("bench", dim, metric).unwrap();
    let t0 = Instant::now();
    for (b, rows) in base.chunks(1000 * dim).enumerate() {
        let ids: Vec<String> = (0..rows.len() / dim)
            .map(|i| (first + b * 1000 + i).to_string())
            .collect();
        let batch: Vec<Record> = rows
            .chunks_exact(dim)
            .zip(&ids)
            .map(|(v, id)| Record {
                id: id.clone(),
                vector: v,
                ..Default::default()
            })
            .collect();
        db.upsert("bench", batch).unwrap();
    }
    (db, t0.elapsed().as_secs_f64())
}

/// A vector as the core's search copy holds it (the core's `prepare`, private to it):
/// unit length, and components below a billionth of the largest flushed to zero,
/// whose products would be subnormal and cost x86 ~100x each.
fn prepare(v: &mut [f32]) {
    let n = quiver::kernels::norm(v);
    v.iter_mut().for_each(|x| *x /= n);
    let floor = v.iter().fold(0f32, |m, x| m.max(x.abs())) * 1e-9;
    v.iter_mut().filter(|x| x.abs() < floor).for_each(|x| *x = 0.0);
}

/// Streams a scan walks side by side: row i of each quarter of the rows in turn. Several
/// sequential streams keep more reads from memory in flight than one (the core pairs
/// rows half a tile apart for the same reason).
const STREAMS: usize = 4;

/// The `k` best (row, score) of `rows` scored by `score`, best first, ties to the lower
/// row (as the core and the JS oracle break them); rows are numbered from `first`.
#[inline(always)]
fn top_k(rows: &[f32], dim: usize, first: usize, k: usize, score: impl Fn(&[f32]) -> f32) -> Vec<(usize, f32)> {
    let n = rows.len() / dim;
    let stride = n.div_ceil(STREAMS);
    let better = |a: &(usize, f32), b: &(usize, f32)| a.1 > b.1 || (a.1 == b.1 && a.0 < b.0);
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for i in 0..stride {
        for row in (i..n).step_by(stride) {
            let hit = (row, score(&rows[row * dim..(row + 1) * dim]));
            if top.len() < k || better(&hit, &top[top.len() - 1]) {
                let at = top.partition_point(|t| better(t, &hit));
                top.insert(at, hit);
                top.truncate(k);
            }
        }
    }
    top.iter().map(|&(row, s)| (first + row, s)).collect()
}

/// The kernel the vectorised scan runs, chosen once at start from what the CPU has.
#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2_fma() {
            return Kernel::Avx2Fma;
        }
        Kernel::Portable
    }

    fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => "avx2+fma",
            Kernel::Portable => "portable (the core's scalar kernel)",
        }
    }

    /// The `k` rows of `rows` with the highest dot product with `q`.
    fn top_k(self, rows: &[f32], dim: usize, first: usize, q: &[f32], k: usize) -> Vec<(usize, f32)> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => x86::top_k(rows, dim, first, q, k),
            Kernel::Portable => top_k(rows, dim, first, k, |r| quiver::kernels::dot(q, r)),
        }
    }

    /// The sum of `buf`: one load and one add a lane, so that only memory bounds it.
    fn sum(self, buf: &[f32]) -> f32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => x86::sum(buf),
            Kernel::Portable => {
                let mut acc = [0f32; 16];
                for c in buf.chunks_exact(16) {
                    acc.iter_mut().zip(c).for_each(|(a, x)| *a += x);
                }
                acc.iter().sum()
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn has_avx2_fma() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// [`super::top_k`] by dot product with AVX2 and FMA.
    pub fn top_k(rows: &[f32], dim: usize, first: usize, q: &[f32], k: usize) -> Vec<(usize, f32)> {
        assert!(has_avx2_fma(), "this CPU lacks AVX2 or FMA");
        // SAFETY: the CPU has the features, checked above.
        unsafe { top_k_avx2(rows, dim, first, q, k) }
    }

    /// The sum of `buf` with AVX2.
    pub fn sum(buf: &[f32]) -> f32 {
        assert!(has_avx2_fma(), "this CPU lacks AVX2 or FMA");
        // SAFETY: as in `top_k`.
        unsafe { sum_avx2(buf) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn top_k_avx2(rows: &[f32], dim: usize, first: usize, q: &[f32], k: usize) -> Vec<(usize, f32)> {
        // The closure inherits this function's features, so the dot inlines into the loop.
        super::top_k(rows, dim, first, k, |r| unsafe { dot(q, r) })
    }

    /// Four independent FMA chains of eight lanes: enough to hide FMA's latency, so
    /// that loads, not arithmetic, set the pace.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8 * j)),
                    _mm256_loadu_ps(pb.add(i + 8 * j)),
                    *acc,
                );
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        for j in i..n {
            s += a[j] * b[j];
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum_avx2(buf: &[f32]) -> f32 {
        let p = buf.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 64 <= buf.len() {
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_add_ps(_mm256_loadu_ps(p.add(i + 8 * j)), *acc);
            }
            i += 64;
        }
        let total = acc.iter().fold(_mm256_setzero_ps(), |t, a| _mm256_add_ps(t, *a));
        hsum(total) + buf[i..].iter().sum::<f32>()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        _mm_cvtss_f32(_mm_add_ss(x, _mm_shuffle_ps(x, x, 1)))
    }
}

/// Bytes of the bandwidth buffer: four times the last-level cache (as sysfs gives it),
/// at least 1 GiB, so that nearly every byte summed comes from memory.
fn bandwidth_bytes() -> usize {
    let l3 = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
        .ok()
        .and_then(|s| s.trim().strip_suffix('K').and_then(|k| k.parse::<usize>().ok()))
        .map_or(0, |k| k << 10);
    (4 * l3).max(1 << 30)
}

/// GB/s of the best of 5 sums of `buf`, split over `threads` threads that start together.
fn bandwidth(kernel: Kernel, buf: &[f32], threads: usize) -> f64 {
    let part = buf.len().div_ceil(threads);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Barrier::new(threads + 1);
        let t = std::thread::scope(|s| {
            for c in buf.chunks(part) {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    std::hint::black_box(kernel.sum(c));
                });
            }
            start.wait();
            Instant::now()
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    (buf.len() * 4) as f64 / best / 1e9
}

/// What a thread of a split search runs: the core's search or the vectorised scan.
#[derive(Clone, Copy)]
enum Layout {
    Core,
    Scan,
}

/// Each query's milliseconds and its results' row numbers, as JSON.
fn timed(queries: &[f32], dim: usize, mut search: impl FnMut(&[f32]) -> Vec<(usize, f32)>) -> Value {
    let mut ms = Vec::new();
    let mut ids = Vec::new();
    for q in queries.chunks_exact(dim) {
        let t = Instant::now();
        let found = search(q);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        ids.push(found.into_iter().map(|(row, _)| row).collect::<Vec<_>>());
    }
    json!({ "ms": ms, "ids": ids })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, queries, dim, metric, k, threads) = match &args[..] {
        [_, b, q, d, m, k] => (b, q, d, m, k, "1"),
        [_, b, q, d, m, k, t] => (b, q, d, m, k, t.as_str()),
        _ => panic!("usage: native_search BASE.f32 QUERIES.f32 DIM METRIC K [THREADS]"),
    };
    let dim: usize = dim.parse().expect("DIM");
    let k: usize = k.parse().expect("K");
    let threads: usize = threads.parse().expect("THREADS");
    let metric = Metric::parse(metric, "METRIC").expect("METRIC");
    assert!(
        metric == Metric::Cosine,
        "the vectorised scan scores cosine over unit vectors only"
    );
    let (base, queries) = (read_f32(base), read_f32(queries));
    let opts = SearchOptions {
        k,
        ..Default::default()
    };
    let (mut db, insert_s) = load(&base, 0, dim, metric);
    let rows = base.len() / dim;
    let part = rows.div_ceil(threads);
    let mut prepared = base.clone();
    prepared.chunks_exact_mut(dim).for_each(prepare);
    let kernel = Kernel::detect();
    // Filled, so that every page is mapped before it is timed.
    let memory = vec![1f32; bandwidth_bytes() / 4];

    let core = |db: &mut Database, q: &[f32]| -> Vec<(usize, f32)> {
        let hits = db.search("bench", q, &opts).unwrap();
        hits.iter().map(|h| (h.id.parse().unwrap(), h.score)).collect()
    };
    let scan = |rows: &[f32], first: usize, q: &[f32]| {
        let mut q = q.to_vec();
        prepare(&mut q);
        kernel.top_k(rows, dim, first, &q, k)
    };

    // Split searches: threads load their part and meet the main thread at `done`, then
    // wait at `start` for the next job (None ends them), search their part, leave their
    // hits in `merged` and meet the main thread at `done` again.
    let start = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let job: Mutex<Option<(Layout, Vec<f32>)>> = Mutex::new(None);
    let merged: Mutex<Vec<(usize, f32)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        if threads > 1 {
            for t in 0..threads {
                let (start, done, job, merged, core, scan) = (&start, &done, &job, &merged, &core, &scan);
                let range = (t * part * dim).min(base.len())..((t + 1) * part * dim).min(base.len());
                let (theirs, mine) = (&base[range.clone()], &prepared[range]);
                s.spawn(move || {
                    let (mut db, _) = load(theirs, t * part, dim, metric);
                    done.wait();
                    loop {
                        start.wait();
                        let Some((layout, q)) = job.lock().unwrap().clone() else {
                            return;
                        };
                        let found = match layout {
                            Layout::Core => core(&mut db, &q),
                            Layout::Scan => scan(mine, t * part, &q),
                        };
                        merged.lock().unwrap().extend(found);
                        done.wait();
                    }
                });
            }
            done.wait();
        }
        println!(
            "{}",
            json!({
                "insert_per_s": rows as f64 / insert_s,
                "scan_bytes": db.sizes("bench").unwrap().vectors,
                "prepared_bytes": prepared.len() * 4,
                "kernel": kernel.name(),
                "memory_bytes": memory.len() * 4,
            })
        );

        let split = |layout: Layout, q: &[f32]| {
            *job.lock().unwrap() = Some((layout, q.to_vec()));
            start.wait();
            done.wait();
            let mut found = std::mem::take(&mut *merged.lock().unwrap());
            found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            found.truncate(k);
            found
        };
        for _ in std::io::stdin().lock().lines() {
            let mut round = json!({
                "core": timed(&queries, dim, |q| core(&mut db, q)),
                "scan": timed(&queries, dim, |q| scan(&prepared, 0, q)),
                "memory_gb_per_s": bandwidth(kernel, &memory, 1),
            });
            if threads > 1 {
                round["core_pool"] = timed(&queries, dim, |q| split(Layout::Core, q));
                round["scan_pool"] = timed(&queries, dim, |q| split(Layout::Scan, q));
                round["memory_pool_gb_per_s"] = bandwidth(kernel, &memory, threads).into();
            }
            println!("{round}");
            std::io::stdout().flush().unwrap();
        }
        if threads > 1 {
            *job.lock().unwrap() = None;
            start.wait();
        }
    });
}
