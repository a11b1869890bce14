//! The RootCATrustedCertificates CSP: `./Device/Vendor/MSFT/RootCATrustedCertificates/
//! <store>/<CertHash>/EncodedCertificate` adds a certificate (base64 DER) to one of the
//! device's certificate stores: Root, CA, TrustedPublisher, TrustedPeople, and
//! UntrustedCertificates (the Disallowed store). A store is the registry key
//! `HKLM\SOFTWARE\Microsoft\SystemCertificates\<store>\Certificates\<thumbprint>` with
//! the DER in `Blob` (Windows keeps extra properties there; Tenantless keeps the
//! certificate alone). The CertHash must be the certificate's SHA-1 thumbprint.
//! Read-only leaves: IssuedBy, IssuedTo, ValidFrom, ValidTo.

use base64::Engine;
use syncml::dm::{Item, StatusCode};

use super::{Ctx, Value};
use crate::device::RegValue;

/// The CSP's root, normalized (see [`super::normalize`]).
pub const ROOT: &str = "Vendor/MSFT/RootCATrustedCertificates";

/// The registry store behind a CSP store name.
fn store_key(store: &str) -> Option<String> {
    let name = match store {
        "Root" => "ROOT",
        "CA" => "CA",
        "TrustedPublisher" => "TrustedPublisher",
        "TrustedPeople" => "TrustedPeople",
        "UntrustedCertificates" => "Disallowed",
        _ => return None,
    };
    Some(format!(
        r"HKLM\SOFTWARE\Microsoft\SystemCertificates\{name}\Certificates"
    ))
}

/// The path below the CSP root split into store, hash and leaf.
fn parts(rest: &str) -> (&str, Option<&str>, Option<&str>) {
    let mut it = rest.split('/').filter(|s| !s.is_empty());
    let store = it.next().unwrap_or_default();
    (store, it.next(), it.next())
}

fn blob(ctx: &Ctx, key: &str) -> Option<Vec<u8>> {
    match ctx.device.registry.get(key, "Blob") {
        Some(RegValue::Binary(b)) => Some(b.clone()),
        _ => None,
    }
}

/// Get.
pub fn get(ctx: &mut Ctx, rest: &str) -> Result<Value, StatusCode> {
    if rest.is_empty() {
        return Ok(Value::node(
            &[
                "Root",
                "CA",
                "TrustedPublisher",
                "TrustedPeople",
                "UntrustedCertificates",
            ]
            .map(String::from),
        ));
    }
    let (store, hash, leaf) = parts(rest);
    let base = store_key(store).ok_or(StatusCode::NotFound)?;
    let Some(hash) = hash else {
        return Ok(Value::node(&ctx.device.registry.subkeys(&base)));
    };
    let der = blob(ctx, &format!(r"{base}\{hash}")).ok_or(StatusCode::NotFound)?;
    let Some(leaf) = leaf else {
        return Ok(Value::node(
            &[
                "EncodedCertificate",
                "IssuedBy",
                "IssuedTo",
                "ValidFrom",
                "ValidTo",
            ]
            .map(String::from),
        ));
    };
    if leaf == "EncodedCertificate" {
        return Ok(Value::chr(
            base64::engine::general_purpose::STANDARD.encode(&der),
        ));
    }
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|_| StatusCode::CommandFailed)?;
    let time = |t: x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    match leaf {
        "IssuedBy" => Ok(Value::chr(cert.issuer().to_string())),
        "IssuedTo" => Ok(Value::chr(cert.subject().to_string())),
        "ValidFrom" => Ok(Value::chr(time(cert.validity().not_before))),
        "ValidTo" => Ok(Value::chr(time(cert.validity().not_after))),
        _ => Err(StatusCode::NotFound),
    }
}

/// Add (or Replace, with `replace`) of `<store>/<hash>/EncodedCertificate`.
pub fn put(ctx: &mut Ctx, rest: &str, item: &Item, replace: bool) -> StatusCode {
    let (store, Some(hash), Some("EncodedCertificate")) = parts(rest) else {
        return StatusCode::CommandNotAllowed;
    };
    let Some(base) = store_key(store) else {
        return StatusCode::NotFound;
    };
    let data = item.data_text().unwrap_or_default();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(data.trim()) else {
        return StatusCode::BadRequest;
    };
    if x509_parser::parse_x509_certificate(&der).is_err()
        || !crate::ime::signature::thumbprint(&der).eq_ignore_ascii_case(hash)
    {
        return StatusCode::BadRequest;
    }
    let key = format!(r"{base}\{}", hash.to_ascii_uppercase());
    if !replace && ctx.device.registry.key_exists(&key) {
        return StatusCode::AlreadyExists;
    }
    ctx.device.registry.set(&key, "Blob", RegValue::Binary(der));
    StatusCode::Ok
}

/// Delete of `<store>/<hash>`.
pub fn delete(ctx: &mut Ctx, rest: &str) -> StatusCode {
    let (store, Some(hash), None) = parts(rest) else {
        return StatusCode::CommandNotAllowed;
    };
    let Some(base) = store_key(store) else {
        return StatusCode::NotFound;
    };
    if ctx.device.registry.delete_key(&format!(r"{base}\{hash}")) {
        StatusCode::Ok
    } else {
        StatusCode::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Device, DeviceProfile};
    use crate::state::AgentState;
    use syncml::dm::Data;

    fn item(data: &str) -> Item {
        let mut item = Item::target("x");
        item.data = Some(Data::Text(data.into()));
        item
    }

    #[test]
    fn a_trusted_publisher_is_added_read_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = Device::create(dir.path(), DeviceProfile::default(), [7; 32]).unwrap();
        let mut state = AgentState::default();
        let mut ctx = Ctx {
            device: &mut device,
            state: &mut state,
            now: chrono::DateTime::UNIX_EPOCH,
        };
        let publisher = crate::ime::signature::Publisher::create(
            "Contoso Scripts",
            chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000),
        )
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(publisher.cert_der());
        let thumb = publisher.thumbprint();
        let leaf = format!("TrustedPublisher/{thumb}/EncodedCertificate");

        assert_eq!(
            put(
                &mut ctx,
                &format!("TrustedPublisher/{}/EncodedCertificate", "00".repeat(20)),
                &item(&b64),
                false
            ),
            StatusCode::BadRequest,
            "the hash must be the certificate's"
        );
        assert_eq!(
            put(&mut ctx, &leaf, &item("not base64!"), false),
            StatusCode::BadRequest
        );
        assert_eq!(
            put(
                &mut ctx,
                "Nowhere/AB/EncodedCertificate",
                &item(&b64),
                false
            ),
            StatusCode::NotFound
        );
        assert_eq!(put(&mut ctx, &leaf, &item(&b64), false), StatusCode::Ok);
        assert_eq!(
            put(&mut ctx, &leaf, &item(&b64), false),
            StatusCode::AlreadyExists
        );
        assert_eq!(put(&mut ctx, &leaf, &item(&b64), true), StatusCode::Ok);
        assert!(crate::ime::signature::is_trusted(ctx.device, &thumb));

        assert_eq!(get(&mut ctx, &leaf).map(|v| v.data), Ok(b64));
        assert_eq!(
            get(&mut ctx, &format!("TrustedPublisher/{thumb}/IssuedTo")).map(|v| v.data),
            Ok("CN=Contoso Scripts".into())
        );
        assert_eq!(
            get(&mut ctx, "TrustedPublisher").map(|v| v.data),
            Ok(thumb.clone())
        );

        assert_eq!(
            delete(&mut ctx, &format!("TrustedPublisher/{thumb}")),
            StatusCode::Ok
        );
        assert_eq!(get(&mut ctx, &leaf), Err(StatusCode::NotFound));
        assert!(!crate::ime::signature::is_trusted(ctx.device, &thumb));
    }
}
