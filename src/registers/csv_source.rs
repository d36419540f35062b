//! Reading a register's CSV export as a stream: UTF-8 (with or without a BOM) or
//! Windows-1250, detected from the bytes unless configured; `;` or `,` as the separator,
//! detected from the header line; a header row naming the columns (`id` first by
//! convention, any order accepted). Rows are checked as they are read, and an error names
//! `file:line`, the column and the reason. Records are parsed on a thread of their own, at
//! most a few batches of 1,024 ahead of the checks, so memory stays bounded.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use encoding_rs::{Encoding, UTF_8, WINDOWS_1250};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::{Column, Register, Value, check_into};

/// An error in a file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{reason}", column.as_ref().map(|c| format!("column {c}: ")).unwrap_or_default())]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

/// How to decode a file: `auto` detects UTF-8, else Windows-1250.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FileEncoding {
    #[default]
    Auto,
    Utf8,
    Windows1250,
}

/// A checked row: its external id, its values in the register's column order, and the
/// line it started on.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub line: u64,
    pub id: String,
    pub values: Vec<Value>,
}

pub struct CsvRows {
    file: String,
    /// Records parsed ahead on a thread of their own, in batches: parsing and checking a
    /// record cost about the same, so a long file is read on two cores.
    parsed: std::sync::mpsc::Receiver<Result<Vec<csv::StringRecord>, csv::Error>>,
    /// Batches read go back to the parser, which parses into the same records again.
    spent: std::sync::mpsc::Sender<Vec<csv::StringRecord>>,
    batch: Vec<csv::StringRecord>,
    next: usize,
    /// For each register column: its index in the record and whether it is in grosze.
    layout: Vec<(Option<usize>, bool)>,
    id_index: usize,
    columns: &'static [Column],
    row_check: Option<super::RowCheck>,
    pub encoding: &'static Encoding,
    pub delimiter: u8,
}

/// Records per parsed batch.
const PARSED_BATCH: usize = 1024;
/// Parsed batches waiting at most: the parser stays this close ahead of the checks.
const PARSED_AHEAD: usize = 4;

/// The parser's loop: fills batches of records (reusing those that come back) until the end
/// of the file, an error (sent after the records before it), or the reader going away.
fn parse_records(
    mut reader: csv::Reader<Box<dyn Read + Send>>,
    parsed: std::sync::mpsc::SyncSender<Result<Vec<csv::StringRecord>, csv::Error>>,
    spent: std::sync::mpsc::Receiver<Vec<csv::StringRecord>>,
) {
    loop {
        let mut batch = spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PARSED_BATCH));
        let mut filled = 0;
        let mut failed = None;
        while filled < PARSED_BATCH {
            if filled == batch.len() {
                batch.push(csv::StringRecord::new());
            }
            match reader.read_record(&mut batch[filled]) {
                Ok(true) => filled += 1,
                Ok(false) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let ended = filled < PARSED_BATCH;
        batch.truncate(filled);
        if filled > 0 && parsed.send(Ok(batch)).is_err() {
            return;
        }
        if let Some(e) = failed {
            let _ = parsed.send(Err(e));
            return;
        }
        if ended {
            return;
        }
    }
}

fn sniff(path: &Path, configured: FileEncoding) -> std::io::Result<(&'static Encoding, u8)> {
    let mut head = vec![0u8; 64 * 1024];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    head.truncate(filled);
    let encoding = match configured {
        FileEncoding::Utf8 => UTF_8,
        FileEncoding::Windows1250 => WINDOWS_1250,
        FileEncoding::Auto => match std::str::from_utf8(&head) {
            Ok(_) => UTF_8,
            // A multi-byte character cut at the end of the sample is still UTF-8.
            Err(e) if e.error_len().is_none() => UTF_8,
            Err(_) => WINDOWS_1250,
        },
    };
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first_line.iter().filter(|b| **b == c).count();
    let delimiter = if count(b';') >= count(b',') {
        b';'
    } else {
        b','
    };
    Ok((encoding, delimiter))
}

impl CsvRows {
    pub fn open(
        path: &Path,
        register: &'static Register,
        encoding: FileEncoding,
    ) -> Result<CsvRows, RowError> {
        let file_name = path.display().to_string();
        let io_error = |e: std::io::Error| RowError {
            file: file_name.clone(),
            line: 0,
            column: None,
            reason: format!("cannot read: {e}"),
        };
        let (encoding, delimiter) = sniff(path, encoding).map_err(io_error)?;
        let file = BufReader::with_capacity(256 * 1024, File::open(path).map_err(io_error)?);
        // UTF-8 is read as it is (the csv reader checks it and skips a BOM); anything else is
        // decoded on the way in.
        let decoded: Box<dyn Read + Send> = if encoding == UTF_8 {
            Box::new(file)
        } else {
            Box::new(
                DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding))
                    .bom_override(true)
                    .build(file),
            )
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(false)
            .buffer_capacity(256 * 1024)
            .from_reader(decoded);
        let header_error = |reason: String| RowError {
            file: file_name.clone(),
            line: 1,
            column: None,
            reason,
        };
        let headers = reader
            .headers()
            .map_err(|e| header_error(format!("no header row: {e}")))?
            .clone();
        let find = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let id_index =
            find("id").ok_or_else(|| header_error("no `id` column (the external key)".into()))?;
        let mut layout = Vec::new();
        for column in register.columns {
            let grosze_header = format!("{}_gr", column.header);
            let (index, grosze) = match (find(column.header), find(&grosze_header)) {
                (Some(i), None) => (Some(i), false),
                (None, Some(i)) if column.kind == super::Kind::Money => (Some(i), true),
                (Some(_), Some(_)) => {
                    return Err(header_error(format!(
                        "both {} and {grosze_header}: give the amount once",
                        column.header
                    )));
                }
                _ if column.required => {
                    return Err(header_error(format!("missing column {}", column.header)));
                }
                _ => (None, false),
            };
            layout.push((index, grosze));
        }
        let known = headers.len() - 1 - layout.iter().filter(|(i, _)| i.is_some()).count();
        if known > 0 {
            let unknown: Vec<&str> = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != id_index && !layout.iter().any(|(j, _)| *j == Some(*i)))
                .map(|(_, h)| h)
                .collect();
            return Err(header_error(format!(
                "unknown column(s) for register {}: {}",
                register.name,
                unknown.join(", ")
            )));
        }
        let (parsed_tx, parsed) = std::sync::mpsc::sync_channel(PARSED_AHEAD);
        let (spent, spent_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("csv-parser".into())
            .spawn(move || parse_records(reader, parsed_tx, spent_rx))
            .map_err(io_error)?;
        Ok(CsvRows {
            file: file_name,
            parsed,
            spent,
            batch: Vec::new(),
            next: 0,
            layout,
            id_index,
            columns: register.columns,
            row_check: register.row_check,
            encoding,
            delimiter,
        })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next checked row, `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        let mut row = Row::default();
        self.next_row_into(&mut row).map(|done| done.map(|()| row))
    }

    /// The next checked row into `row`, reusing its strings and its vector; `None` at the
    /// end. After an error `row` holds a part of the refused row.
    pub fn next_row_into(&mut self, row: &mut Row) -> Option<Result<(), RowError>> {
        while self.next == self.batch.len() {
            let spent = std::mem::take(&mut self.batch);
            if spent.capacity() > 0 {
                // The parser may have ended: then the batch is simply dropped.
                let _ = self.spent.send(spent);
            }
            self.next = 0;
            match self.parsed.recv() {
                Ok(Ok(batch)) => self.batch = batch,
                // The parser ended at the end of the file.
                Err(_) => return None,
                Ok(Err(e)) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    return Some(Err(RowError {
                        file: self.file.clone(),
                        line,
                        column: None,
                        reason: e.to_string(),
                    }));
                }
            }
        }
        let record = &self.batch[self.next];
        self.next += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let error = |column: Option<&str>, reason: String| RowError {
            file: self.file.clone(),
            line,
            column: column.map(str::to_string),
            reason,
        };
        let id = record.get(self.id_index).unwrap_or("").trim();
        if id.is_empty() {
            return Some(Err(error(Some("id"), "required, but empty".into())));
        }
        let control = if id.is_ascii() {
            id.bytes().any(|b| b.is_ascii_control())
        } else {
            id.chars().any(char::is_control)
        };
        if control {
            return Some(Err(error(
                Some("id"),
                format!("{id:?} contains control characters"),
            )));
        }
        row.line = line;
        row.id.clear();
        row.id.push_str(id);
        row.values.truncate(self.columns.len());
        for (position, (column, (index, grosze))) in
            self.columns.iter().zip(&self.layout).enumerate()
        {
            let raw = index.and_then(|i| record.get(i)).unwrap_or("");
            if row.values.len() == position {
                row.values.push(Value::Int(None));
            }
            if let Err(reason) = check_into(column, raw, *grosze, &mut row.values[position]) {
                return Some(Err(error(Some(column.header), reason)));
            }
        }
        if let Some(check) = self.row_check
            && let Err((column, reason)) = check(&row.values)
        {
            return Some(Err(error(Some(column), reason)));
        }
        Some(Ok(()))
    }
}

/// Files for `register` in a drop folder: `<register>*.csv` or `.xml`, in name order.
pub fn dropped_files(dir: &Path, register: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("xml"))
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(register))
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows across several parsed batches, then a record with a field missing: the rows
    /// before it arrive, then the error with its line, then nothing.
    #[test]
    fn a_broken_record_after_whole_batches_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.csv");
        let mut text = String::from("id;rok;dzial;rozdzial;paragraf;nazwa;plan;wykonanie\n");
        let good = PARSED_BATCH * 2 + 5;
        for n in 0..good {
            text.push_str(&format!("B{n};2026;600;60016;4270;Drogi;100,00;50,00\n"));
        }
        text.push_str("B-broken;2026;600;60016;4270;Drogi;100,00\n");
        text.push_str("B-after;2026;600;60016;4270;Drogi;100,00;50,00\n");
        std::fs::write(&path, text).unwrap();
        let register = super::super::register("budget").unwrap();
        let mut rows = CsvRows::open(&path, register, FileEncoding::Auto).unwrap();
        for n in 0..good {
            let row = rows.next_row().unwrap().unwrap();
            assert_eq!(
                (row.id.as_str(), row.line),
                (format!("B{n}").as_str(), n as u64 + 2)
            );
        }
        let error = rows.next_row().unwrap().unwrap_err();
        assert_eq!(error.line, good as u64 + 2, "{error}");
        assert!(error.to_string().contains("budget.csv"), "{error}");
        assert!(rows.next_row().is_none(), "nothing after the error");
    }
}
