//! What a run measures about itself and its machine: the counting global
//! allocator (allocations per event, live heap), CPU time and resident
//! memory of this process and its children, the machine's load, and which
//! ssekit source and machine a result file was made with.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::throughput::ssekit_root;

/// Counts calls to `alloc`/`realloc` and bytes, only while [`COUNTING`] is
/// on. Counters are sharded per thread (padded), so counting adds an
/// uncontended atomic add, not a cache line bouncing between the workers.
pub(crate) struct CountingAlloc;

pub(crate) static COUNTING: AtomicBool = AtomicBool::new(false);

#[repr(align(64))]
pub(crate) struct Shard {
    pub(crate) allocs: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

pub(crate) const SHARDS: usize = 16;
pub(crate) static SHARD_TABLE: [Shard; SHARDS] = [const {
    Shard {
        allocs: AtomicU64::new(0),
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
    }
}; SHARDS];
pub(crate) static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` and no destructor: safe to touch from inside the allocator.
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

pub(crate) fn shard() -> &'static Shard {
    let i = MY_SHARD
        .try_with(|c| {
            let mut i = c.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
                c.set(i);
            }
            i
        })
        .unwrap_or(0);
    &SHARD_TABLE[i]
}

pub(crate) fn count_alloc(size: usize) {
    if COUNTING.load(Relaxed) {
        let s = shard();
        s.allocs.fetch_add(1, Relaxed);
        s.bytes_in.fetch_add(size as u64, Relaxed);
        if SIZES.load(Relaxed) {
            live_slot(size).fetch_add(1, Relaxed);
        }
    }
}

pub(crate) fn count_free(size: usize) {
    if COUNTING.load(Relaxed) {
        shard().bytes_out.fetch_add(size as u64, Relaxed);
        if SIZES.load(Relaxed) {
            live_slot(size).fetch_sub(1, Relaxed);
        }
    }
}

/// Whether [`count_alloc`] also keeps live allocations by size (the idle
/// mode's `SSEKIT_BENCH_ALLOC_SIZES=1`): which allocations a client's
/// streams hold, for comparing them with the floor's.
pub(crate) static SIZES: AtomicBool = AtomicBool::new(false);

/// Sizes up to this are counted exactly; larger ones by power of two.
pub(crate) const EXACT_SIZES: usize = 16 * 1024;
static LIVE_BY_SIZE: [AtomicI64; EXACT_SIZES + 1 + 64] =
    [const { AtomicI64::new(0) }; EXACT_SIZES + 1 + 64];

fn live_slot(size: usize) -> &'static AtomicI64 {
    let i = if size <= EXACT_SIZES {
        size
    } else {
        EXACT_SIZES + 1 + size.ilog2() as usize
    };
    &LIVE_BY_SIZE[i]
}

/// Allocations made and not freed while counting, by size: `(size, count)`
/// for exact sizes, `(2^k, count)` for the sizes from 2^k to 2^(k+1) - 1
/// above [`EXACT_SIZES`]; sizes whose count is 0 are left out.
pub(crate) fn live_by_size() -> Vec<(usize, i64)> {
    LIVE_BY_SIZE
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let size = if i <= EXACT_SIZES {
                i
            } else {
                1 << (i - EXACT_SIZES - 1)
            };
            (size, c.load(Relaxed))
        })
        .filter(|&(_, c)| c != 0)
        .collect()
}

// SAFETY: every call is forwarded unchanged to `System`; the counting only
// touches atomics and a const thread-local without destructor.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: the caller's contract is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free(layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc(new_size);
        count_free(layout.size());
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// (allocations, bytes allocated, bytes freed) counted so far.
pub(crate) fn alloc_totals() -> (u64, u64, u64) {
    SHARD_TABLE.iter().fold((0, 0, 0), |(a, i, o), s| {
        (
            a + s.allocs.load(Relaxed),
            i + s.bytes_in.load(Relaxed),
            o + s.bytes_out.load(Relaxed),
        )
    })
}

// ---------------------------------------------------------------------------
// Process measurements

#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    pub(crate) user_s: f64,
    pub(crate) sys_s: f64,
    /// Voluntary context switches (a thread parked waiting for work).
    pub(crate) nvcsw: i64,
    pub(crate) nivcsw: i64,
}

pub(crate) fn usage() -> Usage {
    // SAFETY: getrusage writes the struct it is given; zeroed is a valid
    // initial value for this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
        nvcsw: ru.ru_nvcsw,
        nivcsw: ru.ru_nivcsw,
    }
}

/// Raises the soft limit of open files to the hard limit (10,000 sockets
/// in the idle mode); returns the soft limit then in force.
pub(crate) fn raise_nofile() -> u64 {
    // SAFETY: plain C calls on a local struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        rl.rlim_cur
    }
}

/// `VmRSS` of this process, in KiB.
pub(crate) fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of the whole machine so far, from `/proc/stat`: (busy,
/// stolen by the hypervisor).
pub(crate) fn machine_cpu_s() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // user nice system idle iowait irq softirq steal
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    (busy / hz, at(7) / hz)
}

/// CPU seconds used by this process's waited-for children.
pub(crate) fn children_cpu_s() -> f64 {
    // SAFETY: as in `usage`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// CPU seconds (user + system) used so far by process `pid`.
pub(crate) fn proc_cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, here 11 and 12 (0-based, from state).
    (ticks(11) + ticks(12)) / hz
}

pub(crate) fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian calendar),
    // counting in 400-year eras that start on March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Which ssekit was measured: the commit, the files of `src/` that differ
/// from it, and a hash (FNV-1a) of every file under `src/` as it was built.
pub(crate) fn source_info() -> Value {
    let root = &ssekit_root();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for f in &files {
        let name = f
            .strip_prefix(root)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        for b in name.bytes().chain(std::fs::read(f).unwrap_or_default()) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    json!({
        "commit": git(&["rev-parse", "--short", "HEAD"]),
        "src_changed": git(&["status", "--porcelain", "--", "src"]).lines().map(str::trim).collect::<Vec<_>>(),
        "src_fnv1a": format!("{hash:016x}"),
    })
}

pub(crate) fn machine_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "kernel": kernel,
        "cpu": cpu,
        "mem_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "rustc": rustc,
        "date": utc_now(),
    })
}
