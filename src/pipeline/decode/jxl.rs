//! JPEG XL's codec: jxl-oxide (pure Rust), single-threaded inside the CPU pool's worker. The first
//! keyframe of an animation is served. Rendered straight to sRGB by jxl-oxide (XYB and enumerated colour
//! encodings converted exactly, an embedded ICC profile through moxcms), with its orientation applied:
//! the header's size is the displayed one, and the pixels need no profile and no turn afterwards. CMYK
//! (a black extra channel) is refused.

use jxl_oxide::{
    EnumColourEncoding, InitializeResult, JxlImage, JxlThreadPool, Moxcms, RenderingIntent,
};

use super::{Codec, Header, Scale, same_size};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{Layout, PipelineError, Pixels};

pub(super) struct Jxl;

/// jxl-oxide's image of `src`, its header and embedded profile parsed; `None` when `src` ends first.
fn open(src: &[u8]) -> Result<Option<JxlImage>, PipelineError> {
    let mut uninit = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .build_uninit();
    uninit.feed_bytes(src).map_err(undecodable)?;
    match uninit.try_init().map_err(undecodable)? {
        InitializeResult::Initialized(image) => Ok(Some(image)),
        InitializeResult::NeedMoreData(_) => Ok(None),
    }
}

fn undecodable(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Undecodable(format!("JPEG XL: {e}"))
}

impl Codec for Jxl {
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        let image = open(src)?.ok_or_else(|| undecodable("header cut short"))?;
        Ok(Header {
            width: image.width(),
            height: image.height(),
            alpha: image.pixel_format().has_alpha(),
        })
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
        let mut image = JxlImage::builder()
            .pool(JxlThreadPool::none())
            .read(std::io::Cursor::new(src))
            .map_err(undecodable)?;
        same_size(info, (u64::from(image.width()), u64::from(image.height())))?;
        if image.pixel_format().has_black() {
            return Err(PipelineError::UnsupportedVariant("CMYK JPEG XL".into()));
        }
        if image.num_loaded_keyframes() == 0 {
            return Err(undecodable("no complete frame"));
        }
        image.set_cms(Moxcms);
        image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
        let render = image.render_frame(0).map_err(undecodable)?;
        let mut stream = render.stream();
        let (width, height, channels) = (stream.width(), stream.height(), stream.channels());
        same_size(info, (u64::from(width), u64::from(height)))?;
        let mut data = vec![0u8; width as usize * height as usize * channels as usize];
        if stream.write_to_buffer(&mut data) != data.len() {
            return Err(undecodable("fewer samples than pixels"));
        }
        let (layout, data) = match channels {
            1 => (Layout::Gray, data),
            3 => (Layout::Rgb, data),
            4 => (Layout::Rgba, data),
            // Grey with alpha: to RGBA, the pipeline's only layout with alpha.
            2 => (
                Layout::Rgba,
                data.chunks_exact(2)
                    .flat_map(|ga| [ga[0], ga[0], ga[0], ga[1]])
                    .collect(),
            ),
            n => {
                return Err(PipelineError::UnsupportedVariant(format!(
                    "JPEG XL with {n} channels"
                )));
            }
        };
        Ok(Pixels {
            width,
            height,
            layout,
            data,
        })
    }

    /// jxl-oxide renders in f32 planes: every channel of the frame and the rendered copy (4 bytes a
    /// sample, up to 4 samples), the frame's own buffers and the u8 output. Measured peak RSS of `sizer
    /// resize` on 2000x2000 noise: 131 MB lossy RGB, 160 MB lossy RGBA, 75 MB lossless RGB, so at most
    /// 37 bytes a pixel over the input; 64 leaves room for what noise does not exercise (patches,
    /// splines, extra channels).
    fn decoder_bytes(&self, _header: &[u8], info: &ImageInfo) -> u64 {
        u64::from(info.width) * u64::from(info.height) * 64
    }

    /// None: the pixels are rendered in sRGB already.
    fn profile(&self, _src: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// Its first keyframe is served as a still (an animated JPEG XL is not animated here).
    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}
