//! Errors of the web layer, and how each becomes a response: JSON for the API
//! ([`ApiError`]), a page for the dashboard ([`PageError`]).
//!
//! Store and internal errors are logged with their detail and answered with a generic
//! message: what the database said is for the operator's log, not for the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wachter_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// No valid session or token.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but the role or token scope does not allow it.
    #[error("not allowed for this role or token scope")]
    Forbidden,
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told: the error itself, except for store and internal errors,
    /// which are logged here and answered generically.
    pub fn public_message(&self) -> String {
        match self {
            WebError::Store(e) => {
                tracing::error!(error = %e, "store error while answering a request");
                "internal error (see the server log)".into()
            }
            WebError::Internal(e) => {
                tracing::error!(error = %e, "internal error while answering a request");
                "internal error (see the server log)".into()
            }
            other => other.to_string(),
        }
    }
}

/// The JSON body of every API error.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// A [`WebError`] answered as JSON (`{"error": "..."}`) with its status code.
#[derive(Debug)]
pub struct ApiError(pub WebError);

/// A [`WebError`] answered as an HTML page; `Unauthorized` redirects to the login page.
#[derive(Debug)]
pub struct PageError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl<E: Into<WebError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = ErrorBody {
            error: self.0.public_message(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wachter\""),
            );
        }
        response
    }
}

/// Marks the redirect of a page that needs a login; [`crate::auth::login_redirect`] adds
/// the page's own path as `next` (the error itself does not know the request).
#[derive(Clone, Copy, Debug)]
pub struct LoginRequired;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let WebError::Unauthorized = self.0 {
            let mut response = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, HeaderValue::from_static("/login"))],
            )
                .into_response();
            response.extensions_mut().insert(LoginRequired);
            return response;
        }
        let status = self.0.status();
        let message = self.0.public_message();
        let context = serde_json::json!({
            "status": status.as_u16(),
            "message": message,
        });
        match crate::templates::render("error.html", context) {
            Ok(page) => (status, page).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "rendering the error page");
                let text = format!(
                    "{} {}\n\n{message}\n",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                );
                (
                    status,
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    )],
                    text,
                )
                    .into_response()
            }
        }
    }
}
