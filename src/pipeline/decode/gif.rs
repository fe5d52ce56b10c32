//! GIF's codec: the first frame through the `image` crate (an animation is rendered frame by frame by
//! `pipeline::animation`, which counts the frames here).

use super::image_crate::{decode_with_image, imagesize_header};
use super::{Codec, Header, Scale};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{PipelineError, Pixels, animation};

pub(super) struct Gif;

impl Codec for Gif {
    /// The logical screen's size. Transparency is per frame, not in the header; a GIF is written back
    /// as GIF, which carries it.
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        imagesize_header(src, false)
    }

    fn scale_for(&self, _info: &ImageInfo, _target_w: u32, _target_h: u32) -> Scale {
        Scale::Full
    }

    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        _scale: Scale,
        _profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        decode_with_image(src, info, image::ImageFormat::Gif)
    }

    /// A frame's palette indices.
    fn decoder_bytes(&self, _header: &[u8], info: &ImageInfo) -> u64 {
        u64::from(info.width) * u64::from(info.height)
    }

    fn profile(&self, _src: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn frames(&self, src: &[u8], limit: usize) -> usize {
        animation::gif_frames(src, limit)
    }
}
