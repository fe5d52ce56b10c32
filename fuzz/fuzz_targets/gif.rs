//! The pipeline on GIF only, from a GIF seed corpus: inputs that are not GIF are left out of the corpus.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};
use sizer::pipeline::InputFormat;

fuzz_target!(|data: &[u8]| -> Corpus { sizer_fuzz::pipeline(data, Some(InputFormat::Gif)) });
