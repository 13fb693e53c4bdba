//! What every outgoing HTTP client (Alertmanager, Jenkins, deploy engines) shares: one TLS
//! crypto provider, and error messages that carry their causes.

/// Installs ring as rustls' default provider, so no second provider (aws-lc) is built into
/// lever; later calls do nothing.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// reqwest's message with its causes ("error sending request: … connection refused"), which
/// it keeps apart.
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}
