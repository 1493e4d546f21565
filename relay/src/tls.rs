//! TLS: the relay's certificate (configured, or self-signed once in the data
//! directory) and the rustls server configuration.
//!
//! Clients pin the SHA-256 fingerprint of the certificate's DER, so a self-signed
//! certificate is as good as any; it is made once and kept, or the pin would break.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::error::{Error, Result};

/// File names of the self-signed certificate in the data directory.
const SELF_CERT: &str = "tls-cert.der";
const SELF_KEY: &str = "tls-key.der";

/// The server's TLS identity.
pub struct TlsIdentity {
    /// rustls configuration, shared by every connection.
    pub server_config: Arc<ServerConfig>,
    /// Lower-case hex SHA-256 of the leaf certificate's DER.
    pub fingerprint: String,
}

/// Loads the configured certificate, or the self-signed one (making it on first start).
pub fn load_or_create(config: &Config) -> Result<TlsIdentity> {
    let (chain, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => load_pem(cert, key)?,
        _ => load_or_create_self_signed(&config.data_dir)?,
    };
    let leaf = chain
        .first()
        .ok_or_else(|| Error::Tls("empty certificate chain".into()))?;
    let fingerprint = hex::encode(Sha256::digest(leaf.as_ref()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // Tickets cost memory per connection and buy little: our clients stay connected.
    server_config.send_tls13_tickets = 0;
    server_config.alpn_protocols = Vec::new();
    Ok(TlsIdentity {
        server_config: Arc::new(server_config),
        fingerprint,
    })
}

/// The SHA-256 fingerprint (lower-case hex) of a DER certificate.
pub fn fingerprint_of(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn load_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Error::Tls(format!("certificate file: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("certificate file: {e}")))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Tls(format!("key file: {e}")))?;
    Ok((chain, key))
}

fn load_or_create_self_signed(
    dir: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let cert_path = dir.join(SELF_CERT);
    let key_path = dir.join(SELF_KEY);
    if !cert_path.exists() {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "rankfile-relay".to_owned(),
        ])
        .map_err(|e| Error::Tls(format!("self-signed certificate: {e}")))?;
        let key_der = Zeroizing::new(made.key_pair.serialize_der());
        write_private(&key_path, &key_der)?;
        write_private(&cert_path, made.cert.der())?;
        tracing::info!("made a self-signed TLS certificate");
    }
    let cert = fs::read(&cert_path)?;
    let key = Zeroizing::new(fs::read(&key_path)?);
    Ok((
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
    ))
}

/// Writes a file readable by the owner only, synced, via a temporary name so a
/// crash never leaves half a key.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::local(dir.path());
        let a = load_or_create(&config).expect("first");
        let b = load_or_create(&config).expect("second");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SELF_KEY))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
