//! Criterion benchmarks of load-balancer picks (`lb::Balancer::pick`) over 10 and 1,000 hosts.
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meshcore_fastpath::config::snapshot::LbPolicy;
use meshcore_fastpath::lb::Balancer;
use std::hint::black_box;

use thread_cpu::ThreadCpuTime;

mod thread_cpu;

/// Active requests of host i.
type Load = dyn Fn(usize) -> u64;

fn idle(_: usize) -> u64 {
    0
}

/// Active requests that differ per host, as LEAST_REQUEST sees under load.
fn busy(i: usize) -> u64 {
    (i as u64 * 7) % 5
}

fn picks(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("lb_pick");
    for hosts in [10usize, 1_000] {
        // Weights 1..=4 (weighted RR builds an interleaved schedule), every host healthy but
        // one in ten (so the healthy subset is indexed, as after a health flap).
        let weights: Vec<u32> = (0..hosts).map(|i| 1 + (i % 4) as u32).collect();
        let healthy: Vec<bool> = (0..hosts).map(|i| i % 10 != 3).collect();
        let cases: [(&str, LbPolicy, &Load); 3] = [
            ("round_robin_weighted", LbPolicy::RoundRobin, &idle),
            ("least_request_weighted", LbPolicy::LeastRequest, &busy),
            ("random", LbPolicy::Random, &idle),
        ];
        for (name, policy, active) in cases {
            let balancer = Balancer::new(policy, 2, &weights, &healthy);
            assert!(!balancer.in_panic());
            assert_eq!(balancer.available(), hosts - hosts / 10);
            let mut rng = fastrand::Rng::with_seed(7);
            for _ in 0..1_000 {
                let host = balancer.pick(rng.u64(..), active).expect("a host");
                assert!(healthy[host], "{name} picked unhealthy host {host}");
            }
            group.bench_with_input(BenchmarkId::new(name, hosts), &balancer, |b, balancer| {
                b.iter(|| balancer.pick(black_box(rng.u64(..)), active))
            });
        }
        group.bench_with_input(
            BenchmarkId::new("build_round_robin_weighted", hosts),
            &(&weights, &healthy),
            |b, (weights, healthy)| {
                b.iter(|| Balancer::new(LbPolicy::RoundRobin, 2, weights, healthy))
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = thread_cpu::criterion();
    targets = picks
}
criterion_main!(benches);
