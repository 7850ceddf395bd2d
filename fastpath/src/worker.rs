//! One worker thread: a current-thread tokio runtime with a LocalSet, fed by a command channel.
//! It owns its listening sockets, upstream pool, buffers and stats shard index.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{AbortHandle, LocalSet};

use crate::compiled::{Chosen, CompiledListener, ListenerHandle};
use crate::conn_info::ConnInfo;
use crate::listener::{MatchInputs, Pending};
use crate::pool::{BufferPool, UpstreamPool};
use crate::stats::sets::listener;

/// What the engine tells a worker.
pub enum Command {
    /// Start accepting on `socket` (this worker's SO_REUSEPORT socket of the listener).
    StartListener {
        handle: Arc<ListenerHandle>,
        socket: std::net::TcpListener,
    },
    /// Close the listener's socket; its idle connections close now, busy ones after their
    /// current request.
    StopListener { id: u64 },
    /// Stop accepting everywhere, close idle connections, finish the rest with
    /// `connection: close`.
    Drain,
    /// Close everything and end the thread.
    Stop,
}

struct ConnEntry {
    listener: u64,
    idle: Rc<Cell<bool>>,
    /// The connection's task (None only between registering and spawning it).
    abort: Option<AbortHandle>,
    /// Places the connection holds in its chain's `connection_limit`s: freed when the entry
    /// goes (the connection's guard removes it), so the connection's future carries none.
    _places: Vec<crate::tcp::connection_limit::LimitSlot>,
}

pub struct Worker {
    pub index: usize,
    pub buffers: BufferPool,
    pub pool: Rc<UpstreamPool>,
    pub draining: Cell<bool>,
    /// Open downstream connections (read by `Engine.active_connections`).
    active: Arc<AtomicI64>,
    accepting: RefCell<HashMap<u64, AbortHandle>>,
    conns: RefCell<HashMap<u64, ConnEntry>>,
    next_conn: Cell<u64>,
}

/// Removes a connection from its worker's table when its task ends (normally, by abort or by
/// panic).
pub struct ConnGuard {
    worker: Rc<Worker>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.worker.conns.borrow_mut().remove(&self.id);
        self.worker.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    fn new(index: usize, active: Arc<AtomicI64>) -> Worker {
        Worker {
            index,
            buffers: BufferPool::default(),
            pool: Rc::new(UpstreamPool::default()),
            draining: Cell::new(false),
            active,
            accepting: RefCell::new(HashMap::new()),
            conns: RefCell::new(HashMap::new()),
            next_conn: Cell::new(0),
        }
    }

    /// Takes a new connection: picks its filter chain now when the listener has no listener
    /// filters, else runs them first (`listener::inspect_then_start`, a task registered like
    /// a connection so drain and listener removal can close it while it waits).
    pub fn spawn_connection(
        self: &Rc<Self>,
        handle: Arc<ListenerHandle>,
        stream: TcpStream,
        peer: SocketAddr,
    ) {
        let compiled = handle.compiled.load_full();
        if let Some(max) = compiled.global_connection_limit
            && self.active.load(Ordering::Relaxed) >= max as i64
        {
            // The overload manager's global limit (all listeners, all workers).
            compiled
                .stats
                .inc(self.index, listener::Counter::DownstreamGlobalCxOverflow);
            return;
        }
        let mut local = handle.local_addr();
        if local.ip().is_unspecified() {
            // A wildcard listener: the address the client connected to.
            local = stream.local_addr().unwrap_or(local);
        }
        if compiled.filters.tls_inspector.is_none() {
            let inputs = MatchInputs::plain(peer, local);
            let info = ConnInfo::plain(peer, local);
            self.start_connection(handle, compiled, inputs, stream, info, None);
            return;
        }
        let pending = self.register(handle.id);
        // Waiting for a ClientHello holds no request: drain may close it.
        pending.idle.set(true);
        let id = pending.id;
        let task = tokio::task::spawn_local(crate::listener::inspect_then_start(
            self.clone(),
            handle,
            compiled,
            stream,
            peer,
            local,
            pending,
        ));
        if let Some(c) = self.conns.borrow_mut().get_mut(&id) {
            c.abort = Some(task.abort_handle());
        }
    }

    /// Counts a connection and enters it in the table (its guard takes it out).
    fn register(self: &Rc<Self>, listener: u64) -> Pending {
        let id = self.next_conn.get();
        self.next_conn.set(id + 1);
        self.active.fetch_add(1, Ordering::Relaxed);
        let idle = Rc::new(Cell::new(false));
        self.conns.borrow_mut().insert(
            id,
            ConnEntry {
                listener,
                idle: idle.clone(),
                abort: None,
                _places: Vec::new(),
            },
        );
        let guard = ConnGuard {
            worker: self.clone(),
            id,
        };
        Pending { id, idle, guard }
    }

    /// Starts a connection on its filter chain, chosen here from `inputs` (no chain: closed,
    /// `no_filter_chain_match`). The one place between chain selection and serving: a
    /// chain's transport socket (a TLS handshake) goes here, before `proxy::serve` /
    /// `tcp::serve`.
    pub fn start_connection(
        self: &Rc<Self>,
        handle: Arc<ListenerHandle>,
        compiled: Arc<CompiledListener>,
        inputs: MatchInputs,
        stream: TcpStream,
        info: ConnInfo,
        pending: Option<Pending>,
    ) {
        let Some(view) = compiled.select(&inputs).cloned() else {
            compiled
                .stats
                .inc(self.index, listener::Counter::NoFilterChainMatch);
            if let Some(logs) = &compiled.access_log {
                crate::tcp::log_no_chain(logs, &info, self.index);
            }
            return;
        };
        let inspected = compiled.filters.tls_inspector.is_some();
        if !view.network.admit(self.index) {
            // A network `local_ratelimit` had no token: close at once (Envoy's flag: URX).
            crate::tcp::refuse(&view, self.index);
            if let Some(started) = crate::tcp::refusal_start(&view) {
                let mut why = crate::tcp::Refusal::default();
                why.flags
                    .insert(crate::local_reply::ResponseFlag::UpstreamRetryLimitExceeded);
                crate::tcp::log_refused(&view, &info, inspected, &started, &why, self.index);
            }
            return;
        }
        let places = match view.network.acquire_places(self.index) {
            Ok(p) => p,
            Err(delay) => {
                // A `connection_limit` is full: close (after its delay), then log.
                crate::tcp::refuse(&view, self.index);
                let log = crate::tcp::refusal_start(&view).map(|started| {
                    let (view, w) = (view.clone(), self.index);
                    move || {
                        let why = crate::tcp::Refusal::default();
                        crate::tcp::log_refused(&view, &info, inspected, &started, &why, w);
                    }
                });
                crate::tcp::connection_limit::close_after(stream, delay, log);
                return;
            }
        };
        let Pending { id, idle, guard } = match pending {
            Some(p) => p,
            None => self.register(handle.id),
        };

        idle.set(false);
        let task = if view.tls.is_some() {
            // TLS termination: the handshake runs in the connection's own task.
            let chosen = Chosen {
                handle,
                listener: compiled,
                view,
                inputs: Box::new(inputs),
            };
            let serve = crate::tls::serve::serve(self.clone(), chosen, stream, info, idle, guard);
            tokio::task::spawn_local(serve)
        } else if view.network.tcp_proxy.is_some() {
            let tcp = crate::tcp::serve(self.clone(), view, stream.into(), info, guard);
            tokio::task::spawn_local(tcp)
        } else {
            let chosen = Chosen {
                handle,
                listener: compiled,
                view,
                inputs: Box::new(inputs),
            };
            tokio::task::spawn_local(crate::proxy::serve(
                self.clone(),
                chosen,
                stream.into(),
                info,
                idle,
                guard,
            ))
        };
        if let Some(c) = self.conns.borrow_mut().get_mut(&id) {
            c.abort = Some(task.abort_handle());
            c._places = places;
        }
    }

    fn close_idle(&self, listener: Option<u64>) {
        let victims: Vec<AbortHandle> = self
            .conns
            .borrow()
            .values()
            .filter(|c| c.idle.get() && listener.is_none_or(|l| l == c.listener))
            .filter_map(|c| c.abort.clone())
            .collect();
        for a in victims {
            a.abort();
        }
    }

    fn handle(self: &Rc<Self>, cmd: Command) -> bool {
        match cmd {
            Command::StartListener { handle, socket } => {
                let id = handle.id;
                let task = tokio::task::spawn_local(crate::listener::accept_loop(
                    self.clone(),
                    handle,
                    socket,
                ));
                if let Some(old) = self.accepting.borrow_mut().insert(id, task.abort_handle()) {
                    old.abort();
                }
            }
            Command::StopListener { id } => {
                if let Some(a) = self.accepting.borrow_mut().remove(&id) {
                    a.abort();
                }
                self.close_idle(Some(id));
            }
            Command::Drain => {
                self.draining.set(true);
                for (_, a) in self.accepting.borrow_mut().drain() {
                    a.abort();
                }
                self.pool.clear(true);
                self.close_idle(None);
            }
            Command::Stop => return false,
        }
        true
    }
}

/// The worker thread's body: runs until `Stop` (or the engine is dropped), then drops every
/// task, which closes every socket.
pub fn run(
    index: usize,
    active: Arc<AtomicI64>,
    mut rx: UnboundedReceiver<Command>,
    ready: std::sync::mpsc::Sender<std::io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let local = LocalSet::new();
    let worker = Rc::new(Worker::new(index, active));
    local.block_on(&rt, async {
        tokio::task::spawn_local(worker.pool.clone().run_sweeper());
        while let Some(cmd) = rx.recv().await {
            if !worker.handle(cmd) {
                break;
            }
        }
    });
    drop(local);
    worker.pool.clear(true);
}
