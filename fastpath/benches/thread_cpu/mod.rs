//! A criterion measurement of the benchmark thread's CPU time, and the shared bench settings.
//!
//! Wall time on a shared 2-CPU machine counts the time other processes hold the CPU (its
//! medians moved up to 3.8x between runs here); the thread's own CPU time does not, which is
//! what lets the committed baseline guard regressions (see benchmarks/micro/README.md).
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput};

/// CPU time consumed by the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`).
pub struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, started: ThreadTime) -> Duration {
        started.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuTimeFormatter
    }
}

/// Shows nanoseconds of CPU time in the unit that suits their size.
struct CpuTimeFormatter;

impl ValueFormatter for CpuTimeFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = match typical_ns {
            t if t < 1e3 => (1.0, "ns cpu"),
            t if t < 1e6 => (1e3, "µs cpu"),
            t if t < 1e9 => (1e6, "ms cpu"),
            _ => (1e9, "s cpu"),
        };
        values.iter_mut().for_each(|v| *v /= divisor);
        unit
    }

    // The benches declare no throughput; per-iteration CPU time is the figure.
    fn scale_throughputs(
        &self,
        typical_ns: f64,
        _: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        self.scale_values(typical_ns, values)
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// The settings every bench uses: CPU time, 30 samples, short warm-up and measurement, so
/// the three bench binaries finish in about a minute.
pub fn criterion() -> Criterion<ThreadCpuTime> {
    Criterion::default()
        .with_measurement(ThreadCpuTime)
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}
