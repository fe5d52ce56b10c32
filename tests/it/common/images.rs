//! Pictures and encoders the integration tests build originals from, every one made by code from a seed
//! or a generated picture (no binary blobs): plain JPEG/PNG/WebP/GIF files of every kind sizer reads, and
//! the byte-level tools the hostile cases are cut with (segments, chunks, sub-blocks, zlib and LZW runs,
//! seeded flips). `the_generators_make_what_they_claim` checks them against independent decoders.

use std::io::Cursor;
use std::ops::Range;

/// SplitMix64: a tiny seeded generator, so every "random" case is the same bytes on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `bytes` with `count` bytes in `range` changed (XOR with a non-zero value).
pub fn flipped(bytes: &[u8], range: Range<usize>, count: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = bytes.to_vec();
    for _ in 0..count {
        let at = range.start + rng.below(range.len());
        out[at] ^= (rng.next() as u8) | 1;
    }
    out
}

/// Where each format's headers end: flips before it hit the header, after it the data.
pub fn header_range(kind: &str, bytes: &[u8]) -> Range<usize> {
    let end = match kind {
        k if k.starts_with("JPEG") => segment(bytes, 0xDA).expect("a scan").end,
        "PNG" => png_chunk_at(bytes, b"IDAT").expect("IDAT").start,
        k if k.starts_with("WebP") => 30,
        _ => gif_image_descriptor(bytes).expect("an image") + 10,
    };
    2..end
}

/// A gradient with some noise, so every encoder has real work.
pub fn picture(w: u32, h: u32, channels: u32) -> Vec<u8> {
    let mut rng = Rng(u64::from(w * 31 + h));
    (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            let noise = (rng.next() % 32) as u8;
            [
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                96 + noise,
                255 - noise,
            ]
            .into_iter()
            .take(channels as usize)
        })
        .collect()
}

pub fn jpeg_with(space: mozjpeg::ColorSpace, w: u32, h: u32, progressive: bool) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(space);
    // libjpeg's plain defaults: baseline unless asked (mozjpeg's own profile is progressive).
    c.set_fastest_defaults();
    c.set_size(w as usize, h as usize);
    c.set_quality(85.0);
    if progressive {
        c.set_progressive_mode();
    }
    let channels = match space {
        mozjpeg::ColorSpace::JCS_GRAYSCALE => 1,
        mozjpeg::ColorSpace::JCS_CMYK => 4,
        _ => 3,
    };
    let mut started = c.start_compress(Vec::new()).expect("compress");
    started
        .write_scanlines(&picture(w, h, channels))
        .expect("scanlines");
    let out = started.finish().expect("a JPEG");
    let sof = if progressive { 0xC2 } else { 0xC0 };
    assert!(segment(&out, sof).is_some(), "SOF{:X}", sof - 0xC0);
    out
}

pub fn jpeg(w: u32, h: u32, progressive: bool) -> Vec<u8> {
    jpeg_with(mozjpeg::ColorSpace::JCS_RGB, w, h, progressive)
}

pub fn jpeg_grey(w: u32, h: u32) -> Vec<u8> {
    jpeg_with(mozjpeg::ColorSpace::JCS_GRAYSCALE, w, h, false)
}

pub fn jpeg_cmyk(w: u32, h: u32, ycck: bool, progressive: bool) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    c.set_fastest_defaults();
    if ycck {
        c.set_color_space(mozjpeg::ColorSpace::JCS_YCCK);
    }
    c.set_size(w as usize, h as usize);
    c.set_quality(85.0);
    if progressive {
        c.set_progressive_mode();
    }
    let mut started = c.start_compress(Vec::new()).expect("compress");
    started
        .write_scanlines(&picture(w, h, 4))
        .expect("scanlines");
    let out = started.finish().expect("a JPEG");
    assert!(segment(&out, 0xEE).is_some(), "an Adobe marker");
    out
}

/// A JPEG marker segment: `start` at its 0xFF, `end` after its payload (for SOS: where the entropy-coded
/// data begins).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
}

pub fn segment(jpeg: &[u8], marker: u8) -> Option<Segment> {
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        let found = Segment {
            start: pos,
            end: pos + 2 + len,
        };
        if jpeg[pos + 1] == marker {
            return Some(found);
        }
        if jpeg[pos + 1] == 0xDA {
            return None;
        }
        pos = found.end;
    }
    None
}

/// `jpeg` with a marker segment inserted right after SOI.
pub fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    with_segments(jpeg, marker, payload, 1)
}

/// `jpeg` with `times` copies of a marker segment inserted right after SOI.
pub fn with_segments(jpeg: &[u8], marker: u8, payload: &[u8], times: usize) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).expect("a segment fits 64 kB");
    let mut out = jpeg[..2].to_vec();
    for _ in 0..times {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` (progressive) with its last scan repeated until it has `scans` in all.
pub fn repeated_last_scan(jpeg: &[u8], scans: usize) -> Vec<u8> {
    let sos = |b: &[u8]| b.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
    let last = jpeg
        .windows(2)
        .rposition(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let eoi = jpeg.len() - 2;
    assert_eq!(&jpeg[eoi..], &[0xFF, 0xD9]);
    let have = sos(jpeg);
    let mut out = jpeg[..eoi].to_vec();
    for _ in have..scans {
        out.extend_from_slice(&jpeg[last..eoi]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    assert_eq!(sos(&out), scans);
    out
}

pub fn strip_segment(jpeg: &[u8], marker: u8) -> Vec<u8> {
    let s = segment(jpeg, marker).expect("the segment");
    [&jpeg[..s.start], &jpeg[s.end..]].concat()
}

/// `jpeg` with its SOF segment edited: `sof[1]` is the marker, `[4]` the precision, `[5..7]` the height,
/// `[7..9]` the width, `[9]` the component count, `[11]` the first sampling factors.
pub fn with_sof(jpeg: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let s = segment(jpeg, 0xC0)
        .or_else(|| segment(jpeg, 0xC2))
        .expect("a SOF");
    let mut out = jpeg.to_vec();
    edit(&mut out[s.start..s.end]);
    out
}

/// A JPEG that a header reader which treats a fill byte (0xFF) as a marker of its own sees as 16x16: it
/// takes `FF FF` for a marker and the next two bytes (`E1 FF`) for a length, which lands it inside the
/// APP1 segment libjpeg skips, on a fake SOF. libjpeg skips the fill byte and reads the real frame.
pub fn disguised_jpeg(real: &[u8]) -> Vec<u8> {
    let mut app1 = vec![0u8; 0xFFFF - 2];
    // The lax reader reads FF FF at 2..4 and the length E1 FF at 4..6, then skips to 4 + 0xE1FF.
    let fake_at = 4 + 0xE1FF - 7;
    app1[fake_at..fake_at + 19].copy_from_slice(&[
        0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11,
        0x00, 0x03, 0x11, 0x00,
    ]);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xE1, 0xFF, 0xFF];
    out.extend_from_slice(&app1);
    out.extend_from_slice(&real[2..]);
    out
}

pub fn png_rgb(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_raw(w, h, picture(w, h, 3)).expect("a picture");
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG");
    out.into_inner()
}

pub fn png_16_bit(w: u32, h: u32) -> Vec<u8> {
    let data: Vec<u16> = picture(w, h, 4)
        .into_iter()
        .map(|v| u16::from(v) * 257)
        .collect();
    let img = image::ImageBuffer::<image::Rgba<u16>, _>::from_raw(w, h, data).expect("a picture");
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG");
    out.into_inner()
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len())
        .expect("a chunk")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[&kind[..], data].concat()).to_be_bytes());
    out
}

/// Where the first chunk of `kind` lies (length field to CRC).
pub fn png_chunk_at(png: &[u8], kind: &[u8; 4]) -> Option<Range<usize>> {
    let mut pos = 8;
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let end = pos + 12 + len;
        if &png[pos + 4..pos + 8] == kind {
            return Some(pos..end);
        }
        pos = end;
    }
    None
}

/// `png` with `chunks` inserted after IHDR.
pub fn png_with_chunks(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    chunks.iter().for_each(|c| out.extend_from_slice(c));
    out.extend_from_slice(&png[33..]);
    out
}

/// A PNG from its parts: IHDR (bit depth, colour type), one IDAT holding `zlib`, IEND.
pub fn png_raw(w: u32, h: u32, depth: u8, colour: u8, zlib: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &png_chunk(b"IHDR", &ihdr),
        &png_chunk(b"IDAT", zlib),
        &png_chunk(b"IEND", &[]),
    ]
    .concat()
}

pub fn iccp_bomb(inflated: usize) -> Vec<u8> {
    png_chunk(b"iCCP", &[&b"bomb\0\0"[..], &zlib_zeros(inflated)].concat())
}

/// Bits written least significant first, as deflate and GIF's LZW both pack them.
#[derive(Default)]
pub struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: deflate sends those most significant bit first.
    fn code(&mut self, code: u32, bits: u32) {
        self.put(code.reverse_bits() >> (32 - bits), bits);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `n` zero bytes in one fixed-Huffman block: a literal, then copies of 258 bytes at
/// distance 1 (13 bits each, about 160:1).
pub fn zlib_zeros(n: usize) -> Vec<u8> {
    assert!(n > 0);
    let mut bits = Bits::default();
    bits.put(1, 1); // last block
    bits.put(1, 2); // fixed Huffman codes
    let literal_zero = |b: &mut Bits| b.code(0x30, 8);
    literal_zero(&mut bits);
    let rest = n - 1;
    for _ in 0..rest / 258 {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
    }
    for _ in 0..rest % 258 {
        literal_zero(&mut bits);
    }
    bits.code(0, 7); // end of block
    let adler = ((n % 65521) as u32) << 16 | 1;
    [&[0x78, 0x01][..], &bits.finish(), &adler.to_be_bytes()].concat()
}

pub fn webp_lossy(w: u32, h: u32) -> Vec<u8> {
    let data = picture(w, h, 3);
    let out = webp::Encoder::from_rgb(&data, w, h).encode(80.0).to_vec();
    assert_eq!(&out[12..16], b"VP8 ");
    out
}

pub fn webp_lossless(w: u32, h: u32) -> Vec<u8> {
    let data = picture(w, h, 3);
    let out = webp::Encoder::from_rgb(&data, w, h)
        .encode_lossless()
        .to_vec();
    assert_eq!(&out[12..16], b"VP8L");
    out
}

pub fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let size = u32::try_from(body.len() + 4).expect("a RIFF");
    [&b"RIFF"[..], &size.to_le_bytes(), b"WEBP", &body].concat()
}

pub fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend_from_slice(&u32::try_from(data.len()).expect("a chunk").to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

pub fn vp8x(flags: u8, w: u32, h: u32) -> Vec<u8> {
    let mut data = vec![flags, 0, 0, 0];
    data.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    data.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    riff_chunk(b"VP8X", &data)
}

/// A simple (VP8) WebP wrapped in a VP8X header declaring a `w`x`h` canvas.
pub fn webp_with_canvas(simple: &[u8], w: u32, h: u32) -> Vec<u8> {
    riff(&[vp8x(0, w, h), simple[12..].to_vec()])
}

pub fn webp_with_metadata(simple: &[u8], icc: &[u8], exif: &[u8]) -> Vec<u8> {
    let w = u32::from(u16::from_le_bytes([simple[26], simple[27]]) & 0x3FFF);
    let h = u32::from(u16::from_le_bytes([simple[28], simple[29]]) & 0x3FFF);
    riff(&[
        vp8x(0x20 | 0x08, w, h),
        riff_chunk(b"ICCP", icc),
        simple[12..].to_vec(),
        riff_chunk(b"EXIF", exif),
    ])
}

pub fn gif_frames(w: u32, h: u32, frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..frames {
            let mut data = picture(w, h, 4);
            data.iter_mut().skip(3).step_by(4).for_each(|a| *a = 255);
            data.iter_mut().step_by(4).for_each(|r| *r ^= i as u8);
            let img = image::RgbaImage::from_raw(w, h, data).expect("a picture");
            encoder
                .encode_frame(image::Frame::new(img))
                .expect("a frame");
        }
    }
    out
}

/// Where the first image descriptor (0x2C) of a GIF written by `gif_frames` starts.
pub fn gif_image_descriptor(gif: &[u8]) -> Option<usize> {
    let packed = gif[10];
    let mut pos = 13;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 0x07) + 1);
    }
    loop {
        match gif.get(pos)? {
            0x2C => return Some(pos),
            0x21 => {
                pos += 2;
                loop {
                    let len = usize::from(*gif.get(pos)?);
                    pos += 1 + len;
                    if len == 0 {
                        break;
                    }
                }
            }
            _ => return None,
        }
    }
}

pub fn sub_blocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out.push(0);
    out
}

/// A GIF by hand: a `screen`, a two-colour global table, one `frame` at (0, 0) holding `lzw` (minimum
/// code size 2).
pub fn gif_manual(screen: (u16, u16), frame: (u16, u16), lzw: &[u8]) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen.0.to_le_bytes());
    out.extend_from_slice(&screen.1.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&frame.0.to_le_bytes());
    out.extend_from_slice(&frame.1.to_le_bytes());
    out.extend_from_slice(&[0, 2]);
    out.extend_from_slice(&sub_blocks(lzw));
    out.push(0x3B);
    out
}

/// LZW codes (minimum code size 2) for `pixels` pixels of colour 0, as giflib writes them: the run grows
/// by one pixel per code, so a few kilobytes hold tens of megapixels.
pub fn lzw_run(pixels: u64) -> Vec<u8> {
    const CLEAR: u32 = 4;
    const END: u32 = 5;
    let mut bits = Bits::default();
    let (mut width, mut next) = (3u32, END + 1);
    let emit = |bits: &mut Bits, code: u32, width: &mut u32, next: u32| {
        bits.put(code, *width);
        if next >= 1 << *width && *width < 12 {
            *width += 1;
        }
    };
    emit(&mut bits, CLEAR, &mut width, next);
    let (mut left, mut run) = (pixels, 1u64);
    while left > 0 {
        let len = run.min(left);
        // In a fresh table, the run of length L >= 2 is code END + L - 1.
        let code = if len == 1 { 0 } else { END + len as u32 - 1 };
        emit(&mut bits, code, &mut width, next);
        left -= len;
        if left == 0 {
            break;
        }
        if next >= 4095 {
            emit(&mut bits, CLEAR, &mut width, next);
            (width, next, run) = (3, END + 1, 1);
        } else {
            next += 1;
            run += 1;
        }
    }
    emit(&mut bits, END, &mut width, next);
    bits.finish()
}

/// A 1x1 GIF with a comment extension holding `comment`.
pub fn gif_with_comment(comment: &[u8]) -> Vec<u8> {
    let mut out = gif_manual((1, 1), (1, 1), &lzw_run(1));
    // After the header, the screen descriptor and the two-colour table.
    let at = 13 + 6;
    let mut extension = vec![0x21, 0xFE];
    extension.extend_from_slice(&sub_blocks(comment));
    out.splice(at..at, extension);
    out
}

pub fn gif_many_frames(frames: usize) -> Vec<u8> {
    let one = gif_manual((4, 4), (4, 4), &lzw_run(16));
    let header = 13 + 6;
    let frame = &one[header..one.len() - 1];
    let mut out = one[..header].to_vec();
    for _ in 0..frames {
        out.extend_from_slice(frame);
    }
    out.push(0x3B);
    out
}

/// A ZIP archive (one stored file, index.html) as appended to an image to make a polyglot.
pub fn zip_with_html() -> Vec<u8> {
    let name = b"index.html";
    let body = b"<html><script>alert(1)</script></html>";
    let crc = crc32(body).to_le_bytes();
    let size = (body.len() as u32).to_le_bytes();
    let mut out = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&crc);
    out.extend_from_slice(&size);
    out.extend_from_slice(&size);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(name);
    out.extend_from_slice(body);
    let central = out.len() as u32;
    out.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&crc);
    out.extend_from_slice(&size);
    out.extend_from_slice(&size);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(name);
    let central_len = out.len() as u32 - central;
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// A little-endian baseline TIFF, one uncompressed strip: `w`x`h` with `samples` 8-bit samples a pixel
/// (1 grey, 3 RGB), its strip `data` (any length: the header may claim more or less than it holds)
/// and `strip_bytes` declared for it.
pub fn tiff_raw(w: u32, h: u32, samples: u16, data: &[u8], strip_bytes: u32) -> Vec<u8> {
    let entries: Vec<(u16, u16, u32, u32)> = vec![
        (256, 4, 1, w),                                // ImageWidth
        (257, 4, 1, h),                                // ImageLength
        (258, 3, 1, 8),                                // BitsPerSample (one value: all samples 8)
        (259, 3, 1, 1),                                // Compression: none
        (262, 3, 1, if samples == 1 { 1 } else { 2 }), // Photometric: grey or RGB
        (273, 4, 1, 0),                                // StripOffsets, patched below
        (277, 3, 1, u32::from(samples)),               // SamplesPerPixel
        (278, 4, 1, h),                                // RowsPerStrip
        (279, 4, 1, strip_bytes),                      // StripByteCounts
    ];
    let ifd_at = 8u32;
    let data_at = ifd_at + 2 + 12 * entries.len() as u32 + 4;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&ifd_at.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        let value = if tag == 273 { data_at } else { value };
        if kind == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A 24-bit bottom-up BMP header (BITMAPINFOHEADER) declaring `w`x`h`, then `data`.
pub fn bmp_raw(w: i32, h: i32, data: &[u8]) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&(54 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out.extend_from_slice(data);
    out
}

/// A bare JPEG XL codestream's signature, SizeHeader declaring `w`x`h` (each side 1..=2^30, written in
/// the 30-bit form) and all-default metadata, padded with zero bytes: a header and nothing to decode.
pub fn jxl_size_header(w: u32, h: u32) -> Vec<u8> {
    // Bits, least significant first: small = 0; height: selector 3 (30 bits), h - 1; ratio 0 (3 bits);
    // width: selector 3, w - 1.
    let mut bits: Vec<bool> = vec![false];
    let push = |value: u32, n: u32, bits: &mut Vec<bool>| {
        (0..n).for_each(|i| bits.push(value >> i & 1 == 1))
    };
    push(3, 2, &mut bits);
    push(h - 1, 30, &mut bits);
    push(0, 3, &mut bits);
    push(3, 2, &mut bits);
    push(w - 1, 30, &mut bits);
    // ImageMetadata: all_default (8-bit sRGB, no alpha, no ICC profile).
    push(1, 1, &mut bits);
    let mut out = vec![0xFF, 0x0A];
    for chunk in bits.chunks(8) {
        out.push(
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |b, (i, &on)| b | (u8::from(on) << i)),
        );
    }
    out.resize(out.len() + 64, 0);
    out
}

/// Standard base64 of `bytes`.
pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A fixture of `testdata/formats` (see its SOURCES.md).
pub fn format_fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/formats")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
pub fn the_generators_make_what_they_claim() {
    // The bomb generators are checked against independent decoders, so a refusal is about the hostile
    // part, not a broken generator.
    let gif = gif_manual((100, 30), (100, 30), &lzw_run(3000));
    let img = image::load_from_memory(&gif).expect("a valid GIF");
    assert_eq!((img.width(), img.height()), (100, 30));
    assert!(img.to_rgba8().pixels().all(|p| p.0 == [0, 0, 0, 255]));
    let big = gif_manual((1000, 1000), (1000, 1000), &lzw_run(1_000_000));
    assert!(big.len() < 10_000, "{} bytes", big.len());
    assert_eq!(image::load_from_memory(&big).expect("valid").width(), 1000);
    let png = png_raw(300, 200, 8, 0, &zlib_zeros(301 * 200));
    let img = image::load_from_memory(&png).expect("a valid PNG");
    assert_eq!((img.width(), img.height()), (300, 200));
    let commented = gif_with_comment(b"hello");
    assert_eq!(
        image::load_from_memory(&commented).expect("valid").width(),
        1
    );
    assert!(find(&commented, b"hello").is_some());
    let many = gif_many_frames(5);
    assert_eq!(image::load_from_memory(&many).expect("valid").width(), 4);
    let with_text = png_with_chunks(&png_rgb(8, 8), &[png_chunk(b"tEXt", b"a\0b")]);
    assert!(image::load_from_memory(&with_text).is_ok());
    let webp = webp_with_metadata(&webp_lossy(32, 24), b"x", b"y");
    assert_eq!(image::load_from_memory(&webp).expect("valid").width(), 32);
}
