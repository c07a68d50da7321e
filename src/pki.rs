//! The API's TLS: a CA made once per data dir, and a serving certificate signed by it at every start (so
//! the names it covers follow the address the API binds). kubectl only sends credentials over TLS, so
//! the token in the kubeconfig needs this; the kubeconfig carries the CA to trust.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA certificate (PEM, for kubeconfigs) and the TLS configuration of the API.
pub struct Pki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "glasshouse-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

/// Loads the data dir's CA (creating it on first start) and issues a serving certificate for `localhost`,
/// the loopback addresses, this host's name and `bind_ip` when it is a specific address.
pub fn load_or_create(data_dir: &Path, bind_ip: IpAddr) -> anyhow::Result<Pki> {
    let dir = data_dir.join("pki");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join("ca.key");
    let cert_path = dir.join("ca.crt");
    let (ca_key, ca_pem) = match (
        std::fs::read_to_string(&key_path),
        std::fs::read_to_string(&cert_path),
    ) {
        (Ok(key), Ok(cert)) => (KeyPair::from_pem(&key).context("reading the CA key")?, cert),
        _ => {
            let key = KeyPair::generate().context("generating the CA key")?;
            let cert = ca_params()
                .self_signed(&key)
                .context("signing the CA certificate")?;
            crate::kubeconfig::write_private(&key_path, key.serialize_pem().as_bytes())?;
            crate::kubeconfig::write_private(&cert_path, cert.pem().as_bytes())?;
            (key, cert.pem())
        }
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut names: Vec<SanType> = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
    ];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname")
        && let Ok(host) = host.trim().to_string().try_into()
    {
        names.push(SanType::DnsName(host));
    }
    if !bind_ip.is_unspecified() && !bind_ip.is_loopback() {
        names.push(SanType::IpAddress(bind_ip));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "glasshouse-apiserver");
    params.subject_alt_names = names;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let key = KeyPair::generate().context("generating the serving key")?;
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the serving certificate")?;

    let chain = vec![
        cert.der().clone(),
        CertificateDer::from_pem_slice(ca_pem.as_bytes())?,
    ];
    let private = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Pki {
        ca_pem,
        server: Arc::new(server),
    })
}
