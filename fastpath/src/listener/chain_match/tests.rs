//! Matcher tests: each criterion, Envoy's specificity order, wildcard server names, no
//! match, duplicate and overlapping rules.
use super::*;

fn m(v: serde_json::Value) -> FilterChainMatch {
    serde_json::from_value(v).unwrap()
}

fn matcher(ms: &[serde_json::Value]) -> ChainMatcher {
    try_matcher(ms).unwrap()
}

fn try_matcher(ms: &[serde_json::Value]) -> Result<ChainMatcher, String> {
    let parsed: Vec<FilterChainMatch> = ms.iter().cloned().map(m).collect();
    let with_paths: Vec<(&FilterChainMatch, String)> = parsed
        .iter()
        .enumerate()
        .map(|(i, m)| (m, format!("filter_chains[{i}]")))
        .collect();
    ChainMatcher::compile(&with_paths)
}

fn conn(local: &str, peer: &str) -> MatchInputs {
    MatchInputs::plain(peer.parse().unwrap(), local.parse().unwrap())
}

fn tls(mut c: MatchInputs, sni: Option<&str>, alpn: &[&str]) -> MatchInputs {
    c.tls = true;
    c.server_name = sni.map(Into::into);
    c.alpn = alpn.iter().map(|a| a.as_bytes().into()).collect();
    c
}

const LOCAL: &str = "10.0.0.1:443";
const PEER: &str = "192.168.1.7:50000";

#[test]
fn empty_match_takes_everything() {
    let mt = matcher(&[serde_json::json!({})]);
    assert_eq!(mt.find(&conn(LOCAL, PEER)), Some(0));
    assert_eq!(
        mt.find(&tls(conn(LOCAL, PEER), Some("x.y"), &["h2"])),
        Some(0)
    );
}

#[test]
fn no_chains_match_nothing() {
    let mt = matcher(&[]);
    assert!(mt.is_empty());
    assert_eq!(mt.find(&conn(LOCAL, PEER)), None);
}

#[test]
fn destination_port_specific_port_never_falls_back_to_any_port() {
    let mt = matcher(&[
        serde_json::json!({"destination_port": 443, "server_names": ["a.com"]}),
        serde_json::json!({}),
    ]);
    // Port 443 has its own chains: a miss there is no match (Envoy: default chain), even
    // though chain 1 would take any port.
    assert_eq!(mt.find(&conn(LOCAL, PEER)), None);
    assert_eq!(
        mt.find(&tls(conn(LOCAL, PEER), Some("a.com"), &[])),
        Some(0)
    );
    assert_eq!(mt.find(&conn("10.0.0.1:80", PEER)), Some(1));
}

#[test]
fn destination_prefix_longest_wins() {
    let mt = matcher(&[
        serde_json::json!({"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}),
        serde_json::json!({"prefix_ranges": [{"address_prefix": "10.0.0.1", "prefix_len": 32}]}),
        serde_json::json!({"source_ports": [1]}),
    ]);
    assert_eq!(mt.find(&conn("10.0.0.1:1", PEER)), Some(1));
    assert_eq!(mt.find(&conn("10.9.0.1:1", PEER)), Some(0));
    // 127.0.0.1 matches only the catch-all, whose chain needs source port 1.
    assert_eq!(mt.find(&conn("127.0.0.1:1", PEER)), None);
    assert_eq!(mt.find(&conn("127.0.0.1:1", "1.2.3.4:1")), Some(2));
}

#[test]
fn server_names_exact_then_longest_wildcard_then_none() {
    let mt = matcher(&[
        serde_json::json!({"server_names": ["www.example.com"]}),
        serde_json::json!({"server_names": ["*.example.com"]}),
        serde_json::json!({"server_names": ["*.com"]}),
        serde_json::json!({"server_names": ["*.b.example.com"]}),
        serde_json::json!({}),
    ]);
    let sni = |s: &str| mt.find(&tls(conn(LOCAL, PEER), Some(s), &[]));
    assert_eq!(sni("www.example.com"), Some(0));
    assert_eq!(sni("api.example.com"), Some(1));
    assert_eq!(sni("a.b.example.com"), Some(3));
    assert_eq!(sni("b.example.com"), Some(1));
    assert_eq!(sni("other.com"), Some(2));
    assert_eq!(sni("example.org"), Some(4));
    // "*.example.com" does not take "example.com" itself.
    assert_eq!(sni("example.com"), Some(2));
    assert_eq!(mt.find(&conn(LOCAL, PEER)), Some(4));
}

#[test]
fn server_names_are_case_insensitive_in_config() {
    let mt = matcher(&[serde_json::json!({"server_names": ["*.EXAMPLE.com"]})]);
    assert_eq!(
        mt.find(&tls(conn(LOCAL, PEER), Some("a.example.com"), &[])),
        Some(0)
    );
}

#[test]
fn a_server_name_match_drops_less_specific_chains() {
    // The SNI matches chain 0, whose transport protocol does not: Envoy does not go on to
    // the chain without server names.
    let mt = matcher(&[
        serde_json::json!({"server_names": ["a.com"], "transport_protocol": "raw_buffer"}),
        serde_json::json!({}),
    ]);
    assert_eq!(mt.find(&tls(conn(LOCAL, PEER), Some("a.com"), &[])), None);
    assert_eq!(
        mt.find(&tls(conn(LOCAL, PEER), Some("b.com"), &[])),
        Some(1)
    );
}

#[test]
fn transport_protocol_exact_then_any() {
    let mt = matcher(&[
        serde_json::json!({"transport_protocol": "tls"}),
        serde_json::json!({}),
    ]);
    assert_eq!(mt.find(&tls(conn(LOCAL, PEER), None, &[])), Some(0));
    assert_eq!(mt.find(&conn(LOCAL, PEER)), Some(1));
    let raw = matcher(&[serde_json::json!({"transport_protocol": "raw_buffer"})]);
    assert_eq!(raw.find(&conn(LOCAL, PEER)), Some(0));
    assert_eq!(raw.find(&tls(conn(LOCAL, PEER), None, &[])), None);
}

#[test]
fn application_protocols_first_offered_with_chains_wins() {
    let mt = matcher(&[
        serde_json::json!({"application_protocols": ["h2"]}),
        serde_json::json!({"application_protocols": ["http/1.1", "http/1.0"]}),
        serde_json::json!({}),
    ]);
    let alpn = |a: &[&str]| mt.find(&tls(conn(LOCAL, PEER), None, a));
    assert_eq!(alpn(&["h2", "http/1.1"]), Some(0));
    assert_eq!(alpn(&["http/1.1", "h2"]), Some(1));
    assert_eq!(alpn(&["http/1.0"]), Some(1));
    assert_eq!(alpn(&["spdy/3"]), Some(2));
    assert_eq!(alpn(&[]), Some(2));
}

#[test]
fn direct_source_prefix_ranges() {
    let mt = matcher(&[
        serde_json::json!({"direct_source_prefix_ranges": [{"address_prefix": "192.168.0.0", "prefix_len": 16}]}),
        serde_json::json!({}),
    ]);
    assert_eq!(mt.find(&conn(LOCAL, PEER)), Some(0));
    assert_eq!(mt.find(&conn(LOCAL, "172.16.0.1:1")), Some(1));
}

#[test]
fn source_type_local_external_then_any() {
    let mt = matcher(&[
        serde_json::json!({"source_type": "same_ip_or_loopback"}),
        serde_json::json!({"source_type": "external"}),
    ]);
    assert_eq!(mt.find(&conn("127.0.0.1:80", "127.0.0.1:5000")), Some(0));
    // The peer's address is the listener's own address: local too.
    assert_eq!(mt.find(&conn("10.0.0.1:80", "10.0.0.1:5000")), Some(0));
    assert_eq!(mt.find(&conn("10.0.0.1:80", "10.0.0.2:5000")), Some(1));
    assert_eq!(mt.find(&conn("[::1]:80", "[::1]:5000")), Some(0));
    let local_only = matcher(&[
        serde_json::json!({"source_type": "same_ip_or_loopback"}),
        serde_json::json!({"source_ports": [7]}),
    ]);
    // External, and no EXTERNAL chains: the ANY chains (which need source port 7).
    assert_eq!(local_only.find(&conn(LOCAL, PEER)), None);
    assert_eq!(local_only.find(&conn(LOCAL, "192.168.1.7:7")), Some(1));
}

#[test]
fn source_prefix_ranges_longest_and_ipv6() {
    let mt = matcher(&[
        serde_json::json!({"source_prefix_ranges": [{"address_prefix": "192.168.0.0", "prefix_len": 16}]}),
        serde_json::json!({"source_prefix_ranges": [{"address_prefix": "192.168.1.0", "prefix_len": 24}]}),
        serde_json::json!({"source_prefix_ranges": [{"address_prefix": "fd00::", "prefix_len": 8}]}),
    ]);
    assert_eq!(mt.find(&conn(LOCAL, PEER)), Some(1));
    assert_eq!(mt.find(&conn(LOCAL, "192.168.2.7:1")), Some(0));
    assert_eq!(mt.find(&conn("[fd00::1]:443", "[fd12::5]:1")), Some(2));
    assert_eq!(mt.find(&conn(LOCAL, "8.8.8.8:1")), None);
}

#[test]
fn source_ports_exact_then_any() {
    let mt = matcher(&[
        serde_json::json!({"source_ports": [50000, 50001]}),
        serde_json::json!({}),
    ]);
    assert_eq!(mt.find(&conn(LOCAL, PEER)), Some(0));
    assert_eq!(mt.find(&conn(LOCAL, "192.168.1.7:50001")), Some(0));
    assert_eq!(mt.find(&conn(LOCAL, "192.168.1.7:1")), Some(1));
}

#[test]
fn identical_rules_are_an_error_naming_both_chains() {
    let e = try_matcher(&[
        serde_json::json!({"server_names": ["a.com"]}),
        serde_json::json!({"server_names": ["a.com"]}),
    ])
    .unwrap_err();
    assert_eq!(
        e,
        "filter_chains[1].filter_chain_match: the same matching rules as filter_chains[0]"
    );
    let e = try_matcher(&[serde_json::json!({}), serde_json::json!({})]).unwrap_err();
    assert!(
        e.starts_with("filter_chains[1].filter_chain_match: the same"),
        "{e}"
    );
}

#[test]
fn overlapping_rules_are_an_error() {
    let e = try_matcher(&[
        serde_json::json!({"server_names": ["a.com", "b.com"]}),
        serde_json::json!({"server_names": ["b.com"]}),
    ])
    .unwrap_err();
    assert!(
        e.starts_with(
            "filter_chains[1].filter_chain_match: overlaps the matching rules of filter_chains[0]"
        ),
        "{e}"
    );
}

#[test]
fn bad_values_are_errors_naming_the_field() {
    let e = try_matcher(&[serde_json::json!({"server_names": ["a.*.com"]})]).unwrap_err();
    assert!(
        e.starts_with("filter_chains[0].filter_chain_match.server_names[0]:"),
        "{e}"
    );
    let e = try_matcher(&[serde_json::json!({"source_prefix_ranges": [
        {"address_prefix": "10.0.0.0", "prefix_len": 33}]})])
    .unwrap_err();
    assert!(
        e.starts_with("filter_chains[0].filter_chain_match.source_prefix_ranges[0].prefix_len:"),
        "{e}"
    );
    let e = try_matcher(&[serde_json::json!({"prefix_ranges": [{"address_prefix": "nope"}]})])
        .unwrap_err();
    assert!(e.contains("prefix_ranges[0].address_prefix"), "{e}");
    let e = try_matcher(&[serde_json::json!({"transport_protocol": "quic"})]).unwrap_err();
    assert!(
        e.starts_with("filter_chains[0].filter_chain_match.transport_protocol:"),
        "{e}"
    );
}

#[test]
fn prefixes_are_normalised_so_equal_networks_overlap() {
    let e = try_matcher(&[
        serde_json::json!({"prefix_ranges": [{"address_prefix": "10.1.2.3", "prefix_len": 8}]}),
        serde_json::json!({"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}),
    ])
    .unwrap_err();
    assert!(e.contains("overlaps"), "{e}");
}
