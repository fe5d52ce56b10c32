//! Shared code of the fuzz targets: the checks they run (`checks.rs`, which the integration suite also
//! compiles, to replay the seed corpora on every `cargo test`) and the corpus verdict libFuzzer takes.

mod checks;

use libfuzzer_sys::Corpus;
use sizer::pipeline::InputFormat;

pub use checks::url;

/// The pipeline's checks on `data`; inputs that do not sniff as `only` stay out of the corpus.
pub fn pipeline(data: &[u8], only: Option<InputFormat>) -> Corpus {
    if checks::pipeline(data, only) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
}
