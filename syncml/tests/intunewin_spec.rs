//! A package made by `syncml::intunewin::pack` is opened here with nothing but the
//! format's published description (shared/spec/ime.md section 8) and general-purpose
//! crates: a zip reader, AES-256-CBC, HMAC-SHA256, SHA-256. No code of this crate reads it.

use std::io::{Cursor, Read};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The text of `<name>` in an XML document, found by plain string search.
fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{name}>")) + open.len();
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    xml[start..end].to_owned()
}

fn entry(
    zip: &mut zip::ZipArchive<Cursor<Vec<u8>>>,
    name: &str,
) -> (Vec<u8>, zip::CompressionMethod) {
    let mut e = zip.by_name(name).unwrap();
    let method = e.compression();
    let mut bytes = Vec::new();
    e.read_to_end(&mut bytes).unwrap();
    (bytes, method)
}

#[test]
fn the_packers_output_decrypts_with_the_published_algorithm() {
    let files = vec![
        ("setup.msi".to_owned(), b"simulated installer".to_vec()),
        (
            "support/config.ini".to_owned(),
            b"[settings]\nmode=quiet\n".to_vec(),
        ),
    ];
    let keys = syncml::intunewin::Keys {
        encryption_key: [0x11; 32],
        mac_key: [0x22; 32],
        iv: [0x33; 16],
    };
    let package = syncml::intunewin::pack(&files, "setup.msi", &keys, None).unwrap();

    // An outer zip, stored, with the two entries the spec names.
    let mut outer = zip::ZipArchive::new(Cursor::new(package)).unwrap();
    let (detection, method) = entry(&mut outer, "IntuneWinPackage/Metadata/Detection.xml");
    assert_eq!(method, zip::CompressionMethod::Stored);
    let (encrypted, method) = entry(
        &mut outer,
        "IntuneWinPackage/Contents/IntunePackage.intunewin",
    );
    assert_eq!(method, zip::CompressionMethod::Stored);
    let detection = String::from_utf8(detection).unwrap();
    assert!(detection.contains("<ApplicationInfo") && detection.contains("ToolVersion=\""));
    assert_eq!(element(&detection, "SetupFile"), "setup.msi");
    assert_eq!(element(&detection, "FileName"), "IntunePackage.intunewin");
    assert_eq!(element(&detection, "ProfileIdentifier"), "ProfileVersion1");
    assert_eq!(element(&detection, "FileDigestAlgorithm"), "SHA256");

    let key = STANDARD
        .decode(element(&detection, "EncryptionKey"))
        .unwrap();
    let mac_key = STANDARD.decode(element(&detection, "MacKey")).unwrap();
    let iv = STANDARD
        .decode(element(&detection, "InitializationVector"))
        .unwrap();
    let mac = STANDARD.decode(element(&detection, "Mac")).unwrap();
    let digest = STANDARD.decode(element(&detection, "FileDigest")).unwrap();
    assert_eq!((key.len(), mac_key.len(), iv.len()), (32, 32, 16));

    // Encrypted file = HMAC-SHA256(MacKey, IV || ciphertext) || IV || ciphertext.
    assert_eq!(
        &encrypted[..32],
        mac.as_slice(),
        "the file starts with the Mac"
    );
    assert_eq!(&encrypted[32..48], iv.as_slice(), "then the IV");
    let ciphertext = &encrypted[48..];
    let mut check = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
    check.update(&iv);
    check.update(ciphertext);
    check.verify_slice(&mac).expect("the MAC verifies");

    // AES-256-CBC with PKCS#7 padding gives the inner zip, whose SHA-256 is FileDigest
    // and whose size is UnencryptedContentSize.
    let inner = cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
        .unwrap()
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .unwrap();
    assert_eq!(Sha256::digest(&inner).as_slice(), digest.as_slice());
    assert_eq!(
        element(&detection, "UnencryptedContentSize"),
        inner.len().to_string()
    );

    // The inner zip holds the setup folder.
    let mut inner_zip = zip::ZipArchive::new(Cursor::new(inner)).unwrap();
    for (path, bytes) in &files {
        assert_eq!(&entry(&mut inner_zip, path).0, bytes);
    }
}
