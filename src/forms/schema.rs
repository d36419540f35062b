//! XSD validation of our own forms with libxml2. The schemas are compiled into the binary
//! (`schemas/*.xsd`), with the shared types spliced in and the target namespace set to the
//! configured one. A compiled schema is not `Send`: each thread keeps its own, per namespace.

use std::cell::RefCell;
use std::collections::HashMap;

use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use libxml::tree::Document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    AccessRequest,
    Authorization,
}

const COMMON: &str = include_str!("../../schemas/eurzad_common.xsd");
const ACCESS_REQUEST: &str = include_str!("../../schemas/wniosek_o_dostep.xsd");
const AUTHORIZATION: &str = include_str!("../../schemas/upowaznienie.xsd");
const INCLUDE: &str = r#"<xs:include schemaLocation="eurzad_common.xsd"/>"#;

/// The schema text for `kind` with the shared types inlined and `namespace` as its target.
fn source(kind: Kind, namespace: &str) -> String {
    let (text, default_ns) = match kind {
        Kind::AccessRequest => (ACCESS_REQUEST, super::ACCESS_REQUEST_NS),
        Kind::Authorization => (AUTHORIZATION, super::AUTHORIZATION_NS),
    };
    let start = COMMON.find("<xs:simpleType").expect("common types");
    let end = COMMON.rfind("</xs:schema>").expect("common schema end");
    text.replace(INCLUDE, &COMMON[start..end])
        .replace(default_ns, namespace)
}

thread_local! {
    static COMPILED: RefCell<HashMap<(Kind, String), SchemaValidationContext>> =
        RefCell::new(HashMap::new());
}

/// Validates `doc`; on failure returns (where, what) of the first error.
pub(crate) fn validate(
    kind: Kind,
    namespace: &str,
    doc: &Document,
) -> Result<(), (String, String)> {
    COMPILED.with(|compiled| {
        let mut compiled = compiled.borrow_mut();
        let key = (kind, namespace.to_string());
        if !compiled.contains_key(&key) {
            // libxml2 reads the buffer when the schema is compiled, not when the context is
            // made: the text must outlive `from_parser`.
            let text = source(kind, namespace);
            let mut parser = SchemaParserContext::from_buffer(&text);
            let context = SchemaValidationContext::from_parser(&mut parser).map_err(|errors| {
                (
                    "schema".to_string(),
                    format!("the built-in XSD does not compile: {}", first(&errors)),
                )
            })?;
            compiled.insert(key.clone(), context);
        }
        let context = compiled.get_mut(&key).expect("just inserted");
        context.validate_document(doc).map_err(|errors| {
            let at = errors
                .first()
                .and_then(|e| e.line)
                .map(|line| format!("line {line}"))
                .unwrap_or_else(|| "document".into());
            (
                at,
                format!("does not match the form's XSD: {}", first(&errors)),
            )
        })
    })
}

fn first(errors: &[libxml::error::StructuredError]) -> String {
    errors
        .first()
        .and_then(|e| e.message.clone())
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "no detail from libxml2".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemas_compile_under_any_namespace() {
        for kind in [Kind::AccessRequest, Kind::Authorization] {
            for ns in [super::super::ACCESS_REQUEST_NS, "urn:office:form"] {
                let text = source(kind, ns);
                let mut parser = SchemaParserContext::from_buffer(&text);
                assert!(
                    SchemaValidationContext::from_parser(&mut parser).is_ok(),
                    "{kind:?} under {ns}"
                );
            }
        }
    }
}
