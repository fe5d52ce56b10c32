//! CPU time and medians for the bench tables (`examples/engine_table.rs`, `examples/pregenerate_table.rs`).
#![allow(unsafe_code)] // FFI: libc's getrusage.

/// CPU time of this process so far (user + system), in milliseconds.
pub fn cpu_ms() -> f64 {
    // SAFETY: rusage is plain integers, for which all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
