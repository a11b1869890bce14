//! `tenantless sign` on the real binary: it creates a publisher on first use, signs
//! scripts in place so the device's check verifies them, reuses the publisher after,
//! and prints the command that makes a device trust it.

use std::process::Command;

use agent::ime::signature::{self, Publisher, Verdict};

fn sign(dir: &std::path::Path, script: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .arg("sign")
        .arg(script)
        .arg("--publisher")
        .arg(dir.join("publisher"))
        .arg("--subject")
        .arg("Contoso Scripts")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sign_creates_a_publisher_once_and_signs_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("baseline.ps1");
    std::fs::write(&script, "Write-Output 'baseline'\n").unwrap();

    let first = sign(dir.path(), &script);
    assert!(first.contains(", created"), "{first}");
    let key = std::fs::read_to_string(dir.path().join("publisher/publisher.key")).unwrap();
    let cert = std::fs::read_to_string(dir.path().join("publisher/publisher.cer")).unwrap();
    let publisher = Publisher::from_pem(&key, &cert).unwrap();
    let thumbprint = publisher.thumbprint();
    assert!(first.contains(&thumbprint));
    assert!(first.contains(&format!(
        "RootCATrustedCertificates/TrustedPublisher/{thumbprint}/EncodedCertificate"
    )));

    let signed = std::fs::read_to_string(&script).unwrap();
    assert!(signed.starts_with("Write-Output 'baseline'\n# SIG # Begin signature block"));
    assert_eq!(
        signature::verify(&signed, |t| t == thumbprint),
        Verdict::Trusted {
            subject: "CN=Contoso Scripts".into()
        }
    );

    // Again: the same publisher, one block.
    let second = sign(dir.path(), &script);
    assert!(!second.contains(", created"), "{second}");
    let resigned = std::fs::read_to_string(&script).unwrap();
    assert_eq!(resigned.matches(signature::BEGIN).count(), 1);
    assert!(matches!(
        signature::verify(&resigned, |t| t == thumbprint),
        Verdict::Trusted { .. }
    ));
}
