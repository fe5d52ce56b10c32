//! How the process's `malloc` treats the pipeline's large, short-lived buffers.
//!
//! A progressive JPEG is decoded through whole-image coefficient arrays (dragonfly, 4224x3168: about
//! 40 MB), allocated by libjpeg with `malloc` and zeroed before use; the decoded and resized pixels are
//! large too. glibc serves blocks above its mmap threshold (128 KiB at first, raised dynamically only up
//! to the largest block freed so far) with fresh `mmap`s, and gives freed heap tops back with
//! `madvise(MADV_DONTNEED)`. Either way the next request faults the pages in and the kernel zeroes them
//! again: on the cold HTTP mix that was 15% of all CPU time (perf: page faults 13%, madvise 2%).
//!
//! [`retain_freed_memory`] raises both thresholds once at start-up, so freed blocks stay in the CPU pool
//! threads' arenas for the next request. Resident memory then stays at its high-water mark instead of
//! shrinking after a burst; the high-water mark itself does not move (cold mix, concurrency 8:
//! VmHWM 232 MiB before and after), and blocks above 32 MiB (glibc's ceiling) are still mapped per use.
//!
//! Measured on the cold mix (`bench/compare.sh`'s HTTP cold test, 15 s runs): 25.3 -> 27.7 req/s at
//! concurrency 2, 48.8 -> 53.0 req/s at 8. A no-op on other C libraries.
#![allow(unsafe_code)] // FFI: glibc's malloc tunables (mallopt), through libc.

/// glibc's largest accepted mmap threshold on 64-bit targets (`HEAP_MAX_SIZE / 2`).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Freed memory at the top of an arena is returned to the kernel only above this.
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Keeps freed large blocks for reuse instead of returning them to the kernel. Returns whether the C
/// library accepted the settings (false off glibc).
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is thread-safe and takes plain ints.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
