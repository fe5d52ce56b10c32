//! TEMPORARY: replaced by the saliency step being written on branch `saliency`. Not to be committed.
use super::Pixels;
pub fn attention_offset(image: &Pixels, crop_w: u32, crop_h: u32) -> (u32, u32) {
    (
        image.width.saturating_sub(crop_w) / 2,
        image.height.saturating_sub(crop_h) / 2,
    )
}
