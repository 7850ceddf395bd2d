//! Outlier detection (Envoy's `outlier_detection`): consecutive 5xx / gateway / local-origin
//! failures eject a host at once; the interval timer returns hosts whose ejection time has
//! passed (base × times ejected, capped by max_ejection_time) and runs the success-rate and
//! failure-percentage checks. Workers only bump relaxed atomics on the host; the rare
//! ejection and the interval work take this detector's lock. Time is passed in (`now`), so
//! the timer logic is tested with a mock clock.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::host::{Host, HostCounters};
use crate::config::snapshot::OutlierDetection;
use crate::error::ErrorKind;
use crate::stats::OutlierStats;
use crate::stats::sets::outlier::{Control, Global};

/// What one upstream request told about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head arrived with this status.
    Status(u16),
    /// Connecting failed or the connection was reset (local origin).
    LocalFailure,
    /// The request timed out (local origin; counts as 504 without the split).
    LocalTimeout,
}

impl Outcome {
    /// The outcome of a failed upstream attempt, or None when the host is not to blame.
    pub fn from_error(kind: &ErrorKind) -> Option<Outcome> {
        match kind {
            ErrorKind::ConnectFailure | ErrorKind::ConnectTimeout | ErrorKind::UpstreamReset => {
                Some(Outcome::LocalFailure)
            }
            ErrorKind::UpstreamTimeout => Some(Outcome::LocalTimeout),
            ErrorKind::UpstreamProtocol => Some(Outcome::Status(502)),
            _ => None,
        }
    }
}

/// Why a host is ejected (Envoy's `OutlierEjectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ejection {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    ConsecutiveLocalOriginFailure,
    SuccessRate,
    LocalOriginSuccessRate,
    FailurePercentage,
    LocalOriginFailurePercentage,
}

pub struct Detector {
    pub cfg: OutlierDetection,
    stats: OutlierStats,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By host id: when it was ejected (while ejected) and its back-off multiplier.
    hosts: HashMap<u64, Track>,
    next_interval: Option<Instant>,
    active: u64,
}

#[derive(Default)]
struct Track {
    ejected_at: Option<Instant>,
    backoff: u32,
}

impl Detector {
    pub fn new(cfg: OutlierDetection, stats: OutlierStats) -> Detector {
        stats.set_global(Global::EjectionsActive, 0);
        Detector {
            cfg,
            stats,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a result (any worker; relaxed atomics). Returns the ejection a consecutive
    /// counter just detected, for `eject`.
    pub fn record(&self, host: &HostCounters, outcome: Outcome) -> Option<Ejection> {
        let t = &host.outlier;
        let split = self.cfg.split_external_local_origin_errors;
        let code = match outcome {
            Outcome::Status(code) => {
                if split {
                    // A response means the connection worked.
                    t.consecutive_local.store(0, Relaxed);
                    t.local_total.fetch_add(1, Relaxed);
                    t.local_success.fetch_add(1, Relaxed);
                }
                code
            }
            Outcome::LocalFailure | Outcome::LocalTimeout if split => {
                t.local_total.fetch_add(1, Relaxed);
                let n = t.consecutive_local.fetch_add(1, Relaxed) + 1;
                return (n == self.cfg.consecutive_local_origin_failure)
                    .then_some(Ejection::ConsecutiveLocalOriginFailure);
            }
            Outcome::LocalFailure => 503,
            Outcome::LocalTimeout => 504,
        };
        t.total.fetch_add(1, Relaxed);
        if !(500..600).contains(&code) {
            t.success.fetch_add(1, Relaxed);
            t.consecutive_5xx.store(0, Relaxed);
            t.consecutive_gateway.store(0, Relaxed);
            return None;
        }
        let mut found = None;
        if matches!(code, 502..=504) {
            let n = t.consecutive_gateway.fetch_add(1, Relaxed) + 1;
            if n == self.cfg.consecutive_gateway_failure {
                found = Some(Ejection::ConsecutiveGatewayFailure);
            }
        } else {
            t.consecutive_gateway.store(0, Relaxed);
        }
        let n = t.consecutive_5xx.fetch_add(1, Relaxed) + 1;
        if n == self.cfg.consecutive_5xx {
            found = Some(Ejection::Consecutive5xx);
        }
        found
    }

    /// Counts a detected ejection and ejects `host` when enforced and while fewer than
    /// `max_ejection_percent` of `host_count` hosts are ejected. True when the host was ejected.
    pub fn eject(
        &self,
        host: &HostCounters,
        kind: Ejection,
        host_count: usize,
        now: Instant,
    ) -> bool {
        let mut st = self.lock();
        self.eject_locked(&mut st, host, kind, host_count, now, fastrand::u32(..100))
    }

    fn eject_locked(
        &self,
        st: &mut State,
        host: &HostCounters,
        kind: Ejection,
        host_count: usize,
        now: Instant,
        roll: u32,
    ) -> bool {
        if host.ejected.load(Relaxed) {
            return false;
        }
        let (detected, enforced, enforcing) = self.kind_stats(kind);
        self.stats.control_inc(detected);
        self.stats.control_inc(Control::EjectionsTotal);
        match kind {
            Ejection::Consecutive5xx => self.stats.control_inc(Control::EjectionsConsecutive5xx),
            Ejection::SuccessRate => self.stats.control_inc(Control::EjectionsSuccessRate),
            _ => {}
        }
        // Envoy compares the share already ejected, so one host is always ejectable (while
        // max_ejection_percent > 0).
        let max_pct = f64::from(self.cfg.max_ejection_percent.min(100));
        let pct = 100.0 * st.active as f64 / host_count.max(1) as f64;
        if pct >= max_pct {
            self.stats.control_inc(Control::EjectionsOverflow);
            return false;
        }
        if roll >= enforcing.min(100) {
            return false;
        }
        self.stats.control_inc(enforced);
        self.stats.control_inc(Control::EjectionsEnforcedTotal);
        let track = st.hosts.entry(host.id).or_default();
        track.backoff += 1;
        track.ejected_at = Some(now);
        host.ejected.store(true, Relaxed);
        st.active += 1;
        self.stats.set_global(Global::EjectionsActive, st.active);
        true
    }

    fn kind_stats(&self, kind: Ejection) -> (Control, Control, u32) {
        let c = &self.cfg;
        match kind {
            Ejection::Consecutive5xx => (
                Control::DetectedConsecutive5xx,
                Control::EnforcedConsecutive5xx,
                c.enforcing_consecutive_5xx,
            ),
            Ejection::ConsecutiveGatewayFailure => (
                Control::DetectedGatewayFailure,
                Control::EnforcedGatewayFailure,
                c.enforcing_consecutive_gateway_failure,
            ),
            Ejection::ConsecutiveLocalOriginFailure => (
                Control::DetectedLocalOriginFailure,
                Control::EnforcedLocalOriginFailure,
                c.enforcing_consecutive_local_origin_failure,
            ),
            Ejection::SuccessRate => (
                Control::DetectedSuccessRate,
                Control::EnforcedSuccessRate,
                c.enforcing_success_rate,
            ),
            Ejection::LocalOriginSuccessRate => (
                Control::DetectedLocalOriginSuccessRate,
                Control::EnforcedLocalOriginSuccessRate,
                c.enforcing_local_origin_success_rate,
            ),
            Ejection::FailurePercentage => (
                Control::DetectedFailurePercentage,
                Control::EnforcedFailurePercentage,
                c.enforcing_failure_percentage,
            ),
            Ejection::LocalOriginFailurePercentage => (
                Control::DetectedLocalOriginFailurePercentage,
                Control::EnforcedLocalOriginFailurePercentage,
                c.enforcing_failure_percentage_local_origin,
            ),
        }
    }

    /// The interval timer: a no-op until `interval` has passed since the last run. Returns
    /// true when a host was ejected or returned (the balancer must be rebuilt).
    pub fn tick(&self, hosts: &[Host], now: Instant) -> bool {
        let mut st = self.lock();
        let interval = Duration::from_millis(self.cfg.interval_ms.max(1));
        match st.next_interval {
            None => {
                st.next_interval = Some(now + interval);
                return false;
            }
            Some(due) if now < due => return false,
            Some(_) => st.next_interval = Some(now + interval),
        }
        let mut changed = self.uneject(&mut st, hosts, now);
        changed |= self.rates(&mut st, hosts, now, false);
        if self.cfg.split_external_local_origin_errors {
            changed |= self.rates(&mut st, hosts, now, true);
        }
        for h in hosts {
            let t = &h.counters.outlier;
            for a in [&t.total, &t.success, &t.local_total, &t.local_success] {
                a.store(0, Relaxed);
            }
        }
        // Forget hosts that left the cluster.
        st.hosts
            .retain(|id, _| hosts.iter().any(|h| h.counters.id == *id));
        changed
    }

    /// Returns hosts whose ejection time passed; hosts healthy for an interval lower their
    /// back-off by one (Envoy's `checkHostForUneject`).
    fn uneject(&self, st: &mut State, hosts: &[Host], now: Instant) -> bool {
        let base = self.cfg.base_ejection_time_ms;
        let max = self.cfg.max_ejection_time_ms.max(base);
        let mut changed = false;
        for h in hosts {
            let Some(track) = st.hosts.get_mut(&h.counters.id) else {
                continue;
            };
            let Some(at) = track.ejected_at else {
                track.backoff = track.backoff.saturating_sub(1);
                continue;
            };
            let ejected_for = (base * u64::from(track.backoff)).min(max);
            if now.saturating_duration_since(at) >= Duration::from_millis(ejected_for) {
                track.ejected_at = None;
                h.counters.ejected.store(false, Relaxed);
                let t = &h.counters.outlier;
                t.consecutive_5xx.store(0, Relaxed);
                t.consecutive_gateway.store(0, Relaxed);
                t.consecutive_local.store(0, Relaxed);
                st.active = st.active.saturating_sub(1);
                changed = true;
            }
        }
        self.stats.set_global(Global::EjectionsActive, st.active);
        changed
    }

    /// Success-rate and failure-percentage ejections over this interval's window.
    fn rates(&self, st: &mut State, hosts: &[Host], now: Instant, local: bool) -> bool {
        let c = &self.cfg;
        let mut sr_hosts: Vec<(&Host, f64)> = Vec::new();
        let mut fp_hosts: Vec<(&Host, f64)> = Vec::new();
        for h in hosts {
            if h.counters.ejected.load(Relaxed) {
                continue;
            }
            let t = &h.counters.outlier;
            let (total, success) = if local {
                (t.local_total.load(Relaxed), t.local_success.load(Relaxed))
            } else {
                (t.total.load(Relaxed), t.success.load(Relaxed))
            };
            if total == 0 {
                continue;
            }
            let rate = 100.0 * success.min(total) as f64 / total as f64;
            if total >= u64::from(c.success_rate_request_volume) {
                sr_hosts.push((h, rate));
            }
            if total >= u64::from(c.failure_percentage_request_volume) {
                fp_hosts.push((h, rate));
            }
        }
        let n = hosts.len();
        let mut changed = false;
        if !sr_hosts.is_empty() && sr_hosts.len() >= c.success_rate_minimum_hosts as usize {
            let rates: Vec<f64> = sr_hosts.iter().map(|(_, r)| *r).collect();
            let threshold = success_rate_threshold(&rates, c.success_rate_stdev_factor);
            let kind = if local {
                Ejection::LocalOriginSuccessRate
            } else {
                Ejection::SuccessRate
            };
            for (h, rate) in &sr_hosts {
                if *rate < threshold {
                    let roll = fastrand::u32(..100);
                    changed |= self.eject_locked(st, &h.counters, kind, n, now, roll);
                }
            }
        }
        if !fp_hosts.is_empty() && fp_hosts.len() >= c.failure_percentage_minimum_hosts as usize {
            let kind = if local {
                Ejection::LocalOriginFailurePercentage
            } else {
                Ejection::FailurePercentage
            };
            for (h, rate) in &fp_hosts {
                if 100.0 - rate >= f64::from(c.failure_percentage_threshold) {
                    let roll = fastrand::u32(..100);
                    changed |= self.eject_locked(st, &h.counters, kind, n, now, roll);
                }
            }
        }
        changed
    }

    /// Active ejections (for tests and `/clusters`).
    pub fn active(&self) -> u64 {
        self.lock().active
    }
}

/// Envoy's `successRateEjectionThreshold`: mean − (stdev_factor / 1000) × population stdev.
pub fn success_rate_threshold(rates: &[f64], stdev_factor: u32) -> f64 {
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    mean - f64::from(stdev_factor) / 1000.0 * variance.sqrt()
}

#[cfg(test)]
#[path = "outlier_tests.rs"]
mod tests;
