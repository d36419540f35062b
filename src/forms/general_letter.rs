//! "Pismo ogólne" (the CRD general letter), both generations: `…/wzor/2013/12/12/1410/` and
//! `…/wzor/2017/10/24/4566/`. Their XSDs import a dozen remote CRD schemas, so the letter is
//! read tolerantly instead: every value is optional and read whole (comments cannot cut it).
//!
//! Shapes seen: the title as `TrescDokumentu/Tytul` or as `Informacja[@rodzaj="tytul"]`; the
//! text as the other `Informacja` elements; senders under `Nadawcy` as `Osoba` (Imie,
//! Nazwisko) or `Instytucja` (NazwaInstytucji).

use libxml::tree::Node;

use crate::xml;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GeneralLetter {
    pub title: String,
    pub body: String,
    pub sender: Option<String>,
    pub addressee: Option<String>,
    /// File names of `str:Zalacznik` elements.
    pub attachments: Vec<String>,
}

fn descendants(node: &Node, local: &str) -> Vec<Node> {
    let mut out = Vec::new();
    for child in node.get_child_elements() {
        if child.get_name() == local {
            out.push(child.clone());
        }
        out.extend(descendants(&child, local));
    }
    out
}

fn first_text(node: &Node, local: &str) -> Option<String> {
    descendants(node, local)
        .first()
        .map(|n| xml::text_of(n).trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A party under `Nadawcy` or `Adresaci`: a person's names or an institution's name.
fn party(root: &Node, list: &str) -> Option<String> {
    let list = descendants(root, list).into_iter().next()?;
    if let Some(person) = descendants(&list, "Osoba").first() {
        let names: Vec<String> = ["Imie", "Nazwisko"]
            .iter()
            .filter_map(|n| first_text(person, n))
            .collect();
        if !names.is_empty() {
            return Some(names.join(" "));
        }
    }
    first_text(&list, "NazwaInstytucji")
}

pub(super) fn read(root: &Node) -> GeneralLetter {
    let mut title = first_text(root, "Tytul").unwrap_or_default();
    let mut body = Vec::new();
    for info in descendants(root, "Informacja") {
        let text = xml::text_of(&info).trim().to_string();
        match info.get_attribute("rodzaj").as_deref() {
            Some("tytul") if title.is_empty() => title = text,
            Some("tytul") => {}
            _ if !text.is_empty() => body.push(text),
            _ => {}
        }
    }
    GeneralLetter {
        title,
        body: body.join("\n\n"),
        sender: party(root, "Nadawcy"),
        addressee: party(root, "Adresaci"),
        attachments: descendants(root, "Zalacznik")
            .iter()
            .filter_map(|z| z.get_attribute("nazwaPliku"))
            .collect(),
    }
}
