//! Forms: what kind of document arrived. For now, classification by the root element of an
//! XML document (CRD forms are identified by their namespace, e.g. "pismo ogólne" is
//! `http://crd.gov.pl/wzor/2013/12/12/1410/`); parsing of specific forms builds on this.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// The result of classifying a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    Xml {
        namespace: Option<String>,
        root: String,
    },
    NotXml {
        reason: String,
    },
}

/// Reads just far enough to name the root element, in any encoding the XML intake reads
/// (UTF-16 and UTF-32 through their UTF-8 form). Refuses DOCTYPEs like every XML intake.
pub fn classify(content: &[u8]) -> Classification {
    let content = match crate::xml::utf8_form(content) {
        Ok((text, _)) => text,
        Err(error) => {
            return Classification::NotXml {
                reason: error.to_string(),
            };
        }
    };
    let mut reader = quick_xml::NsReader::from_reader(&content[..]);
    loop {
        let position = reader.buffer_position();
        match reader.read_resolved_event() {
            Ok((namespace, Event::Start(element) | Event::Empty(element))) => {
                let namespace = match namespace {
                    ResolveResult::Bound(ns) => {
                        Some(String::from_utf8_lossy(ns.as_ref()).into_owned())
                    }
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(prefix) => {
                        return Classification::NotXml {
                            reason: format!(
                                "root element uses the undeclared prefix {:?}",
                                String::from_utf8_lossy(&prefix)
                            ),
                        };
                    }
                };
                let root = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
                return Classification::Xml { namespace, root };
            }
            Ok((_, Event::DocType(_))) => {
                return Classification::NotXml {
                    reason: format!("DOCTYPE at byte {position}: DTDs and entities are refused"),
                };
            }
            Ok((_, Event::Eof)) => {
                return Classification::NotXml {
                    reason: "no root element (not an XML document)".into(),
                };
            }
            Ok(_) => {}
            Err(error) => {
                return Classification::NotXml {
                    reason: format!(
                        "not well-formed XML at byte {}: {error}",
                        reader.error_position()
                    ),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_root_of_a_crd_form() {
        let doc = br#"<?xml version="1.0"?><wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/"><a/></wnio:Dokument>"#;
        assert_eq!(
            classify(doc),
            Classification::Xml {
                namespace: Some("http://crd.gov.pl/wzor/2013/12/12/1410/".into()),
                root: "Dokument".into()
            }
        );
    }

    #[test]
    fn refuses_what_is_not_xml() {
        assert!(matches!(
            classify(b"%PDF-1.7 ..."),
            Classification::NotXml { .. }
        ));
        assert!(
            matches!(classify(b"<!DOCTYPE a><a/>"), Classification::NotXml { reason } if reason.contains("DOCTYPE"))
        );
        assert!(
            matches!(classify(b"<x:a/>"), Classification::NotXml { reason } if reason.contains("undeclared"))
        );
    }

    #[test]
    fn names_the_root_in_utf16_and_utf32() {
        let text = r#"<?xml version="1.0" encoding="UTF-16"?><wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/"/>"#;
        let expected = classify(text.replace("UTF-16", "UTF-8").as_bytes());
        let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let utf32: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        for bytes in [utf16le, utf16be, utf32] {
            assert_eq!(classify(&bytes), expected);
        }
        let doctype: Vec<u8> = "<!DOCTYPE a><a/>"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert!(
            matches!(classify(&doctype), Classification::NotXml { reason } if reason.contains("DOCTYPE"))
        );
    }
}
