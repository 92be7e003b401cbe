//! Latency percentiles.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below this are counted exactly.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two above LINEAR (precision 1/32, about 3 %).
const SUB_BITS: u32 = 5;
/// Enough buckets for any u64.
const BUCKETS: usize = LINEAR as usize + (64 - 6) * (1 << SUB_BITS);

/// A log-linear histogram of durations in microseconds, shared by all
/// the receiving tasks (one relaxed atomic add per sample, no
/// per-receiver state).
pub struct Histogram {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

/// The bucket of a value.
pub fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let k = 63 - v.leading_zeros(); // v in [2^k, 2^(k+1)), k >= 6
    let shift = k - SUB_BITS;
    let mantissa = (v >> shift) as usize - (1 << SUB_BITS); // 0..32
    LINEAR as usize + (k as usize - 6) * (1 << SUB_BITS) + mantissa
}

/// The range [low, high] of values in a bucket.
pub fn bucket_range(b: usize) -> (u64, u64) {
    if b < LINEAR as usize {
        return (b as u64, b as u64);
    }
    let i = b - LINEAR as usize;
    let k = (i >> SUB_BITS) as u32 + 6;
    let mantissa = (i & ((1 << SUB_BITS) - 1)) as u64 + (1 << SUB_BITS);
    let shift = k - SUB_BITS;
    let low = mantissa << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl Histogram {
    pub fn record_us(&self, us: u64) {
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The nearest-rank percentile `p` (0-100), in ms: the middle of its
    /// bucket, never above the largest value recorded.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = (((p / 100.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                let (low, high) = bucket_range(b);
                let mid = low + (high - low) / 2;
                return mid.min(self.max.load(Ordering::Relaxed)) as f64 / 1000.0;
            }
        }
        self.max_ms()
    }

    pub fn max_ms(&self) -> f64 {
        self.max.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// The nearest-rank percentile `p` (0-100) of sorted samples, in ms.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, u64::MAX / 3, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS);
            let (low, high) = bucket_range(b);
            assert!(low <= v && v <= high, "{v} in bucket {b} [{low}, {high}]");
            assert!(high - low <= low / 32 + 1, "bucket {b} too wide");
            if v < 5000 {
                assert!(b >= last);
                last = b;
            }
        }
    }

    #[test]
    fn histogram_percentiles() {
        let h = Histogram::default();
        assert_eq!(h.percentile_ms(99.0), 0.0);
        for us in 1..=1000 {
            h.record_us(us);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.percentile_ms(50.0);
        assert!((0.485..=0.515).contains(&p50), "p50 {p50}");
        let p99 = h.percentile_ms(99.0);
        assert!((0.96..=1.0).contains(&p99), "p99 {p99}");
        assert_eq!(h.max_ms(), 1.0);
    }
}
