//! Content negotiation: request bodies in JSON or YAML; responses as the
//! object, a `meta.k8s.io` Table, or `PartialObjectMetadata`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::{Error, Result};

/// What the client asked to receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Object,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io` (or `v1beta1`).
    Table(&'static str),
    /// `as=PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata(&'static str),
}

/// Picks the first acceptable media type of the `Accept` header.
pub fn output(headers: &HeaderMap) -> Result<Output> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::Object);
    }
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let (mut as_, mut g, mut v) = (None, None, None);
        for p in parts {
            match p.split_once('=') {
                Some(("as", x)) => as_ = Some(x),
                Some(("g", x)) => g = Some(x),
                Some(("v", x)) => v = Some(x),
                _ => {}
            }
        }
        if !matches!(media, "application/json" | "*/*" | "application/*" | "application/yaml" | "") {
            continue;
        }
        let version = match v {
            Some("v1") => "v1",
            Some("v1beta1") => "v1beta1",
            _ => "v1",
        };
        match (as_, g) {
            (None, _) => return Ok(Output::Object),
            (Some("Table"), Some("meta.k8s.io")) => return Ok(Output::Table(version)),
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                return Ok(Output::Metadata(version));
            }
            _ => continue,
        }
    }
    Err(Error::NotAcceptable(format!(
        "only the following media types are accepted: application/json, application/yaml, and Table or PartialObjectMetadata (meta.k8s.io) views; got {accept:?}"
    )))
}

/// Decodes a request body (JSON or YAML) into an object.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    let ctype = content_type(headers);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest("the request body is empty".into()));
    }
    let value: Value = match ctype.as_str() {
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body).map_err(|_| Error::BadRequest("the YAML body is not UTF-8".into()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| Error::BadRequest(format!("the request body is not valid YAML: {e}")))?
        }
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(body)?,
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("the request body is not valid JSON: {e}")))?,
        other => {
            return Err(Error::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: application/json, application/yaml"
            )));
        }
    };
    if !value.is_object() {
        return Err(Error::BadRequest(format!("the request body must be an object, not {}", kind_of(&value))));
    }
    Ok(value)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The media type of the body, without parameters, lowercased.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A JSON response.
pub fn json(code: StatusCode, value: &Value, pretty: bool) -> Response {
    let body = if pretty { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) }.unwrap_or_default();
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Adds `Warning: 299 - "…"` headers.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(s: &str) -> Result<Output> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(s).expect("header"));
        output(&h)
    }

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let k = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(accept(k).expect("ok"), Output::Table("v1"));
        assert_eq!(accept("application/json").expect("ok"), Output::Object);
        assert_eq!(accept("application/vnd.kubernetes.protobuf, */*").expect("ok"), Output::Object);
        assert_eq!(
            accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").expect("ok"),
            Output::Metadata("v1")
        );
        assert!(accept("application/vnd.kubernetes.protobuf").is_err());
    }

    #[test]
    fn bodies_in_json_and_yaml() {
        let mut h = HeaderMap::new();
        assert_eq!(decode_body(&h, br#"{"a": 1}"#).expect("json")["a"], 1);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
        let v = decode_body(&h, b"a: 1\nb: [x, 2]\nc: {d: 12x}\n").expect("yaml");
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"][1], 2);
        assert_eq!(v["c"]["d"], "12x");
        assert!(decode_body(&h, b"a: [").is_err());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let e = decode_body(&h, b"{\"a\": ").expect_err("bad json");
        assert!(matches!(e, Error::BadRequest(_)));
        assert!(decode_body(&h, b"[1]").is_err());
    }
}
