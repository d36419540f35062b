//! Safe XML intake.
//!
//! Every byte string that comes from outside (a SOAP response, a request to the emulator, a
//! form) is first brought to its UTF-8 form ([`utf8_form`]: the encoding is told from the
//! first bytes as XML 1.0 Appendix F does, and UTF-16 and UTF-32 are transcoded), so that the
//! rules below hold in every encoding. It then passes [`prescan`] before libxml2 sees it: the
//! pre-scan refuses any DOCTYPE (and with it every entity declaration, so no XXE and no
//! entity bomb can reach the parser) and enforces size and depth limits. [`parse`] then runs
//! libxml2 on the UTF-8 form with no network, no entity substitution and `recover: false`,
//! so malformed input is an error, never a guess, and refuses a parsed document that has a
//! DTD subset whatever the pre-scan saw.
//!
//! Transcoding does not touch what a signature covers: canonical XML is UTF-8 whatever the
//! document's encoding, and the XML declaration is not part of it. The stored bytes stay as
//! they came.

use std::borrow::Cow;

use libxml::parser::{Parser, ParserOptions};
use libxml::tree::{Document, Node};
use quick_xml::events::Event;

/// Limits applied before parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 100 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Why an XML input was refused. Each variant names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("XML input is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "XML input carries a DOCTYPE at byte {position}{encoding}; DTDs and entity declarations are refused"
    )]
    Doctype { position: u64, encoding: Transcoded },
    #[error(
        "XML input carries a DOCTYPE (the parser found a DTD subset); DTDs and entity declarations are refused"
    )]
    DtdSubset,
    #[error("XML input is in {0}, which is not accepted: send UTF-8 (or UTF-16, UTF-32)")]
    Encoding(&'static str),
    #[error("XML input is not valid {encoding} at byte {position}")]
    BadEncoding {
        encoding: &'static str,
        position: usize,
    },
    #[error("XML input nests elements {depth} deep at byte {position}, over the limit of {limit}")]
    TooDeep {
        depth: usize,
        limit: usize,
        position: u64,
    },
    #[error("XML input is not well-formed at byte {position}: {reason}")]
    Malformed { position: u64, reason: String },
    #[error("XML input has no root element")]
    NoRoot,
}

/// Which encoding an input was read in, for messages: positions are bytes of the UTF-8 form,
/// which for a transcoded input differ from its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcoded {
    /// UTF-8 (or an encoding that agrees with ASCII, read by libxml2): positions are its own.
    No,
    /// Transcoded from this encoding.
    From(&'static str),
}

impl std::fmt::Display for Transcoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transcoded::No => Ok(()),
            Transcoded::From(encoding) => write!(f, " of its UTF-8 form (the input is {encoding})"),
        }
    }
}

/// The encodings XML 1.0 Appendix F tells apart by an input's first four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    /// UTF-8, or an ASCII-compatible encoding its declaration names.
    AsciiCompatible,
    Utf16 {
        big_endian: bool,
        bom: bool,
    },
    Utf32 {
        big_endian: bool,
        bom: bool,
    },
    Refused(&'static str),
}

fn detect(bytes: &[u8]) -> Detected {
    use Detected::*;
    match bytes {
        [0x00, 0x00, 0xFE, 0xFF, ..] => Utf32 {
            big_endian: true,
            bom: true,
        },
        [0xFF, 0xFE, 0x00, 0x00, ..] => Utf32 {
            big_endian: false,
            bom: true,
        },
        [0x00, 0x00, 0xFF, 0xFE, ..] | [0xFE, 0xFF, 0x00, 0x00, ..] => {
            Refused("UCS-4 in an unusual octet order (2143 or 3412)")
        }
        [0xFE, 0xFF, ..] => Utf16 {
            big_endian: true,
            bom: true,
        },
        [0xFF, 0xFE, ..] => Utf16 {
            big_endian: false,
            bom: true,
        },
        [0x00, 0x00, 0x00, 0x3C, ..] => Utf32 {
            big_endian: true,
            bom: false,
        },
        [0x3C, 0x00, 0x00, 0x00, ..] => Utf32 {
            big_endian: false,
            bom: false,
        },
        [0x00, 0x00, 0x3C, 0x00, ..] | [0x00, 0x3C, 0x00, 0x00, ..] => {
            Refused("UCS-4 in an unusual octet order (2143 or 3412)")
        }
        // `<?` as Appendix F lists it, and any other ASCII character after `<` (a document
        // without a declaration), so that `<!DOCTYPE` in UTF-16 is seen too.
        [0x00, 0x3C, 0x00, b, ..] if *b != 0 => Utf16 {
            big_endian: true,
            bom: false,
        },
        [0x3C, 0x00, b, 0x00, ..] if *b != 0 => Utf16 {
            big_endian: false,
            bom: false,
        },
        [0x4C, 0x6F, 0xA7, 0x94, ..] => Refused("EBCDIC"),
        _ => AsciiCompatible,
    }
}

/// `bytes` as UTF-8 text for the pre-scan and the parser: borrowed as it is when it is UTF-8
/// or ASCII-compatible (libxml2 reads the encoding its declaration names), transcoded from
/// UTF-16 or UTF-32 otherwise, with the declaration's `encoding` made to say UTF-8.
pub fn utf8_form(bytes: &[u8]) -> Result<(Cow<'_, [u8]>, Transcoded), XmlError> {
    let (name, text) = match detect(bytes) {
        Detected::AsciiCompatible => return Ok((Cow::Borrowed(bytes), Transcoded::No)),
        Detected::Refused(what) => return Err(XmlError::Encoding(what)),
        Detected::Utf16 { big_endian, bom } => {
            let (name, encoding) = if big_endian {
                ("UTF-16BE", encoding_rs::UTF_16BE)
            } else {
                ("UTF-16LE", encoding_rs::UTF_16LE)
            };
            let body = &bytes[if bom { 2 } else { 0 }..];
            let text = encoding
                .decode_without_bom_handling_and_without_replacement(body)
                .ok_or_else(|| XmlError::BadEncoding {
                    encoding: name,
                    position: first_bad_utf16(body, big_endian),
                })?;
            (name, text.into_owned())
        }
        Detected::Utf32 { big_endian, bom } => {
            let name = if big_endian { "UTF-32BE" } else { "UTF-32LE" };
            let body = &bytes[if bom { 4 } else { 0 }..];
            (name, decode_utf32(body, big_endian, name)?)
        }
    };
    Ok((
        Cow::Owned(declare_utf8(text).into_bytes()),
        Transcoded::From(name),
    ))
}

/// Where UTF-16 input stops decoding: an odd length or an unpaired surrogate.
fn first_bad_utf16(body: &[u8], big_endian: bool) -> usize {
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let mut offset = 0;
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => offset += 2 * c.len_utf16(),
            Err(_) => return offset,
        }
    }
    offset
}

fn decode_utf32(body: &[u8], big_endian: bool, name: &'static str) -> Result<String, XmlError> {
    let mut text = String::with_capacity(body.len() / 4);
    for (i, unit) in body.chunks(4).enumerate() {
        let bad = || XmlError::BadEncoding {
            encoding: name,
            position: 4 * i,
        };
        let unit: [u8; 4] = unit.try_into().map_err(|_| bad())?;
        let value = if big_endian {
            u32::from_be_bytes(unit)
        } else {
            u32::from_le_bytes(unit)
        };
        text.push(char::from_u32(value).ok_or_else(bad)?);
    }
    Ok(text)
}

/// Makes an XML declaration's `encoding` pseudo-attribute say UTF-8 (the text was
/// transcoded); text without a declaration, or one without `encoding`, is left as it is.
fn declare_utf8(mut text: String) -> String {
    if !text.starts_with("<?xml") {
        return text;
    }
    let Some(end) = text.find("?>") else {
        return text;
    };
    let Some(at) = text[..end].find("encoding") else {
        return text;
    };
    let rest = &text[at + "encoding".len()..end];
    let Some(eq) = rest.find('=') else {
        return text;
    };
    let after_eq = rest[eq + 1..].trim_start();
    let Some(quote) = after_eq.chars().next().filter(|q| *q == '"' || *q == '\'') else {
        return text;
    };
    let value_start = at + "encoding".len() + (rest.len() - after_eq.len()) + 1;
    let Some(value_len) = text[value_start..end].find(quote) else {
        return text;
    };
    text.replace_range(value_start..value_start + value_len, "UTF-8");
    text
}

/// Streams through `bytes` once, refusing DOCTYPEs, excessive size and excessive depth, in
/// whatever encoding `bytes` is (see [`utf8_form`]).
pub fn prescan(bytes: &[u8], limits: Limits) -> Result<(), XmlError> {
    check_size(bytes, limits)?;
    let (text, encoding) = utf8_form(bytes)?;
    prescan_utf8(&text, encoding, limits)
}

fn check_size(bytes: &[u8], limits: Limits) -> Result<(), XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn prescan_utf8(bytes: &[u8], encoding: Transcoded, limits: Limits) -> Result<(), XmlError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let position = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::DocType(_)) => return Err(XmlError::Doctype { position, encoding }),
            Ok(Event::Start(_)) => {
                depth += 1;
                seen_root = true;
                if depth > limits.max_depth {
                    return Err(XmlError::TooDeep {
                        depth,
                        limit: limits.max_depth,
                        position,
                    });
                }
            }
            Ok(Event::Empty(_)) => seen_root = true,
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => {
                return Err(XmlError::Malformed {
                    position: reader.error_position(),
                    reason: error.to_string(),
                });
            }
        }
    }
    if !seen_root {
        return Err(XmlError::NoRoot);
    }
    Ok(())
}

/// Pre-scans and parses `bytes` (in any encoding [`utf8_form`] reads) into a libxml2 document.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Document, XmlError> {
    check_size(bytes, limits)?;
    let (text, encoding) = utf8_form(bytes)?;
    prescan_utf8(&text, encoding, limits)?;
    let bytes: &[u8] = &text;
    let options = ParserOptions {
        recover: false,
        no_net: true,
        no_error: true,
        no_warning: true,
        // Base64 payloads of tens of MB exceed libxml2's 10 MB text-node limit. `huge` lifts
        // that limit; it also lifts entity-expansion limits, which cannot matter because the
        // pre-scan has refused every DOCTYPE and so every entity declaration.
        huge: true,
        ..ParserOptions::default()
    };
    match Parser::default().parse_string_with_diagnostics(bytes, options) {
        Ok((document, _)) => {
            refuse_dtd_subsets(&document)?;
            Ok(document)
        }
        Err(failure) => Err(XmlError::Malformed {
            position: 0,
            reason: describe_failure(failure),
        }),
    }
}

/// The second line of the DOCTYPE rule: whatever the pre-scan saw, a parsed document that
/// has an internal or external DTD subset is refused.
fn refuse_dtd_subsets(document: &Document) -> Result<(), XmlError> {
    let doc = document.doc_ptr();
    // SAFETY: `doc` is the live document `document` owns; `intSubset` and `extSubset` are
    // plain pointer fields of it, only compared with null here.
    let has_subset = unsafe { !(*doc).intSubset.is_null() || !(*doc).extSubset.is_null() };
    if has_subset {
        return Err(XmlError::DtdSubset);
    }
    Ok(())
}

fn describe_failure(failure: libxml::parser::XmlParseFailure) -> String {
    match failure {
        libxml::parser::XmlParseFailure::ParseFailed(diagnostics) => diagnostics
            .first()
            .map(|d| {
                format!(
                    "line {}: {}",
                    d.line.unwrap_or(0),
                    d.message.as_deref().unwrap_or("parse error").trim()
                )
            })
            .unwrap_or_else(|| "libxml2 refused the document".to_string()),
        other => format!("{other:?}"),
    }
}

/// The namespace URI of an element, if any.
pub fn namespace_of(node: &Node) -> Option<String> {
    node.get_namespace().map(|ns| ns.get_href())
}

/// True when `node` is an element named `local` in namespace `ns` (`None` = no namespace).
pub fn is_element(node: &Node, ns: Option<&str>, local: &str) -> bool {
    node.is_element_node() && node.get_name() == local && namespace_of(node).as_deref() == ns
}

/// The element children of `node` named `local` in namespace `ns`.
pub fn children<'a>(
    node: &'a Node,
    ns: Option<&'a str>,
    local: &'a str,
) -> impl Iterator<Item = Node> + 'a {
    node.get_child_elements()
        .into_iter()
        .filter(move |child| is_element(child, ns, local))
}

/// The single element child of `node` named `local` in namespace `ns`; `None` when absent.
/// Several such children are reported by `Err(count)`.
pub fn only_child(node: &Node, ns: Option<&str>, local: &str) -> Result<Option<Node>, usize> {
    let mut found: Vec<Node> = children(node, ns, local).collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(n),
    }
}

/// Whether `node` is an element named `local` in namespace `ns`.
///
/// # Safety
/// `node` must be a live node of a live document.
unsafe fn is_named(node: *const libxml::bindings::_xmlNode, ns: &str, local: &str) -> bool {
    use libxml::bindings::xmlElementType_XML_ELEMENT_NODE;
    use std::ffi::CStr;
    // SAFETY: names and namespace URIs are NUL-terminated strings libxml2 owns.
    unsafe {
        (*node).type_ == xmlElementType_XML_ELEMENT_NODE
            && !(*node).name.is_null()
            && CStr::from_ptr((*node).name.cast()).to_bytes() == local.as_bytes()
            && !(*node).ns.is_null()
            && !(*(*node).ns).href.is_null()
            && CStr::from_ptr((*(*node).ns).href.cast()).to_bytes() == ns.as_bytes()
    }
}

/// Visits the root and every element under it, depth first in document order, by libxml2's
/// own links: no XPath to compile, no node wrappers to make. `visit` says whether to go into
/// the element's children.
fn walk_elements(doc: &Document, mut visit: impl FnMut(*mut libxml::bindings::_xmlNode) -> bool) {
    use libxml::bindings::{_xmlNode, xmlElementType_XML_ELEMENT_NODE};
    let Some(root) = doc.get_root_element() else {
        return;
    };
    let root: *mut _xmlNode = root.node_ptr();
    let mut node = root;
    // Down to the first child, else on to the next sibling, else back up until an ancestor
    // has one.
    loop {
        // SAFETY: `node` is `root` or was reached by the links below: a live node of `doc`.
        let descend = unsafe { (*node).type_ == xmlElementType_XML_ELEMENT_NODE } && visit(node);
        // SAFETY: `doc` is borrowed, so its nodes are alive; `children`, `next` and `parent`
        // link live nodes of `doc` or are null, and the walk never climbs above `root`.
        unsafe {
            let first = (*node).children;
            if descend && !first.is_null() {
                node = first;
                continue;
            }
            while node != root && (*node).next.is_null() {
                node = (*node).parent;
            }
            if node == root {
                return;
            }
            node = (*node).next;
        }
    }
}

/// How many elements named `local` in namespace `ns` the document holds, anywhere.
pub fn count_elements(doc: &Document, ns: &str, local: &str) -> usize {
    let mut count = 0;
    walk_elements(doc, |node| {
        // SAFETY: the walk hands out live nodes of `doc`.
        if unsafe { is_named(node, ns, local) } {
            count += 1;
        }
        true
    });
    count
}

/// Parses `bytes` as [`parse`] does, then removes every element named `local` in namespace
/// `ns` below the root, with everything inside it. For reading a signed form: without its
/// `ds:Signature` elements, an enveloped-signed document is exactly what its signature covers,
/// so nothing an attacker adds to the unsigned parts of a signature (KeyInfo, an Object,
/// UnsignedProperties) can be read as signed content.
pub fn parse_without(
    bytes: &[u8],
    limits: Limits,
    (ns, local): (&str, &str),
) -> Result<Document, XmlError> {
    let doc = parse(bytes, limits)?;
    let mut found = Vec::new();
    let mut first = true;
    walk_elements(&doc, |node| {
        let root = std::mem::take(&mut first);
        // SAFETY: the walk hands out live nodes of `doc`.
        if !root && unsafe { is_named(node, ns, local) } {
            found.push(node);
            return false;
        }
        true
    });
    for node in found {
        // SAFETY: `node` is a live element of `doc` that is not the root, and none is inside
        // another (the walk does not go into a match). No wrapper of it or of anything under
        // it exists: the document was just parsed and only the root's wrapper was made. So it
        // is unlinked and freed once, while its document is alive.
        unsafe {
            libxml::bindings::xmlUnlinkNode(node);
            libxml::bindings::xmlFreeNode(node);
        }
    }
    Ok(doc)
}

/// The whole text content of an element: every text node under it, so that a comment cannot
/// truncate a value (CVE-2017-11427 style).
pub fn text_of(node: &Node) -> String {
    node.get_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>"#;
        assert!(matches!(
            parse(bomb, Limits::default()),
            Err(XmlError::Doctype { .. })
        ));
        let xxe = br#"<!DOCTYPE a SYSTEM "http://127.0.0.1:1/x.dtd"><a/>"#;
        assert!(matches!(
            parse(xxe, Limits::default()),
            Err(XmlError::Doctype { position: 0, .. })
        ));
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if big_endian {
                [0xFE, 0xFF]
            } else {
                [0xFF, 0xFE]
            });
        }
        for unit in text.encode_utf16() {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    fn utf32(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let bom = bom.then_some('\u{FEFF}');
        bom.into_iter()
            .chain(text.chars())
            .flat_map(|c| {
                if big_endian {
                    (c as u32).to_be_bytes()
                } else {
                    (c as u32).to_le_bytes()
                }
            })
            .collect()
    }

    /// Every encoding Appendix F names, with and without a byte-order mark.
    fn every_encoding(text: &str) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for big_endian in [false, true] {
            for bom in [false, true] {
                out.push((
                    format!("UTF-16 be={big_endian} bom={bom}"),
                    utf16(text, big_endian, bom),
                ));
                out.push((
                    format!("UTF-32 be={big_endian} bom={bom}"),
                    utf32(text, big_endian, bom),
                ));
            }
        }
        out
    }

    #[test]
    fn the_doctype_rule_holds_in_every_encoding() {
        for doctype in [
            r#"<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>"#,
            r#"<!DOCTYPE a SYSTEM "http://127.0.0.1:1/x.dtd"><a/>"#,
            r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><a/>"#,
        ] {
            for (name, bytes) in every_encoding(doctype) {
                let err = parse(&bytes, Limits::default()).err().expect("refused");
                assert!(
                    matches!(
                        err,
                        XmlError::Doctype {
                            encoding: Transcoded::From(_),
                            ..
                        }
                    ),
                    "{name}: {err}"
                );
                assert!(err.to_string().contains("DOCTYPE"), "{err}");
            }
        }
    }

    #[test]
    fn utf16_and_utf32_read_as_their_utf8_twin() {
        let text =
            r#"<?xml version="1.0" encoding="UTF-16"?><a xmlns="urn:x">Zażółć gęślą jaźń 𝄞</a>"#;
        for (name, bytes) in every_encoding(text) {
            let doc = parse(&bytes, Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                text_of(&doc.get_root_element().unwrap()),
                "Zażółć gęślą jaźń 𝄞",
                "{name}"
            );
        }
        // Broken input names its encoding and where.
        let mut odd = utf16(text, false, true);
        odd.push(0x3C);
        assert!(matches!(
            parse(&odd, Limits::default()),
            Err(XmlError::BadEncoding {
                encoding: "UTF-16LE",
                ..
            })
        ));
        let surrogate = [0xFF, 0xFE, 0x3C, 0x00, 0x00, 0xD8, 0x3E, 0x00];
        assert!(matches!(
            parse(&surrogate, Limits::default()),
            Err(XmlError::BadEncoding { position: 2, .. })
        ));
        for refused in [&[0x4C, 0x6F, 0xA7, 0x94][..], &[0x00, 0x00, 0x3C, 0x00]] {
            assert!(matches!(
                parse(refused, Limits::default()),
                Err(XmlError::Encoding(_))
            ));
        }
    }

    #[test]
    fn the_declaration_says_utf8_after_transcoding() {
        assert_eq!(
            declare_utf8("<?xml version='1.0' encoding = 'utf-16' ?><a/>".into()),
            "<?xml version='1.0' encoding = 'UTF-8' ?><a/>"
        );
        assert_eq!(declare_utf8("<a/>".into()), "<a/>");
        assert_eq!(
            declare_utf8("<?xml version=\"1.0\"?><a encoding=\"x\"/>".into()),
            "<?xml version=\"1.0\"?><a encoding=\"x\"/>"
        );
    }

    #[test]
    fn a_parsed_dtd_subset_is_refused_whatever_the_prescan_saw() {
        // Straight to libxml2, as if the pre-scan had missed it.
        let doc = Parser::default()
            .parse_string(br#"<!DOCTYPE a [<!ELEMENT a ANY>]><a/>"#)
            .unwrap();
        assert!(matches!(refuse_dtd_subsets(&doc), Err(XmlError::DtdSubset)));
        let doc = Parser::default().parse_string(b"<a/>").unwrap();
        assert!(refuse_dtd_subsets(&doc).is_ok());
    }

    #[test]
    fn counts_elements_by_namespace_and_name_anywhere() {
        let doc = parse(
            br#"<d:Signature xmlns:d="urn:d"><x>text<d:Signature/><!-- c --><y><d:Signature><d:Signature/></d:Signature></y></x><Signature/><e:Signature xmlns:e="urn:e"/><d:SignatureX/>tail</d:Signature>"#,
            Limits::default(),
        )
        .unwrap();
        assert_eq!(count_elements(&doc, "urn:d", "Signature"), 4);
        assert_eq!(count_elements(&doc, "urn:e", "Signature"), 1);
        assert_eq!(count_elements(&doc, "urn:d", "x"), 0);
        let single = parse(br#"<a xmlns="urn:d"/>"#, Limits::default()).unwrap();
        assert_eq!(count_elements(&single, "urn:d", "a"), 1);
    }

    #[test]
    fn undefined_entity_is_malformed() {
        let err = parse(b"<a>&x;</a>", Limits::default())
            .err()
            .expect("refused");
        assert!(matches!(err, XmlError::Malformed { .. }), "{err}");
    }

    #[test]
    fn enforces_depth_and_size() {
        let deep = "<a>".repeat(70) + &"</a>".repeat(70);
        assert!(matches!(
            parse(deep.as_bytes(), Limits::default()),
            Err(XmlError::TooDeep { depth: 65, .. })
        ));
        let limits = Limits {
            max_bytes: 10,
            max_depth: 4,
        };
        assert!(matches!(
            parse(b"<a>0123456789</a>", limits),
            Err(XmlError::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_is_refused_not_recovered() {
        assert!(matches!(
            parse(b"<a><b></a>", Limits::default()),
            Err(XmlError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"", Limits::default()),
            Err(XmlError::NoRoot)
        ));
        let doc = parse(b"<a xmlns='urn:x'><b>t<!--c-->u</b></a>", Limits::default()).unwrap();
        let root = doc.get_root_element().unwrap();
        assert!(is_element(&root, Some("urn:x"), "a"));
        let b = only_child(&root, Some("urn:x"), "b").unwrap().unwrap();
        assert_eq!(text_of(&b), "tu");
    }
}
