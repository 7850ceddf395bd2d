//! Seeded mutation fuzzing of the snapshot compiler: every corpus snapshot (real bootstraps
//! translated by meshcore's Python config path, `tests/config/snapshot_corpus.py`) applies
//! as is, and thousands of mutated copies (fields removed, values swapped for hostile
//! scalars, arrays emptied or grown) are either applied or refused with an error, never a
//! panic; the engine keeps serving its last good snapshot.
use std::path::PathBuf;

use meshcore_fastpath::engine::Engine;
use serde_json::{Value, json};

const ROUNDS_PER_FILE: usize = 600;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            out.push((path.display().to_string(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 3, "corpus missing: {}", dir.display());
    out
}

/// JSON pointers of every node.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn hostile(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(u64::MAX),
        5 => json!(i64::MIN),
        6 => json!(1e300),
        7 => json!(""),
        8 => json!("x".repeat(70_000)),
        9 => json!("a\r\nb\0c"),
        10 => json!("(((((((((("),
        11 => json!([]),
        12 => json!({}),
        _ => json!("*"),
    }
}

fn mutate(v: &mut Value, rng: &mut Rng) {
    let mut ptrs = Vec::new();
    pointers(v, String::new(), &mut ptrs);
    let at = ptrs[1 + rng.below(ptrs.len() - 1)].clone();
    let (parent_ptr, key) = at.rsplit_once('/').unwrap();
    let choice = rng.below(5);
    let replacement = hostile(rng);
    let Some(parent) = v.pointer_mut(parent_ptr) else {
        return;
    };
    match parent {
        Value::Object(m) if choice == 0 => {
            m.remove(&key.replace("~1", "/").replace("~0", "~"));
        }
        Value::Array(a) if choice == 0 => {
            if let Ok(i) = key.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        Value::Array(a) if choice == 1 => {
            if let Ok(i) = key.parse::<usize>()
                && i < a.len()
            {
                let dup = a[i].clone();
                a.push(dup);
            }
        }
        _ => {
            if let Some(slot) = v.pointer_mut(&at) {
                *slot = match (choice, &*slot) {
                    // Same type, other value: the compiler's checks, not serde's, decide.
                    (2, Value::Number(_)) => json!(rng.next() >> rng.below(64)),
                    (2, Value::String(s)) => json!(format!("{s}{s}")),
                    (2, Value::Bool(b)) => json!(!b),
                    _ => replacement,
                };
            }
        }
    }
}

/// Keeps the mutants off real ports: every listener binds 127.0.0.1 with a kernel port.
fn local_only(v: &mut Value) {
    if let Some(ls) = v.get_mut("listeners").and_then(Value::as_array_mut) {
        for l in ls {
            if let Some(o) = l.as_object_mut() {
                o.insert("address".into(), json!("127.0.0.1"));
                o.insert("port".into(), json!(0));
            }
        }
    }
}

/// Keeps the mutants' files out of the source tree: an access log path mutated to a relative
/// name is created in the working directory (empty files `*` and `((((((((((` once landed in
/// `fastpath/` and in a commit), so the test (the only one in this binary) runs in a scratch
/// directory of its own, removed at the end.
fn enter_scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshcore-snapshot-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::env::set_current_dir(&dir).expect("enter the scratch dir");
    dir
}

#[test]
fn mutated_snapshots_apply_or_fail_cleanly() {
    let scratch = enter_scratch_dir();
    let engine = Engine::new(1).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut applied, mut refused) = (0, 0);
    for (name, base) in corpus() {
        let mut good = base.clone();
        local_only(&mut good);
        let bytes = serde_json::to_vec(&good).unwrap();
        if let Err(e) = engine.apply(&bytes) {
            panic!("{name}: the unmutated corpus snapshot must apply: {e:?}");
        }
        for _ in 0..ROUNDS_PER_FILE {
            let mut m = base.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut m, &mut rng);
            }
            local_only(&mut m);
            let bytes = serde_json::to_vec(&m).unwrap();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.apply(&bytes))) {
                Ok(Ok(_)) => applied += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!(
                    "{name}: apply panicked on {}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
    }
    // Both outcomes happen: the mutations reach the compiler, not only serde.
    assert!(
        applied > 50 && refused > 50,
        "applied {applied}, refused {refused}"
    );
    engine.stop();
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let _ = std::fs::remove_dir_all(scratch);
}
