//! Configuration as the engine receives it: the serde snapshot types and their parsing.
pub mod snapshot;

/// Parses a snapshot from JSON bytes; unknown fields and bad values are errors naming the
/// JSON path.
pub fn parse(bytes: &[u8]) -> Result<snapshot::Snapshot, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid snapshot: {e}"))
}
