//! Plain text documents as PDF, for letters that go on paper: the public hybrid service
//! prints PDF only. A4 pages, lines wrapped to the page, one embedded font (DejaVu Sans,
//! subset to the glyphs used) so that Polish letters print as written and a reader can
//! copy the text back (a `ToUnicode` map).
//!
//! Written with `pdf-writer`; the font is cut down with `subsetter` and the streams are
//! compressed with `miniz_oxide`. A letter of a page comes to about 20 kB.

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/DejaVuSans.LICENSE`).
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
/// The subset's name: a tag of six capitals, then the font's.
const FONT_NAME: &[u8] = b"EURZAD+DejaVuSans";

/// A4 in points, and the margins (25 mm).
const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 70.87;

/// A piece of a document, top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A heading, larger.
    Title(String),
    /// A line kept as it is (a date, an address line); wrapped only if it is too long.
    Line(String),
    /// Text wrapped to the page, with a gap after it.
    Paragraph(String),
    /// An empty line.
    Gap,
}

/// A document: its title (in the file's properties) and its blocks.
#[derive(Debug, Clone, Default)]
pub struct TextDocument {
    pub title: String,
    pub author: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded font cannot be read: {0}")]
    Font(String),
    #[error("subsetting the font: {0}")]
    Subset(String),
}

/// A line placed on a page: its glyphs (the font's own ids) with their characters, its size
/// and where its baseline starts.
struct PlacedLine {
    glyphs: Vec<(u16, char)>,
    size: f32,
    x: f32,
    y: f32,
}

/// The document as PDF bytes. The same document gives the same bytes.
pub fn render(document: &TextDocument) -> Result<Vec<u8>, PdfError> {
    let face = ttf_parser::Face::parse(FONT, 0).map_err(|e| PdfError::Font(e.to_string()))?;
    let pages = lay_out(&face, &document.blocks);

    // The glyphs used, renumbered from 1 (0 is .notdef) in order of first use.
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut to_unicode = Vec::new();
    for line in pages.iter().flatten() {
        for &(glyph, c) in &line.glyphs {
            if remapper.get(glyph).is_none() {
                to_unicode.push((remapper.remap(glyph), c));
            }
        }
    }
    let subset =
        subsetter::subset(FONT, 0, &remapper).map_err(|e| PdfError::Subset(e.to_string()))?;

    let mut next = 1;
    let mut id = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog = id();
    let page_tree = id();
    let info = id();
    let type0 = id();
    let cid_font = id();
    let descriptor = id();
    let font_file = id();
    let cmap = id();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (id(), id())).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(page_tree);
    pdf.pages(page_tree)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(page_ids.len() as i32);
    let mut document_info = pdf.document_info(info);
    document_info.title(TextStr(&document.title));
    if !document.author.is_empty() {
        document_info.author(TextStr(&document.author));
    }
    document_info.producer(TextStr("eurzad"));
    document_info.finish();

    for (lines, (page_id, content_id)) in pages.iter().zip(&page_ids) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(page_tree);
        page.contents(*content_id);
        page.resources().fonts().pair(Name(b"F1"), type0);
        page.finish();
        let mut content = Content::new();
        for line in lines {
            let codes: Vec<u8> = line
                .glyphs
                .iter()
                .flat_map(|&(glyph, _)| remapper.get(glyph).unwrap_or(0).to_be_bytes())
                .collect();
            content.begin_text();
            content.set_font(Name(b"F1"), line.size);
            content.next_line(line.x, line.y);
            content.show(Str(&codes));
            content.end_text();
        }
        let stream = compress(&content.finish().into_vec());
        pdf.stream(*content_id, &stream).filter(Filter::FlateDecode);
    }

    let units = f32::from(face.units_per_em());
    let scale = |v: i16| f32::from(v) * 1000.0 / units;
    pdf.type0_font(type0)
        .base_font(Name(FONT_NAME))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font)
        .to_unicode(cmap);
    let widths: Vec<f32> = remapper
        .remapped_gids()
        .map(|glyph| {
            face.glyph_hor_advance(ttf_parser::GlyphId(glyph))
                .map_or(0.0, |a| f32::from(a) * 1000.0 / units)
        })
        .collect();
    let mut cid = pdf.cid_font(cid_font);
    cid.subtype(CidFontType::Type2)
        .base_font(Name(FONT_NAME))
        .system_info(identity())
        .font_descriptor(descriptor)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cid.widths().consecutive(0, widths);
    cid.finish();
    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(Name(FONT_NAME))
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            scale(bbox.x_min),
            scale(bbox.y_min),
            scale(bbox.x_max),
            scale(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(scale(face.ascender()))
        .descent(scale(face.descender()))
        .cap_height(scale(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0)
        .font_file2(font_file);
    let packed = compress(&subset);
    pdf.stream(font_file, &packed)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), subset.len() as i32);
    let mut unicode = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), identity());
    for (code, c) in to_unicode {
        unicode.pair(code, c);
    }
    pdf.cmap(cmap, &unicode.finish()).finish();
    Ok(pdf.finish())
}

fn identity() -> SystemInfo<'static> {
    SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    }
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6)
}

/// The blocks as lines on pages: wrapped at spaces to the text width (a word longer than
/// the line is cut), a new page when the bottom margin is reached.
fn lay_out(face: &ttf_parser::Face<'_>, blocks: &[Block]) -> Vec<Vec<PlacedLine>> {
    let units = f32::from(face.units_per_em());
    // A character the font lacks prints as a question mark, not as nothing.
    let fallback = face.glyph_index('?').map_or(0, |g| g.0);
    let glyph = |c: char| face.glyph_index(c).map_or(fallback, |g| g.0);
    let advance = |g: u16, size: f32| {
        face.glyph_hor_advance(ttf_parser::GlyphId(g))
            .map_or(0.0, |a| f32::from(a) * size / units)
    };
    let width = PAGE_WIDTH - 2.0 * MARGIN;
    let mut pages = vec![Vec::new()];
    let mut y = PAGE_HEIGHT - MARGIN;
    let mut place = |pages: &mut Vec<Vec<PlacedLine>>, glyphs: Vec<(u16, char)>, size: f32| {
        let leading = size * 1.45;
        if y - leading < MARGIN {
            pages.push(Vec::new());
            y = PAGE_HEIGHT - MARGIN;
        }
        y -= leading;
        if !glyphs.is_empty() {
            pages.last_mut().expect("a page").push(PlacedLine {
                glyphs,
                size,
                x: MARGIN,
                y,
            });
        }
    };
    for block in blocks {
        let (text, size, gap_after) = match block {
            Block::Title(t) => (t.as_str(), 14.0, true),
            Block::Line(t) => (t.as_str(), 11.0, false),
            Block::Paragraph(t) => (t.as_str(), 11.0, true),
            Block::Gap => ("", 11.0, false),
        };
        let space = (glyph(' '), ' ');
        let space_width = advance(space.0, size);
        let mut line: Vec<(u16, char)> = Vec::new();
        let mut line_width = 0.0;
        for word in text.split_whitespace() {
            let mut glyphs: Vec<(u16, char)> = word.chars().map(|c| (glyph(c), c)).collect();
            let mut word_width: f32 = glyphs.iter().map(|&(g, _)| advance(g, size)).sum();
            if !line.is_empty() && line_width + space_width + word_width > width {
                place(&mut pages, std::mem::take(&mut line), size);
                line_width = 0.0;
            }
            // A word wider than the line (a long address, say) is cut where it must be.
            while word_width > width {
                let mut taken = 0.0;
                let cut = glyphs
                    .iter()
                    .position(|&(g, _)| {
                        taken += advance(g, size);
                        taken > width
                    })
                    .unwrap_or(glyphs.len())
                    .max(1);
                let rest = glyphs.split_off(cut);
                place(&mut pages, glyphs, size);
                glyphs = rest;
                word_width = glyphs.iter().map(|&(g, _)| advance(g, size)).sum();
            }
            if !line.is_empty() {
                line.push(space);
                line_width += space_width;
            }
            line.extend(glyphs);
            line_width += word_width;
        }
        if !line.is_empty() || matches!(block, Block::Gap) {
            place(&mut pages, line, size);
        }
        if gap_after {
            place(&mut pages, Vec::new(), size * 0.6);
        }
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(blocks: Vec<Block>) -> TextDocument {
        TextDocument {
            title: "Informacja o rejestracji".into(),
            author: "Urząd Miasta Testowo".into(),
            blocks,
        }
    }

    #[test]
    fn a_letter_is_a_pdf_with_its_font_cut_down() {
        let pdf = render(&document(vec![
            Block::Title("Zażółć gęślą jaźń".into()),
            Block::Paragraph("Uprzejmie informujemy, że wniosek został rozpatrzony.".into()),
        ]))
        .unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        // The whole font is 740 kB; the subset of a short letter is a few kB.
        assert!(pdf.len() < 40_000, "{} bytes", pdf.len());
        assert_eq!(
            pdf,
            render(&document(vec![
                Block::Title("Zażółć gęślą jaźń".into()),
                Block::Paragraph("Uprzejmie informujemy, że wniosek został rozpatrzony.".into()),
            ]))
            .unwrap(),
            "the same document, the same bytes"
        );
    }

    #[test]
    fn long_text_wraps_within_the_margins_and_flows_onto_pages() {
        let face = ttf_parser::Face::parse(FONT, 0).unwrap();
        let words = "słowo ".repeat(2_000);
        let pages = lay_out(&face, &[Block::Paragraph(words)]);
        assert!(pages.len() > 1, "{} pages", pages.len());
        let units = f32::from(face.units_per_em());
        for line in pages.iter().flatten() {
            let w: f32 = line
                .glyphs
                .iter()
                .map(|&(g, _)| {
                    f32::from(face.glyph_hor_advance(ttf_parser::GlyphId(g)).unwrap()) * line.size
                        / units
                })
                .sum();
            assert!(w <= PAGE_WIDTH - 2.0 * MARGIN + 0.01, "{w}");
            assert!(line.y >= MARGIN, "{}", line.y);
        }
        // A word longer than the line is cut, not lost.
        let long = "x".repeat(500);
        let pages = lay_out(&face, &[Block::Line(long)]);
        let chars: usize = pages.iter().flatten().map(|l| l.glyphs.len()).sum();
        assert_eq!(chars, 500);
    }
}
