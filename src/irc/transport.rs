//! Bytes in and out: TCP with optional TLS (rustls), lines framed on `\n`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::config::Config;

/// Longest line accepted from the server: 8191 bytes of tags plus a 512-byte message, with
/// room to spare. Longer lines are discarded whole.
pub const MAX_LINE: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connected byte stream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connecting to {0} timed out after {1} s")]
    Timeout(String, u64),
    #[error("TLS set-up failed: {0}")]
    TlsConfig(String),
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake { addr: String, source: io::Error },
}

/// Connects to the configured server, with TLS when configured.
/// Acknowledges what was read at once, on the connection's TCP socket.
///
/// After a line the bot does not answer (a PONG), the kernel waits up to 40 ms to send its
/// ACK; a server that does not set TCP_NODELAY (ngIRCd) holds its next small write until that
/// ACK comes (Nagle), so the next command relayed to lever would be 40 ms late.
pub struct QuickAck(Option<socket2::Socket>);

impl QuickAck {
    pub fn now(&self) {
        #[cfg(target_os = "linux")]
        if let Some(socket) = &self.0 {
            let _ = socket.set_tcp_quickack(true);
        }
    }
}

pub async fn connect(
    cfg: &Config,
    route: Route,
) -> Result<(Box<dyn Stream>, QuickAck), TransportError> {
    let addr = format!("{}:{}", cfg.irc.server, route.port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| TransportError::Timeout(addr.clone(), CONNECT_TIMEOUT.as_secs()))?
        .map_err(|source| TransportError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let quick_ack = QuickAck(socket2::SockRef::from(&tcp).try_clone().ok());
    if !route.tls {
        return Ok((Box::new(tcp), quick_ack));
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(cfg)?));
    let name = ServerName::try_from(cfg.irc.server.clone())
        .map_err(|e| TransportError::TlsConfig(format!("bad server name: {e}")))?;
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| TransportError::Timeout(addr.clone(), CONNECT_TIMEOUT.as_secs()))?
        .map_err(|source| TransportError::Handshake { addr, source })?;
    Ok((Box::new(tls), quick_ack))
}

/// How lever trusts the server (a pinned certificate, the roots, or nothing), and the client
/// certificate it presents, if any.
/// How to reach the server: the configured port and TLS, or TLS as an STS policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub tls: bool,
    pub port: u16,
}

impl Route {
    pub fn configured(cfg: &Config) -> Route {
        Route {
            tls: cfg.irc.tls,
            port: cfg.port(),
        }
    }
}

fn tls_config(cfg: &Config) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::TlsConfig(e.to_string()))?;
    let trusting = if let Some(pin) = cfg.irc.tls_pin() {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                sha256: pin,
                signatures: NoVerify(provider),
            }))
    } else if !cfg.irc.tls_verify {
        tracing::warn!("irc.tls_verify = false: the server's certificate is not checked");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        builder.with_root_certificates(roots(cfg)?)
    };
    match (&cfg.irc.client_cert, &cfg.irc.client_key) {
        (Some(cert), Some(key)) => {
            let (cert, key) = (cfg.resolve(cert), cfg.resolve(key));
            let chain = CertificateDer::pem_file_iter(&cert)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    TransportError::TlsConfig(format!("irc.client_cert {}: {e}", cert.display()))
                })?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).map_err(|e| {
                TransportError::TlsConfig(format!("irc.client_key {}: {e}", key.display()))
            })?;
            if let Some(fingerprint) = client_cert_fingerprint(cfg) {
                // What services know lever by (CertFP, SASL EXTERNAL).
                tracing::info!(sha256 = %fingerprint, "presenting the client certificate");
            }
            trusting.with_client_auth_cert(chain, key).map_err(|e| {
                TransportError::TlsConfig(format!("irc.client_cert and irc.client_key: {e}"))
            })
        }
        _ => Ok(trusting.with_no_client_auth()),
    }
}

/// The SHA-256 fingerprint (hex) of `irc.client_cert`'s certificate: what services know it by.
pub fn client_cert_fingerprint(cfg: &Config) -> Option<String> {
    let path = cfg.resolve(cfg.irc.client_cert.as_ref()?);
    let cert = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    Some(hex::encode(sha2::Sha256::digest(cert.as_ref())))
}

/// The roots a server's certificate must chain to: `irc.tls_ca_file`'s, else the web's.
fn roots(cfg: &Config) -> Result<rustls::RootCertStore, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.irc.tls_ca_file {
        Some(file) => {
            let path = cfg.resolve(file);
            let certs = CertificateDer::pem_file_iter(&path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    TransportError::TlsConfig(format!("irc.tls_ca_file {}: {e}", path.display()))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TransportError::TlsConfig(format!(
                    "irc.tls_ca_file {}: no usable certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// Trusts exactly one certificate, by its SHA-256 fingerprint (`irc.tls_fingerprint`): a
/// private network's self-signed server, without turning verification off. The handshake's
/// signatures are still checked.
#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    signatures: NoVerify,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if subtle::ConstantTimeEq::ct_eq(&seen[..], &self.sha256[..]).into() {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the server's certificate is sha256:{}, not the one irc.tls_fingerprint pins",
            hex::encode(seen)
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

/// Accepts any certificate (`tls_verify = false`), still checking handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Frames server bytes into lines: split on `\n`, drop a trailing `\r`, decode UTF-8 lossily
/// (servers relay whatever bytes clients send), and discard lines over [`MAX_LINE`] whole.
#[derive(Debug, Default)]
pub struct LineDecoder {
    /// Inside an over-long line: drop bytes until its end.
    discarding: bool,
}

impl Decoder for LineDecoder {
    type Item = String;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, io::Error> {
        loop {
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                if buf.len() > MAX_LINE {
                    self.discarding = true;
                    buf.clear();
                }
                return Ok(None);
            };
            let line = buf.split_to(end + 1);
            if std::mem::take(&mut self.discarding) {
                tracing::warn!("discarded an over-long line from the server");
                continue;
            }
            let mut line = &line[..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if line.is_empty() {
                continue;
            }
            return Ok(Some(String::from_utf8_lossy(line).into_owned()));
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, io::Error> {
        let line = self.decode(buf)?;
        if line.is_none() {
            buf.advance(buf.len());
        }
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Vec<String> {
        let mut decoder = LineDecoder::default();
        let mut buf = BytesMut::from(input);
        std::iter::from_fn(|| decoder.decode(&mut buf).unwrap()).collect()
    }

    #[test]
    fn splits_lines_and_tolerates_bad_bytes() {
        assert_eq!(
            decode_all(b"PING :a\r\n\r\n:x PRIVMSG #c :caf\xe9\nrest"),
            ["PING :a", ":x PRIVMSG #c :caf\u{fffd}"]
        );
    }

    #[test]
    fn discards_an_over_long_line_whole() {
        let mut decoder = LineDecoder::default();
        let mut buf = BytesMut::from(&vec![b'x'; MAX_LINE + 10][..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"tail of the long line\r\nPING :ok\r\n");
        assert_eq!(
            decoder.decode(&mut buf).unwrap().as_deref(),
            Some("PING :ok")
        );
    }
}
