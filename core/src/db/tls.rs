//! TLS for the `postgres` client, built lazily: the `native-tls` connector (which loads the
//! system's certificate bundle, ~100 ms with OpenSSL 3) is only built once the server has
//! agreed to TLS. With `sslmode=prefer` (the default) against a server without TLS, nothing
//! is loaded, so a plain `migrate-current` stays a few milliseconds.

use crate::config::SslMode;
use postgres::tls::{MakeTlsConnect, TlsConnect};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// What the connector must check.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// PEM contents of `sslrootcert`, read before connecting so a bad path fails early.
    pub root_cert: Option<(PathBuf, Vec<u8>)>,
}

#[derive(Clone)]
pub struct LazyTls(Arc<TlsSettings>);

impl LazyTls {
    pub fn new(settings: TlsSettings) -> Self {
        LazyTls(Arc::new(settings))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn build(s: &TlsSettings) -> Result<native_tls::TlsConnector, BoxError> {
    let mut b = native_tls::TlsConnector::builder();
    let verify = matches!(s.mode, SslMode::VerifyCa | SslMode::VerifyFull);
    if let Some((path, pem)) = &s.root_cert {
        let cert = native_tls::Certificate::from_pem(pem).map_err(|e| {
            format!(
                "sslrootcert {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        // as libpq: sslrootcert replaces the trusted roots, it does not add to the system's
        b.disable_built_in_roots(true);
        b.add_root_certificate(cert);
    }
    if !verify {
        // libpq's prefer/require encrypt but do not authenticate the server.
        b.danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    } else if s.mode == SslMode::VerifyCa {
        b.danger_accept_invalid_hostnames(true);
    }
    Ok(b.build()?)
}

impl<S> MakeTlsConnect<S> for LazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type TlsConnect = LazyConnect;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyConnect, BoxError> {
        Ok(LazyConnect {
            settings: self.0.clone(),
            domain: domain.to_string(),
        })
    }
}

pub struct LazyConnect {
    settings: Arc<TlsSettings>,
    domain: String,
}

impl<S> TlsConnect<S> for LazyConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = build(&self.settings);
        let domain = self.domain;
        Box::pin(async move {
            let inner = postgres_native_tls::TlsConnector::new(connector?, &domain);
            inner.connect(stream).await.map_err(BoxError::from)
        })
    }
}
