//! Test builders: a scripted upstream HTTP/1.1 server, a raw HTTP/1.1 client (tokio),
//! snapshot builders and stats helpers.
#![allow(dead_code)]
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use meshcore_fastpath::engine::Engine;
use serde_json::{Value, json};

/// What the upstream received: the head (as text) and the decoded body.
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

/// An upstream that answers `200` echoing the body (`/hang` never answers, `/close` answers
/// with `connection: close`, `/chunked` answers chunked, `/eof` answers close-delimited,
/// `/garbage` answers garbage, `/reset` closes without answering, `/partial` sends half a
/// head and closes, `/then-close` answers keep-alive and then closes the idle connection).
pub async fn upstream() -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (tx, seen) = mpsc::unbounded_channel();
    let acc = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            acc.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, tx.clone()));
        }
    });
    Upstream {
        addr,
        accepted,
        seen,
    }
}

async fn serve(mut s: TcpStream, tx: mpsc::UnboundedSender<Seen>) {
    let mut buf = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut s, &mut buf).await else {
            return;
        };
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let _ = tx.send(Seen {
            head: head.clone(),
            body: body.clone(),
        });
        let mut payload = b"echo:".to_vec();
        payload.extend_from_slice(&body);
        let resp: Vec<u8> = match path.as_str() {
            "/hang" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            "/reset" => return,
            "/partial" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-le").await;
                return;
            }
            "/then-close" => {
                let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                let _ = s.write_all(r).await;
                return;
            }
            "/garbage" => b"HTTP/1.1 2x0 Nope\r\n\r\n".to_vec(),
            "/close" => {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                    payload.len()
                )
                .into_bytes();
                r.extend_from_slice(&payload);
                let _ = s.write_all(&r).await;
                return;
            }
            "/eof" => {
                let mut r = b"HTTP/1.1 200 OK\r\nserver: up\r\n\r\n".to_vec();
                r.extend_from_slice(&payload);
                let _ = s.write_all(&r).await;
                return;
            }
            "/chunked" => {
                let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                r.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
                r.extend_from_slice(&payload);
                r.extend_from_slice(b"\r\n0\r\n\r\n");
                r
            }
            _ => {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nserver: up\r\nx-up: 1\r\ncontent-length: {}\r\n\r\n",
                    payload.len()
                )
                .into_bytes();
                r.extend_from_slice(&payload);
                r
            }
        };
        if s.write_all(&resp).await.is_err() {
            return;
        }
    }
}

/// Reads one request (head + content-length or chunked body) from `s`.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let head_end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        read_some(s, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end);
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("transfer-encoding: chunked") {
        loop {
            let line_end = loop {
                if let Some(p) = find(buf, b"\r\n") {
                    break p;
                }
                read_some(s, buf).await?;
            };
            let size_txt = String::from_utf8_lossy(&buf[..line_end]).to_string();
            let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            if size == 0 {
                while find(buf, b"\r\n").is_none() {
                    read_some(s, buf).await?;
                }
                let p = find(buf, b"\r\n")?;
                buf.drain(..p + 2);
                break;
            }
            while buf.len() < size + 2 {
                read_some(s, buf).await?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(cl) = header_value(&lower, "content-length") {
        let n: usize = cl.parse().ok()?;
        while buf.len() < n {
            read_some(s, buf).await?;
        }
        body = buf.drain(..n).collect();
    }
    Some((head, body))
}

async fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut tmp = [0u8; 4096];
    let n = s.read(&mut tmp).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&tmp[..n]);
    Some(())
}

pub fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn header_value(head_lower: &str, name: &str) -> Option<String> {
    head_lower.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// A raw client connection.
pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(port: u16) -> Client {
        Client {
            s: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.s.write_all(raw).await.unwrap();
    }

    /// Reads one response (`head_request`: no body expected).
    pub async fn read(&mut self, head_request: bool) -> Option<Resp> {
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            read_some(&mut self.s, &mut self.buf).await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_string();
        self.buf.drain(..head_end);
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let lower = head.to_ascii_lowercase();
        let mut body = Vec::new();
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        } else if lower.contains("transfer-encoding: chunked") {
            loop {
                while find(&self.buf, b"\r\n").is_none() {
                    read_some(&mut self.s, &mut self.buf).await?;
                }
                let p = find(&self.buf, b"\r\n")?;
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&self.buf[..p]).trim(), 16)
                        .ok()?;
                self.buf.drain(..p + 2);
                while self.buf.len() < size + 2 {
                    read_some(&mut self.s, &mut self.buf).await?;
                }
                if size == 0 {
                    self.buf.drain(..2);
                    break;
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
            }
        } else if let Some(cl) = header_value(&lower, "content-length") {
            let n: usize = cl.parse().ok()?;
            while self.buf.len() < n {
                read_some(&mut self.s, &mut self.buf).await?;
            }
            body = self.buf.drain(..n).collect();
        } else {
            while read_some(&mut self.s, &mut self.buf).await.is_some() {}
            body = std::mem::take(&mut self.buf);
        }
        Some(Resp { status, head, body })
    }

    /// Sends `raw` and reads one response.
    pub async fn exchange(&mut self, raw: &[u8]) -> Resp {
        self.send(raw).await;
        tokio::time::timeout(Duration::from_secs(10), self.read(raw.starts_with(b"HEAD")))
            .await
            .expect("response in time")
            .expect("a response")
    }

    /// True when the proxy closed the connection (EOF within the timeout).
    pub async fn closed(&mut self) -> bool {
        let mut tmp = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut tmp)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// A snapshot with one listener on 127.0.0.1:0 (HCM `stat_prefix` "ingress") whose single
/// virtual host `*` has `routes`; `hcm_extra` fields are merged into the connection manager
/// and `top_extra` into the snapshot.
pub fn one_listener(routes: Value, hcm_extra: Value, clusters: Value, top_extra: Value) -> Value {
    let mut hcm = json!({
        "stat_prefix": "ingress",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
    });
    merge(&mut hcm, hcm_extra);
    let mut snap = json!({
        "listeners": [{
            "name": "ingress",
            "address": "127.0.0.1",
            "port": 0,
            "filter_chains": [{"filter": {"http_connection_manager": hcm}}],
        }],
        "clusters": clusters,
    });
    merge(&mut snap, top_extra);
    snap
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(dst), Value::Object(src)) = (into.as_object_mut(), extra) {
        dst.extend(src);
    }
}

/// A route forwarding `prefix` to `cluster` (extra route action fields merged in).
pub fn forward(prefix: &str, cluster: &str, action_extra: Value) -> Value {
    let mut action = json!({"target": {"cluster": cluster}});
    merge(&mut action, action_extra);
    json!({"match": {"path": {"prefix": prefix}}, "action": {"route": action}})
}

/// A cluster of one 127.0.0.1 endpoint (extra cluster fields merged in).
pub fn cluster(name: &str, port: u16, extra: Value) -> Value {
    let mut c = json!({"name": name, "endpoints": [{"address": "127.0.0.1", "port": port}]});
    merge(&mut c, extra);
    c
}

/// An engine with 1 worker (so connection reuse is deterministic) serving `snapshot`; the
/// listener's port.
pub fn start_engine(snapshot: &Value) -> (Engine, u16) {
    let engine = Engine::new(1).unwrap();
    engine
        .apply(&serde_json::to_vec(snapshot).unwrap())
        .unwrap();
    let port = engine.listener_ports()[0].1;
    (engine, port)
}

pub fn stats(engine: &Engine) -> Value {
    serde_json::from_slice(&engine.stats()).unwrap()
}

/// Stats once `total` requests completed and none is active (stats of a request are settled
/// just after its response is written).
pub async fn settled(engine: &Engine, total: u64) -> Value {
    for _ in 0..500 {
        let s = stats(engine);
        let done = s["counters"]["http.ingress.downstream_rq_completed"]
            .as_u64()
            .unwrap_or(0);
        if done >= total && s["gauges"]["http.ingress.downstream_rq_active"] == 0 {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stats(engine)
}

/// Polls until `cond` holds on the stats (at most 5 s); the last stats either way.
pub async fn stats_until(engine: &Engine, cond: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let s = stats(engine);
        if cond(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stats(engine)
}

pub fn counter(v: &Value, name: &str) -> u64 {
    v["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}
