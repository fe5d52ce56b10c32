//! SVG's codec: parsed by roxmltree and usvg, rasterised by resvg (pure Rust) straight at the size the
//! output needs, never drawn large and shrunk. An SVG is never served as SVG (it is written as PNG by
//! default, with its transparency), so no script or link in it reaches a client.
//!
//! Hostile documents are bounded before anything is drawn:
//! - nothing outside the document is read: `<image>` references (files, URLs, and `data:` URIs too,
//!   which could nest another SVG) are replaced by nothing, and usvg follows no external `<use>`, font
//!   or style sheet;
//! - [`MAX_SVG_BYTES`] of input, [`MAX_XML_NODES`] XML nodes, roxmltree's own entity limits (depth 10,
//!   255 references each: a "billion laughs" DTD is an error, not gigabytes);
//! - [`MAX_DEPTH`] levels of nesting (usvg and resvg recurse: a 100,000-deep `<g>` would overflow the
//!   stack), [`MAX_EXPANDED_NODES`] once every `<use>` is counted as the copy usvg makes of its target
//!   (ten `<use>`s of ten of the level below, eight levels deep, is 10^8 elements from 2 kB), and
//!   [`MAX_LAYERS`] nested layers, each a canvas-sized pixmap (counted in the memory reservation).
//!
//! `<text>` is not drawn: the build carries no fonts (logos ship their text as paths).

use resvg::tiny_skia;
use resvg::usvg;

use super::{Codec, Header, Scale, same_size};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{Layout, PipelineError, Pixels};

/// Largest SVG document read.
pub const MAX_SVG_BYTES: usize = 16 << 20;
/// Most XML nodes (elements, text, attributes' nodes are not counted) in the document.
pub const MAX_XML_NODES: u32 = 1_000_000;
/// Most elements once `<use>` references are expanded.
pub const MAX_EXPANDED_NODES: u64 = 1_000_000;
/// Deepest nesting of elements, counting each `<use>` hop as a level.
pub const MAX_DEPTH: usize = 256;
/// Most nested layers (see `Cost::layers`).
pub const MAX_LAYERS: u64 = 16;

pub(super) struct Svg;

fn undecodable(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Undecodable(format!("SVG: {e}"))
}

/// The parsed, checked tree of `src`, and what it costs to draw.
fn tree(src: &[u8]) -> Result<(usvg::Tree, Cost), PipelineError> {
    if src.len() > MAX_SVG_BYTES {
        return Err(undecodable(format_args!(
            "{} bytes, above the limit of {MAX_SVG_BYTES}",
            src.len()
        )));
    }
    let text = std::str::from_utf8(src).map_err(|_| undecodable("not UTF-8"))?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_XML_NODES,
        // No resolver: an external entity (`SYSTEM "file:///etc/passwd"`) is never read.
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(undecodable)?;
    let cost = check_expansion(&doc)?;
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_xmltree(&doc, &options).map_err(undecodable)?;
    Ok((tree, cost))
}

/// What a document costs to draw, counted on its XML before usvg sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    /// Elements, every `<use>` counting its target's again (usvg copies it).
    elements: u64,
    /// The most nested elements along one path that resvg draws into a layer of their own (opacity,
    /// filter, mask, clip path): each holds a canvas-sized pixmap while its children are drawn.
    layers: u64,
}

/// Refuses a document nested deeper than [`MAX_DEPTH`], larger than [`MAX_EXPANDED_NODES`] elements
/// once every `<use>` counts its target's elements again, or with more than [`MAX_LAYERS`] nested layers.
fn check_expansion(doc: &roxmltree::Document) -> Result<Cost, PipelineError> {
    let ids: std::collections::HashMap<&str, roxmltree::Node> = doc
        .descendants()
        .filter_map(|n| n.attribute("id").map(|id| (id, n)))
        .collect();
    let mut costs = std::collections::HashMap::new();
    let cost = expanded(doc.root_element(), 0, &ids, &mut costs)?;
    if cost.elements > MAX_EXPANDED_NODES {
        return Err(undecodable(format_args!(
            "{} elements once <use> is expanded, above the limit of {MAX_EXPANDED_NODES}",
            cost.elements
        )));
    }
    if cost.layers > MAX_LAYERS {
        return Err(undecodable(format_args!(
            "{} nested layers (opacity, filter, mask, clip-path), above the limit of {MAX_LAYERS}",
            cost.layers
        )));
    }
    Ok(cost)
}

/// Whether resvg draws `node` into a layer of its own.
fn makes_layer(node: roxmltree::Node) -> bool {
    const LAYERED: [&str; 4] = ["opacity", "filter", "mask", "clip-path"];
    LAYERED.iter().any(|a| node.has_attribute(*a))
        || node
            .attribute("style")
            .is_some_and(|style| LAYERED.iter().any(|a| style.contains(a)))
}

/// The cost of `node` and what it holds, memoised by node; `None` in `costs` marks a node being counted
/// (a `<use>` cycle, which usvg drops, counts as one element).
fn expanded<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    depth: usize,
    ids: &std::collections::HashMap<&'a str, roxmltree::Node<'a, 'input>>,
    costs: &mut std::collections::HashMap<roxmltree::NodeId, Option<Cost>>,
) -> Result<Cost, PipelineError> {
    if depth > MAX_DEPTH {
        return Err(undecodable(format_args!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    match costs.get(&node.id()) {
        Some(Some(cost)) => return Ok(*cost),
        Some(None) => {
            return Ok(Cost {
                elements: 1,
                layers: 0,
            });
        }
        None => {}
    }
    costs.insert(node.id(), None);
    let mut inner = Cost {
        elements: 0,
        layers: 0,
    };
    let mut add = |c: Cost| {
        inner.elements = inner.elements.saturating_add(c.elements);
        inner.layers = inner.layers.max(c.layers);
    };
    for child in node.children().filter(|c| c.is_element()) {
        add(expanded(child, depth + 1, ids, costs)?);
    }
    if node.tag_name().name() == "use" {
        let href = node
            .attribute(("http://www.w3.org/1999/xlink", "href"))
            .or_else(|| node.attribute("href"));
        if let Some(target) = href
            .and_then(|h| h.strip_prefix('#'))
            .and_then(|id| ids.get(id))
        {
            add(expanded(*target, depth + 1, ids, costs)?);
        }
    }
    let cost = Cost {
        elements: inner.elements.saturating_add(1).min(MAX_EXPANDED_NODES + 1),
        layers: inner.layers + u64::from(makes_layer(node)),
    };
    costs.insert(node.id(), Some(cost));
    Ok(cost)
}

/// The document's size in pixels, rounded up.
fn pixel_size(tree: &usvg::Tree) -> (u32, u32) {
    let size = tree.size();
    let side = |v: f32| (v.ceil() as u32).max(1);
    (side(size.width()), side(size.height()))
}

impl Codec for Svg {
    /// The whole document is parsed and checked: its size is in the root element, but only the parse
    /// says what that element is.
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        let (width, height) = pixel_size(&tree(src)?.0);
        Ok(Header {
            width,
            height,
            alpha: true,
        })
    }

    /// Exactly the size the output needs: a vector image loses nothing drawn small.
    fn scale_for(&self, info: &ImageInfo, target_w: u32, target_h: u32) -> Scale {
        let (w, h) = (
            target_w.clamp(1, info.width),
            target_h.clamp(1, info.height),
        );
        if (w, h) == (info.width, info.height) {
            Scale::Full
        } else {
            Scale::Exact(w, h)
        }
    }

    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        scale: Scale,
        _profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        let (tree, _) = tree(src)?;
        let (w, h) = pixel_size(&tree);
        same_size(info, (u64::from(w), u64::from(h)))?;
        let (width, height) = match scale {
            Scale::Exact(w, h) => (w, h),
            _ => (w, h),
        };
        let mut pixmap = tiny_skia::Pixmap::new(width, height)
            .ok_or_else(|| undecodable(format_args!("no {width}x{height} canvas")))?;
        let size = tree.size();
        let transform = tiny_skia::Transform::from_scale(
            width as f32 / size.width(),
            height as f32 / size.height(),
        );
        resvg::render(&tree, transform, &mut pixmap.as_mut());
        // tiny-skia draws premultiplied; the pipeline's RGBA is straight.
        let data = pixmap
            .pixels()
            .iter()
            .flat_map(|p| {
                let c = p.demultiply();
                [c.red(), c.green(), c.blue(), c.alpha()]
            })
            .collect();
        Ok(Pixels {
            width,
            height,
            layout: Layout::Rgba,
            data,
        })
    }

    /// roxmltree's nodes and usvg's tree, at most 32 times the document (`header` is the whole document:
    /// its size is read from nothing less), and a canvas-sized pixmap per nested layer (at most the
    /// declared size: it is drawn at that or smaller).
    fn decoder_bytes(&self, header: &[u8], info: &ImageInfo) -> u64 {
        let canvas = u64::from(info.width) * u64::from(info.height) * 4;
        let layers = tree(header).map_or(MAX_LAYERS, |(_, cost)| cost.layers);
        header.len() as u64 * 32 + canvas * layers
    }

    fn profile(&self, _src: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// SMIL animation is not played: the document as drawn.
    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}
