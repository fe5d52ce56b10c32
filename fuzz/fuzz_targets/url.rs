//! The URL grammar over arbitrary bytes: a path (and, after a newline, an `Accept` header) either becomes
//! a `VariantSpec` that keeps every key and size rule, or a `UrlError`; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sizer_fuzz::url(data));
