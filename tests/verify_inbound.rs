//! Every inbound document carries its signature verdict: the daemon's `verify` job checks XML
//! documents under `[trust]` and stores the verdict with the row. A letter signed through
//! a certificate of the configured qualified CA passes; the same letter altered after signing
//! fails with a hash failure; an unsigned one fails as unsigned; a non-XML attachment is
//! recorded as not checked.

mod common;

use common::*;
use sqlx::Row;

const BOX: (&str, &str, &str) = ("urzad_testowy", "skrytka", "/urzad_testowy/skrytka");

/// Runs the daemon once over `documents` with `trust` appended to its configuration, then
/// runs `select` on its database.
async fn run_and_select(
    documents: &[(&str, Vec<u8>)],
    trust: impl Fn(&std::path::Path) -> String,
    select: &'static str,
) -> Vec<sqlx::any::AnyRow> {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
    for (file, content) in documents {
        emulator.add_document(BOX.2, file, content).await;
    }
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&trust(dir.path()));
    std::fs::write(&config, text).unwrap();
    let (status, stdout, stderr) = run_once(&config);
    assert!(status.success(), "{stdout}\n{stderr}");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let rows = sqlx::query(select).fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows
}

/// (file, indication, subindication, reason, signer, kind) per stored row.
async fn run_with_trust(
    documents: &[(&str, Vec<u8>)],
    trust: impl Fn(&std::path::Path) -> String,
) -> Vec<StoredVerdict> {
    let rows = run_and_select(
        documents,
        trust,
        "SELECT nazwa_pliku, signature_indication, signature_subindication, signature_reason, signature_signer, signature_kind \
         FROM inbound_document ORDER BY nazwa_pliku",
    )
    .await;
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

type StoredVerdict = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn anchor_dir(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let anchors = dir.join(name);
    std::fs::create_dir_all(&anchors).unwrap();
    std::fs::copy(fixture("pki/ca.pem"), anchors.join("ca.pem")).unwrap();
    anchors
}

/// A judged document as the first test reads it: file, form type, form error, the signer's
/// PESEL, given name and surname, qualified, has a signing time, the chain.
type JudgedRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    i32,
    Option<String>,
);

/// A document and its jobs as the second test reads them.
type JobRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    i64,
);
#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_signature_has_its_own_anchors() {
    let signed = std::fs::read(fixture("signed/pismo-ogolne-signed.xml")).unwrap();
    // The test CA configured for personal (e-ID) signatures: the letter passes as personal.
    let rows = run_with_trust(&[("signed.xml", signed.clone())], |dir| {
        format!(
            "\n[trust]\npersonal_ca_dir = \"{}\"\n",
            anchor_dir(dir, "personal").display()
        )
    })
    .await;
    assert_eq!(
        (rows[0].1.as_deref(), rows[0].5.as_deref()),
        (Some("TOTAL-PASSED"), Some("personal")),
        "{rows:?}"
    );
    // The same CA as the only trusted-profile "seal": a certificate chain does not make a
    // trusted profile, and with no qualified or personal anchors the letter is not trusted.
    let rows = run_with_trust(&[("signed.xml", signed)], |_| {
        format!(
            "\n[trust]\ntrusted_profile_certificates = [\"{}\"]\n",
            fixture("pki/ca.pem").display()
        )
    })
    .await;
    assert_eq!(rows[0].1.as_deref(), Some("INDETERMINATE"), "{rows:?}");
    assert_eq!(rows[0].5, None, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_documents_carry_their_verdict() {
    let documents = [
        (
            "signed.xml",
            std::fs::read(fixture("signed/pismo-ogolne-signed.xml")).unwrap(),
        ),
        (
            "tampered.xml",
            std::fs::read(fixture("signed/pismo-ogolne-tampered.xml")).unwrap(),
        ),
        (
            "unsigned.xml",
            std::fs::read(fixture("demo/pismo-ogolne-demo.xml")).unwrap(),
        ),
        ("scan.txt", b"not XML at all".to_vec()),
    ];
    let verdicts = run_with_trust(&documents, |dir| {
        format!(
            "\n[trust]\nqualified_ca_dir = \"{}\"\n",
            anchor_dir(dir, "qualified").display()
        )
    })
    .await;
    let find = |name: &str| {
        verdicts
            .iter()
            .find(|v| v.0 == name)
            .unwrap_or_else(|| panic!("{name} stored: {verdicts:?}"))
    };
    let signed = find("signed.xml");
    assert_eq!(signed.1.as_deref(), Some("TOTAL-PASSED"), "{signed:?}");
    assert_eq!(signed.5.as_deref(), Some("qualified"), "{signed:?}");
    assert!(
        signed.4.as_deref().unwrap_or("").contains("Urzad Testowy"),
        "{signed:?}"
    );
    let tampered = find("tampered.xml");
    assert_eq!(
        (tampered.1.as_deref(), tampered.2.as_deref()),
        (Some("TOTAL-FAILED"), Some("HASH_FAILURE")),
        "{tampered:?}"
    );
    let unsigned = find("unsigned.xml");
    assert_eq!(unsigned.1.as_deref(), Some("TOTAL-FAILED"), "{unsigned:?}");
    assert!(
        unsigned.3.as_deref().unwrap_or("").contains("not signed"),
        "{unsigned:?}"
    );
    let scan = find("scan.txt");
    assert_eq!(scan.1, None, "{scan:?}");
    assert!(
        scan.3
            .as_deref()
            .unwrap_or("")
            .starts_with("signature not checked"),
        "{scan:?}"
    );
}

fn sealed_form(form: &str, citizen: &str) -> Vec<u8> {
    let key = eurzad::xmldsig::SigningKey {
        private_key_pem: std::fs::read(fixture(&format!("pki/citizens/{citizen}.key"))).unwrap(),
        certificate_pem: std::fs::read(fixture(&format!("pki/citizens/{citizen}.pem"))).unwrap(),
    };
    let form = std::fs::read(fixture(form)).unwrap();
    eurzad::signature::seal::xades_enveloped(&form, &key, chrono::Utc::now(), "podpis").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_and_the_signer_are_stored_with_the_document() {
    let request = sealed_form("forms/wniosek-dla-siebie.xml", "jan-kowalski");
    let broken =
        String::from_utf8(std::fs::read(fixture("forms/wniosek-za-firme-i-osobe.xml")).unwrap())
            .unwrap()
            .replace("<NIP>5252955037</NIP>", "<NIP>5252955038</NIP>");
    let rows = run_and_select(
        &[("wniosek.xml", request), ("zly.xml", broken.into_bytes())],
        |dir| {
            format!(
                "\n[trust]\nqualified_ca_dir = \"{}\"\n",
                anchor_dir(dir, "qualified").display()
            )
        },
        "SELECT nazwa_pliku, form_type, form_error, signer_pesel, signer_given_name, signer_surname, \
         CASE WHEN signer_qualified THEN 1 ELSE 0 END, CASE WHEN signing_time IS NULL THEN 0 ELSE 1 END, signature_chain \
         FROM inbound_document ORDER BY nazwa_pliku",
    )
    .await;
    let row = |i: usize| -> JudgedRow {
        let r = &rows[i];
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
        )
    };
    let request = row(0);
    assert_eq!(request.0, "wniosek.xml");
    assert_eq!(request.1.as_deref(), Some("access_request"), "{request:?}");
    assert_eq!(request.2, None, "{request:?}");
    assert_eq!(request.3.as_deref(), Some("85031412347"), "{request:?}");
    assert_eq!(
        (request.4.as_deref(), request.5.as_deref()),
        (Some("Jan"), Some("Kowalski"))
    );
    assert_eq!(
        (request.6, request.7),
        (1, 1),
        "qualified, with a signing time: {request:?}"
    );
    assert!(request.8.unwrap_or_default().contains("PNOPL-85031412347"));
    let broken = row(1);
    assert_eq!(broken.1.as_deref(), Some("access_request"), "{broken:?}");
    assert!(
        broken
            .2
            .as_deref()
            .unwrap_or("")
            .contains("/Wniosek/Reprezentowani/Podmiot[1]/NIP"),
        "{broken:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_list_older_than_the_one_used_before_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[BOX], &[]);
    let db = test_database(dir.path()).await;
    let config = daemon_config(dir.path(), &db.url, &emulator.url, &[BOX], "");
    let base = std::fs::read_to_string(&config).unwrap();
    let with_list = |list: &str| {
        format!(
            "{base}\n[trust]\ntsl = \"{}\"\ntsl_signers = \"{}\"\n",
            fixture(&format!("trust/{list}")).display(),
            fixture("trust/eu-lotl-seq390-2026-08-03.xml").display()
        )
    };
    std::fs::write(&config, with_list("PL_TSL-seq160-2026-06-03.xml")).unwrap();
    let (status, stdout, stderr) = run_once(&config);
    assert!(status.success(), "{stdout}\n{stderr}");
    // seq 139 verifies (its signer is in the LOTL) but is older than 160: a rollback.
    std::fs::write(&config, with_list("PL_TSL-seq139-2023-09-19.xml")).unwrap();
    let (status, stdout, stderr) = run_once(&config);
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("trust.tsl") && stderr.contains("139"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_verify_step_names_the_form_of_each_document() {
    // One job per stored document: `verify` records what the content is (the root element
    // and namespace of XML, or why it is not XML) with the judgement.
    let rows = run_and_select(
        &[
            (
                "signed.xml",
                std::fs::read(fixture("signed/pismo-ogolne-signed.xml")).unwrap(),
            ),
            ("scan.txt", b"not XML at all".to_vec()),
        ],
        |_| String::new(),
        "SELECT d.nazwa_pliku, d.form_namespace, d.form_root, d.classification_error, \
         CASE WHEN d.classified_at IS NULL THEN 0 ELSE 1 END, \
         (SELECT COUNT(*) FROM job j WHERE j.document_id = d.id AND j.kind IN ('classify', 'verify')) \
         FROM inbound_document d ORDER BY d.nazwa_pliku",
    )
    .await;
    let rows: Vec<JobRow> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (scan, signed) = (&rows[0], &rows[1]);
    assert_eq!(
        (
            signed.1.as_deref(),
            signed.2.as_deref(),
            signed.3.as_deref()
        ),
        (
            Some("http://crd.gov.pl/wzor/2017/10/24/4566/"),
            Some("Dokument"),
            None
        ),
        "{rows:?}"
    );
    assert_eq!(
        (scan.1.as_deref(), scan.2.as_deref()),
        (None, None),
        "{rows:?}"
    );
    assert!(scan.3.is_some(), "why it is not XML is recorded: {rows:?}");
    assert_eq!((signed.4, scan.4), (1, 1), "both classified: {rows:?}");
    assert_eq!((signed.5, scan.5), (1, 1), "one job each: {rows:?}");
}

/// Issue 15, point 2, on the inbox path: the parser attacks in UTF-16 and UTF-32 (either byte
/// order, with and without a BOM) are stored and judged "DOCTYPE refused", in the verdict and
/// in the classification; a genuine letter in UTF-16 passes and is read as its UTF-8 twin.
#[tokio::test(flavor = "multi_thread")]
async fn doctype_attacks_in_every_encoding_are_refused_in_the_inbox() {
    let letter = std::fs::read_to_string(fixture("signed/pismo-ogolne-signed.xml")).unwrap();
    let declaration_end = letter.find("?>").unwrap() + 2;
    let with_doctype = |doctype: &str| {
        format!(
            "{}{doctype}{}",
            &letter[..declaration_end],
            &letter[declaration_end..]
        )
    };
    let laughs = (1..10).fold(
        String::from("<!DOCTYPE Dokument [<!ENTITY l0 \"ha\">"),
        |d, i| d + &format!("<!ENTITY l{i} \"{}\">", format!("&l{};", i - 1).repeat(10)),
    ) + "]>";
    let attacks = [
        (
            "entity",
            with_doctype("<!DOCTYPE Dokument [<!ENTITY x \"y\">]>"),
        ),
        (
            "xxe",
            with_doctype("<!DOCTYPE Dokument [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"),
        ),
        (
            "parameter",
            with_doctype(
                "<!DOCTYPE Dokument [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/p.dtd\"> %p;]>",
            ),
        ),
        ("bomb", with_doctype(&laughs)),
    ];
    let mut documents = Vec::new();
    for (name, text) in &attacks {
        for encoding in XML_ENCODINGS {
            documents.push((
                format!("{name}-{encoding}.xml"),
                xml_in_encoding(text, encoding),
            ));
        }
    }
    documents.push((
        "genuine-UTF-16LE+BOM.xml".into(),
        xml_in_encoding(&letter, "UTF-16LE+BOM"),
    ));
    documents.push(("genuine-UTF-8.xml".into(), letter.clone().into_bytes()));
    let documents: Vec<(&str, Vec<u8>)> = documents
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.clone()))
        .collect();
    let rows = run_and_select(
        &documents,
        |dir| {
            format!(
                "\n[trust]\nqualified_ca_dir = \"{}\"\n",
                anchor_dir(dir, "qualified").display()
            )
        },
        "SELECT nazwa_pliku, signature_indication, signature_reason, form_type, form_root, \
         classification_error, form_error FROM inbound_document ORDER BY nazwa_pliku",
    )
    .await;
    assert_eq!(rows.len(), documents.len());
    let mut genuine = Vec::new();
    for row in &rows {
        let file: String = row.get(0);
        let indication: Option<String> = row.get(1);
        let reason: Option<String> = row.get(2);
        let form_type: Option<String> = row.get(3);
        let form_root: Option<String> = row.get(4);
        let classification_error: Option<String> = row.get(5);
        let form_error: Option<String> = row.get(6);
        if file.starts_with("genuine") {
            assert_eq!(
                indication.as_deref(),
                Some("TOTAL-PASSED"),
                "{file}: {reason:?}"
            );
            genuine.push((form_type, form_root, form_error));
            continue;
        }
        assert_ne!(indication.as_deref(), Some("TOTAL-PASSED"), "{file}");
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("DOCTYPE")),
            "{file}: {indication:?} {reason:?}"
        );
        assert!(
            classification_error
                .as_deref()
                .is_some_and(|r| r.contains("DOCTYPE")),
            "{file}: classified as {form_root:?}, {classification_error:?}"
        );
    }
    assert_eq!(genuine.len(), 2);
    assert_eq!(genuine[0], genuine[1], "UTF-16 reads as its UTF-8 twin");
    assert_eq!(genuine[0].1.as_deref(), Some("Dokument"), "{genuine:?}");
}
