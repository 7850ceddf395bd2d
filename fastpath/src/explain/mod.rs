//! `meshcore explain`: what the data path would do with one request, without sending it.
//! The snapshot is compiled by the data path's own compiler (`compile`), the listener's
//! chain matcher picks the filter chain, and the route table's `select_observed` (the same
//! code as `select`, with a recording `Observer`) picks the virtual host and route; the
//! HTTP filters run once on the request as they would on a worker.
mod compile;
mod describe;
mod recorder;
mod report;
mod request;
#[cfg(test)]
mod tests;

pub use request::Request;

/// Why an explanation could not be made.
#[derive(Debug)]
pub enum ExplainError {
    /// The snapshot is invalid; the message is the one `Engine.apply` gives.
    Config(String),
    /// The request (or a connection fact) is malformed or names nothing in the config.
    Request(String),
}

/// What the router sees of the request after the connection manager's normalisation.
pub(crate) struct Routed<'a> {
    pub path: &'a str,
    pub authority: &'a str,
    pub scheme: &'a str,
}

/// Explains `request` (JSON `Request`) against `snapshot` (engine snapshot JSON); returns
/// the explanation as JSON (described in docs/explain.md).
pub fn explain(snapshot: &[u8], request: &[u8]) -> Result<Vec<u8>, ExplainError> {
    let de = &mut serde_json::Deserializer::from_slice(request);
    let req: Request = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ExplainError::Request(format!("request.{path}: {}", e.into_inner()))
    })?;
    req.check().map_err(ExplainError::Request)?;
    let mut snap = crate::config::parse(snapshot).map_err(ExplainError::Config)?;
    let compiled = compile::compile(&mut snap).map_err(ExplainError::Config)?;
    let out = report::report(&snap, &compiled, &req).map_err(ExplainError::Request)?;
    serde_json::to_vec(&out).map_err(|e| ExplainError::Request(e.to_string()))
}
