//! Snapshot types for HTTP/2: the HCM's `codec_type` and the `http2_protocol_options` that the
//! `h2` crate can honour (downstream on a listener, upstream on a cluster).
use serde::Deserialize;

/// The HCM's `codec_type`: which protocol a downstream connection speaks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CodecType {
    /// HTTP/2 when the connection starts with the HTTP/2 preface (or TLS negotiated ALPN
    /// `h2`), else HTTP/1.1.
    #[default]
    Auto,
    Http1,
    /// Every connection must start with the HTTP/2 preface.
    Http2,
}

/// `http2_protocol_options` (Envoy's `Http2ProtocolOptions`), the fields the `h2` crate maps.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Http2Options {
    /// Streams the peer may open at once (SETTINGS_MAX_CONCURRENT_STREAMS); upstream, also
    /// the cap on streams meshcore opens on one connection. Envoy default 2147483647.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE; Envoy default 268435456 (256 MiB).
    #[serde(default = "default_window")]
    pub initial_stream_window_size: u32,
    /// The connection-level receive window; Envoy default 268435456.
    #[serde(default = "default_window")]
    pub initial_connection_window_size: u32,
    /// `allow_connect`: downstream, SETTINGS_ENABLE_CONNECT_PROTOCOL (extended CONNECT, RFC
    /// 8441: WebSocket over HTTP/2). No effect upstream.
    #[serde(default)]
    pub allow_connect: bool,
    /// Envoy's flood limits (`http2/flood.rs`; downstream only): frames queued but not yet
    /// written (default 10000), control frames among them (PING/SETTINGS acks, RST_STREAM;
    /// default 1000), consecutive empty DATA/HEADERS/CONTINUATION frames without END_STREAM
    /// (default 1), PRIORITY frames per opened stream (default 100), WINDOW_UPDATE frames per
    /// DATA frame sent (default 10).
    #[serde(default = "default_max_outbound_frames")]
    pub max_outbound_frames: u32,
    #[serde(default = "default_max_outbound_control_frames")]
    pub max_outbound_control_frames: u32,
    #[serde(default = "default_max_consecutive_empty")]
    pub max_consecutive_inbound_frames_with_empty_payload: u32,
    #[serde(default = "default_max_priority")]
    pub max_inbound_priority_frames_per_stream: u32,
    #[serde(default = "default_max_window_update")]
    pub max_inbound_window_update_frames_per_data_frame_sent: u32,
}

impl Default for Http2Options {
    fn default() -> Self {
        Http2Options {
            max_concurrent_streams: default_max_concurrent_streams(),
            initial_stream_window_size: default_window(),
            initial_connection_window_size: default_window(),
            allow_connect: false,
            max_outbound_frames: default_max_outbound_frames(),
            max_outbound_control_frames: default_max_outbound_control_frames(),
            max_consecutive_inbound_frames_with_empty_payload: default_max_consecutive_empty(),
            max_inbound_priority_frames_per_stream: default_max_priority(),
            max_inbound_window_update_frames_per_data_frame_sent: default_max_window_update(),
        }
    }
}

fn default_max_concurrent_streams() -> u32 {
    2_147_483_647
}

fn default_window() -> u32 {
    268_435_456
}

fn default_max_outbound_frames() -> u32 {
    10_000
}

fn default_max_outbound_control_frames() -> u32 {
    1_000
}

fn default_max_consecutive_empty() -> u32 {
    1
}

fn default_max_priority() -> u32 {
    100
}

fn default_max_window_update() -> u32 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_envoys_and_unknown_fields_are_refused() {
        let o: Http2Options = serde_json::from_str("{}").unwrap();
        assert_eq!(o, Http2Options::default());
        assert_eq!(o.max_concurrent_streams, 2_147_483_647);
        assert_eq!(o.initial_stream_window_size, 268_435_456);
        assert_eq!(o.max_outbound_frames, 10_000);
        assert_eq!(o.max_outbound_control_frames, 1_000);
        assert_eq!(o.max_consecutive_inbound_frames_with_empty_payload, 1);
        assert_eq!(o.max_inbound_priority_frames_per_stream, 100);
        assert_eq!(o.max_inbound_window_update_frames_per_data_frame_sent, 10);
        assert!(serde_json::from_str::<Http2Options>(r#"{"hpack_table_size": 1}"#).is_err());
        let c: CodecType = serde_json::from_str(r#""http2""#).unwrap();
        assert_eq!(c, CodecType::Http2);
    }
}
