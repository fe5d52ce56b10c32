//! What the fuzz targets run, and the properties they check besides "no panic, no crash, no runaway
//! memory" (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb` catch the last). Plain Rust on sizer's
//! public API, no libFuzzer: the integration suite compiles this file too (`tests/it/fuzz_corpus.rs`) and
//! replays the seed corpora through it, so the checks cannot drift from the API unnoticed.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use sizer::config::Config;
use sizer::pipeline::{
    self, Fit, Format, Gravity, InputFormat, Job, OutputFormat, PipelineError, Rgb,
};
use sizer::spec::{RequestContext, SpecRules, VariantSpec};

/// The default rules, and strict ones (a signing key, an allow-list, source prefixes, only presets for
/// unsigned URLs), so both the plain and the guarded paths of the grammar are explored.
static RULES: LazyLock<[SpecRules; 2]> = LazyLock::new(|| {
    let plain = Config::default();
    let mut strict = Config::default();
    strict.signing.keys = vec!["00".repeat(32)];
    strict.signing.only_presets = true;
    strict.widths.allowed = vec![300, 600, 900];
    strict.keys.source_prefixes = vec!["images/".into()];
    strict.output.auto_format = true;
    [
        SpecRules::from_config(&plain).expect("the default configuration is valid"),
        SpecRules::from_config(&strict).expect("the strict configuration is valid"),
    ]
});

/// `data` is a request path, then optionally a newline and an `Accept` header.
pub fn url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (path, accept) = match text.split_once('\n') {
        Some((path, accept)) => (path, Some(accept)),
        None => (&*text, None),
    };
    let request = RequestContext {
        accept,
        accept_token: None,
        now: 1_700_000_000,
    };
    for rules in RULES.iter() {
        let Ok(spec) = VariantSpec::from_request(path, &request, rules) else {
            continue;
        };
        let key = &spec.source;
        assert!(!key.is_empty() && key.len() <= 1024, "key length: {key:?}");
        assert!(
            !key.split('/')
                .any(|s| s.is_empty() || s == "." || s == ".."),
            "a bad segment in {key:?} from {path:?}"
        );
        assert!(!key.chars().any(|c| c.is_control() || c == '\\'), "{key:?}");
        assert!(
            !key.starts_with(&rules.copy_prefix),
            "{key:?} is under the copy prefix"
        );
        assert!(
            rules.source_prefixes.is_empty()
                || rules.source_prefixes.iter().any(|p| key.starts_with(p)),
            "{key:?} is outside the source prefixes"
        );
        for side in [spec.width, spec.height].into_iter().flatten() {
            assert!((1..=rules.max_size).contains(&side), "{side} from {path:?}");
        }
        if let (Some(w), Some(h)) = (spec.width, spec.height) {
            assert!(u64::from(w) * u64::from(h) <= rules.max_output_pixels);
        }
        assert!((1..=100).contains(&spec.quality));
        // One key per variant, under the copy prefix, below the original's own prefix.
        let variant = spec.variant_key(&rules.copy_prefix);
        assert!(
            variant.starts_with(&format!("{}{key}/", rules.copy_prefix)),
            "{variant:?} for {key:?}"
        );
    }
}

/// Largest original the targets decode: small, so every input is quick and a bomb shows as memory.
const MAX_PIXELS: u64 = 4_000_000;

fn job(width: u32, height: Option<u32>, fit: Fit, format: OutputFormat) -> Job {
    let mut job = Job::width(width);
    job.target.height = height;
    job.target.fit = fit;
    job.format = format;
    job.max_pixels = MAX_PIXELS;
    job.max_output_pixels = MAX_PIXELS;
    // Animations frame by frame, but no more work in all than a few large stills.
    job.animation.max_pixels = 4 * MAX_PIXELS;
    // Far beyond what any input within the limit needs; libFuzzer's -timeout reports anything slower.
    job.deadline = Some(Instant::now() + Duration::from_secs(60));
    job
}

/// Runs `data` through the pipeline twice: a 16-pixel thumbnail (JPEG's DC-only path, WebP's scaled
/// decode), then one decode for three outputs (a smart cover crop, a padded PNG, a plain resize) that keep
/// the original's ICC profile and EXIF credits (`output.keep_profile`, `output.keep_copyright`: the
/// original's own bytes written into the outputs, by libwebp's mux among others). Returns whether the
/// input belongs in the corpus: not when it does not sniff as `only`.
pub fn pipeline(data: &[u8], only: Option<InputFormat>) -> bool {
    let format = InputFormat::sniff(data);
    if only.is_some() && format != only {
        return false;
    }
    check(data, &job(16, None, Fit::Inside, OutputFormat::Original));
    let mut smart = job(48, Some(48), Fit::Cover, OutputFormat::Fixed(Format::WebP));
    smart.target.gravity = Gravity::Smart;
    let mut padded = job(40, Some(30), Fit::Contain, OutputFormat::Fixed(Format::Png));
    padded.background = Some(Rgb([1, 2, 3]));
    let plain = job(200, None, Fit::Inside, OutputFormat::Fixed(Format::Jpeg));
    let mut jobs = [smart, padded, plain];
    for job in &mut jobs {
        // A configuration-wide setting: every job of one batch shares it.
        job.keep_profile = true;
        job.keep_credits = true;
    }
    // What the jobs reserve from the memory budget, read from the header: never a panic, and never
    // less than the outputs it covers.
    let reserved = pipeline::memory::estimate(data, data.len() as u64, &jobs);
    if let Ok(outputs) = pipeline::process_many(data, &jobs) {
        let mut made = 0;
        for (job, output) in jobs.iter().zip(outputs) {
            made += output.as_ref().map_or(0, |o| o.bytes.len() as u64);
            check_output(data, job, output);
        }
        if let Ok(reserved) = reserved {
            assert!(
                made <= reserved,
                "outputs of {made} bytes, {reserved} reserved"
            );
        }
    }
    true
}

fn check(data: &[u8], job: &Job) {
    match pipeline::process(data, job) {
        Ok(output) => check_output(data, job, Ok(output)),
        Err(e) => check_error(data, &e),
    }
}

/// A made output is an image of its format, within its box; an error is one the HTTP layer maps to a 4xx.
fn check_output(data: &[u8], job: &Job, output: Result<pipeline::Encoded, PipelineError>) {
    let output = match output {
        Ok(output) => output,
        Err(e) => return check_error(data, &e),
    };
    assert_eq!(Format::sniff(&output.bytes), Some(output.format));
    let info = pipeline::probe::probe(&output.bytes).expect("our own output probes");
    assert_eq!((info.width, info.height), (output.width, output.height));
    let (w, h) = (job.target.width, job.target.height);
    assert!(
        w.is_none_or(|w| output.width <= w),
        "{} > {w:?}",
        output.width
    );
    assert!(
        h.is_none_or(|h| output.height <= h),
        "{} > {h:?}",
        output.height
    );
    assert!(output.width >= 1 && output.height >= 1);
}

fn check_error(_data: &[u8], error: &PipelineError) {
    // A deadline can only pass under a debugger or an overloaded machine; everything else is the
    // original's fault and becomes a 4xx.
    assert!(
        !matches!(error, PipelineError::DeadlinePassed),
        "an input within the pixel limit took over a minute"
    );
}
