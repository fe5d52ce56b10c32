//! The malloc tuning, in a process of its own (mallinfo2 counts the whole process).
#![allow(unsafe_code)] // FFI: glibc's mallinfo2, through libc.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A test crate: a panic is a failed test.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_large_buffers_are_reused_rather_than_mapped_anew() {
    // Without the tuning glibc maps a fresh 20 MiB block (its mmap threshold starts at 128 KiB).
    assert!(sizer::allocator::retain_freed_memory());
    // SAFETY: mallinfo2 takes nothing and returns a struct by value.
    let mapped = || unsafe { libc::mallinfo2() }.hblkhd;
    let before = mapped();
    let buffer = vec![1u8; 20 << 20];
    assert!(
        mapped() < before + (20 << 20),
        "a 20 MiB buffer was mmapped: the mmap threshold was not raised"
    );
    std::hint::black_box(&buffer);
    drop(buffer);
    // And freeing it does not hand it back to the kernel: the arena keeps it.
    // SAFETY: as above.
    let kept = unsafe { libc::mallinfo2() };
    assert!(
        kept.fordblks >= 20 << 20,
        "only {} bytes free in the arenas after freeing 20 MiB",
        kept.fordblks
    );
}
