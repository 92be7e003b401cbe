//! Process memory and limits, from /proc.
/// A `KEY:   N kB` field of /proc/PID/status, in KiB.
pub fn status_kib(pid: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU time of a process (`self` or a pid), in clock
/// ticks, from /proc/PID/stat.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The
/// command name (field 2) may hold spaces and parentheses: fields are
/// counted after its last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second in /proc (USER_HZ): 100 on every Linux
/// architecture this runs on. Reading it properly needs
/// `sysconf(_SC_CLK_TCK)`, hence libc and `unsafe`.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used so far by the server (when its pid is known) and by the
/// generator, at one moment.
#[derive(Clone, Copy)]
pub struct CpuMark {
    server: Option<u64>,
    generator: Option<u64>,
    at: tokio::time::Instant,
}

impl CpuMark {
    pub fn now(server_pid: Option<&str>) -> CpuMark {
        CpuMark {
            server: server_pid.and_then(cpu_ticks),
            generator: cpu_ticks("self"),
            at: tokio::time::Instant::now(),
        }
    }

    /// What was used from this mark to `later`.
    pub fn until(&self, later: &CpuMark) -> CpuUse {
        let s = |before: Option<u64>, after: Option<u64>| {
            Some(after?.saturating_sub(before?) as f64 / TICKS_PER_SECOND)
        };
        CpuUse {
            server_s: s(self.server, later.server),
            generator_s: s(self.generator, later.generator),
            wall_s: later.at.saturating_duration_since(self.at).as_secs_f64(),
        }
    }
}

/// CPU seconds used over `wall_s` seconds.
pub struct CpuUse {
    pub server_s: Option<f64>,
    pub generator_s: Option<f64>,
    pub wall_s: f64,
}

impl CpuUse {
    fn pct(&self, s: Option<f64>) -> String {
        match s {
            Some(s) if self.wall_s > 0.0 => format!("{:.0}", 100.0 * s / self.wall_s),
            _ => "na".to_owned(),
        }
    }

    /// The server's CPU use in % of one core, or `na`.
    pub fn server_pct(&self) -> String {
        self.pct(self.server_s)
    }

    /// The generator's CPU use in % of one core, or `na`.
    pub fn generator_pct(&self) -> String {
        self.pct(self.generator_s)
    }

    /// `count` per second of server CPU, or `na`.
    pub fn per_server_cpu_s(&self, count: u64) -> String {
        self.server_s
            .filter(|s| *s > 0.0)
            .map_or_else(|| "na".to_owned(), |s| format!("{:.0}", count as f64 / s))
    }
}

/// A KiB figure, or `na`.
pub fn kib(v: Option<u64>) -> String {
    v.map_or_else(|| "na".to_owned(), |v| v.to_string())
}

#[cfg(test)]
#[test]
fn reads_cpu_ticks() {
    let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 1000 0 0 0                     250 75 0 0 20 0 3 0 100 1000000 2000 18446744073709551615";
    assert_eq!(parse_cpu_ticks(stat), Some(325));
    assert!(cpu_ticks("self").is_some());
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
