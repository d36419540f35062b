//! `schemas/rejestr.xsd` is the contract a back-office vendor checks an export against
//! (docs/import-formats.md). These tests keep it in step with the registers eurzad reads
//! (`src/registers/mod.rs`): every register has its row element, every column its attribute
//! with the type its kind asks for, and nothing else; and every register's sample, and the
//! hand-checked fixtures, written as XML, validate against it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{BIN, fixture};
use eurzad::registers::xml_source::{REGISTER_NS, row_element};
use eurzad::registers::{Kind, REGISTERS};
use libxml::parser::Parser;
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use libxml::tree::Node;
use libxml::xpath::Context;

const XSD_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/rejestr.xsd");

/// What the schema says of one attribute: its type (a named type, or `enum:a|b|c` for an
/// inline enumeration) and whether it is required.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Attribute {
    kind: String,
    required: bool,
}

fn xsd() -> (libxml::tree::Document, Context) {
    let document = Parser::default().parse_file(XSD_PATH).unwrap();
    let context = Context::new(&document).unwrap();
    context
        .register_namespace("xs", "http://www.w3.org/2001/XMLSchema")
        .unwrap();
    (document, context)
}

fn nodes(context: &Context, node: Option<&Node>, xpath: &str) -> Vec<Node> {
    match node {
        Some(node) => context.node_evaluate(xpath, node),
        None => context.evaluate(xpath),
    }
    .unwrap_or_else(|_| panic!("xpath {xpath}"))
    .get_nodes_as_vec()
}

fn attributes_of(context: &Context, complex_type: &str) -> BTreeMap<String, Attribute> {
    let types = nodes(
        context,
        None,
        &format!("/xs:schema/xs:complexType[@name='{complex_type}']"),
    );
    assert_eq!(
        types.len(),
        1,
        "one complexType {complex_type} in rejestr.xsd"
    );
    nodes(context, Some(&types[0]), "xs:attribute")
        .into_iter()
        .map(|attribute| {
            let name = attribute.get_attribute("name").unwrap();
            let kind = match attribute.get_attribute("type") {
                Some(kind) => kind,
                None => {
                    let values: Vec<String> = nodes(
                        context,
                        Some(&attribute),
                        "xs:simpleType/xs:restriction/xs:enumeration",
                    )
                    .iter()
                    .map(|v| v.get_attribute("value").unwrap())
                    .collect();
                    assert!(!values.is_empty(), "{complex_type}/@{name} has no type");
                    format!("enum:{}", values.join("|"))
                }
            };
            let required = attribute.get_attribute("use").as_deref() == Some("required");
            (name, Attribute { kind, required })
        })
        .collect()
}

/// The attributes a register's row must have in the schema, derived from its columns.
fn expected_attributes(register: &eurzad::registers::Register) -> BTreeMap<String, Attribute> {
    let mut expected = BTreeMap::new();
    let mut put = |name: String, kind: &str, required: bool| {
        expected.insert(
            name,
            Attribute {
                kind: kind.into(),
                required,
            },
        );
    };
    put("id".into(), "Id", true);
    for column in register.columns {
        let name = column.header.to_string();
        let required = column.required;
        let or_empty = |kind: &str| {
            if required {
                kind.to_string()
            } else {
                format!("{kind}OrEmpty")
            }
        };
        match column.kind {
            // Either form of an amount may be given; that one of them is, eurzad checks.
            Kind::Money => {
                put(format!("{name}_gr"), "Grosze", false);
                put(name, "Zloty", false);
            }
            Kind::Text if required => put(name, "Text", true),
            Kind::Text => put(name, "xs:string", false),
            Kind::Int => put(name, &or_empty("Integer"), required),
            Kind::Date => put(name, &or_empty("Date"), required),
            Kind::Ref(_) => put(name, &or_empty("Id"), required),
            Kind::Decimal4 => {
                assert!(required, "an optional Decimal4 needs a type in rejestr.xsd");
                put(name, "Decimal4", true)
            }
            Kind::Nrb => {
                assert!(required, "an optional NRB needs a type in rejestr.xsd");
                put(name, "Nrb", true)
            }
            Kind::Pesel | Kind::Nip | Kind::Regon => {
                assert!(
                    !required,
                    "a required identifier needs a type in rejestr.xsd"
                );
                let kind = match column.kind {
                    Kind::Pesel => "PeselOrEmpty",
                    Kind::Nip => "NipOrEmpty",
                    _ => "RegonOrEmpty",
                };
                put(name, kind, false)
            }
            Kind::OneOf(values) => put(name, &format!("enum:{}", values.join("|")), required),
        }
    }
    expected
}

#[test]
fn the_schema_names_every_register_and_every_column_with_its_type() {
    let (_document, context) = xsd();
    let root = "/xs:schema/xs:element[@name='Rejestr']/xs:complexType";
    let names: Vec<String> = nodes(
        &context,
        None,
        &format!(
            "{root}/xs:attribute[@name='rejestr']/xs:simpleType/xs:restriction/xs:enumeration"
        ),
    )
    .iter()
    .map(|n| n.get_attribute("value").unwrap())
    .collect();
    let ours: Vec<String> = REGISTERS.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(
        names, ours,
        "the rejestr attribute's values are the registers"
    );

    let elements: BTreeMap<String, String> =
        nodes(&context, None, &format!("{root}/xs:choice/xs:element"))
            .iter()
            .map(|n| {
                (
                    n.get_attribute("name").unwrap(),
                    n.get_attribute("type").unwrap(),
                )
            })
            .collect();
    assert_eq!(elements.len(), REGISTERS.len(), "{elements:?}");
    let mut mismatches = Vec::new();
    for register in REGISTERS {
        let element = row_element(register.name)
            .unwrap_or_else(|| panic!("{} has no row element", register.name));
        assert_eq!(
            elements.get(element).map(String::as_str),
            Some(element),
            "<{element}> of {} in <Rejestr>",
            register.name
        );
        let schema = attributes_of(&context, element);
        let expected = expected_attributes(register);
        for (name, want) in &expected {
            match schema.get(name) {
                Some(have) if have == want => {}
                have => mismatches.push(format!(
                    "{}: <{element} {name}>: schema {have:?}, columns say {want:?}",
                    register.name
                )),
            }
        }
        for name in schema.keys().filter(|n| !expected.contains_key(*n)) {
            mismatches.push(format!(
                "{}: <{element} {name}> is in the schema but not a column",
                register.name
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A register file in CSV (a header row; `;` or `,` as eurzad reads it), written as the XML
/// form.
fn csv_as_xml(csv_path: &Path, register: &str) -> String {
    let text = std::fs::read_to_string(csv_path).unwrap();
    let header = text.lines().next().unwrap_or("");
    let delimiter = if header.contains(';') { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(csv_path)
        .unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let element = row_element(register).unwrap();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Rejestr xmlns=\"{REGISTER_NS}\" rejestr=\"{register}\">\n"
    );
    for record in reader.records() {
        let record = record.unwrap();
        xml.push_str("  <");
        xml.push_str(element);
        for (header, value) in headers.iter().zip(record.iter()) {
            if value.is_empty() {
                continue;
            }
            let value = value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;");
            xml.push_str(&format!(" {header}=\"{value}\""));
        }
        xml.push_str("/>\n");
    }
    xml.push_str("</Rejestr>\n");
    xml
}

/// Validates `xml` against rejestr.xsd: the first error's line and message.
fn validate(xml: &str) -> Result<(), (i32, String)> {
    let mut parser = SchemaParserContext::from_file(XSD_PATH);
    let mut validator = SchemaValidationContext::from_parser(&mut parser).unwrap();
    let document = Parser::default().parse_string(xml).unwrap();
    validator.validate_document(&document).map_err(|errors| {
        let first = &errors[0];
        (
            first.line.unwrap_or(0),
            first.message.clone().unwrap_or_default(),
        )
    })
}

#[test]
fn every_registers_sample_and_fixture_validates_as_xml() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["sample-registers", "--inhabitants", "3000", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut checked = 0;
    for register in REGISTERS {
        let sample = dir.path().join(format!("{}.csv", register.name));
        assert!(sample.exists(), "the generator writes {}", register.name);
        let xml = csv_as_xml(&sample, register.name);
        assert!(xml.lines().count() > 3, "{} has rows", register.name);
        if let Err((line, message)) = validate(&xml) {
            let text = xml.lines().nth(line as usize - 1).unwrap_or("");
            panic!("{} sample, line {line}: {message}\n{text}", register.name);
        }
        checked += 1;
    }
    for set in ["basic", "entries"] {
        for entry in std::fs::read_dir(fixture(&format!("registers/{set}"))).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "csv") {
                continue;
            }
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let xml = csv_as_xml(&path, &name);
            assert_eq!(validate(&xml), Ok(()), "{set}/{name}");
            checked += 1;
        }
    }
    assert!(checked >= REGISTERS.len() + 10, "{checked} files");
}

#[test]
fn a_value_of_the_wrong_type_is_refused_by_the_schema_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    eurzad::registers::sample::generate(dir.path(), 500, 0).unwrap();
    // One wrong value per register kind of type, on the third row (line 5 of the file).
    let cases = [
        ("installments", "termin", "2026-13-01"),
        ("accounts", "nrb", "12 3456"),
        ("parties", "pesel", "8503141234"),
        ("assessment_components", "stawka", "1,23456"),
        ("ledger", "typ", "gift"),
        ("leases", "czynsz", "12,345"),
    ];
    for (register, attribute, wrong) in cases {
        let xml = csv_as_xml(&dir.path().join(format!("{register}.csv")), register);
        let mut lines: Vec<String> = xml.lines().map(str::to_string).collect();
        let row = &mut lines[4];
        let start = row
            .find(&format!(" {attribute}=\""))
            .unwrap_or_else(|| panic!("{register}: {row}"))
            + attribute.len()
            + 3;
        let end = start + row[start..].find('"').unwrap();
        row.replace_range(start..end, wrong);
        let (line, message) = validate(&lines.join("\n")).expect_err(register);
        assert_eq!(line, 5, "{register}: {message}");
        assert!(
            message.contains(&format!("'{attribute}'")),
            "{register}: {message}"
        );
    }
}
