//! pyo3 bindings (feature `python`): the `Engine` class of module `meshcore._fastpath`.
use pyo3::exceptions::{PyKeyError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::engine::{self, EngineError};

fn to_py(e: EngineError) -> PyErr {
    match e {
        EngineError::Value(m) => PyValueError::new_err(m),
        EngineError::Key(m) => PyKeyError::new_err(m),
        EngineError::Os(Some(errno), m) => PyOSError::new_err((errno, m)),
        EngineError::Os(None, m) => PyOSError::new_err(m),
        EngineError::Stopped => PyRuntimeError::new_err("engine is stopped"),
    }
}

/// The Rust data path: worker threads with their own runtimes, sockets, pools and stats.
#[pyclass(frozen, name = "Engine", module = "meshcore._fastpath")]
pub struct Engine {
    inner: engine::Engine,
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, concurrency: usize) -> PyResult<Engine> {
        let inner = py
            .detach(|| engine::Engine::new(concurrency))
            .map_err(to_py)?;
        Ok(Engine { inner })
    }

    // `snapshot` borrows the `bytes` object (immutable, kept alive by the caller for the
    // call), so it is read in place with the GIL released: no copy of a large snapshot.
    fn apply(&self, py: Python<'_>, snapshot: &[u8]) -> PyResult<u64> {
        py.detach(|| self.inner.apply(snapshot)).map_err(to_py)
    }

    fn apply_listeners(&self, py: Python<'_>, snapshot: &[u8]) -> PyResult<u64> {
        py.detach(|| self.inner.apply_listeners(snapshot))
            .map_err(to_py)
    }

    fn apply_clusters(
        &self,
        py: Python<'_>,
        snapshot: &[u8],
        removed: Vec<String>,
    ) -> PyResult<u64> {
        let bytes = snapshot.to_vec();
        py.detach(|| self.inner.apply_clusters(&bytes, &removed))
            .map_err(to_py)
    }

    fn update_endpoints(&self, py: Python<'_>, cluster: &str, endpoints: &[u8]) -> PyResult<()> {
        let (c, e) = (cluster.to_string(), endpoints.to_vec());
        py.detach(|| self.inner.update_endpoints(&c, &e))
            .map_err(to_py)
    }

    fn set_jwks(&self, py: Python<'_>, provider_key: &str, jwks_json: &[u8]) -> PyResult<()> {
        let (k, j) = (provider_key.to_string(), jwks_json.to_vec());
        py.detach(|| self.inner.set_jwks(&k, &j)).map_err(to_py)
    }

    fn listener_ports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, port) in py.detach(|| self.inner.listener_ports()) {
            d.set_item(name, port)?;
        }
        Ok(d)
    }

    /// (counters, gauges, histograms): sorted `name\0value` lines (`stats::Flat`). Built with
    /// the GIL released; only the copies into `bytes` hold it.
    fn stats<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
    ) {
        let f = py.detach(|| self.inner.stats_flat());
        (
            PyBytes::new(py, &f.counters),
            PyBytes::new(py, &f.gauges),
            PyBytes::new(py, &f.histograms),
        )
    }

    fn flush_histograms(&self, py: Python<'_>) {
        py.detach(|| self.inner.flush_histograms());
    }

    /// Histogram sample capture for the statsd sink on or off (process-wide).
    fn capture_histogram_samples(&self, on: bool) {
        crate::stats::samples::set_enabled(on);
    }

    /// (`name:ms|ms\n` lines captured since the last call, samples dropped meanwhile).
    fn take_histogram_samples<'py>(&self, py: Python<'py>) -> (Bound<'py, PyBytes>, u64) {
        let (lines, dropped) = py.detach(|| self.inner.take_histogram_samples());
        (PyBytes::new(py, &lines), dropped)
    }

    fn clusters<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let v = py.detach(|| self.inner.clusters());
        PyBytes::new(py, &v)
    }

    fn drain(&self, py: Python<'_>) {
        py.detach(|| self.inner.drain());
    }

    fn active_connections(&self, py: Python<'_>) -> i64 {
        py.detach(|| self.inner.active_connections())
    }

    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.inner.stop());
    }

    /// Access log files are reopened before their next lines (SIGUSR1, log rotation).
    fn reopen_access_logs(&self) {
        crate::access_log::writer::reopen_all();
    }

    /// The spans of sampled requests since the last call: one JSON object per line (taken
    /// with the GIL released).
    fn take_spans<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let spans = py.detach(crate::tracing::buffer::take);
        PyBytes::new(py, &spans)
    }
}

/// `meshcore explain`: the data path's decision for one request (JSON in, JSON out). A bad
/// snapshot raises ValueError("config: ..."), a bad request ValueError("request...: ...").
#[pyfunction]
fn explain<'py>(py: Python<'py>, snapshot: &[u8], request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let (s, r) = (snapshot.to_vec(), request.to_vec());
    let out = py
        .detach(|| crate::explain::explain(&s, &r))
        .map_err(|e| match e {
            crate::explain::ExplainError::Config(m) => {
                PyValueError::new_err(format!("config: {m}"))
            }
            crate::explain::ExplainError::Request(m) => PyValueError::new_err(m),
        })?;
    Ok(PyBytes::new(py, &out))
}

/// The access-log command operators that take no argument (the Python config check's list).
#[pyfunction]
fn access_log_operators() -> Vec<&'static str> {
    crate::access_log::format::simple_operators().collect()
}

#[pymodule]
#[pyo3(name = "_fastpath")]
fn fastpath_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add_function(wrap_pyfunction!(access_log_operators, m)?)?;
    m.add(
        "HISTOGRAM_BOUNDS_MS",
        PyTuple::new(m.py(), crate::stats::BUCKET_BOUNDS_MS)?,
    )?;
    Ok(())
}
