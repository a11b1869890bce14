//! The `.intunewin` package that carries a Win32 app's content (IntuneWinAppUtil's
//! format): an outer zip, stored, holding
//! `IntuneWinPackage/Contents/IntunePackage.intunewin` - the encrypted inner zip of the
//! setup folder - and `IntuneWinPackage/Metadata/Detection.xml`.
//!
//! The encrypted file is `HMAC-SHA256(MacKey, IV || ciphertext) || IV || ciphertext`,
//! the ciphertext being the inner zip under AES-256-CBC with PKCS#7 padding. Detection.xml
//! holds the keys (base64), the MAC, and the SHA-256 of the plaintext inner zip. Readers
//! check the MAC before decrypting and the digest after. Keys come from the caller, so
//! packing is deterministic and this module stays pure.

use std::io::{Cursor, Read, Write};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::error::{Error, Result};
use crate::xml::{self, XmlWriter};

/// The encrypted content's path in the outer zip.
pub const CONTENT_PATH: &str = "IntuneWinPackage/Contents/IntunePackage.intunewin";
/// Detection.xml's path in the outer zip.
pub const DETECTION_PATH: &str = "IntuneWinPackage/Metadata/Detection.xml";
/// The only encryption profile.
pub const PROFILE: &str = "ProfileVersion1";

/// The keys a package is encrypted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// AES-256 key.
    pub encryption_key: [u8; 32],
    /// HMAC-SHA256 key.
    pub mac_key: [u8; 32],
    /// CBC initialisation vector.
    pub iv: [u8; 16],
}

/// `EncryptionInfo` (all binary values base64).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncryptionInfo {
    /// `EncryptionKey`.
    pub encryption_key: String,
    /// `MacKey`.
    pub mac_key: String,
    /// `InitializationVector`.
    pub initialization_vector: String,
    /// `Mac`.
    pub mac: String,
    /// `ProfileIdentifier` (`ProfileVersion1`).
    pub profile_identifier: String,
    /// `FileDigest`: SHA-256 of the plaintext inner zip.
    pub file_digest: String,
    /// `FileDigestAlgorithm` (`SHA256`).
    pub file_digest_algorithm: String,
}

/// `MsiInfo`, for an MSI setup file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsiInfo {
    /// `MsiProductCode`.
    pub product_code: String,
    /// `MsiProductVersion`.
    pub product_version: String,
    /// `MsiUpgradeCode`.
    pub upgrade_code: String,
    /// `MsiExecutionContext` (`System`, `User`, `Any`).
    pub execution_context: String,
    /// `MsiPublisher`.
    pub publisher: String,
}

/// Detection.xml's `ApplicationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detection {
    /// `ToolVersion`.
    pub tool_version: String,
    /// `Name` (the setup file's name).
    pub name: String,
    /// `UnencryptedContentSize`: bytes of the inner zip.
    pub unencrypted_content_size: u64,
    /// `FileName` (`IntunePackage.intunewin`).
    pub file_name: String,
    /// `SetupFile`.
    pub setup_file: String,
    /// `EncryptionInfo`.
    pub encryption: EncryptionInfo,
    /// `MsiInfo`.
    pub msi: Option<MsiInfo>,
}

impl Detection {
    /// Reads Detection.xml.
    pub fn parse(text: &str) -> Result<Detection> {
        let root = xml::parse(text)?;
        if root.name != "ApplicationInfo" {
            return Err(Error::Unexpected {
                expected: "ApplicationInfo".into(),
                found: root.name,
            });
        }
        let enc = root.require("EncryptionInfo")?;
        let t = |name: &str| enc.child_text(name).unwrap_or_default();
        let size = root
            .child_text("UnencryptedContentSize")
            .unwrap_or_default();
        Ok(Detection {
            tool_version: root.attr("ToolVersion").unwrap_or_default().to_owned(),
            name: root.child_text("Name").unwrap_or_default(),
            unencrypted_content_size: size
                .parse()
                .map_err(|_| Error::invalid("UnencryptedContentSize", &size, "not a number"))?,
            file_name: root.child_text("FileName").unwrap_or_default(),
            setup_file: root.child_text("SetupFile").unwrap_or_default(),
            encryption: EncryptionInfo {
                encryption_key: t("EncryptionKey"),
                mac_key: t("MacKey"),
                initialization_vector: t("InitializationVector"),
                mac: t("Mac"),
                profile_identifier: t("ProfileIdentifier"),
                file_digest: t("FileDigest"),
                file_digest_algorithm: t("FileDigestAlgorithm"),
            },
            msi: root.child("MsiInfo").map(|m| MsiInfo {
                product_code: m.child_text("MsiProductCode").unwrap_or_default(),
                product_version: m.child_text("MsiProductVersion").unwrap_or_default(),
                upgrade_code: m.child_text("MsiUpgradeCode").unwrap_or_default(),
                execution_context: m.child_text("MsiExecutionContext").unwrap_or_default(),
                publisher: m.child_text("MsiPublisher").unwrap_or_default(),
            }),
        })
    }

    /// Writes Detection.xml.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.declaration().open(
            "ApplicationInfo",
            &[
                ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
                ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                ("ToolVersion", &self.tool_version),
            ],
        );
        w.leaf("Name", &[], &self.name)
            .leaf(
                "UnencryptedContentSize",
                &[],
                &self.unencrypted_content_size.to_string(),
            )
            .leaf("FileName", &[], &self.file_name)
            .leaf("SetupFile", &[], &self.setup_file);
        let e = &self.encryption;
        w.open("EncryptionInfo", &[])
            .leaf("EncryptionKey", &[], &e.encryption_key)
            .leaf("MacKey", &[], &e.mac_key)
            .leaf("InitializationVector", &[], &e.initialization_vector)
            .leaf("Mac", &[], &e.mac)
            .leaf("ProfileIdentifier", &[], &e.profile_identifier)
            .leaf("FileDigest", &[], &e.file_digest)
            .leaf("FileDigestAlgorithm", &[], &e.file_digest_algorithm)
            .close("EncryptionInfo");
        if let Some(m) = &self.msi {
            w.open("MsiInfo", &[])
                .leaf("MsiPublisher", &[], &m.publisher)
                .leaf("MsiProductCode", &[], &m.product_code)
                .leaf("MsiProductVersion", &[], &m.product_version)
                .leaf("MsiUpgradeCode", &[], &m.upgrade_code)
                .leaf("MsiExecutionContext", &[], &m.execution_context)
                .close("MsiInfo");
        }
        w.close("ApplicationInfo");
        w.finish()
    }
}

/// A package as read: its metadata and the encrypted content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Detection.xml.
    pub detection: Detection,
    /// `IntunePackage.intunewin`: MAC, IV, ciphertext.
    pub encrypted: Vec<u8>,
}

fn zip_error(e: impl std::fmt::Display) -> Error {
    Error::invalid("intunewin", "", e.to_string())
}

/// Zips files (path with `/` separators, bytes), deflated.
pub fn zip_folder(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (path, bytes) in files {
        zip.start_file(path.replace('\\', "/"), options)
            .map_err(zip_error)?;
        zip.write_all(bytes).map_err(zip_error)?;
    }
    Ok(zip.finish().map_err(zip_error)?.into_inner())
}

/// Encrypts an inner zip: the encrypted file and its EncryptionInfo.
pub fn encrypt(inner: &[u8], keys: &Keys) -> (Vec<u8>, EncryptionInfo) {
    let ciphertext =
        cbc::Encryptor::<aes::Aes256>::new(&keys.encryption_key.into(), &keys.iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(inner);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac_key)
        .expect("HMAC takes keys of any length");
    mac.update(&keys.iv);
    mac.update(&ciphertext);
    let tag = mac.finalize().into_bytes();
    let mut encrypted = Vec::with_capacity(48 + ciphertext.len());
    encrypted.extend_from_slice(&tag);
    encrypted.extend_from_slice(&keys.iv);
    encrypted.extend_from_slice(&ciphertext);
    let info = EncryptionInfo {
        encryption_key: B64.encode(keys.encryption_key),
        mac_key: B64.encode(keys.mac_key),
        initialization_vector: B64.encode(keys.iv),
        mac: B64.encode(tag),
        profile_identifier: PROFILE.into(),
        file_digest: B64.encode(Sha256::digest(inner)),
        file_digest_algorithm: "SHA256".into(),
    };
    (encrypted, info)
}

/// Builds a `.intunewin` from a setup folder's files.
pub fn pack(
    files: &[(String, Vec<u8>)],
    setup_file: &str,
    keys: &Keys,
    msi: Option<MsiInfo>,
) -> Result<Vec<u8>> {
    let inner = zip_folder(files)?;
    let (encrypted, encryption) = encrypt(&inner, keys);
    let detection = Detection {
        tool_version: "1.8.6.0".into(),
        name: setup_file
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(setup_file)
            .to_owned(),
        unencrypted_content_size: inner.len() as u64,
        file_name: "IntunePackage.intunewin".into(),
        setup_file: setup_file.to_owned(),
        encryption,
        msi,
    };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    zip.start_file(CONTENT_PATH, stored).map_err(zip_error)?;
    zip.write_all(&encrypted).map_err(zip_error)?;
    zip.start_file(DETECTION_PATH, stored).map_err(zip_error)?;
    zip.write_all(detection.to_xml().as_bytes())
        .map_err(zip_error)?;
    Ok(zip.finish().map_err(zip_error)?.into_inner())
}

fn read_entry<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let entry = archive
        .by_name(name)
        .map_err(|e| Error::invalid("intunewin", name, e.to_string()))?;
    let mut bytes = Vec::new();
    entry
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(zip_error)?;
    Ok(bytes)
}

/// Reads a `.intunewin`'s Detection.xml from its opened zip (a file on disk, say, whose
/// encrypted content the caller then reads in pieces from [`CONTENT_PATH`]).
pub fn read_detection<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<Detection> {
    let detection = read_entry(archive, DETECTION_PATH, 1 << 20)?;
    let text = String::from_utf8(detection).map_err(|e| Error::Encoding(e.to_string()))?;
    Detection::parse(text.trim_start_matches('\u{feff}'))
}

/// Reads a `.intunewin`: Detection.xml and the encrypted content.
pub fn open(bytes: &[u8]) -> Result<Package> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    let detection = read_detection(&mut archive)?;
    let encrypted = read_entry(&mut archive, CONTENT_PATH, 8 << 30)?;
    Ok(Package {
        detection,
        encrypted,
    })
}

fn b64(field: &str, value: &str, len: usize) -> Result<Vec<u8>> {
    let bytes = B64
        .decode(value.trim())
        .map_err(|e| Error::invalid(field, value, e.to_string()))?;
    if bytes.len() != len {
        return Err(Error::invalid(
            field,
            value,
            format!("expected {len} bytes"),
        ));
    }
    Ok(bytes)
}

/// Why a package's content was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentError {
    /// The MAC does not match: the content was changed or the keys are wrong.
    MacMismatch,
    /// The decrypted content's SHA-256 is not the FileDigest.
    DigestMismatch,
    /// The content cannot be decrypted (bad length or padding).
    Undecryptable,
    /// The metadata is unusable.
    Metadata(Error),
}

impl std::fmt::Display for ContentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentError::MacMismatch => write!(
                f,
                "the content's MAC does not match (tampered or wrong keys)"
            ),
            ContentError::DigestMismatch => write!(
                f,
                "the decrypted content's SHA-256 does not match FileDigest"
            ),
            ContentError::Undecryptable => write!(f, "the content cannot be decrypted"),
            ContentError::Metadata(e) => write!(f, "the package's metadata: {e}"),
        }
    }
}

impl std::error::Error for ContentError {}

/// Checks the MAC, decrypts, and checks the digest: the plaintext inner zip.
pub fn decrypt(
    encrypted: &[u8],
    info: &EncryptionInfo,
) -> std::result::Result<Vec<u8>, ContentError> {
    let key = b64("EncryptionKey", &info.encryption_key, 32).map_err(ContentError::Metadata)?;
    let mac_key = b64("MacKey", &info.mac_key, 32).map_err(ContentError::Metadata)?;
    let digest = b64("FileDigest", &info.file_digest, 32).map_err(ContentError::Metadata)?;
    if encrypted.len() < 48 {
        return Err(ContentError::Undecryptable);
    }
    let (tag, rest) = encrypted.split_at(32);
    let (iv, ciphertext) = rest.split_at(16);
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).map_err(|_| ContentError::MacMismatch)?;
    mac.update(iv);
    mac.update(ciphertext);
    mac.verify_slice(tag)
        .map_err(|_| ContentError::MacMismatch)?;
    let mut iv16 = [0u8; 16];
    iv16.copy_from_slice(iv);
    let mut key32 = [0u8; 32];
    key32.copy_from_slice(&key);
    let plain = cbc::Decryptor::<aes::Aes256>::new(&key32.into(), &iv16.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| ContentError::Undecryptable)?;
    if Sha256::digest(&plain).as_slice() != digest.as_slice() {
        return Err(ContentError::DigestMismatch);
    }
    Ok(plain)
}

/// [`encrypt`] over plaintext that arrives in pieces (a multi-gigabyte package made on
/// the fly): ciphertext comes out as it is made, and the file's head (MAC and IV, which
/// come first in the file but are known only at the end) with the EncryptionInfo at
/// [`ContentSeal::finish`]. An upload puts the head as its first block last.
pub struct ContentSeal {
    keys: Keys,
    encryptor: cbc::Encryptor<aes::Aes256>,
    mac: Hmac<Sha256>,
    plain: Sha256,
    /// Plaintext short of a whole block.
    pending: Vec<u8>,
}

impl ContentSeal {
    /// A seal with these keys.
    pub fn new(keys: &Keys) -> ContentSeal {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac_key)
            .expect("HMAC takes keys of any length");
        mac.update(&keys.iv);
        ContentSeal {
            keys: keys.clone(),
            encryptor: cbc::Encryptor::<aes::Aes256>::new(
                &keys.encryption_key.into(),
                &keys.iv.into(),
            ),
            mac,
            plain: Sha256::new(),
            pending: Vec::new(),
        }
    }

    /// Encrypts the next piece of plaintext: the ciphertext of every block it completes.
    pub fn update(&mut self, plain: &[u8]) -> Vec<u8> {
        self.plain.update(plain);
        self.pending.extend_from_slice(plain);
        let whole = self.pending.len() / 16 * 16;
        let mut blocks: Vec<aes::Block> = self.pending[..whole]
            .chunks_exact(16)
            .map(|c| *aes::Block::from_slice(c))
            .collect();
        self.encryptor.encrypt_blocks_mut(&mut blocks);
        self.pending.drain(..whole);
        let out: Vec<u8> = blocks.iter().flat_map(|b| b.iter().copied()).collect();
        self.mac.update(&out);
        out
    }

    /// The last ciphertext (the padded final block), the file's 48-byte head (MAC, IV)
    /// and the EncryptionInfo, as [`encrypt`] gives them.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u8>, EncryptionInfo) {
        let pad = 16 - self.pending.len();
        let mut last = self.pending.clone();
        last.resize(16, pad as u8);
        let mut block = *aes::Block::from_slice(&last);
        self.encryptor.encrypt_block_mut(&mut block);
        let tail = block.to_vec();
        self.mac.update(&tail);
        let tag = self.mac.finalize().into_bytes();
        let mut head = tag.to_vec();
        head.extend_from_slice(&self.keys.iv);
        let info = EncryptionInfo {
            encryption_key: B64.encode(self.keys.encryption_key),
            mac_key: B64.encode(self.keys.mac_key),
            initialization_vector: B64.encode(self.keys.iv),
            mac: B64.encode(tag),
            profile_identifier: PROFILE.into(),
            file_digest: B64.encode(self.plain.finalize()),
            file_digest_algorithm: "SHA256".into(),
        };
        (tail, head, info)
    }
}

/// [`decrypt`]'s checks made over content that arrives in pieces (a multi-gigabyte
/// upload in blocks), in memory bounded by the pieces: the MAC over IV and ciphertext,
/// and the SHA-256 of the plaintext as it is decrypted. Nothing is kept.
pub struct ContentCheck {
    mac: Hmac<Sha256>,
    key: [u8; 32],
    digest: Vec<u8>,
    /// The first 48 bytes (MAC and IV) until they are complete.
    head: Vec<u8>,
    /// Set once the IV is known.
    decryptor: Option<cbc::Decryptor<aes::Aes256>>,
    plain: Sha256,
    /// Ciphertext not yet decrypted: less than a block, or the last block held back for
    /// its padding.
    pending: Vec<u8>,
    tag: [u8; 32],
    total: u64,
}

impl ContentCheck {
    /// A check against Detection.xml's (or `fileEncryptionInfo`'s) keys and digest.
    pub fn new(info: &EncryptionInfo) -> std::result::Result<ContentCheck, ContentError> {
        let key = b64("EncryptionKey", &info.encryption_key, 32).map_err(ContentError::Metadata)?;
        let mac_key = b64("MacKey", &info.mac_key, 32).map_err(ContentError::Metadata)?;
        let digest = b64("FileDigest", &info.file_digest, 32).map_err(ContentError::Metadata)?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key)
            .map_err(|_| ContentError::MacMismatch)?;
        let mut key32 = [0u8; 32];
        key32.copy_from_slice(&key);
        Ok(ContentCheck {
            mac,
            key: key32,
            digest,
            head: Vec::with_capacity(48),
            decryptor: None,
            plain: Sha256::new(),
            pending: Vec::new(),
            tag: [0; 32],
            total: 0,
        })
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True before any byte.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Takes the next piece of the encrypted file.
    pub fn update(&mut self, bytes: &[u8]) {
        self.take(bytes, None);
    }

    /// Takes the next piece of the encrypted file and appends to `plain` what it
    /// decrypts to so far (unchecked until [`ContentCheck::finish_into`] says so).
    pub fn update_into(&mut self, bytes: &[u8], plain: &mut Vec<u8>) {
        self.take(bytes, Some(plain));
    }

    fn take(&mut self, mut bytes: &[u8], mut out: Option<&mut Vec<u8>>) {
        self.total += bytes.len() as u64;
        if self.head.len() < 48 {
            let take = (48 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.head.len() < 48 {
                return;
            }
            self.tag.copy_from_slice(&self.head[..32]);
            let iv: [u8; 16] = self.head[32..48].try_into().unwrap_or([0; 16]);
            self.mac.update(&iv);
            self.decryptor = Some(cbc::Decryptor::<aes::Aes256>::new(
                &self.key.into(),
                &iv.into(),
            ));
        }
        self.mac.update(bytes);
        self.pending.extend_from_slice(bytes);
        // Decrypt every whole block but the last, which may hold the padding.
        let ready = (self.pending.len().saturating_sub(1) / 16) * 16;
        if ready == 0 {
            return;
        }
        if let Some(decryptor) = self.decryptor.as_mut() {
            let mut blocks: Vec<aes::Block> = self.pending[..ready]
                .chunks_exact(16)
                .map(|c| *aes::Block::from_slice(c))
                .collect();
            decryptor.decrypt_blocks_mut(&mut blocks);
            for block in &blocks {
                self.plain.update(block);
                if let Some(out) = out.as_deref_mut() {
                    out.extend_from_slice(block);
                }
            }
        }
        self.pending.drain(..ready);
    }

    /// The verdict once every byte is in: the MAC first (as [`decrypt`] checks it before
    /// decrypting), then the padding, then the digest.
    pub fn finish(self) -> std::result::Result<(), ContentError> {
        self.finish_into(&mut Vec::new())
    }

    /// [`ContentCheck::finish`], appending the last of the plaintext to `plain`.
    pub fn finish_into(self, plain: &mut Vec<u8>) -> std::result::Result<(), ContentError> {
        let Some(mut decryptor) = self.decryptor else {
            return Err(ContentError::Undecryptable);
        };
        self.mac
            .verify_slice(&self.tag)
            .map_err(|_| ContentError::MacMismatch)?;
        if self.pending.len() != 16 {
            return Err(ContentError::Undecryptable);
        }
        let mut last = *aes::Block::from_slice(&self.pending);
        decryptor.decrypt_block_mut(&mut last);
        let pad = usize::from(last[15]);
        if pad == 0 || pad > 16 || last[16 - pad..].iter().any(|&b| usize::from(b) != pad) {
            return Err(ContentError::Undecryptable);
        }
        let mut digest = self.plain;
        digest.update(&last[..16 - pad]);
        plain.extend_from_slice(&last[..16 - pad]);
        if digest.finalize().as_slice() != self.digest.as_slice() {
            return Err(ContentError::DigestMismatch);
        }
        Ok(())
    }
}

/// Unzips an inner zip read from a file (or anything that seeks), handing each file's
/// path and bytes, as a reader, to `each`; paths that leave the folder are refused
/// before anything is handed over.
pub fn extract_each<R: Read + std::io::Seek>(
    inner: R,
    mut each: impl FnMut(&str, &mut dyn Read) -> std::io::Result<()>,
) -> Result<()> {
    let mut archive = zip::ZipArchive::new(inner).map_err(zip_error)?;
    for name in archive.file_names() {
        let name = name.replace('\\', "/");
        if name.starts_with('/') || name.split('/').any(|p| p == "..") {
            return Err(Error::invalid(
                "intunewin entry",
                &name,
                "leaves the content folder",
            ));
        }
    }
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().replace('\\', "/");
        each(&name, &mut entry).map_err(zip_error)?;
    }
    Ok(())
}

/// Unzips an inner zip into (path, bytes), refusing paths that leave the folder.
pub fn extract(inner: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(inner)).map_err(zip_error)?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().replace('\\', "/");
        if name.starts_with('/') || name.split('/').any(|p| p == "..") {
            return Err(Error::invalid(
                "intunewin entry",
                &name,
                "leaves the content folder",
            ));
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(8 << 30)
            .read_to_end(&mut bytes)
            .map_err(zip_error)?;
        out.push((name, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            encryption_key: [1; 32],
            mac_key: [2; 32],
            iv: [3; 16],
        }
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            (
                "setup.msi".into(),
                b"{\"format\":\"tenantless-msi/1\"}".to_vec(),
            ),
            ("data/readme.txt".into(), b"hello".to_vec()),
        ]
    }

    #[test]
    fn packs_and_reads_back() {
        let pkg = pack(&files(), "setup.msi", &keys(), None).unwrap();
        let opened = open(&pkg).unwrap();
        assert_eq!(opened.detection.setup_file, "setup.msi");
        assert_eq!(opened.detection.encryption.profile_identifier, PROFILE);
        let inner = decrypt(&opened.encrypted, &opened.detection.encryption).unwrap();
        assert_eq!(
            inner.len() as u64,
            opened.detection.unencrypted_content_size
        );
        assert_eq!(extract(&inner).unwrap(), files());
        assert_eq!(
            pack(&files(), "setup.msi", &keys(), None).unwrap(),
            pkg,
            "deterministic for the same keys"
        );
    }

    #[test]
    fn tampering_is_refused_before_decryption() {
        let opened = open(&pack(&files(), "setup.msi", &keys(), None).unwrap()).unwrap();
        let mut bad = opened.encrypted.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            decrypt(&bad, &opened.detection.encryption),
            Err(ContentError::MacMismatch)
        );
        let mut info = opened.detection.encryption.clone();
        info.file_digest = B64.encode([0u8; 32]);
        assert_eq!(
            decrypt(&opened.encrypted, &info),
            Err(ContentError::DigestMismatch)
        );
        assert_eq!(
            decrypt(b"short", &opened.detection.encryption),
            Err(ContentError::Undecryptable)
        );
    }

    #[test]
    fn the_check_in_pieces_agrees_with_decrypt() {
        let opened = open(&pack(&files(), "setup.msi", &keys(), None).unwrap()).unwrap();
        let info = &opened.detection.encryption;
        let checked = |bytes: &[u8], info: &EncryptionInfo, piece: usize| {
            let mut check = ContentCheck::new(info).unwrap();
            for part in bytes.chunks(piece.max(1)) {
                check.update(part);
            }
            check.finish()
        };
        for piece in [1, 7, 16, 47, 48, 49, 1000, 1 << 20] {
            assert_eq!(checked(&opened.encrypted, info, piece), Ok(()), "{piece}");
            let mut check = ContentCheck::new(info).unwrap();
            let mut plain = Vec::new();
            for part in opened.encrypted.chunks(piece) {
                check.update_into(part, &mut plain);
            }
            check.finish_into(&mut plain).unwrap();
            assert_eq!(plain, decrypt(&opened.encrypted, info).unwrap(), "{piece}");
        }
        let mut bad = opened.encrypted.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(checked(&bad, info, 5), Err(ContentError::MacMismatch));
        let mut wrong = info.clone();
        wrong.file_digest = B64.encode([0u8; 32]);
        assert_eq!(
            checked(&opened.encrypted, &wrong, 33),
            Err(ContentError::DigestMismatch)
        );
        assert_eq!(checked(b"short", info, 2), Err(ContentError::Undecryptable));
    }

    #[test]
    fn detection_xml_round_trips() {
        let d = Detection {
            tool_version: "1.8.6.0".into(),
            name: "setup.msi".into(),
            unencrypted_content_size: 42,
            file_name: "IntunePackage.intunewin".into(),
            setup_file: "setup.msi".into(),
            encryption: EncryptionInfo {
                encryption_key: "a".into(),
                ..EncryptionInfo::default()
            },
            msi: Some(MsiInfo {
                product_code: "{P}".into(),
                ..MsiInfo::default()
            }),
        };
        assert_eq!(Detection::parse(&d.to_xml()).unwrap(), d);
    }

    #[test]
    fn zip_slip_is_refused() {
        let evil = zip_folder(&[
            ("fine.txt".into(), b"y".to_vec()),
            ("../../evil.txt".into(), b"x".to_vec()),
        ])
        .unwrap();
        assert!(extract(&evil).is_err());
        let mut handed = Vec::new();
        let each = extract_each(Cursor::new(&evil), |name, _| {
            handed.push(name.to_owned());
            Ok(())
        });
        assert!(each.is_err());
        assert!(handed.is_empty(), "nothing is handed over from an evil zip");
    }

    #[test]
    fn extract_each_hands_over_what_extract_gives() {
        let inner = zip_folder(&files()).unwrap();
        let mut got = Vec::new();
        extract_each(Cursor::new(&inner), |name, reader| {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes)?;
            got.push((name.to_owned(), bytes));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, extract(&inner).unwrap());
    }
}
