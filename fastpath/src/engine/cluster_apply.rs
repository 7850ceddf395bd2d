//! `Engine::apply_clusters`: a cluster change (CDS) applied in O(changed clusters +
//! listeners), every other applied cluster kept exactly as it is.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Engine, EngineError};
use crate::cluster::ClusterState;
use crate::config;

impl Engine {
    /// Applies a JSON snapshot whose `clusters` are the changed and added ones: a cluster
    /// takes the place of the applied one of the same name (kept as it is when its settings
    /// are unchanged, as `apply` keeps it), a new one goes after the others; the `removed`
    /// clusters are retired; every other applied cluster stays untouched (hosts with their
    /// health, counters, pools). The snapshot's listeners (all of them) are compiled
    /// against the resulting clusters and swapped in. Returns the generation; on error
    /// (a bad cluster, a route naming a cluster no longer there, a name both in `clusters`
    /// and `removed`, an unknown removed name) nothing changes.
    pub fn apply_clusters(&self, bytes: &[u8], removed: &[String]) -> Result<u64, EngineError> {
        let mut snap = config::parse(bytes).map_err(EngineError::Value)?;
        let mut ctl = self.lock();
        if ctl.stopped {
            return Err(EngineError::Stopped);
        }
        let changed = super::cluster_positions(&snap.clusters)?;
        let mut gone: HashSet<usize> = HashSet::new();
        for (i, name) in removed.iter().enumerate() {
            if changed.contains_key(name.as_str()) {
                return Err(EngineError::Value(format!(
                    "removed[{i}]: cluster {name:?} is also in clusters"
                )));
            }
            let at = ctl.by_name.get(name).copied().ok_or_else(|| {
                EngineError::Value(format!("removed[{i}]: no cluster {name:?} is applied"))
            })?;
            if !gone.insert(at) {
                return Err(EngineError::Value(format!(
                    "removed[{i}]: cluster {name:?} named twice"
                )));
            }
        }
        let mut endpoint_sets = Vec::new();
        let mut states = Vec::with_capacity(snap.clusters.len());
        for (i, c) in snap.clusters.iter().enumerate() {
            let path = format!("clusters[{i}]");
            states.push(self.cluster_state(&ctl, c, &path, &mut endpoint_sets)?);
        }

        // The new list: changed clusters in place, added ones at the end, removed ones out.
        let mut list: Vec<Arc<ClusterState>> = ctl.clusters.to_vec();
        let mut replaced: Vec<Arc<ClusterState>> = Vec::new();
        let mut added: Vec<usize> = Vec::new();
        for (i, c) in snap.clusters.iter().enumerate() {
            match ctl.by_name.get(&c.name) {
                Some(&at) => {
                    if !Arc::ptr_eq(&list[at], &states[i]) {
                        replaced.push(std::mem::replace(&mut list[at], states[i].clone()));
                    }
                }
                None => added.push(i),
            }
        }
        let retired: Vec<Arc<ClusterState>> = gone.iter().map(|&at| list[at].clone()).collect();
        if !gone.is_empty() {
            let mut at = 0;
            list.retain(|_| {
                at += 1;
                !gone.contains(&(at - 1))
            });
        }
        for &i in &added {
            list.push(states[i].clone());
        }
        let cluster_list: Arc<[Arc<ClusterState>]> = list.into();
        // Positions: unchanged unless clusters were removed (then counted anew, O(clusters)).
        let by_name: Option<HashMap<String, usize>> = (!gone.is_empty()).then(|| {
            cluster_list
                .iter()
                .enumerate()
                .map(|(at, c)| (c.name.clone(), at))
                .collect()
        });
        let first_added = cluster_list.len() - added.len();
        let added_at: HashMap<&str, usize> = added
            .iter()
            .enumerate()
            .map(|(k, &i)| (snap.clusters[i].name.as_str(), first_added + k))
            .collect();
        let prepared = {
            let lookup = |name: &str| match &by_name {
                Some(m) => m.get(name).copied(),
                None => added_at
                    .get(name)
                    .or_else(|| ctl.by_name.get(name))
                    .copied(),
            };
            let stat_name = |i: usize| cluster_list[i].cfg.stat_name().to_owned();
            let listeners = super::Listeners {
                listeners: &mut snap.listeners,
                local_address: &snap.local_address,
                global_downstream_max_connections: snap.global_downstream_max_connections,
            };
            self.prepare_listeners(&ctl, listeners, &cluster_list, &lookup, &stat_name)?
        };

        // Commit.
        for (c, set) in endpoint_sets {
            c.install(set);
        }
        self.commit_listeners(&mut ctl, &snap, prepared, &cluster_list);
        for old in replaced.iter().chain(&retired) {
            old.retire();
        }
        for c in &snap.clusters {
            ctl.applied_endpoints
                .insert(c.name.clone(), c.endpoints.clone());
        }
        for name in removed {
            ctl.applied_endpoints.remove(name);
        }
        // The ticker holds only clusters with outlier detection: its list changes only when
        // one of those is replaced, added or retired (else no O(clusters) scan).
        let outlier_touched = replaced
            .iter()
            .chain(&retired)
            .chain(&states)
            .any(|c| c.outlier.is_some());
        if outlier_touched {
            ctl.ticker.set(&cluster_list);
        }
        match by_name {
            Some(m) => ctl.by_name = m,
            None => {
                for (name, at) in added_at {
                    ctl.by_name.insert(name.to_string(), at);
                }
            }
        }
        ctl.clusters = cluster_list;
        ctl.generation += 1;
        Ok(ctl.generation)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use serde_json::{Value, json};

    use super::super::{Engine, EngineError};
    use crate::cluster::ClusterState;

    fn cluster(name: &str, timeout_ms: u64, port: u16) -> Value {
        json!({
            "name": name,
            "connect_timeout_ms": timeout_ms,
            "endpoints": [{"address": "127.0.0.1", "port": port}],
        })
    }

    /// One listener on 127.0.0.1:0 whose `/<name>` routes go to each cluster in `routed`.
    fn snapshot(clusters: Vec<Value>, routed: &[&str]) -> Vec<u8> {
        let routes: Vec<Value> = routed
            .iter()
            .map(|c| {
                json!({"match": {"path": {"prefix": format!("/{c}")}},
                       "action": {"route": {"target": {"cluster": c}}}})
            })
            .collect();
        serde_json::to_vec(&json!({
            "listeners": [{
                "name": "ingress",
                "address": "127.0.0.1",
                "port": 0,
                "filter_chains": [{"filter": {"http_connection_manager": {
                    "stat_prefix": "ingress",
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"], "routes": routes,
                    }]},
                }}}],
            }],
            "clusters": clusters,
        }))
        .unwrap()
    }

    fn applied(engine: &Engine) -> Vec<Arc<ClusterState>> {
        engine.lock().clusters.to_vec()
    }

    fn names(engine: &Engine) -> Vec<String> {
        applied(engine).iter().map(|c| c.name.clone()).collect()
    }

    /// The listener's view holds the engine's cluster list (the one `apply_*` swapped in).
    fn listener_sees_applied(engine: &Engine) -> bool {
        let ctl = engine.lock();
        let view = ctl.listeners[0].compiled.load();
        Arc::ptr_eq(&view.chains[0].clusters, &ctl.clusters)
    }

    fn started() -> (Engine, Vec<Arc<ClusterState>>) {
        let engine = Engine::new(1).unwrap();
        let all = vec![
            cluster("a", 1000, 1),
            cluster("b", 1000, 2),
            cluster("c", 1000, 3),
        ];
        engine.apply(&snapshot(all, &["a", "b", "c"])).unwrap();
        let before = applied(&engine);
        (engine, before)
    }

    #[test]
    fn a_changed_cluster_takes_its_place_and_the_others_stay_as_they_are() {
        let (engine, before) = started();
        let snap = snapshot(vec![cluster("b", 2500, 2)], &["a", "b", "c"]);
        assert_eq!(engine.apply_clusters(&snap, &[]).unwrap(), 2);
        let after = applied(&engine);
        assert_eq!(names(&engine), ["a", "b", "c"]);
        assert!(Arc::ptr_eq(&after[0], &before[0]));
        assert!(Arc::ptr_eq(&after[2], &before[2]));
        assert!(!Arc::ptr_eq(&after[1], &before[1]));
        assert_eq!(after[1].connect_timeout.as_millis(), 2500);
        assert!(before[1].removed.load(Ordering::Relaxed));
        assert!(!before[0].removed.load(Ordering::Relaxed));
        assert!(listener_sees_applied(&engine));
        // The same settings with other endpoints: the same state, its hosts swapped.
        let snap = snapshot(vec![cluster("b", 2500, 9)], &["a", "b", "c"]);
        engine.apply_clusters(&snap, &[]).unwrap();
        let again = applied(&engine);
        assert!(Arc::ptr_eq(&again[1], &after[1]));
        assert_eq!(again[1].hosts.load().hosts[0].addr.port(), 9);
        // Endpoint updates still find every cluster by name.
        engine.update_endpoints("c", b"[]").unwrap();
        assert!(before[2].hosts.load().hosts.is_empty());
    }

    #[test]
    fn an_added_cluster_goes_last_and_routes_reach_it() {
        let (engine, before) = started();
        let snap = snapshot(vec![cluster("d", 1000, 4)], &["a", "d"]);
        engine.apply_clusters(&snap, &[]).unwrap();
        let after = applied(&engine);
        assert_eq!(names(&engine), ["a", "b", "c", "d"]);
        for i in 0..3 {
            assert!(Arc::ptr_eq(&after[i], &before[i]));
        }
        assert!(listener_sees_applied(&engine));
        engine
            .update_endpoints("d", br#"[{"address": "127.0.0.1", "port": 5}]"#)
            .unwrap();
        assert_eq!(after[3].hosts.load().hosts[0].addr.port(), 5);
    }

    #[test]
    fn a_removed_cluster_is_retired_and_the_others_are_found_at_their_new_places() {
        let (engine, before) = started();
        let snap = snapshot(vec![cluster("d", 1000, 4)], &["b", "c", "d"]);
        engine.apply_clusters(&snap, &["a".to_string()]).unwrap();
        let after = applied(&engine);
        assert_eq!(names(&engine), ["b", "c", "d"]);
        assert!(Arc::ptr_eq(&after[0], &before[1]));
        assert!(Arc::ptr_eq(&after[1], &before[2]));
        assert!(before[0].removed.load(Ordering::Relaxed));
        match engine.update_endpoints("a", b"[]") {
            Err(EngineError::Key(name)) => assert_eq!(name, "a"),
            other => panic!("{other:?}"),
        }
        engine.update_endpoints("c", b"[]").unwrap();
        assert!(before[2].hosts.load().hosts.is_empty());
        engine.update_endpoints("d", b"[]").unwrap();
        assert!(after[2].hosts.load().hosts.is_empty());
        // A later whole apply finds them by name: unchanged ones keep their state.
        let all = vec![cluster("b", 1000, 2), cluster("c", 1000, 3)];
        engine.apply(&snapshot(all, &["b"])).unwrap();
        assert!(Arc::ptr_eq(&applied(&engine)[0], &before[1]));
    }

    #[test]
    fn a_refused_change_leaves_everything_as_it_was() {
        let (engine, before) = started();
        let refused = [
            // a route naming the cluster removed
            (
                snapshot(vec![], &["a", "b"]),
                vec!["b".to_string()],
                "unknown cluster \"b\"",
            ),
            // a name both changed and removed
            (
                snapshot(vec![cluster("b", 3000, 2)], &["a"]),
                vec!["b".to_string()],
                "also in clusters",
            ),
            // a removed name the engine does not have
            (
                snapshot(vec![], &["a"]),
                vec!["zz".to_string()],
                "removed[0]: no cluster \"zz\"",
            ),
            // a bad cluster among the changed ones
            (
                snapshot(vec![cluster("c", 0, 3), cluster("c", 5, 3)], &["a"]),
                vec![],
                "duplicate",
            ),
            // a route naming a cluster nobody has
            (
                snapshot(vec![cluster("a", 2000, 1)], &["nope"]),
                vec![],
                "unknown cluster \"nope\"",
            ),
        ];
        for (snap, removed, named) in refused {
            match engine.apply_clusters(&snap, &removed) {
                Err(EngineError::Value(m)) => assert!(m.contains(named), "{m}"),
                other => panic!("{other:?}"),
            }
            let after = applied(&engine);
            assert_eq!(after.len(), 3);
            for (a, b) in after.iter().zip(&before) {
                assert!(Arc::ptr_eq(a, b));
                assert!(!b.removed.load(Ordering::Relaxed));
            }
            assert_eq!(engine.lock().generation, 1);
            assert!(listener_sees_applied(&engine));
        }
    }
}
