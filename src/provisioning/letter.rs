//! The office's reply letters to applicants, in Polish: "Informacja o rejestracji w portalu
//! eUrząd" or "Odmowa rejestracji". A letter is plain XML in the office's namespace; it is
//! sealed (enveloped XAdES-BES, `signature::seal`) before it is sent.

use chrono::NaiveDate;

pub const LETTER_NS: &str = "http://epuap.gov.pl/fe-model-web/wzor_lokalny/eurzad/pismo/";

/// Which letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LetterKind {
    RegistrationInfo,
    RegistrationRefusal,
}

impl LetterKind {
    /// The kind named `name` (`outbound_document.kind`).
    pub fn parse(name: &str) -> Option<LetterKind> {
        [
            LetterKind::RegistrationInfo,
            LetterKind::RegistrationRefusal,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::RegistrationInfo => "registration_info",
            LetterKind::RegistrationRefusal => "registration_refusal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            LetterKind::RegistrationInfo => "Informacja o rejestracji w portalu eUrząd",
            LetterKind::RegistrationRefusal => "Odmowa rejestracji w portalu eUrząd",
        }
    }

    pub fn file_name(self, request_id: i64) -> String {
        match self {
            LetterKind::RegistrationInfo => format!("informacja-o-rejestracji-{request_id}.xml"),
            LetterKind::RegistrationRefusal => format!("odmowa-rejestracji-{request_id}.xml"),
        }
    }

    /// The name of the letter printed for the hybrid service.
    pub fn pdf_file_name(self, request_id: i64) -> String {
        self.file_name(request_id).replace(".xml", ".pdf")
    }
}

/// What a letter says.
#[derive(Debug, Clone)]
pub struct Letter<'a> {
    pub kind: LetterKind,
    pub request_id: i64,
    pub office: &'a str,
    pub date: NaiveDate,
    pub request_date: NaiveDate,
    pub addressee: &'a str,
    /// "Testowa Spółka z o.o. (NIP 5252955037): podatki, opłaty" per approved representation.
    pub representations: &'a [String],
    /// The reason of a refusal.
    pub reason: Option<&'a str>,
}

impl Letter<'_> {
    /// The case reference: `EUR.<request>.<year>`.
    pub fn reference(&self) -> String {
        format!("EUR.{}.{}", self.request_id, self.date.format("%Y"))
    }

    fn body(&self) -> Vec<String> {
        let request_date = self.request_date.format("%d.%m.%Y");
        match self.kind {
            LetterKind::RegistrationInfo => {
                let mut body = vec![
                    format!(
                        "Uprzejmie informujemy, że na podstawie wniosku z dnia {request_date} \
                         założono konto w portalu eUrząd, powiązane z Pani/Pana tożsamością w ePUAP."
                    ),
                    "Do portalu logujesz się profilem zaufanym (login.gov.pl) lub innym środkiem \
                     identyfikacji elektronicznej."
                        .to_string(),
                ];
                if !self.representations.is_empty() {
                    body.push(format!(
                        "Możesz przeglądać dane podmiotów, w których imieniu działasz: {}.",
                        self.representations.join("; ")
                    ));
                }
                body
            }
            LetterKind::RegistrationRefusal => vec![
                format!(
                    "Uprzejmie informujemy, że wniosek z dnia {request_date} o dostęp do portalu \
                     eUrząd nie został uwzględniony."
                ),
                format!("Powód: {}.", self.reason.unwrap_or("nie podano")),
                "Możesz złożyć nowy wniosek, podpisany kwalifikowanym podpisem elektronicznym, \
                 profilem zaufanym lub podpisem osobistym."
                    .to_string(),
            ],
        }
    }

    /// The letter as XML (unsigned).
    pub fn to_xml(&self) -> Vec<u8> {
        let paragraphs: String = self
            .body()
            .iter()
            .map(|p| format!("    <Akapit>{}</Akapit>\n", escape(p)))
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Pismo xmlns=\"{LETTER_NS}\" rodzaj=\"{kind}\">\n\
             \x20   <Znak>{reference}</Znak>\n\
             \x20   <Data>{date}</Data>\n\
             \x20   <Nadawca>{office}</Nadawca>\n\
             \x20   <Adresat>{addressee}</Adresat>\n\
             \x20   <Tytul>{title}</Tytul>\n\
             {paragraphs}\
             </Pismo>\n",
            kind = self.kind.as_str(),
            reference = self.reference(),
            date = self.date,
            office = escape(self.office),
            addressee = escape(self.addressee),
            title = escape(self.kind.title()),
        )
        .into_bytes()
    }
}

impl Letter<'_> {
    /// The letter as a page to print (the hybrid service): the office and the date, the
    /// addressee with their postal address where the envelope's window shows it, the
    /// reference, the title and the text.
    pub fn to_document(
        &self,
        postal: Option<&crate::delivery::PostalAddress>,
    ) -> crate::pdf::TextDocument {
        use crate::pdf::Block;
        let mut blocks = vec![
            Block::Line(self.office.to_string()),
            Block::Line(format!(
                "Data: {}    Znak: {}",
                self.date.format("%d.%m.%Y"),
                self.reference()
            )),
            Block::Gap,
            Block::Line(self.addressee.to_string()),
        ];
        if let Some(postal) = postal {
            blocks.extend(postal.lines().map(Block::Line));
        }
        blocks.push(Block::Gap);
        blocks.push(Block::Title(self.kind.title().to_string()));
        blocks.extend(self.body().into_iter().map(Block::Paragraph));
        blocks.push(Block::Paragraph(format!(
            "Pismo wydrukowano z dokumentu elektronicznego urzędu ({}).",
            self.office
        )));
        crate::pdf::TextDocument {
            title: format!("{} ({})", self.kind.title(), self.reference()),
            author: self.office.to_string(),
            blocks,
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_states_its_reason_in_polish() {
        let letter = Letter {
            kind: LetterKind::RegistrationRefusal,
            request_id: 7,
            office: "Urząd Miasta Testowo",
            date: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            request_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            addressee: "Jan Kowalski",
            representations: &[],
            reason: Some("podpis wniosku jest nieprawidłowy: <altered>"),
        };
        let xml = String::from_utf8(letter.to_xml()).unwrap();
        assert!(
            xml.contains("<Tytul>Odmowa rejestracji w portalu eUrząd</Tytul>"),
            "{xml}"
        );
        assert!(xml.contains("wniosek z dnia 20.11.2026"), "{xml}");
        assert!(
            xml.contains("Powód: podpis wniosku jest nieprawidłowy: &lt;altered&gt;."),
            "{xml}"
        );
        assert!(xml.contains("<Znak>EUR.7.2026</Znak>"));
        crate::xml::parse(xml.as_bytes(), crate::xml::Limits::default()).expect("well-formed");
    }
}
