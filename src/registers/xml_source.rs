//! The XML alternative to CSV exports (`schemas/rejestr.xsd`): `<Rejestr rejestr="ledger">`
//! with one element per row, named per register (`<Operacja id="…" konto="…" …/>` in the
//! ledger: [`row_element`]), its attributes named like the CSV headers and typed by the
//! schema.
//! Three streaming passes, so memory stays bounded however large the file:
//! 1. quick-xml refuses a DOCTYPE (entities, XXE) before libxml2 sees the bytes;
//! 2. libxml2's streaming (SAX) validator checks it against the XSD;
//! 3. quick-xml reads the rows, which are checked like CSV rows.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use quick_xml::events::Event;

use super::csv_source::{Row, RowError};
use super::{Column, Kind, Register, check};

pub const REGISTER_NS: &str = "http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/rejestr/";

/// The element of one row of each register, as schemas/rejestr.xsd names it.
const ROW_ELEMENTS: &[(&str, &str)] = &[
    ("parties", "Podmiot"),
    ("accounts", "Konto"),
    ("obligors", "Zobowiazany"),
    ("installments", "Rata"),
    ("ledger", "Operacja"),
    ("cases", "Sprawa"),
    ("case_letters", "Pismo"),
    ("alcohol_permits", "Zezwolenie"),
    ("leases", "Dzierzawa"),
    ("budget", "PozycjaBudzetu"),
    ("property", "Nieruchomosc"),
    ("assessments", "Wymiar"),
    ("assessment_components", "SkladnikWymiaru"),
];

/// The element of one row of `register` in the XML form.
pub fn row_element(register: &str) -> Option<&'static str> {
    ROW_ELEMENTS
        .iter()
        .find(|(name, _)| *name == register)
        .map(|(_, element)| *element)
}
const XSD: &str = include_str!("../../schemas/rejestr.xsd");

fn error(file: &str, line: u64, column: Option<&str>, reason: impl Into<String>) -> RowError {
    RowError {
        file: file.into(),
        line,
        column: column.map(str::to_string),
        reason: reason.into(),
    }
}

/// Pass 1: no DOCTYPE before the root element.
fn refuse_doctype(path: &Path, file: &str) -> Result<(), RowError> {
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(
        File::open(path).map_err(|e| error(file, 0, None, format!("cannot read: {e}")))?,
    ));
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::DocType(_)) => {
                return Err(error(
                    file,
                    1,
                    None,
                    "DOCTYPE: DTDs and entities are refused",
                ));
            }
            Ok(Event::Start(_) | Event::Empty(_) | Event::Eof) => return Ok(()),
            Ok(_) => buf.clear(),
            Err(e) => return Err(error(file, 1, None, format!("not well-formed XML: {e}"))),
        }
    }
}

/// Pass 2: XSD validation with libxml2's streaming (SAX) validator: no tree is built.
fn validate(path: &Path, file: &str) -> Result<(), RowError> {
    let mut parser = SchemaParserContext::from_buffer(XSD);
    let mut context = SchemaValidationContext::from_parser(&mut parser)
        .map_err(|_| error(file, 0, None, "the built-in rejestr.xsd does not compile"))?;
    let path = path
        .to_str()
        .ok_or_else(|| error(file, 0, None, "a path that is not UTF-8"))?;
    context.validate_file(path).map_err(|errors| {
        let first = errors.first();
        error(
            file,
            first.and_then(|e| e.line).unwrap_or(0).max(0) as u64,
            None,
            format!(
                "does not match rejestr.xsd: {}",
                first
                    .and_then(|e| e.message.clone())
                    .map(|m| m.trim().to_string())
                    .unwrap_or_else(|| "invalid".into())
            ),
        )
    })
}

/// Pass 3: the rows.
pub struct XmlRows {
    file: String,
    reader: quick_xml::NsReader<BufReader<File>>,
    columns: &'static [Column],
    register: &'static Register,
    buf: Vec<u8>,
    line: u64,
}

impl XmlRows {
    pub fn open(path: &Path, register: &'static Register) -> Result<XmlRows, RowError> {
        let file = path.display().to_string();
        refuse_doctype(path, &file)?;
        validate(path, &file)?;
        let reader = quick_xml::NsReader::from_reader(BufReader::with_capacity(
            256 * 1024,
            File::open(path).map_err(|e| error(&file, 0, None, format!("cannot read: {e}")))?,
        ));
        Ok(XmlRows {
            file,
            reader,
            columns: register.columns,
            register,
            buf: Vec::new(),
            line: 1,
        })
    }

    /// The next checked row, `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => {
                    return Some(Err(error(
                        &self.file,
                        self.line,
                        None,
                        format!("not well-formed XML: {e}"),
                    )));
                }
            };
            let line = self.line;
            let (element, start) = match event {
                Event::Eof => return None,
                Event::Start(e) => (e.into_owned(), true),
                Event::Empty(e) => (e.into_owned(), true),
                Event::Text(t) => {
                    self.line += t.iter().filter(|b| **b == b'\n').count() as u64;
                    continue;
                }
                _ => continue,
            };
            let _ = start;
            match element.local_name().as_ref() {
                b"Rejestr" => {
                    let named = element
                        .try_get_attribute("rejestr")
                        .ok()
                        .flatten()
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                    if named.as_deref() != Some(self.register.name) {
                        return Some(Err(error(
                            &self.file,
                            line,
                            Some("rejestr"),
                            format!(
                                "the file is register {:?}, not {}",
                                named.unwrap_or_default(),
                                self.register.name
                            ),
                        )));
                    }
                }
                name if Some(name) == row_element(self.register.name).map(str::as_bytes) => {
                    return Some(self.row(&element, line));
                }
                other => {
                    return Some(Err(error(
                        &self.file,
                        line,
                        None,
                        format!(
                            "<{}> is not a row of register {} (its rows are <{}>)",
                            String::from_utf8_lossy(other),
                            self.register.name,
                            row_element(self.register.name).unwrap_or("?")
                        ),
                    )));
                }
            }
        }
    }

    fn row(&self, element: &quick_xml::events::BytesStart<'_>, line: u64) -> Result<Row, RowError> {
        let mut attributes: Vec<(String, String)> = Vec::new();
        for attribute in element.attributes() {
            let attribute = attribute
                .map_err(|e| error(&self.file, line, None, format!("bad attribute: {e}")))?;
            let name = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
            let value = attribute
                .unescape_value()
                .map_err(|e| error(&self.file, line, Some(&name), format!("bad value: {e}")))?
                .into_owned();
            attributes.push((name, value));
        }
        let get = |name: &str| {
            attributes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let id = get("id").unwrap_or("").trim().to_string();
        let mut known = 1;
        let mut values = Vec::with_capacity(self.columns.len());
        for column in self.columns {
            let grosze_name = format!("{}_gr", column.header);
            let (raw, grosze) = match (get(column.header), get(&grosze_name)) {
                (Some(v), None) => (v, false),
                (None, Some(v)) if column.kind == Kind::Money => (v, true),
                (Some(_), Some(_)) => {
                    return Err(error(
                        &self.file,
                        line,
                        Some(column.header),
                        "given twice (złoty and grosze)",
                    ));
                }
                _ => ("", false),
            };
            if !raw.is_empty() || get(column.header).is_some() || get(&grosze_name).is_some() {
                known += 1;
            }
            values.push(
                check(column, raw, grosze)
                    .map_err(|reason| error(&self.file, line, Some(column.header), reason))?,
            );
        }
        if known < attributes.len() {
            let unknown: Vec<&str> = attributes
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| {
                    *n != "id"
                        && !self
                            .columns
                            .iter()
                            .any(|c| c.header == *n || format!("{}_gr", c.header) == *n)
                })
                .collect();
            if !unknown.is_empty() {
                return Err(error(
                    &self.file,
                    line,
                    None,
                    format!(
                        "unknown attribute(s) for register {}: {}",
                        self.register.name,
                        unknown.join(", ")
                    ),
                ));
            }
        }
        if let Some(check) = self.register.row_check {
            check(&values)
                .map_err(|(column, reason)| error(&self.file, line, Some(column), reason))?;
        }
        Ok(Row { line, id, values })
    }
}
