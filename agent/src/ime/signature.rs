//! Script signatures: what EnforceSignatureCheck (PowerShell's AllSigned) asks of a
//! script, and what `tenantless sign` makes.
//!
//! Tenantless's signature block sits where PowerShell's Authenticode block does, at the
//! end of the script, between the same marker lines:
//!
//! ```text
//! <the script>
//! # SIG # Begin signature block
//! # <base64, 64 characters a line, of a JSON object:>
//! #   {"Algorithm": "ECDSA_P256_SHA256", "Certificate": <base64 DER>, "Signature": <base64>}
//! # SIG # End signature block
//! ```
//!
//! The signature covers the UTF-8 bytes of everything before the `Begin` line. The
//! publisher's certificate is trusted when it is in the device's TrustedPublisher store
//! (`HKLM\SOFTWARE\Microsoft\SystemCertificates\TrustedPublisher\Certificates\<SHA-1
//! thumbprint>`), where the RootCATrustedCertificates CSP puts it. Unlike Authenticode
//! there is no chain to a root and no timestamp: trusting the publisher's own
//! certificate is the whole of it.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::device::Device;

/// The line that opens a signature block.
pub const BEGIN: &str = "# SIG # Begin signature block";
/// The line that closes it.
pub const END: &str = "# SIG # End signature block";
/// Where the device keeps the publishers it trusts.
pub const TRUSTED_PUBLISHER_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\SystemCertificates\TrustedPublisher\Certificates";
const ALGORITHM: &str = "ECDSA_P256_SHA256";

/// What checking a script's signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No signature block.
    NotSigned,
    /// A block whose signature does not match the script (or cannot be read).
    HashMismatch,
    /// A valid signature by a publisher the device does not trust.
    Untrusted {
        /// The publisher's certificate subject.
        subject: String,
    },
    /// A valid signature by a trusted publisher.
    Trusted {
        /// The publisher's certificate subject.
        subject: String,
    },
}

/// A code-signing key and its certificate.
pub struct Publisher {
    key: rcgen::KeyPair,
    cert_der: Vec<u8>,
}

impl Publisher {
    /// A new ECDSA P-256 key with a self-signed code-signing certificate for `subject`
    /// (a common name), valid from a day before `now` for ten years.
    pub fn create(subject: &str, now: DateTime<Utc>) -> Result<Publisher, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, subject);
        params.distinguished_name = dn;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        let time = |t: DateTime<Utc>| {
            rcgen::date_time_ymd(2000, 1, 1)
                + std::time::Duration::from_secs(
                    (t.timestamp() - 946_684_800).max(0).unsigned_abs(),
                )
        };
        params.not_before = time(now - Duration::days(1));
        params.not_after = time(now + Duration::days(3650));
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("certificate: {e}"))?;
        Ok(Publisher {
            key,
            cert_der: cert.der().to_vec(),
        })
    }

    /// A publisher from its PEM key (PKCS #8) and PEM certificate.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Publisher, String> {
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("the key: {e}"))?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| format!("the certificate: {e}"))?;
        Ok(Publisher {
            key,
            cert_der: pem.contents,
        })
    }

    /// The key, PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.cert_der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate's SHA-1 thumbprint, upper-case hex (its name in a cert store).
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.cert_der)
    }

    /// Signs a script: any old block is dropped and a new one appended.
    pub fn sign(&self, script: &str) -> Result<String, String> {
        let (content, _) = split(script);
        let mut content = content.to_owned();
        if !content.is_empty() && !content.ends_with('\n') {
            content.push_str("\r\n");
        }
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &self.key.serialize_der(),
            &rng,
        )
        .map_err(|_| "the key is not an ECDSA P-256 key".to_owned())?;
        let signature = signer
            .sign(&rng, content.as_bytes())
            .map_err(|_| "signing failed".to_owned())?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let block = json!({
            "Algorithm": ALGORITHM,
            "Certificate": b64.encode(&self.cert_der),
            "Signature": b64.encode(signature.as_ref()),
        })
        .to_string();
        let mut out = content;
        out.push_str(BEGIN);
        out.push_str("\r\n");
        for line in b64.encode(block).as_bytes().chunks(64) {
            out.push_str("# ");
            out.push_str(&String::from_utf8_lossy(line));
            out.push_str("\r\n");
        }
        out.push_str(END);
        out.push_str("\r\n");
        Ok(out)
    }
}

/// A certificate's SHA-1 thumbprint, upper-case hex.
pub fn thumbprint(der: &[u8]) -> String {
    hex::encode_upper(Sha1::digest(der))
}

/// Splits a script into the signed content and its signature block's base64 lines (the
/// text after the `Begin` line), if it has one.
pub fn split(script: &str) -> (&str, Option<&str>) {
    let mut offset = 0;
    for line in script.split_inclusive('\n') {
        if line.trim_end() == BEGIN {
            return (&script[..offset], Some(&script[offset + line.len()..]));
        }
        offset += line.len();
    }
    (script, None)
}

/// Checks a script's signature; `trusted` says whether a thumbprint is a trusted
/// publisher's.
pub fn verify(script: &str, trusted: impl Fn(&str) -> bool) -> Verdict {
    let (content, Some(block)) = split(script) else {
        return Verdict::NotSigned;
    };
    let Some(parsed) = read_block(block) else {
        return Verdict::HashMismatch;
    };
    let (cert_der, signature) = parsed;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&cert_der) else {
        return Verdict::HashMismatch;
    };
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.data.as_ref(),
    );
    if key.verify(content.as_bytes(), &signature).is_err() {
        return Verdict::HashMismatch;
    }
    let subject = cert.subject().to_string();
    if trusted(&thumbprint(&cert_der)) {
        Verdict::Trusted { subject }
    } else {
        Verdict::Untrusted { subject }
    }
}

/// The certificate and signature of a block's lines, if they read.
fn read_block(block: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut b64 = String::new();
    for line in block.lines() {
        let line = line.trim();
        if line == END {
            break;
        }
        b64.push_str(line.strip_prefix('#')?.trim());
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let json: Value = serde_json::from_slice(&engine.decode(b64).ok()?).ok()?;
    if json["Algorithm"] != ALGORITHM {
        return None;
    }
    let field = |name: &str| engine.decode(json[name].as_str()?).ok();
    Some((field("Certificate")?, field("Signature")?))
}

/// True when the device trusts the publisher with this thumbprint.
pub fn is_trusted(device: &Device, thumbprint: &str) -> bool {
    device
        .registry
        .key_exists(&format!(r"{TRUSTED_PUBLISHER_KEY}\{thumbprint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn publisher() -> Publisher {
        Publisher::create(
            "Contoso Scripts",
            DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000),
        )
        .unwrap()
    }

    #[test]
    fn a_signed_script_verifies_and_a_changed_one_does_not() {
        let p = publisher();
        let signed = p.sign("Write-Output 'hello'\n").unwrap();
        assert!(signed.starts_with("Write-Output 'hello'\n# SIG # Begin signature block\r\n"));
        let thumb = p.thumbprint();
        let trusted = |t: &str| t == thumb;
        assert_eq!(
            verify(&signed, trusted),
            Verdict::Trusted {
                subject: "CN=Contoso Scripts".into()
            }
        );
        assert_eq!(
            verify(&signed, |_| false),
            Verdict::Untrusted {
                subject: "CN=Contoso Scripts".into()
            }
        );
        let tampered = signed.replace("hello", "HELLO");
        assert_eq!(verify(&tampered, trusted), Verdict::HashMismatch);
        assert_eq!(verify("Write-Output 1\n", trusted), Verdict::NotSigned);
        // Signing again replaces the block.
        let again = p.sign(&signed).unwrap();
        assert_eq!(again.matches(BEGIN).count(), 1);
        assert_eq!(verify(&again, trusted), verify(&signed, trusted));
    }

    #[test]
    fn a_publisher_survives_pem() {
        let p = publisher();
        let q = Publisher::from_pem(&p.key_pem(), &p.cert_pem()).unwrap();
        assert_eq!(q.thumbprint(), p.thumbprint());
        let signed = q.sign("exit 0").unwrap();
        assert!(matches!(
            verify(&signed, |t| t == p.thumbprint()),
            Verdict::Trusted { .. }
        ));
    }

    proptest! {
        #[test]
        fn verify_never_panics(text in ".{0,400}", block in "[ -~\\n#]{0,400}") {
            let script = format!("{text}\n{BEGIN}\n{block}");
            let _ = verify(&script, |_| true);
            let _ = verify(&text, |_| true);
        }
    }
}
