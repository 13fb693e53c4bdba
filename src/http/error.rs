//! The one error shape every endpoint answers with: a status and `{"error": "…"}` saying what
//! was wrong and what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::deploy::DeployError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// With `Retry-After: seconds`.
    pub fn retry_after(self, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..self
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<DeployError> for ApiError {
    fn from(error: DeployError) -> Self {
        match error {
            // Refusals are the API's answers: held, busy, no such target.
            DeployError::Refused(text) => ApiError::new(StatusCode::CONFLICT, text),
            DeployError::Store(e) if e.is_operational() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            DeployError::Store(e) => {
                let id = format!("{:06x}", fastrand::u32(..0x100_0000));
                tracing::error!(error = %e, %id, "HTTP request failed in the store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the store failed (error id {id}; the details are in lever's log)"),
                )
            }
        }
    }
}
