//! AVIF's codec: probed (sizer reads back the AVIF variants it wrote, and knows an AVIF original's
//! size), not decoded: an AVIF original is refused with 415.

use super::image_crate::imagesize_header;
use super::{Codec, Header, Scale};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{PipelineError, Pixels};

pub(super) struct Avif;

impl Codec for Avif {
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        imagesize_header(src, false)
    }

    fn scale_for(&self, _info: &ImageInfo, _target_w: u32, _target_h: u32) -> Scale {
        Scale::Full
    }

    fn decode(
        &self,
        _src: &[u8],
        _info: &ImageInfo,
        _scale: Scale,
        _profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        Err(PipelineError::UnsupportedVariant(
            "AVIF originals are not supported yet".into(),
        ))
    }

    fn decoder_bytes(&self, _header: &[u8], _info: &ImageInfo) -> u64 {
        0
    }

    fn profile(&self, _src: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// Refused before its frames matter.
    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}
