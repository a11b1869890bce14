//! The `wap-provisioningdoc` returned by enrollment: a generic tree of characteristics
//! and parms, and the typed view of the characteristics an MDM enrollment carries.

use crate::error::{Error, Result};
use crate::xml::{self, Element, XmlWriter};

/// `wap-provisioningdoc`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvisioningDoc {
    /// `version` (`1.1`).
    pub version: String,
    /// Top-level characteristics, in order.
    pub characteristics: Vec<Characteristic>,
}

/// `characteristic type="..."` with its parms and nested characteristics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Characteristic {
    /// `type`.
    pub type_: String,
    /// `parm`s, in order.
    pub parms: Vec<Parm>,
    /// Nested characteristics, in order.
    pub children: Vec<Characteristic>,
}

/// `parm name="..." value="..." datatype="..."`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parm {
    /// `name`.
    pub name: String,
    /// `value`, absent for flags such as `BACKCOMPATRETRYDISABLED`.
    pub value: Option<String>,
    /// `datatype`, e.g. `integer`, `boolean`.
    pub datatype: Option<String>,
}

impl Parm {
    /// A parm with a value.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Parm {
            name: name.into(),
            value: Some(value.into()),
            datatype: None,
        }
    }

    /// A parm with a value and a datatype.
    pub fn typed(name: &str, value: impl ToString, datatype: &str) -> Self {
        Parm {
            name: name.into(),
            value: Some(value.to_string()),
            datatype: Some(datatype.into()),
        }
    }
}

impl Characteristic {
    /// An empty characteristic of this type.
    pub fn new(type_: impl Into<String>) -> Self {
        Characteristic {
            type_: type_.into(),
            ..Characteristic::default()
        }
    }

    /// The first nested characteristic of this type.
    pub fn child(&self, type_: &str) -> Option<&Characteristic> {
        self.children.iter().find(|c| c.type_ == type_)
    }

    /// A parm's value by name.
    pub fn parm(&self, name: &str) -> Option<&str> {
        self.parms
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_deref())
    }

    /// True when a parm of this name is present, with or without a value.
    pub fn has_parm(&self, name: &str) -> bool {
        self.parms.iter().any(|p| p.name == name)
    }

    fn require_parm(&self, name: &str) -> Result<&str> {
        self.parm(name).ok_or_else(|| {
            Error::missing(
                &format!("characteristic {}", self.type_),
                &format!("parm {name}"),
            )
        })
    }

    fn read(el: &Element) -> Characteristic {
        let mut c = Characteristic::new(el.attr("type").unwrap_or_default());
        for child in el.elements() {
            match child.name.as_str() {
                "parm" => c.parms.push(Parm {
                    name: child.attr("name").unwrap_or_default().to_owned(),
                    value: child.attr("value").map(str::to_owned),
                    datatype: child.attr("datatype").map(str::to_owned),
                }),
                "characteristic" => c.children.push(Characteristic::read(child)),
                _ => {}
            }
        }
        c
    }

    fn write(&self, w: &mut XmlWriter) {
        if self.parms.is_empty() && self.children.is_empty() {
            w.empty("characteristic", &[("type", &self.type_)]);
            return;
        }
        w.open("characteristic", &[("type", &self.type_)]);
        for p in &self.parms {
            let mut attrs = vec![("name", p.name.as_str())];
            if let Some(v) = &p.value {
                attrs.push(("value", v));
            }
            if let Some(d) = &p.datatype {
                attrs.push(("datatype", d));
            }
            w.empty("parm", &attrs);
        }
        for c in &self.children {
            c.write(w);
        }
        w.close("characteristic");
    }
}

impl ProvisioningDoc {
    /// Reads a provisioning document.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let text = xml::decode(bytes)?;
        let root = xml::parse(&text)?;
        if root.name != "wap-provisioningdoc" {
            return Err(Error::Unexpected {
                expected: "wap-provisioningdoc".into(),
                found: root.name,
            });
        }
        Ok(ProvisioningDoc {
            version: root.attr("version").unwrap_or_default().to_owned(),
            characteristics: root
                .children_named("characteristic")
                .map(Characteristic::read)
                .collect(),
        })
    }

    /// Writes the document as XML text.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.open("wap-provisioningdoc", &[("version", &self.version)]);
        for c in &self.characteristics {
            c.write(&mut w);
        }
        w.close("wap-provisioningdoc");
        w.finish()
    }

    /// Top-level characteristics of this type.
    pub fn all(&self, type_: &str) -> impl Iterator<Item = &Characteristic> {
        let type_ = type_.to_owned();
        self.characteristics
            .iter()
            .filter(move |c| c.type_ == type_)
    }
}

/// The certificate store that holds the device's client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStore {
    /// `My/User`: a user enrollment (EnrollmentType Full).
    User,
    /// `My/System`: a device enrollment (EnrollmentType Device).
    System,
}

impl CertStore {
    fn name(self) -> &'static str {
        match self {
            CertStore::User => "User",
            CertStore::System => "System",
        }
    }
}

/// A certificate in a store: its SHA-1 thumbprint (upper-case hex) and base64 DER.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredCert {
    /// The characteristic's type: the SHA-1 thumbprint.
    pub thumbprint: String,
    /// `EncodedCertificate`: base64 DER.
    pub encoded: String,
}

/// `My/WSTEP/Renew` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenewSettings {
    /// `ROBOSupport`.
    pub robo_support: bool,
    /// `RenewPeriod`, days before expiry.
    pub renew_period: u32,
    /// `RetryInterval`, days.
    pub retry_interval: u32,
}

/// An `APPAUTH` block of the w7 APPLICATION.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppAuth {
    /// `AAUTHLEVEL`: `CLIENT` (the device authenticates) or `APPSRV` (the server does).
    pub level: String,
    /// `AAUTHTYPE`: `DIGEST`.
    pub auth_type: String,
    /// `AAUTHNAME`.
    pub name: String,
    /// `AAUTHSECRET`.
    pub secret: String,
    /// `AAUTHDATA`: a base64 nonce (must not be empty for Windows 11).
    pub data: String,
}

/// `DMClient/Provider/<id>/Poll`: the device's check-in schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PollSettings {
    /// `NumberOfFirstRetries`.
    pub number_of_first_retries: u32,
    /// `IntervalForFirstSetOfRetries`, minutes.
    pub interval_for_first_set_of_retries: u32,
    /// `NumberOfSecondRetries`.
    pub number_of_second_retries: u32,
    /// `IntervalForSecondSetOfRetries`, minutes.
    pub interval_for_second_set_of_retries: u32,
    /// `NumberOfRemainingScheduledRetries` (0 = forever).
    pub number_of_remaining_scheduled_retries: u32,
    /// `IntervalForRemainingScheduledRetries`, minutes.
    pub interval_for_remaining_scheduled_retries: u32,
    /// `PollOnLogin`.
    pub poll_on_login: bool,
}

/// What an MDM enrollment provisions, read from or written to a [`ProvisioningDoc`]:
/// exactly the characteristics Windows expects, no others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnrollmentProvisioning {
    /// `CertificateStore/Root/System/<thumbprint>`: the CA.
    pub root_ca: StoredCert,
    /// `CertificateStore/My/<store>/<thumbprint>`: the device's certificate.
    pub client_cert: StoredCert,
    /// Which store the client certificate goes to.
    pub client_store: Option<CertStore>,
    /// `CertificateStore/My/WSTEP/Renew`.
    pub renew: Option<RenewSettings>,
    /// `APPLICATION/PROVIDER-ID` (also the DMClient provider id).
    pub provider_id: String,
    /// `APPLICATION/NAME`.
    pub name: String,
    /// `APPLICATION/ADDR`: the management URL.
    pub addr: String,
    /// `APPLICATION/SSLCLIENTCERTSEARCHCRITERIA`.
    pub ssl_client_cert_search_criteria: String,
    /// `APPLICATION/CONNRETRYFREQ`.
    pub conn_retry_freq: u32,
    /// `APPLICATION/INITIALBACKOFFTIME`, ms.
    pub initial_backoff_time: u32,
    /// `APPLICATION/MAXBACKOFFTIME`, ms.
    pub max_backoff_time: u32,
    /// The `CLIENT` APPAUTH block.
    pub client_auth: AppAuth,
    /// The `APPSRV` APPAUTH block.
    pub server_auth: AppAuth,
    /// `DMClient/Provider/<id>/EntDMID`.
    pub entdmid: String,
    /// `DMClient/Provider/<id>/Poll`.
    pub poll: PollSettings,
}

impl PollSettings {
    /// The names of the numeric settings, in the order Windows lists them.
    pub const NUMBERS: [&'static str; 6] = [
        "NumberOfFirstRetries",
        "IntervalForFirstSetOfRetries",
        "NumberOfSecondRetries",
        "IntervalForSecondSetOfRetries",
        "NumberOfRemainingScheduledRetries",
        "IntervalForRemainingScheduledRetries",
    ];

    /// The numeric settings with their names (see [`PollSettings::NUMBERS`]).
    pub fn numbers(&self) -> [(&'static str, u32); 6] {
        let [a, b, c, d, e, f] = Self::NUMBERS;
        [
            (a, self.number_of_first_retries),
            (b, self.interval_for_first_set_of_retries),
            (c, self.number_of_second_retries),
            (d, self.interval_for_second_set_of_retries),
            (e, self.number_of_remaining_scheduled_retries),
            (f, self.interval_for_remaining_scheduled_retries),
        ]
    }

    /// A numeric setting by name, to change it.
    pub fn number_mut(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "NumberOfFirstRetries" => &mut self.number_of_first_retries,
            "IntervalForFirstSetOfRetries" => &mut self.interval_for_first_set_of_retries,
            "NumberOfSecondRetries" => &mut self.number_of_second_retries,
            "IntervalForSecondSetOfRetries" => &mut self.interval_for_second_set_of_retries,
            "NumberOfRemainingScheduledRetries" => &mut self.number_of_remaining_scheduled_retries,
            "IntervalForRemainingScheduledRetries" => {
                &mut self.interval_for_remaining_scheduled_retries
            }
            _ => return None,
        })
    }
}

impl EnrollmentProvisioning {
    /// The provisioning document for this enrollment.
    pub fn to_doc(&self) -> ProvisioningDoc {
        let cert = |c: &StoredCert| Characteristic {
            type_: c.thumbprint.clone(),
            parms: vec![Parm::new("EncodedCertificate", c.encoded.clone())],
            children: vec![],
        };
        let root_store = nest(&["CertificateStore", "Root", "System"], cert(&self.root_ca));

        let store = self.client_store.unwrap_or(CertStore::User);
        let mut my_store = Characteristic::new(store.name());
        my_store.children.push(cert(&self.client_cert));
        my_store
            .children
            .push(Characteristic::new("PrivateKeyContainer"));
        let mut my = Characteristic::new("My");
        my.children.push(my_store);
        if let Some(r) = &self.renew {
            let mut renew = Characteristic::new("Renew");
            renew.parms = vec![
                Parm::typed("ROBOSupport", r.robo_support, "boolean"),
                Parm::typed("RenewPeriod", r.renew_period, "integer"),
                Parm::typed("RetryInterval", r.retry_interval, "integer"),
            ];
            let mut wstep = Characteristic::new("WSTEP");
            wstep.children.push(renew);
            my.children.push(wstep);
        }
        let mut my_root = Characteristic::new("CertificateStore");
        my_root.children.push(my);

        let mut app = Characteristic::new("APPLICATION");
        app.parms = vec![
            Parm::new("APPID", "w7"),
            Parm::new("PROVIDER-ID", self.provider_id.clone()),
            Parm::new("NAME", self.name.clone()),
            Parm::new("ADDR", self.addr.clone()),
            Parm::new("CONNRETRYFREQ", self.conn_retry_freq.to_string()),
            Parm::new("INITIALBACKOFFTIME", self.initial_backoff_time.to_string()),
            Parm::new("MAXBACKOFFTIME", self.max_backoff_time.to_string()),
            Parm {
                name: "BACKCOMPATRETRYDISABLED".into(),
                ..Parm::default()
            },
            Parm::new("DEFAULTENCODING", "application/vnd.syncml.dm+xml"),
            Parm::new(
                "SSLCLIENTCERTSEARCHCRITERIA",
                self.ssl_client_cert_search_criteria.clone(),
            ),
        ];
        for auth in [&self.client_auth, &self.server_auth] {
            let mut c = Characteristic::new("APPAUTH");
            c.parms = vec![
                Parm::new("AAUTHLEVEL", auth.level.clone()),
                Parm::new("AAUTHTYPE", auth.auth_type.clone()),
                Parm::new("AAUTHNAME", auth.name.clone()),
                Parm::new("AAUTHSECRET", auth.secret.clone()),
                Parm::new("AAUTHDATA", auth.data.clone()),
            ];
            app.children.push(c);
        }

        let p = &self.poll;
        let mut poll = Characteristic::new("Poll");
        for (name, value) in p.numbers() {
            poll.parms.push(Parm::typed(name, value, "integer"));
        }
        poll.parms
            .push(Parm::typed("PollOnLogin", p.poll_on_login, "boolean"));
        let mut provider = Characteristic::new(self.provider_id.clone());
        provider
            .parms
            .push(Parm::new("EntDMID", self.entdmid.clone()));
        provider.children.push(poll);
        let dmclient = nest(&["DMClient", "Provider"], provider);

        ProvisioningDoc {
            version: "1.1".into(),
            characteristics: vec![root_store, my_root, app, dmclient],
        }
    }

    /// Reads the enrollment out of a provisioning document.
    pub fn from_doc(doc: &ProvisioningDoc) -> Result<Self> {
        let mut out = EnrollmentProvisioning::default();
        for store in doc.all("CertificateStore") {
            if let Some(root) = store.child("Root").and_then(|r| r.child("System")) {
                out.root_ca = read_cert(root)?;
            }
            if let Some(my) = store.child("My") {
                for (which, name) in [(CertStore::User, "User"), (CertStore::System, "System")] {
                    if let Some(s) = my.child(name) {
                        out.client_cert = read_cert(s)?;
                        out.client_store = Some(which);
                    }
                }
                if let Some(renew) = my.child("WSTEP").and_then(|w| w.child("Renew")) {
                    out.renew = Some(RenewSettings {
                        robo_support: renew
                            .parm("ROBOSupport")
                            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                        renew_period: num(renew, "RenewPeriod")?,
                        retry_interval: num(renew, "RetryInterval")?,
                    });
                }
            }
        }
        let app = doc
            .all("APPLICATION")
            .find(|a| a.parm("APPID") == Some("w7"))
            .ok_or_else(|| {
                Error::missing(
                    "wap-provisioningdoc",
                    "characteristic APPLICATION (APPID w7)",
                )
            })?;
        out.provider_id = app.require_parm("PROVIDER-ID")?.to_owned();
        out.name = app.parm("NAME").unwrap_or_default().to_owned();
        out.addr = app.require_parm("ADDR")?.to_owned();
        out.ssl_client_cert_search_criteria = app
            .parm("SSLCLIENTCERTSEARCHCRITERIA")
            .unwrap_or_default()
            .to_owned();
        out.conn_retry_freq = num(app, "CONNRETRYFREQ")?;
        out.initial_backoff_time = num(app, "INITIALBACKOFFTIME")?;
        out.max_backoff_time = num(app, "MAXBACKOFFTIME")?;
        for auth in app.children.iter().filter(|c| c.type_ == "APPAUTH") {
            let block = AppAuth {
                level: auth.parm("AAUTHLEVEL").unwrap_or_default().to_owned(),
                auth_type: auth.parm("AAUTHTYPE").unwrap_or_default().to_owned(),
                name: auth.parm("AAUTHNAME").unwrap_or_default().to_owned(),
                secret: auth.parm("AAUTHSECRET").unwrap_or_default().to_owned(),
                data: auth.parm("AAUTHDATA").unwrap_or_default().to_owned(),
            };
            match block.level.as_str() {
                "CLIENT" => out.client_auth = block,
                "APPSRV" => out.server_auth = block,
                _ => {}
            }
        }
        let provider = doc
            .all("DMClient")
            .filter_map(|d| d.child("Provider"))
            .find_map(|p| p.child(&out.provider_id));
        if let Some(provider) = provider {
            out.entdmid = provider.parm("EntDMID").unwrap_or_default().to_owned();
            if let Some(poll) = provider.child("Poll") {
                out.poll.poll_on_login = poll
                    .parm("PollOnLogin")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                for name in PollSettings::NUMBERS {
                    if let Some(slot) = out.poll.number_mut(name) {
                        *slot = num(poll, name)?;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `types[0]/types[1]/.../inner`, each a characteristic of the next.
fn nest(types: &[&str], inner: Characteristic) -> Characteristic {
    types.iter().rev().fold(inner, |acc, t| Characteristic {
        type_: (*t).to_owned(),
        parms: vec![],
        children: vec![acc],
    })
}

fn read_cert(store: &Characteristic) -> Result<StoredCert> {
    let cert = store
        .children
        .iter()
        .find(|c| c.has_parm("EncodedCertificate"))
        .ok_or_else(|| {
            Error::missing(&format!("characteristic {}", store.type_), "a certificate")
        })?;
    Ok(StoredCert {
        thumbprint: cert.type_.clone(),
        encoded: cert
            .parm("EncodedCertificate")
            .unwrap_or_default()
            .to_owned(),
    })
}

fn num(c: &Characteristic, name: &str) -> Result<u32> {
    match c.parm(name) {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| Error::invalid(&format!("parm {name}"), v, "not a whole number")),
    }
}
