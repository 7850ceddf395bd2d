//! Criterion benchmarks of route selection (`RouteTable::select`) in a 1,000-route table, and
//! of virtual host lookup among 1,000 virtual hosts.
use criterion::{Criterion, criterion_group, criterion_main};
use meshcore_fastpath::config::snapshot::RouteConfig;
use meshcore_fastpath::router::{RequestView, RouteTable};
use serde_json::{Value, json};
use std::hint::black_box;

use thread_cpu::ThreadCpuTime;

mod thread_cpu;

const ROUTES: usize = 1_000;
const CLUSTERS: usize = 100;

fn cluster_index(name: &str) -> Option<usize> {
    name.strip_prefix("svc-")?
        .parse()
        .ok()
        .filter(|i| *i < CLUSTERS)
}

/// Route i: every fourth one an exact path, the rest prefixes; every tenth one also needs a
/// header, so matching walks a realistic mix of matcher kinds.
fn route(i: usize) -> Value {
    let mut matcher = if i.is_multiple_of(4) {
        json!({"path": {"path": format!("/svc-{i}/health")}})
    } else {
        json!({"path": {"prefix": format!("/svc-{i}/")}})
    };
    if i % 10 == 5 {
        matcher["headers"] =
            json!([{"name": "x-tenant", "rule": {"string": {"pattern": {"exact": "blue"}}}}]);
    }
    json!({
        "name": format!("r{i}"),
        "match": matcher,
        "action": {"route": {"target": {"cluster": format!("svc-{}", i % CLUSTERS)}}},
    })
}

fn config(cfg: Value) -> RouteConfig {
    serde_json::from_value(cfg).expect("route config JSON")
}

fn compile(cfg: &RouteConfig) -> RouteTable {
    RouteTable::compile(cfg, &cluster_index).expect("route config compiles")
}

/// One catch-all virtual host holding `ROUTES` routes.
fn one_vhost_many_routes() -> RouteConfig {
    let routes: Vec<Value> = (0..ROUTES).map(route).collect();
    config(json!({"name": "big", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": routes}
    ]}))
}

/// `ROUTES` virtual hosts (one exact and one suffix domain each) with two routes each.
fn many_vhosts() -> RouteConfig {
    let hosts: Vec<Value> = (0..ROUTES)
        .map(|i| {
            json!({"name": format!("vh{i}"),
                   "domains": [format!("svc-{i}.mesh.local"), format!("*.svc-{i}.example.com")],
                   "routes": [route(i + 1), {"name": format!("vh{i}-default"),
                       "match": {"path": {"prefix": "/"}},
                       "action": {"route": {"target": {"cluster": format!("svc-{}", i % CLUSTERS)}}}}]})
        })
        .collect();
    config(json!({"name": "mesh", "virtual_hosts": hosts}))
}

fn view<'a>(authority: &'a str, path: &'a str) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path,
        authority,
        scheme: "http",
        headers: &[],
    }
}

fn selected(table: &RouteTable, authority: &str, path: &str) -> Option<String> {
    table
        .select(&view(authority, path))
        .map(|s| s.route_name().to_string())
}

fn route_table(c: &mut Criterion<ThreadCpuTime>) {
    let cfg = one_vhost_many_routes();
    let mut group = c.benchmark_group("router_compile");
    // Milliseconds per iteration: fewer samples keep the run short.
    group.sample_size(10);
    group.bench_function("1000_routes", |b| b.iter(|| compile(black_box(&cfg))));
    group.finish();

    let mut group = c.benchmark_group("router_select_1000_routes");
    let table = compile(&cfg);
    let cases = [
        ("hit_early", "/svc-1/users/42?full=1", Some("r1")),
        ("hit_late", "/svc-998/users/42?full=1", Some("r998")),
        ("miss", "/nowhere/users/42?full=1", None),
    ];
    for (name, path, expected) in cases {
        assert_eq!(
            selected(&table, "app.local", path).as_deref(),
            expected,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                table
                    .select(black_box(&view("app.local", path)))
                    .map(|s| s.route_name().len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("router_select_1000_vhosts");
    let table = compile(&many_vhosts());
    let cases = [
        // As in Envoy, a Host with a port matches only a domain with that port.
        ("exact_domain", "svc-700.mesh.local", Some("vh700-default")),
        (
            "suffix_domain",
            "api.svc-700.example.com",
            Some("vh700-default"),
        ),
        ("no_domain", "unknown.example.org", None),
    ];
    for (name, authority, expected) in cases {
        assert_eq!(
            selected(&table, authority, "/users/42").as_deref(),
            expected,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                table
                    .select(black_box(&view(authority, "/users/42")))
                    .map(|s| s.route_name().len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = thread_cpu::criterion();
    targets = route_table
}
criterion_main!(benches);
