//! The pipeline on AVIF only, from an AVIF seed corpus: inputs that are not AVIF are left out of the corpus.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};
use sizer::pipeline::InputFormat;

fuzz_target!(|data: &[u8]| -> Corpus { sizer_fuzz::pipeline(data, Some(InputFormat::Avif)) });
