//! The pipeline on PNG only, from a PNG seed corpus: inputs that are not PNG are left out of the corpus.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};
use sizer::pipeline::InputFormat;

fuzz_target!(|data: &[u8]| -> Corpus { sizer_fuzz::pipeline(data, Some(InputFormat::Png)) });
