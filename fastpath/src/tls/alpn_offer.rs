//! What a cluster's TLS connections offer in ALPN, from its HTTP protocol options, and what
//! codec the protocol the upstream chose means (`auto_config`).
use crate::config::snapshot::Cluster;

pub const H2: &str = "h2";
pub const HTTP1: &str = "http/1.1";

/// The protocol options that decide a cluster's ALPN offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// HTTP/1.1 only.
    Http1,
    /// `explicit_http_config.http2_protocol_options`: HTTP/2 only.
    Http2,
    /// `auto_config`: `h2,http/1.1`; the upstream's choice picks the codec.
    Auto,
    /// `use_downstream_protocol_config` with HTTP/2: each connection offers its request's
    /// protocol (`h2` for an HTTP/2 request, `http/1.1` for an HTTP/1.1 one).
    FollowDownstream,
}

impl Offer {
    pub fn of(c: &Cluster) -> Offer {
        match (c.http2.is_some(), c.http_auto, c.http2_follows_downstream) {
            (false, _, _) => Offer::Http1,
            (true, true, _) => Offer::Auto,
            (true, false, true) => Offer::FollowDownstream,
            (true, false, false) => Offer::Http2,
        }
    }

    /// The ALPN list of the cluster's (main) TLS config, checked against the configured
    /// `alpn_protocols` (`path` names that field). `FollowDownstream`'s main list is `h2`;
    /// its HTTP/1.1 requests use a second config offering `http/1.1`.
    pub fn protocols<'a>(
        self,
        configured: &'a [String],
        path: &str,
    ) -> Result<Vec<&'a str>, String> {
        let codec = match self {
            Offer::Http1 => HTTP1,
            Offer::Http2 => H2,
            Offer::Auto => {
                if let Some(p) = configured.iter().find(|p| *p != H2 && *p != HTTP1) {
                    return Err(format!(
                        "{path}: {p:?} is not supported upstream (auto_config speaks h2 and \
                         http/1.1 only)"
                    ));
                }
                if configured.is_empty() {
                    return Ok(vec![H2, HTTP1]);
                }
                return Ok(configured.iter().map(String::as_str).collect());
            }
            Offer::FollowDownstream => {
                if !configured.is_empty() {
                    return Err(format!(
                        "{path}: not supported with use_downstream_protocol_config (each \
                         connection offers its request's protocol, h2 or http/1.1)"
                    ));
                }
                H2
            }
        };
        // A configured list must name the cluster's codec: the connection speaks only it.
        if let Some(p) = configured.iter().find(|p| *p != codec) {
            return Err(format!(
                "{path}: {p:?} is not supported upstream (this cluster speaks {codec} only)"
            ));
        }
        Ok(vec![codec])
    }
}

/// Whether the protocol an upstream chose in ALPN means HTTP/2 (`auto_config`): only `h2`
/// does; `http/1.1` or no choice at all means HTTP/1.1 (as Envoy's mixed pool).
pub fn chose_http2(chosen: Option<&[u8]>) -> bool {
    chosen == Some(H2.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn auto_offers_both_unless_configured() {
        assert_eq!(Offer::Auto.protocols(&[], "p").unwrap(), vec![H2, HTTP1]);
        assert_eq!(
            Offer::Auto.protocols(&list(&[HTTP1]), "p").unwrap(),
            vec![HTTP1]
        );
        let err = Offer::Auto
            .protocols(&list(&["h2", "spdy/3"]), "p")
            .unwrap_err();
        assert_eq!(
            err,
            "p: \"spdy/3\" is not supported upstream (auto_config speaks h2 and http/1.1 only)"
        );
    }

    #[test]
    fn fixed_codecs_offer_only_their_own() {
        assert_eq!(Offer::Http1.protocols(&[], "p").unwrap(), vec![HTTP1]);
        assert_eq!(Offer::Http2.protocols(&list(&[H2]), "p").unwrap(), vec![H2]);
        assert!(
            Offer::Http2
                .protocols(&list(&[HTTP1]), "p")
                .unwrap_err()
                .starts_with("p: \"http/1.1\" is not supported upstream")
        );
        assert_eq!(
            Offer::FollowDownstream.protocols(&[], "p").unwrap(),
            vec![H2]
        );
        assert!(
            Offer::FollowDownstream
                .protocols(&list(&[H2]), "p")
                .is_err()
        );
    }

    fn cluster(fields: serde_json::Value) -> Cluster {
        let mut v = serde_json::json!({"name": "c"});
        v.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_cluster_options_pick_the_offer() {
        let h2 = serde_json::json!({});
        assert_eq!(Offer::of(&cluster(serde_json::json!({}))), Offer::Http1);
        assert_eq!(
            Offer::of(&cluster(serde_json::json!({"http2": h2}))),
            Offer::Http2
        );
        assert_eq!(
            Offer::of(&cluster(
                serde_json::json!({"http2": h2, "http_auto": true})
            )),
            Offer::Auto
        );
        let follow = serde_json::json!({"http2": h2, "http2_follows_downstream": true});
        assert_eq!(Offer::of(&cluster(follow)), Offer::FollowDownstream);
    }

    #[test]
    fn auto_without_tls_is_refused_in_envoys_words() {
        let registry = crate::stats::Registry::new(1);
        let c = cluster(serde_json::json!({"http2": {}, "http_auto": true}));
        let err = crate::tls::ClientTls::compile(&c, &registry, "clusters[0]")
            .err()
            .unwrap();
        assert_eq!(
            err,
            "clusters[0]: ALPN configured for cluster c which has a non-ALPN transport socket"
        );
    }

    #[test]
    fn only_h2_chosen_means_http2() {
        assert!(chose_http2(Some(b"h2")));
        assert!(!chose_http2(Some(b"http/1.1")));
        assert!(!chose_http2(None));
    }
}
