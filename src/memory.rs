//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps what the program frees for reuse, and raises its
//! thresholds as large blocks come and go: after a burst of large stanzas
//! (say 100 KB messages queued for slow readers), RSS stayed near its peak
//! long after every queue had drained. Two settings fix that, as measured in
//! docs/security.md: blocks of 64 KiB and more (stanza buffers, queued
//! large stanzas) get their own mappings, returned as soon as they are
//! freed; and after traffic with large stanzas, a task periodically asks
//! glibc to release the free memory inside its heaps (`malloc_trim`), which
//! a fragmented heap otherwise keeps.
//!
//! This is the one module allowed `unsafe`: two calls into the C library
//! that take plain integers and touch no Rust memory.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Allocations at least this large are mapped on their own.
const MMAP_THRESHOLD: i32 = 64 * 1024;
/// Free memory at the top of a heap beyond this is returned at once.
const TRIM_THRESHOLD: i32 = 128 * 1024;
/// A stanza this large counts as "large traffic", after which a trim is worth it.
pub const LARGE: usize = 32 * 1024;
/// How often the trim task looks.
const TRIM_PERIOD: Duration = Duration::from_secs(10);

/// Large stanzas handled so far (read by the trim task).
static LARGE_SEEN: AtomicU64 = AtomicU64::new(0);

/// Set the allocator's thresholds; call once at startup.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and only changes allocator
    // parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Note a stanza of `bytes` (cheap: one comparison unless it is large).
pub fn note_stanza(bytes: usize) {
    if bytes >= LARGE {
        LARGE_SEEN.fetch_add(1, Ordering::Relaxed);
    }
}

/// Return free heap memory to the system now.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer and releases free pages of the
    // allocator's own heaps; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trim every `TRIM_PERIOD` in which large stanzas went through, until `stop`.
pub async fn trim_task(stop: tokio_util::sync::CancellationToken) {
    let mut seen = LARGE_SEEN.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(TRIM_PERIOD) => {}
        }
        let now = LARGE_SEEN.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            // Off the runtime's workers: it walks every heap.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}
