//! `MsiInstallJob`: the document an `Exec` on EnterpriseDesktopAppManagement's
//! `DownloadInstall` node carries.

use crate::error::{Error, Result};
use crate::xml::{self, Element, XmlWriter};

/// What to download, how to check it and how to install it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MsiInstallJob {
    /// `id`: the product code, `{GUID}`.
    pub id: String,
    /// `Product/@Version`.
    pub product_version: String,
    /// `Download/ContentURLList/ContentURL`s, tried in order.
    pub content_urls: Vec<String>,
    /// `Validation/FileHash`: SHA-256 of the MSI, hex.
    pub file_hash: String,
    /// `Enforcement/CommandLine`: extra msiexec arguments.
    pub command_line: String,
    /// `Enforcement/TimeOut`, minutes (0: none).
    pub timeout_minutes: u32,
    /// `Enforcement/RetryCount`.
    pub retry_count: u32,
    /// `Enforcement/RetryInterval`, minutes.
    pub retry_interval_minutes: u32,
}

impl MsiInstallJob {
    /// Reads a job from its XML (the `Data` of the Exec, unescaped).
    pub fn parse(text: &str) -> Result<Self> {
        let root = xml::parse(text)?;
        if root.name != "MsiInstallJob" {
            return Err(Error::Unexpected {
                expected: "MsiInstallJob".into(),
                found: root.name,
            });
        }
        let product = root.require("Product")?;
        let enforcement = product.child("Enforcement");
        Ok(MsiInstallJob {
            id: root.attr("id").unwrap_or_default().trim().to_owned(),
            product_version: product
                .attr("Version")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            content_urls: product
                .child("Download")
                .and_then(|d| d.child("ContentURLList"))
                .map(|l| {
                    l.children_named("ContentURL")
                        .map(|u| u.text().trim().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            file_hash: product
                .child("Validation")
                .and_then(|v| v.child_text("FileHash"))
                .unwrap_or_default(),
            command_line: enforcement
                .and_then(|e| e.child_text("CommandLine"))
                .unwrap_or_default(),
            timeout_minutes: minutes(enforcement, "TimeOut")?,
            retry_count: minutes(enforcement, "RetryCount")?,
            retry_interval_minutes: minutes(enforcement, "RetryInterval")?,
        })
    }

    /// Writes the job as XML text.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.open("MsiInstallJob", &[("id", &self.id)])
            .open("Product", &[("Version", &self.product_version)])
            .open("Download", &[])
            .open("ContentURLList", &[]);
        for url in &self.content_urls {
            w.leaf("ContentURL", &[], url);
        }
        w.close("ContentURLList")
            .close("Download")
            .open("Validation", &[])
            .leaf("FileHash", &[], &self.file_hash)
            .close("Validation")
            .open("Enforcement", &[])
            .leaf("CommandLine", &[], &self.command_line)
            .leaf("TimeOut", &[], &self.timeout_minutes.to_string())
            .leaf("RetryCount", &[], &self.retry_count.to_string())
            .leaf(
                "RetryInterval",
                &[],
                &self.retry_interval_minutes.to_string(),
            )
            .close("Enforcement")
            .close("Product")
            .close("MsiInstallJob");
        w.finish()
    }
}

fn minutes(enforcement: Option<&Element>, name: &str) -> Result<u32> {
    match enforcement.and_then(|e| e.child_value(name)) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| Error::invalid(name, &v, "not a whole number")),
    }
}
