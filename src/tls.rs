//! One process-wide TLS crypto provider (ring) for the HTTP clients, so no second provider
//! (aws-lc) is built into lever.

/// Installs ring as rustls' default provider; later calls do nothing.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
