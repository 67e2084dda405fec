//! What the figures were measured on: cores, CPU model, RAM, OS, rustc, and how busy the machine
//! was (load averages), read from /proc and the toolchain when they are there.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: Option<String>,
    pub ram_gib: Option<f64>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub rustc: Option<String>,
    pub build: &'static str,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        let ram_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map(|kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string());
        Self {
            cores: cores(),
            cpu_model,
            ram_gib,
            os,
            kernel,
            rustc: rustc_version(),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }

    /// One line for the top of a table.
    pub fn summary(&self) -> String {
        format!(
            "machine: {} cores ({}), {} GiB RAM, {}; {}; {} build",
            self.cores,
            self.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.ram_gib.map_or("?".into(), |g| format!("{g}")),
            self.os.as_deref().unwrap_or("unknown OS"),
            self.rustc.as_deref().unwrap_or("rustc unknown"),
            self.build
        )
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `rustc --version` of the toolchain on PATH (the one cargo used, in practice); the
/// environment cargo sets for build scripts is not there at run time.
fn rustc_version() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// CPU time this process has used (user + system, every thread), in seconds; read from
/// /proc/self/stat, whose tick is USER_HZ (100 on Linux whatever the kernel's HZ).
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| stat_cpu(&stat))
        .map_or(f64::NAN, |(_, seconds)| seconds)
}

/// CPU time (user + system) used so far by this process's live threads named `name`, in
/// seconds, from /proc/self/task/<tid>/stat; NaN where /proc is not there. A thread that has
/// ended no longer counts, so name only threads that live as long as what is measured.
pub fn threads_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| stat_cpu(&stat))
        .filter(|(comm, _)| comm == name)
        .map(|(_, seconds)| seconds)
        .sum()
}

/// CPU time (user + system) of every process on this machine named `name`, with what the
/// children they have reaped used, in seconds; `None` where no such process is seen. For a
/// database server on this machine (`postgres`): its live processes, and through the
/// postmaster's reaped children the backends and workers that ended, so the difference of two
/// readings is what the server spent between them (a backend that ends during the scan may be
/// counted twice or not at all, and another server of the same name counts too).
pub fn processes_cpu_seconds(name: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((comm, own, children)) = stat_cpu_with_children(&stat)
            && comm == name
        {
            seen = true;
            total += own + children;
        }
    }
    seen.then_some(total)
}

/// As [`stat_cpu`], with the CPU time of the process's reaped children (cutime + cstime,
/// fields 16 and 17) apart.
fn stat_cpu_with_children(stat: &str) -> Option<(String, f64, f64)> {
    let (comm, own) = stat_cpu(stat)?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((comm, own, (ticks(13)? + ticks(14)?) / 100.0))
}

/// The command (thread) name and user + system CPU seconds of a /proc `stat` line.
fn stat_cpu(stat: &str) -> Option<(String, f64)> {
    // The command name is in parentheses and may hold spaces or parentheses itself.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    // Fields after the command name start at field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the state (field 3).
    Some((comm, (ticks(11)? + ticks(12)?) / 100.0))
}

/// This process's peak resident set (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:").map_or(f64::NAN, |kb| kb / 1024.0)
}

/// This process's resident set now (VmRSS), in MB.
pub fn rss_mb() -> f64 {
    status_kb("VmRSS:").map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Starts the peak-RSS count afresh (writing 5 to clear_refs resets VmHWM, Linux 4.0+), so a
/// phase's peak is not an earlier phase's. Returns false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kb(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_seconds() {
        let line = "4242 (odd) name) S 1 4242 4242 0 -1 4194368 120 0 0 0 250 37 0 0 20 0 3 0";
        assert_eq!(stat_cpu(line), Some(("odd) name".to_string(), 2.87)));
        assert_eq!(stat_cpu("4242 (short) S 1"), None);
    }

    #[test]
    fn a_stat_line_gives_its_reaped_childrens_cpu_apart() {
        let line = "4242 (postgres) S 1 4242 4242 0 -1 4194368 120 0 0 0 250 37 1200 34 20 0 3 0";
        assert_eq!(
            stat_cpu_with_children(line),
            Some(("postgres".to_string(), 2.87, 12.34))
        );
        assert_eq!(
            stat_cpu_with_children("4242 (short) S 1 2 3 4 5 6 7 8 9 10 11 12"),
            None
        );
    }

    #[test]
    fn processes_are_found_by_name() {
        assert_eq!(processes_cpu_seconds("no-such-process"), None);
        let own = std::fs::read_to_string("/proc/self/stat").expect("stat");
        let (comm, _) = stat_cpu(&own).expect("own stat");
        let seconds = processes_cpu_seconds(&comm).expect("this process is seen");
        assert!(seconds >= 0.0);
    }

    #[test]
    fn only_the_named_threads_count() {
        assert_eq!(threads_cpu_seconds("no-such-thread"), 0.0);
        let busy = std::thread::Builder::new()
            .name("stat-probe".into())
            .spawn(|| {
                // Busy until the kernel has charged this thread a tick (10 ms), at most 30 s.
                let started = std::time::Instant::now();
                let mut x = 0u64;
                while threads_cpu_seconds("stat-probe") == 0.0
                    && started.elapsed() < std::time::Duration::from_secs(30)
                {
                    for i in 0..100_000u64 {
                        x = x.wrapping_mul(31).wrapping_add(i);
                    }
                    std::hint::black_box(x);
                }
                threads_cpu_seconds("stat-probe")
            })
            .unwrap();
        assert!(busy.join().unwrap() > 0.0);
    }
}
