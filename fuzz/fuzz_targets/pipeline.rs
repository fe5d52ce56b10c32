//! Arbitrary bytes through the whole pipeline (probe, decode, resize, encode) of every input format.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};

fuzz_target!(|data: &[u8]| -> Corpus { sizer_fuzz::pipeline(data, None) });
