//! CMS EnvelopedData (RFC 5652) as Intune uses it for an app's decryption info: the
//! content encrypted with AES-256-CBC under a one-time key, and that key encrypted to
//! the device certificate's RSA key (PKCS #1 v1.5 key transport, a
//! `KeyTransRecipientInfo` naming the certificate by issuer and serial number).
//!
//! This module encodes and parses the DER and does the symmetric part; the RSA step
//! belongs to whoever holds the keys. Parsing is total: any input gives a value or an
//! error. Windows reads the result with `EnvelopedCms`, OpenSSL with `openssl cms
//! -decrypt`.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use thiserror::Error;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xA0;
const CONTEXT_0_PRIMITIVE: u8 = 0x80;

/// 1.2.840.113549.1.7.3, id-envelopedData.
const ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
/// 1.2.840.113549.1.7.1, id-data.
const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
/// 1.2.840.113549.1.1.1, rsaEncryption.
pub const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// 2.16.840.1.101.3.4.1.42, id-aes256-CBC.
const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A];

/// What went wrong reading an EnvelopedData.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CmsError {
    /// The DER is cut short or malformed.
    #[error("malformed DER: {0}")]
    Der(&'static str),
    /// Well-formed, but not what Intune sends.
    #[error("unsupported CMS: {0}")]
    Unsupported(&'static str),
    /// The content does not decrypt under the key.
    #[error("the content does not decrypt (wrong key or damaged data)")]
    Decrypt,
}

/// The certificate a message is encrypted to, as `IssuerAndSerialNumber` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The issuer's Name, as DER (the certificate's own bytes).
    pub issuer: Vec<u8>,
    /// The serial number's INTEGER content bytes.
    pub serial: Vec<u8>,
}

/// One `KeyTransRecipientInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTransport {
    /// Whom it is for.
    pub recipient: Recipient,
    /// The content key, encrypted with the recipient's RSA key.
    pub encrypted_key: Vec<u8>,
}

/// A parsed EnvelopedData with AES-256-CBC content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enveloped {
    /// The recipients (Intune sends one).
    pub recipients: Vec<KeyTransport>,
    /// The content encryption IV.
    pub iv: Vec<u8>,
    /// The encrypted content.
    pub ciphertext: Vec<u8>,
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// Encrypts `plaintext` with AES-256-CBC (PKCS #7 padding).
pub fn encrypt_content(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    Aes256CbcEnc::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// The DER of a ContentInfo holding an EnvelopedData for one RSA recipient.
pub fn encode(
    recipient: &Recipient,
    encrypted_key: &[u8],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Vec<u8> {
    let issuer_and_serial = seq(&[&recipient.issuer, &tlv(INTEGER, &recipient.serial)]);
    let key_algorithm = seq(&[&tlv(OID, RSA_ENCRYPTION), &tlv(NULL, &[])]);
    let recipient_info = seq(&[
        &tlv(INTEGER, &[0]),
        &issuer_and_serial,
        &key_algorithm,
        &tlv(OCTET_STRING, encrypted_key),
    ]);
    let content_algorithm = seq(&[&tlv(OID, AES256_CBC), &tlv(OCTET_STRING, iv)]);
    let encrypted_content_info = seq(&[
        &tlv(OID, DATA),
        &content_algorithm,
        &tlv(CONTEXT_0_PRIMITIVE, ciphertext),
    ]);
    let enveloped = seq(&[
        &tlv(INTEGER, &[0]),
        &tlv(SET, &recipient_info),
        &encrypted_content_info,
    ]);
    seq(&[&tlv(OID, ENVELOPED_DATA), &tlv(CONTEXT_0, &enveloped)])
}

/// A cursor over DER elements.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self) -> Result<(u8, &'a [u8]), CmsError> {
        let (&tag, rest) = self.0.split_first().ok_or(CmsError::Der("cut short"))?;
        let (&first, rest) = rest.split_first().ok_or(CmsError::Der("no length"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(CmsError::Der("bad length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(CmsError::Der("length past the end"));
        }
        self.0 = &rest[len..];
        Ok((tag, &rest[..len]))
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], CmsError> {
        match self.next()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(CmsError::Der(what)),
        }
    }

    fn element(&mut self) -> Result<&'a [u8], CmsError> {
        let before = self.0;
        self.next()?;
        Ok(&before[..before.len() - self.0.len()])
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn key_transport(der: &[u8]) -> Result<KeyTransport, CmsError> {
    let mut d = Der(der);
    d.expect(INTEGER, "recipient version")?;
    let mut id = Der(d.expect(SEQUENCE, "issuer and serial number")?);
    let issuer = id.element()?.to_vec();
    let serial = id.expect(INTEGER, "serial number")?.to_vec();
    let mut algorithm = Der(d.expect(SEQUENCE, "key encryption algorithm")?);
    if algorithm.expect(OID, "key encryption algorithm")? != RSA_ENCRYPTION {
        return Err(CmsError::Unsupported(
            "key transport other than rsaEncryption",
        ));
    }
    let encrypted_key = d.expect(OCTET_STRING, "encrypted key")?.to_vec();
    Ok(KeyTransport {
        recipient: Recipient { issuer, serial },
        encrypted_key,
    })
}

/// Parses a ContentInfo holding an EnvelopedData with AES-256-CBC content.
pub fn parse(der: &[u8]) -> Result<Enveloped, CmsError> {
    let mut info = Der(Der(der).expect(SEQUENCE, "ContentInfo")?);
    if info.expect(OID, "content type")? != ENVELOPED_DATA {
        return Err(CmsError::Unsupported("not an EnvelopedData"));
    }
    let mut explicit = Der(info.expect(CONTEXT_0, "[0] content")?);
    let mut env = Der(explicit.expect(SEQUENCE, "EnvelopedData")?);
    env.expect(INTEGER, "version")?;
    let (mut tag, mut content) = env.next()?;
    if tag == CONTEXT_0 {
        // originatorInfo, which Intune does not send: skip it.
        (tag, content) = env.next()?;
    }
    if tag != SET {
        return Err(CmsError::Der("recipient infos"));
    }
    let mut set = Der(content);
    let mut recipients = Vec::new();
    while !set.is_empty() {
        match set.next()? {
            (SEQUENCE, ri) => recipients.push(key_transport(ri)?),
            _ => return Err(CmsError::Unsupported("recipients other than key transport")),
        }
    }
    let mut eci = Der(env.expect(SEQUENCE, "EncryptedContentInfo")?);
    eci.expect(OID, "encrypted content type")?;
    let mut algorithm = Der(eci.expect(SEQUENCE, "content encryption algorithm")?);
    if algorithm.expect(OID, "content encryption algorithm")? != AES256_CBC {
        return Err(CmsError::Unsupported(
            "content encryption other than AES-256-CBC",
        ));
    }
    let iv = algorithm.expect(OCTET_STRING, "IV")?.to_vec();
    let ciphertext = match eci.next()? {
        (CONTEXT_0_PRIMITIVE, c) => c.to_vec(),
        // BER's constructed form: a run of OCTET STRINGs.
        (CONTEXT_0, c) => {
            let mut parts = Der(c);
            let mut all = Vec::new();
            while !parts.is_empty() {
                all.extend_from_slice(parts.expect(OCTET_STRING, "content segment")?);
            }
            all
        }
        _ => return Err(CmsError::Der("encrypted content")),
    };
    Ok(Enveloped {
        recipients,
        iv,
        ciphertext,
    })
}

impl Enveloped {
    /// Decrypts the content with the (already unwrapped) content key.
    pub fn decrypt(&self, key: &[u8]) -> Result<Vec<u8>, CmsError> {
        let key: &[u8; 32] = key.try_into().map_err(|_| CmsError::Decrypt)?;
        let iv: &[u8; 16] = self
            .iv
            .as_slice()
            .try_into()
            .map_err(|_| CmsError::Decrypt)?;
        Aes256CbcDec::new(key.into(), iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&self.ciphertext)
            .map_err(|_| CmsError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn recipient() -> Recipient {
        // Name: SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String "CA" } } }
        Recipient {
            issuer: vec![
                0x30, 0x0D, 0x31, 0x0B, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0C, 0x02, b'C',
                b'A',
            ],
            serial: vec![0x01, 0x02, 0x03],
        }
    }

    #[test]
    fn what_is_encoded_parses_back_and_decrypts() {
        let key = [9u8; 32];
        let iv = [4u8; 16];
        let secret = br#"{"EncryptionKey":"a2V5","IV":"aXY="}"#;
        let ciphertext = encrypt_content(&key, &iv, secret);
        let big_key = vec![0xAB; 256];
        let der = encode(&recipient(), &big_key, &iv, &ciphertext);
        let env = parse(&der).unwrap();
        assert_eq!(env.recipients.len(), 1);
        assert_eq!(env.recipients[0].recipient, recipient());
        assert_eq!(env.recipients[0].encrypted_key, big_key);
        assert_eq!(env.decrypt(&key).unwrap(), secret);
        assert_ne!(env.decrypt(&[8u8; 32]).ok().as_deref(), Some(&secret[..]));
    }

    #[test]
    fn other_messages_are_refused_with_a_reason() {
        assert_eq!(parse(&[]), Err(CmsError::Der("cut short")));
        let signed_data = seq(&[
            &tlv(OID, &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02]),
            &tlv(CONTEXT_0, &[]),
        ]);
        assert_eq!(
            parse(&signed_data),
            Err(CmsError::Unsupported("not an EnvelopedData"))
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn damaged_messages_never_panic(at in 0usize..400, byte in any::<u8>()) {
            let iv = [1u8; 16];
            let mut der = encode(&recipient(), &[7; 128], &iv, &encrypt_content(&[2; 32], &iv, b"x"));
            let at = at % der.len();
            der[at] = byte;
            if let Ok(env) = parse(&der) {
                let _ = env.decrypt(&[2; 32]);
            }
            let _ = parse(&der[..at]);
        }
    }
}
