//! The access request ("Wniosek o dostęp do portalu eUrząd") and the authorization
//! ("Upoważnienie") it may carry as attachments. Both are validated against their XSD before
//! these readers run, so the readers check what an XSD cannot: check digits, dates, and that
//! an attachment a representation names is really attached.

use base64::Engine;
use chrono::NaiveDate;
use libxml::tree::Node;

use super::{CRD_STRUKTURA_NS, FormError, FormType, Registry};
use crate::delivery::PostalAddress;
use crate::identifiers::{nip_is_valid, pesel_is_valid, regon_is_valid};
use crate::xml;

/// What the applicant asks to see on behalf of a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Podatki,
    Oplaty,
    Sprawy,
    Korespondencja,
    Rejestry,
    Platnosci,
}

impl Scope {
    pub fn parse(value: &str) -> Option<Scope> {
        Some(match value {
            "podatki" => Scope::Podatki,
            "oplaty" => Scope::Oplaty,
            "sprawy" => Scope::Sprawy,
            "korespondencja" => Scope::Korespondencja,
            "rejestry" => Scope::Rejestry,
            "platnosci" => Scope::Platnosci,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Podatki => "podatki",
            Scope::Oplaty => "oplaty",
            Scope::Sprawy => "sprawy",
            Scope::Korespondencja => "korespondencja",
            Scope::Rejestry => "rejestry",
            Scope::Platnosci => "platnosci",
        }
    }
}

/// The legal basis of a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Upowaznienie,
    Pelnomocnictwo,
    OrganStatutowy,
    PrzedstawicielUstawowy,
}

impl Basis {
    fn parse(value: &str) -> Option<Basis> {
        Some(match value {
            "upowaznienie" => Basis::Upowaznienie,
            "pelnomocnictwo" => Basis::Pelnomocnictwo,
            "organ_statutowy" => Basis::OrganStatutowy,
            "przedstawiciel_ustawowy" => Basis::PrzedstawicielUstawowy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Upowaznienie => "upowaznienie",
            Basis::Pelnomocnictwo => "pelnomocnictwo",
            Basis::OrganStatutowy => "organ_statutowy",
            Basis::PrzedstawicielUstawowy => "przedstawiciel_ustawowy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PartyKind {
    /// F: osoba fizyczna.
    Natural,
    /// P: osoba prawna lub inny podmiot.
    Legal,
}

/// How a party is identified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "UPPERCASE")]
pub enum PartyId {
    Pesel(String),
    Nip(String),
    Regon(String),
}

impl PartyId {
    pub fn kind(&self) -> &'static str {
        match self {
            PartyId::Pesel(_) => "PESEL",
            PartyId::Nip(_) => "NIP",
            PartyId::Regon(_) => "REGON",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            PartyId::Pesel(v) | PartyId::Nip(v) | PartyId::Regon(v) => v,
        }
    }
}

/// A natural or legal person named in a form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Party {
    pub kind: PartyKind,
    /// "Imię Nazwisko" or the entity's name.
    pub name: String,
    pub id: PartyId,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applicant {
    pub given_name: String,
    pub surname: String,
    pub pesel: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Where a letter on paper reaches them, when they gave it.
    pub postal_address: Option<PostalAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Represented {
    pub party: Party,
    pub scope: Vec<Scope>,
    pub basis: Basis,
    /// The file name of the attachment that proves the representation.
    pub attachment: Option<String>,
}

/// A `str:Zalacznik` with its decoded content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub format: Option<String>,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub applicant: Applicant,
    pub represented: Vec<Represented>,
    pub date: NaiveDate,
    pub attachments: Vec<Attachment>,
}

impl AccessRequest {
    /// The attachment a representation names, if it is attached.
    pub fn attachment_for(&self, represented: &Represented) -> Option<&Attachment> {
        let name = represented.attachment.as_deref()?;
        self.attachments.iter().find(|a| a.file_name == name)
    }
}

/// An authorization: the principal lets the agent see their matters within `scope`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Authorization {
    pub principal: Party,
    pub agent_name: String,
    pub agent_pesel: String,
    pub scope: Vec<Scope>,
    pub basis: Basis,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub date: NaiveDate,
}

/// Reads elements in one namespace, naming each by its path for error messages.
struct Reader<'a> {
    ns: &'a str,
    form: FormType,
}

impl Reader<'_> {
    fn err(&self, at: &str, message: impl Into<String>) -> FormError {
        FormError::new(self.form, at, message)
    }

    fn child(
        &self,
        node: &Node,
        path: &str,
        name: &str,
    ) -> Result<Option<(Node, String)>, FormError> {
        let at = format!("{path}/{name}");
        match xml::only_child(node, Some(self.ns), name) {
            Ok(found) => Ok(found.map(|n| (n, at))),
            Err(n) => Err(self.err(&at, format!("appears {n} times"))),
        }
    }

    fn text(
        &self,
        node: &Node,
        path: &str,
        name: &str,
    ) -> Result<Option<(String, String)>, FormError> {
        Ok(self
            .child(node, path, name)?
            .map(|(n, at)| (xml::text_of(&n).trim().to_string(), at)))
    }

    fn required(&self, node: &Node, path: &str, name: &str) -> Result<(String, String), FormError> {
        self.text(node, path, name)?
            .ok_or_else(|| self.err(&format!("{path}/{name}"), "missing"))
    }

    fn date(&self, node: &Node, path: &str, name: &str) -> Result<Option<NaiveDate>, FormError> {
        self.text(node, path, name)?
            .map(|(value, at)| {
                NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                    .map_err(|e| self.err(&at, format!("{value:?} is not a date: {e}")))
            })
            .transpose()
    }

    fn pesel(&self, value: String, at: &str) -> Result<String, FormError> {
        if pesel_is_valid(&value) {
            Ok(value)
        } else {
            Err(self.err(at, format!("PESEL {value} has a wrong check digit")))
        }
    }

    /// `Rodzaj`, `Imie`+`Nazwisko` or `Nazwa`, and `PESEL`, `NIP` or `REGON`.
    fn party(&self, node: &Node, path: &str) -> Result<Party, FormError> {
        let (kind, at) = self.required(node, path, "Rodzaj")?;
        let kind = match kind.as_str() {
            "F" => PartyKind::Natural,
            "P" => PartyKind::Legal,
            other => return Err(self.err(&at, format!("unknown kind {other:?} (F or P)"))),
        };
        let name = match self.text(node, path, "Nazwa")? {
            Some((name, _)) => name,
            None => format!(
                "{} {}",
                self.required(node, path, "Imie")?.0,
                self.required(node, path, "Nazwisko")?.0
            ),
        };
        let id = if let Some((value, at)) = self.text(node, path, "PESEL")? {
            PartyId::Pesel(self.pesel(value, &at)?)
        } else if let Some((value, at)) = self.text(node, path, "NIP")? {
            if !nip_is_valid(&value) {
                return Err(self.err(&at, format!("NIP {value} has a wrong check digit")));
            }
            PartyId::Nip(value)
        } else if let Some((value, at)) = self.text(node, path, "REGON")? {
            if !regon_is_valid(&value) {
                return Err(self.err(&at, format!("REGON {value} has a wrong check digit")));
            }
            PartyId::Regon(value)
        } else {
            return Err(self.err(path, "no PESEL, NIP or REGON"));
        };
        if kind == PartyKind::Natural && !matches!(id, PartyId::Pesel(_)) {
            return Err(self.err(path, "a natural person (F) is identified by PESEL"));
        }
        Ok(Party { kind, name, id })
    }

    fn scope(&self, node: &Node, path: &str) -> Result<Vec<Scope>, FormError> {
        let (value, at) = self.required(node, path, "Zakres")?;
        let mut scope = Vec::new();
        for word in value.split_whitespace() {
            let item = Scope::parse(word)
                .ok_or_else(|| self.err(&at, format!("unknown scope {word:?}")))?;
            if !scope.contains(&item) {
                scope.push(item);
            }
        }
        if scope.is_empty() {
            return Err(self.err(&at, "empty"));
        }
        Ok(scope)
    }

    /// `AdresKorespondencyjny`: where a paper letter goes.
    fn postal_address(&self, node: &Node, path: &str) -> Result<PostalAddress, FormError> {
        let (postal_code, code_at) = self.required(node, path, "KodPocztowy")?;
        if !crate::delivery::is_postal_code(&postal_code) {
            return Err(self.err(
                &code_at,
                format!("{postal_code:?} is not a postal code (NN-NNN)"),
            ));
        }
        Ok(PostalAddress {
            street: self.required(node, path, "Ulica")?.0,
            building: self.required(node, path, "NrDomu")?.0,
            flat: self.text(node, path, "NrLokalu")?.map(|t| t.0),
            postal_code,
            city: self.required(node, path, "Miejscowosc")?.0,
        })
    }

    fn basis(&self, node: &Node, path: &str) -> Result<Basis, FormError> {
        let (value, at) = self.required(node, path, "Podstawa")?;
        Basis::parse(&value).ok_or_else(|| self.err(&at, format!("unknown basis {value:?}")))
    }
}

pub(super) fn read_request(
    root: &Node,
    ns: &str,
    registry: &Registry,
) -> Result<AccessRequest, FormError> {
    let r = Reader {
        ns,
        form: FormType::AccessRequest,
    };
    let path = "/Wniosek";
    let (applicant_node, applicant_path) = r
        .child(root, path, "Wnioskodawca")?
        .ok_or_else(|| r.err("/Wniosek/Wnioskodawca", "missing"))?;
    let (pesel, pesel_at) = r.required(&applicant_node, &applicant_path, "PESEL")?;
    let applicant = Applicant {
        given_name: r.required(&applicant_node, &applicant_path, "Imie")?.0,
        surname: r.required(&applicant_node, &applicant_path, "Nazwisko")?.0,
        pesel: r.pesel(pesel, &pesel_at)?,
        email: r
            .text(&applicant_node, &applicant_path, "Email")?
            .map(|t| t.0),
        phone: r
            .text(&applicant_node, &applicant_path, "Telefon")?
            .map(|t| t.0),
        postal_address: match r.child(&applicant_node, &applicant_path, "AdresKorespondencyjny")? {
            Some((node, at)) => Some(r.postal_address(&node, &at)?),
            None => None,
        },
    };
    let attachments = read_attachments(root)?;
    let mut represented = Vec::new();
    if let Some((list, list_path)) = r.child(root, path, "Reprezentowani")? {
        for (i, node) in xml::children(&list, Some(ns), "Podmiot").enumerate() {
            let at = format!("{list_path}/Podmiot[{}]", i + 1);
            let party = r.party(&node, &at)?;
            if party.id == PartyId::Pesel(applicant.pesel.clone()) {
                return Err(r.err(&at, "the applicant cannot represent themselves"));
            }
            let attachment = r.text(&node, &at, "Zalacznik")?;
            if let Some((name, attachment_at)) = &attachment
                && !attachments.iter().any(|a| &a.file_name == name)
            {
                return Err(r.err(
                    attachment_at,
                    format!("names the attachment {name:?}, which is not attached"),
                ));
            }
            represented.push(Represented {
                party,
                scope: r.scope(&node, &at)?,
                basis: r.basis(&node, &at)?,
                attachment: attachment.map(|a| a.0),
            });
        }
    }
    let date = r
        .date(root, path, "DataWniosku")?
        .ok_or_else(|| r.err("/Wniosek/DataWniosku", "missing"))?;
    // An attached authorization must at least be one the registry can read.
    for attachment in &attachments {
        if attachment.file_name.ends_with(".xml")
            && let Err(e) = registry.read(&attachment.content)
        {
            return Err(r.err(
                &format!(
                    "/Wniosek/Zalaczniki/Zalacznik[@nazwaPliku={:?}]",
                    attachment.file_name
                ),
                format!("the attached document cannot be read: {e}"),
            ));
        }
    }
    Ok(AccessRequest {
        applicant,
        represented,
        date,
        attachments,
    })
}

/// CRD attachments: `str:Zalaczniki/str:Zalacznik[@nazwaPliku]/str:DaneZalacznika` (base64).
fn read_attachments(root: &Node) -> Result<Vec<Attachment>, FormError> {
    let form = FormType::AccessRequest;
    let mut out = Vec::new();
    for list in xml::children(root, Some(CRD_STRUKTURA_NS), "Zalaczniki") {
        for (i, node) in xml::children(&list, Some(CRD_STRUKTURA_NS), "Zalacznik").enumerate() {
            let at = format!("/Wniosek/Zalaczniki/Zalacznik[{}]", i + 1);
            let file_name = node
                .get_attribute("nazwaPliku")
                .ok_or_else(|| FormError::new(form, &at, "no nazwaPliku"))?;
            if out.iter().any(|a: &Attachment| a.file_name == file_name) {
                return Err(FormError::new(
                    form,
                    &at,
                    format!("{file_name:?} is attached twice"),
                ));
            }
            let data = xml::only_child(&node, Some(CRD_STRUKTURA_NS), "DaneZalacznika")
                .ok()
                .flatten()
                .ok_or_else(|| FormError::new(form, &at, "no single DaneZalacznika"))?;
            let encoded: String = xml::text_of(&data)
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let content = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| {
                    FormError::new(form, &at, format!("DaneZalacznika is not base64: {e}"))
                })?;
            out.push(Attachment {
                file_name,
                format: node.get_attribute("format"),
                content,
            });
        }
    }
    Ok(out)
}

pub(super) fn read_authorization(root: &Node, ns: &str) -> Result<Authorization, FormError> {
    let r = Reader {
        ns,
        form: FormType::Authorization,
    };
    let path = "/Upowaznienie";
    let (principal, principal_path) = r
        .child(root, path, "Mocodawca")?
        .ok_or_else(|| r.err("/Upowaznienie/Mocodawca", "missing"))?;
    let principal = r.party(&principal, &principal_path)?;
    let (agent, agent_path) = r
        .child(root, path, "Pelnomocnik")?
        .ok_or_else(|| r.err("/Upowaznienie/Pelnomocnik", "missing"))?;
    let (pesel, pesel_at) = r.required(&agent, &agent_path, "PESEL")?;
    let valid_from = r
        .date(root, path, "WaznyOd")?
        .ok_or_else(|| r.err("/Upowaznienie/WaznyOd", "missing"))?;
    let valid_to = r.date(root, path, "WaznyDo")?;
    if valid_to.is_some_and(|to| to < valid_from) {
        return Err(r.err("/Upowaznienie/WaznyDo", "ends before WaznyOd"));
    }
    Ok(Authorization {
        principal,
        agent_name: format!(
            "{} {}",
            r.required(&agent, &agent_path, "Imie")?.0,
            r.required(&agent, &agent_path, "Nazwisko")?.0
        ),
        agent_pesel: r.pesel(pesel, &pesel_at)?,
        scope: r.scope(root, path)?,
        basis: r.basis(root, path)?,
        valid_from,
        valid_to,
        date: r
            .date(root, path, "DataUpowaznienia")?
            .ok_or_else(|| r.err("/Upowaznienie/DataUpowaznienia", "missing"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        assert!(nip_is_valid("5252955037"));
        assert!(!nip_is_valid("5252955038"));
        assert!(regon_is_valid("123456785"));
        assert!(!regon_is_valid("123456786"));
        assert!(regon_is_valid("12345678512347"));
        assert!(!regon_is_valid("1234"));
    }
}
