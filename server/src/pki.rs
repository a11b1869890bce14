//! The certificate authority: created on first start and kept in `DIR/pki`, it issues
//! the server's TLS certificate and signs devices' certificate requests.
//!
//! Windows' CSRs carry the extension 1.3.6.1.4.1.311.66.1.0 (device id), which rcgen's
//! CSR reader refuses, and may be signed with SHA-1 RSA identifiers (including the old
//! OIW `1.3.14.3.2.29`). So CSRs are read with x509-parser, their signature is checked
//! here with ring for every identifier a real client uses, and the public key is signed
//! with rcgen.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use sha1::{Digest, Sha1};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The CSR extension Windows uses for the device id.
pub const DEVICE_ID_OID: &str = "1.3.6.1.4.1.311.66.1.0";

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The PKI folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A stored key or certificate is unusable.
    #[error("stored {what} is unusable: {reason}")]
    Stored {
        /// Which file.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A certificate request is unusable.
    #[error("certificate request refused: {0}")]
    Csr(String),
    /// rcgen refused to build a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

/// A CSR whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    /// The requester's public key, as a DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// The device id from the 1.3.6.1.4.1.311.66.1.0 extension, when present.
    pub device_id: Option<String>,
    /// The subject, as text.
    pub subject: String,
    /// The signature algorithm's OID.
    pub signature_algorithm: String,
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// DER.
    pub der: Vec<u8>,
    /// SHA-1 thumbprint, upper-case hex (as Windows names certificates).
    pub thumbprint: String,
    /// Serial number, hex.
    pub serial: String,
    /// Expiry.
    pub not_after: DateTime<Utc>,
}

/// The CA and its signing key.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

impl Ca {
    /// Loads the CA from `dir` (`ca.pem`, `ca.key`), or creates and stores a new one.
    pub fn load_or_create(dir: &Path, now: DateTime<Utc>) -> Result<Ca, PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if cert_path.exists() && key_path.exists() {
            let cert_pem = read(&cert_path)?;
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| PkiError::Stored {
                what: "ca.key",
                reason: e.to_string(),
            })?;
            let cert_der = pem_to_der(&cert_pem).ok_or_else(|| PkiError::Stored {
                what: "ca.pem",
                reason: "no CERTIFICATE block".into(),
            })?;
            let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key).map_err(|e| {
                PkiError::Stored {
                    what: "ca.pem",
                    reason: e.to_string(),
                }
            })?;
            return Ok(Ca {
                issuer,
                cert_der,
                cert_pem,
            });
        }
        fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let key = KeyPair::generate().map_err(gen)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Tenantless Device CA");
        dn.push(DnType::OrganizationName, "Tenantless");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = to_time(moved(now, -Duration::days(1)));
        params.not_after = to_time(moved(now, Duration::days(3650)));
        let cert = params.self_signed(&key).map_err(gen)?;
        let cert_pem = cert.pem();
        write(&cert_path, &cert_pem)?;
        write(&key_path, &key.serialize_pem())?;
        Ok(Ca {
            cert_der: cert.der().to_vec(),
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate's SHA-1 thumbprint.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.cert_der)
    }

    /// Issues a TLS server certificate for these host names and IP addresses, and
    /// returns it with its private key (PKCS#8 DER).
    pub fn issue_server_cert(
        &self,
        hosts: &[String],
        now: DateTime<Utc>,
    ) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
        let key = KeyPair::generate().map_err(gen)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            hosts.first().cloned().unwrap_or_else(|| "localhost".into()),
        );
        params.distinguished_name = dn;
        for host in hosts {
            let san = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.clone().try_into().map_err(gen)?),
            };
            params.subject_alt_names.push(san);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = to_time(moved(now, -Duration::days(1)));
        params.not_after = to_time(moved(now, Duration::days(825)));
        let cert = params.signed_by(&key, &self.issuer).map_err(gen)?;
        Ok((cert.der().to_vec(), key.serialize_der()))
    }

    /// Signs a device certificate for `device_id` over the CSR's public key: subject CN
    /// = the device id, client authentication EKU, valid from a day ago for `valid_for`.
    pub fn sign_device(
        &self,
        csr: &VerifiedCsr,
        device_id: &str,
        serial: [u8; 16],
        now: DateTime<Utc>,
        valid_for: Duration,
    ) -> Result<IssuedCert, PkiError> {
        let public_key = SubjectPublicKeyInfo::from_der(&csr.spki_der)
            .map_err(|e| PkiError::Csr(format!("public key: {e}")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, device_id);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let mut serial = serial;
        serial[0] &= 0x7F; // a positive INTEGER
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let not_after = moved(now, valid_for);
        params.not_before = to_time(moved(now, -Duration::days(1)));
        params.not_after = to_time(not_after);
        let cert = params.signed_by(&public_key, &self.issuer).map_err(gen)?;
        let der = cert.der().to_vec();
        Ok(IssuedCert {
            thumbprint: thumbprint(&der),
            serial: hex::encode_upper(serial),
            der,
            not_after,
        })
    }
}

/// Reads and verifies a PKCS#10 request.
pub fn verify_csr(der: &[u8]) -> Result<VerifiedCsr, PkiError> {
    let (_, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| PkiError::Csr(format!("not a PKCS#10 request: {e}")))?;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let sig_oid = csr.signature_algorithm.algorithm.to_id_string();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let algorithm: &dyn VerificationAlgorithm =
        match (sig_oid.as_str(), key_oid.as_str(), curve.as_deref()) {
            // sha1WithRSAEncryption, and the OIW sha1RSASign identifier older clients send.
            ("1.2.840.113549.1.1.5" | "1.3.14.3.2.29", _, _) => {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            ("1.2.840.113549.1.1.11", _, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
            ("1.2.840.113549.1.1.12", _, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
            ("1.2.840.113549.1.1.13", _, _) => &signature::RSA_PKCS1_2048_8192_SHA512,
            ("1.2.840.10045.4.3.2", _, Some("1.3.132.0.34")) => &signature::ECDSA_P384_SHA256_ASN1,
            ("1.2.840.10045.4.3.2", _, _) => &signature::ECDSA_P256_SHA256_ASN1,
            ("1.2.840.10045.4.3.3", _, Some("1.2.840.10045.3.1.7")) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            ("1.2.840.10045.4.3.3", _, _) => &signature::ECDSA_P384_SHA384_ASN1,
            (other, _, _) => {
                return Err(PkiError::Csr(format!(
                    "unsupported signature algorithm {other}"
                )))
            }
        };
    UnparsedPublicKey::new(algorithm, spki.subject_public_key.data.as_ref())
        .verify(info.raw, csr.signature_value.data.as_ref())
        .map_err(|_| PkiError::Csr("the signature does not match the request".into()))?;

    let mut device_id = None;
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() {
            for ext in &req.extensions {
                if ext.oid.to_id_string() == DEVICE_ID_OID {
                    device_id = decode_device_id(ext.value);
                }
            }
        }
    }
    Ok(VerifiedCsr {
        spki_der: spki.raw.to_vec(),
        device_id,
        subject: info.subject.to_string(),
        signature_algorithm: sig_oid,
    })
}

/// The device id carried by the extension: a DER string or octet string wrapping text
/// (UTF-8 or UTF-16LE) or 16 GUID bytes, or that text unwrapped.
fn decode_device_id(value: &[u8]) -> Option<String> {
    let inner = match value {
        // OCTET STRING, UTF8String, PrintableString, IA5String, BMPString with a short length.
        [0x04 | 0x0C | 0x13 | 0x16 | 0x1E, len, rest @ ..] if *len as usize == rest.len() => rest,
        other => other,
    };
    if inner.len() == 16 {
        let g = inner;
        return Some(format!(
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
        ));
    }
    let text = if inner.len() >= 2 && inner.len() % 2 == 0 && inner[1] == 0 {
        let units: Vec<u16> = inner
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).ok()?
    } else {
        String::from_utf8(inner.to_vec()).ok()?
    };
    let text = text.trim_matches(char::from(0)).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// SHA-1 thumbprint of a DER certificate, upper-case hex.
pub fn thumbprint(der: &[u8]) -> String {
    hex::encode_upper(Sha1::digest(der))
}

/// The subject common name of a DER certificate (for device certificates, the device id).
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The last moment an X.509 certificate can name (GeneralizedTime's 9999-12-31).
fn last_x509_moment() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `now + by` (or `now - by`), kept within what a certificate can say: a clock set near
/// the end of time issues certificates valid until 9999-12-31, never ones that expired.
fn moved(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    now.checked_add_signed(by)
        .unwrap_or(if by > Duration::zero() {
            DateTime::<Utc>::MAX_UTC
        } else {
            epoch
        })
        .clamp(epoch, last_x509_moment())
}

fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    let t = t.clamp(DateTime::<Utc>::UNIX_EPOCH, last_x509_moment());
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn gen(e: impl std::fmt::Display) -> PkiError {
    PkiError::Generate(e.to_string())
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes a PKI file; the CA's key is readable by the server's user alone.
fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    crate::secret::write_private(path, text.as_bytes()).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_extension_forms() {
        let id = "B1C43CD5-0434-4AAB-8981-0A6EAC236955";
        assert_eq!(decode_device_id(id.as_bytes()).as_deref(), Some(id));
        let mut wrapped = vec![0x0C, id.len() as u8];
        wrapped.extend_from_slice(id.as_bytes());
        assert_eq!(decode_device_id(&wrapped).as_deref(), Some(id));
        let utf16: Vec<u8> = id.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode_device_id(&utf16).as_deref(), Some(id));
        let guid = [
            0xD5, 0x3C, 0xC4, 0xB1, 0x34, 0x04, 0xAB, 0x4A, 0x89, 0x81, 0x0A, 0x6E, 0xAC, 0x23,
            0x69, 0x55,
        ];
        assert_eq!(decode_device_id(&guid).as_deref(), Some(id));
        assert_eq!(decode_device_id(b""), None);
    }

    #[test]
    fn a_clock_near_the_end_of_time_issues_certificates_that_are_still_valid() {
        let dir = tempfile::tempdir().unwrap();
        let now = DateTime::parse_from_rfc3339("9999-12-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ca = Ca::load_or_create(dir.path(), now).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let csr = verify_csr(csr.der()).unwrap();
        let issued = ca
            .sign_device(&csr, "D1", [1; 16], now, Duration::days(365))
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&issued.der).unwrap();
        let not_after = cert.validity().not_after.timestamp();
        assert!(not_after > now.timestamp(), "expired at {not_after}");
        assert!(issued.not_after > now);
    }

    #[cfg(unix)]
    #[test]
    fn the_ca_key_is_the_servers_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Ca::load_or_create(
            dir.path(),
            DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000),
        )
        .unwrap();
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
