//! The real Polish trusted list: accepted only when signed by a signer from the EU LOTL's PL
//! pointer; the granted CA/QC services at a date become the anchors for qualified signatures;
//! a tampered copy, another signer and a rollback of the sequence number are refused.

use chrono::{TimeZone, Utc};
use eurzad::signature::tsl::{self, TslError};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/trust/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn pl_signers() -> Vec<Vec<u8>> {
    tsl::signers_from_lotl(&fixture("eu-lotl-seq390-2026-08-03.xml"), "PL").unwrap()
}

#[test]
fn the_lotl_names_two_pl_signers() {
    assert_eq!(pl_signers().len(), 2);
    assert!(matches!(
        tsl::signers_from_lotl(&fixture("eu-lotl-seq390-2026-08-03.xml"), "XX"),
        Err(TslError::NoPointer(_))
    ));
}

#[test]
fn the_pl_list_loads_and_gives_the_granted_qualified_cas() {
    let list = tsl::load(
        &fixture("PL_TSL-seq160-2026-06-03.xml"),
        &pl_signers(),
        None,
    )
    .unwrap();
    assert_eq!(list.sequence_number, 160);
    assert_eq!(list.territory, "PL");
    assert!(
        list.signer.contains("Polish TSL Operator 2024"),
        "{}",
        list.signer
    );
    let anchors = list.qualified_ca_anchors(Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap());
    // The reference set extracted independently for seq 160 (granted CA/QC certificates).
    let reference = std::fs::read_to_string(format!(
        "{}/fixtures/trust/pl-tsl160-ca-qc-granted.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let expected = eurzad::xmldsig::certificates_der(reference.as_bytes()).unwrap();
    assert_eq!(
        anchors.len(),
        23,
        "granted CA/QC certificates at 2026-07-01"
    );
    let mut ours = anchors.clone();
    let mut theirs = expected.clone();
    ours.sort();
    theirs.sort();
    assert_eq!(
        ours, theirs,
        "the same certificates as the reference extraction"
    );
    // PL repeats the current status in ServiceHistory with the same start (Enigma's
    // 2017-02-13T10:38:44Z): it is counted once and the service stays granted.
    let start = Utc.with_ymd_and_hms(2017, 2, 13, 10, 38, 44).unwrap();
    let enigma: Vec<_> = list
        .services
        .iter()
        .filter(|s| s.statuses.iter().any(|(_, t)| *t == start))
        .collect();
    assert!(!enigma.is_empty());
    for service in enigma {
        assert_eq!(
            service.statuses.iter().filter(|(_, t)| *t == start).count(),
            1,
            "{service:?}"
        );
        assert!(
            service.granted_at(Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap()),
            "{service:?}"
        );
    }
    // Long before the first qualified CA: nothing is granted.
    assert!(
        list.qualified_ca_anchors(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap())
            .is_empty()
    );
}

#[test]
fn the_2023_list_loads_with_its_own_signer_and_a_rollback_is_refused() {
    let old = tsl::load(
        &fixture("PL_TSL-seq139-2023-09-19.xml"),
        &pl_signers(),
        None,
    )
    .unwrap();
    assert_eq!(old.sequence_number, 139);
    let rollback = tsl::load(
        &fixture("PL_TSL-seq139-2023-09-19.xml"),
        &pl_signers(),
        Some(160),
    );
    assert!(
        matches!(
            rollback,
            Err(TslError::Rollback {
                found: 139,
                loaded: 160
            })
        ),
        "{rollback:?}"
    );
    assert!(
        tsl::load(
            &fixture("PL_TSL-seq160-2026-06-03.xml"),
            &pl_signers(),
            Some(160)
        )
        .is_ok()
    );
}

#[test]
fn a_changed_status_or_another_signer_is_refused() {
    let text = String::from_utf8(fixture("PL_TSL-seq160-2026-06-03.xml")).unwrap();
    let granted = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted";
    let tampered = text.replacen(
        granted,
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn",
        1,
    );
    assert_ne!(tampered, text);
    let error = tsl::load(tampered.as_bytes(), &pl_signers(), None).unwrap_err();
    assert!(
        matches!(error, TslError::Signature(ref r) if r.contains("HASH_FAILURE") || r.contains("not a valid signature")),
        "{error}"
    );

    let other = std::fs::read(format!(
        "{}/fixtures/pki/epuap.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let error = tsl::load(text.as_bytes(), &[other], None).unwrap_err();
    assert!(
        matches!(error, TslError::Signature(ref r) if r.contains("pinned")),
        "{error}"
    );
}

/// A trusted list's signature leaves KeyInfo unsigned. A whole TrustServiceProvider copied
/// into it, with its granted CAs, must not become trust: the list either fails or reads
/// exactly as the genuine one (found by the same wrapping class as tests/mutations.rs).
#[test]
fn a_provider_slipped_into_the_signature_adds_no_trust() {
    let text = String::from_utf8(fixture("PL_TSL-seq160-2026-06-03.xml")).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
    let genuine = tsl::load(text.as_bytes(), &pl_signers(), None).unwrap();
    // The first provider with a granted CA/QC service.
    let provider = text
        .match_indices("<TrustServiceProvider>")
        .map(|(start, _)| {
            let end = text[start..].find("</TrustServiceProvider>").unwrap()
                + start
                + "</TrustServiceProvider>".len();
            &text[start..end]
        })
        .find(|p| p.contains("Svcstatus/granted") && p.contains("Svctype/CA/QC"))
        .expect("a provider with a granted CA/QC service");
    // Renamed, so that a reader that took it would show it.
    let name_at = provider.find("<TSPName>").unwrap();
    let name_at = name_at + provider[name_at..].find("<Name").unwrap();
    let name_at = name_at + provider[name_at..].find('>').unwrap() + 1;
    let injected_provider = format!(
        "{}WSTRZYKNIETY {}",
        &provider[..name_at],
        &provider[name_at..]
    );
    assert_ne!(injected_provider, provider);
    assert_eq!(text.matches("<ds:KeyInfo>").count(), 1);
    let injected = text.replacen(
        "<ds:KeyInfo>",
        &format!("<ds:KeyInfo>{injected_provider}"),
        1,
    );
    match tsl::load(injected.as_bytes(), &pl_signers(), None) {
        Err(error) => println!("refused: {error}"),
        Ok(list) => {
            assert!(
                !list
                    .services
                    .iter()
                    .any(|s| s.provider.contains("WSTRZYKNIETY")),
                "a provider from the unsigned KeyInfo was read as trusted"
            );
            assert_eq!(list.services.len(), genuine.services.len());
            assert_eq!(
                list.qualified_ca_anchors(at),
                genuine.qualified_ca_anchors(at)
            );
        }
    }
}
