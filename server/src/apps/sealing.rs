//! An app's decryption info sealed to the device, as Intune sends it in
//! `GetContentInfo`: the keys as JSON, in a CMS EnvelopedData encrypted to the device
//! certificate's RSA key, inside `<EncryptedMessage>` XML.
//!
//! Windows device keys are RSA. Tenantless's fast-keys devices (ECDSA, a testbed
//! shortcut) cannot take RSA key transport; for them the JSON is sent as it is, inside
//! the mutually authenticated TLS session.

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use syncml::cms;
use syncml::xml::XmlWriter;

/// The rsaEncryption algorithm's OID as x509-parser prints it.
const RSA: &str = "1.2.840.113549.1.1.1";

/// The `DecryptInfo` for a device: `<EncryptedMessage>` when its certificate has an RSA
/// key, else the JSON itself. `key` and `iv` are the one-time content key and IV.
pub fn decrypt_info(
    cert_der: Option<&[u8]>,
    keys_json: &str,
    key: &[u8; 32],
    iv: &[u8; 16],
) -> Result<String, String> {
    let Some(der) = cert_der else {
        return Ok(keys_json.to_owned());
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the device certificate: {e}"))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() != RSA {
        return Ok(keys_json.to_owned());
    }
    let public = rsa::RsaPublicKey::from_public_key_der(spki.raw)
        .map_err(|e| format!("the device's RSA key: {e}"))?;
    let encrypted_key = public
        .encrypt(&mut rand_core_06::OsRng, rsa::Pkcs1v15Encrypt, key)
        .map_err(|e| format!("encrypting the content key: {e}"))?;
    let recipient = cms::Recipient {
        issuer: cert.tbs_certificate.issuer.as_raw().to_vec(),
        serial: cert.tbs_certificate.raw_serial().to_vec(),
    };
    let ciphertext = cms::encrypt_content(key, iv, keys_json.as_bytes());
    let message = cms::encode(&recipient, &encrypted_key, iv, &ciphertext);
    let mut w = XmlWriter::new();
    w.open("EncryptedMessage", &[])
        .leaf(
            "EncryptionCertificateThumbprint",
            &[],
            &crate::pki::thumbprint(der),
        )
        .leaf(
            "EncryptedContent",
            &[],
            &base64::engine::general_purpose::STANDARD.encode(message),
        )
        .close("EncryptedMessage");
    Ok(w.finish())
}
