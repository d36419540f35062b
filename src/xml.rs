//! Safe XML intake.
//!
//! Every byte string that comes from outside (a SOAP response, a request to the emulator, a
//! form) passes [`prescan`] before libxml2 sees it: the pre-scan refuses any DOCTYPE (and
//! with it every entity declaration, so no XXE and no entity bomb can reach the parser) and
//! enforces size and depth limits. [`parse`] then runs libxml2 with no network, no entity
//! substitution and `recover: false`, so malformed input is an error, never a guess.

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
        "XML input carries a DOCTYPE at byte {position}; DTDs and entity declarations are refused"
    )]
    Doctype { position: u64 },
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

/// Streams through `bytes` once, refusing DOCTYPEs, excessive size and excessive depth.
pub fn prescan(bytes: &[u8], limits: Limits) -> Result<(), XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let position = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::DocType(_)) => return Err(XmlError::Doctype { position }),
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

/// Pre-scans and parses `bytes` into a libxml2 document.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Document, XmlError> {
    prescan(bytes, limits)?;
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
        Ok((document, _)) => Ok(document),
        Err(failure) => Err(XmlError::Malformed {
            position: 0,
            reason: describe_failure(failure),
        }),
    }
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
            Err(XmlError::Doctype { position: 0 })
        ));
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
