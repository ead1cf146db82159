//! Reading request bodies ourselves, so every failure (size, media type, syntax, shape) is a
//! problem document that names what is wrong.

use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::HttpRequest;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The request's media type, lower-cased, without parameters.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Reads the whole body, refusing it past `limit` bytes (before reading, when the length is
/// declared).
pub async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads a JSON body into `T`: 415 for another media type, 413 past the limit, 400 for bad JSON
/// syntax (with line and column), 422 for well-formed JSON of the wrong shape (naming the field).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<T, ApiError> {
    parse_json(&read_json_body(req, payload, limit).await?)
}

/// Reads a body that must be JSON (415 for another media type, 413 past the limit), unparsed.
pub async fn read_json_body(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    match media_type(req) {
        Some(m) if is_json(&m) => {}
        Some(m) => {
            return Err(ApiError::unsupported_media_type(format!(
                "expected application/json, got {m}"
            )))
        }
        None => {
            return Err(ApiError::unsupported_media_type(
                "expected a Content-Type of application/json",
            ))
        }
    }
    read_body(req, payload, limit).await
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Fast path without path tracking; the slow one only runs to explain a failure.
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(de);
    match value {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let text = inner.to_string();
            let text = match text.rfind(" at line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => Err(ApiError::malformed_json(
                    format!(
                        "invalid JSON at line {} column {}: {text}",
                        inner.line(),
                        inner.column()
                    ),
                    Some(inner.line()),
                    Some(inner.column()),
                )),
                Category::Data => {
                    let field = if path == "." || path == "?" {
                        String::new()
                    } else {
                        path
                    };
                    let detail = if field.is_empty() {
                        text
                    } else {
                        format!("{field}: {text}")
                    };
                    Err(ApiError::validation(field, detail))
                }
            }
        }
    }
}

/// Whether the request's `Accept` names `media` (a plain substring test: the only choices
/// offered are JSON and one or two text formats).
pub fn accepts(req: &HttpRequest, media: &str) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(media))
}
