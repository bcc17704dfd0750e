//! The TCP output: a raw byte stream to any number of clients, the way ESP serial bridges and
//! ser2net in raw mode serve a meter.
//!
//! Each client has its own bounded queue of whole telegrams. The pacer decides at a telegram's
//! first byte whether a client gets it: a client whose queue is full misses that telegram
//! entirely (counted), so a slow or stalled client never slows the others, never makes memory
//! grow, and never receives a partial telegram. A client joining mid-telegram starts with the
//! next one. A Request drop still cuts every client's telegram, because that is what the meter
//! does.
//!
//! No client can lock the others out: one whose queue stays full for three intervals (at least
//! [`MIN_EVICT_AFTER`]) is disconnected, one that closes its side is let go at once, and when
//! `--max-clients` are connected a newcomer takes the place of the client that has been stuck
//! longest; only when every client keeps up is the newcomer refused. All of it is counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::pacer::{Outgoing, Sink};

/// Kernel send buffer per client. Small, like a serial bridge's: a stalled client then shows up
/// as dropped telegrams within seconds instead of hiding megabytes in socket buffers.
const SEND_BUFFER: usize = 16 * 1024;

/// The least time a client's queue must stay full before it is disconnected, so that at high
/// `--speed` a reader on a busy machine is not dropped for a hiccup.
pub const MIN_EVICT_AFTER: Duration = Duration::from_secs(2);

/// The clients of one meter's TCP output.
#[derive(Debug)]
pub struct Hub {
    clients: Mutex<Vec<Arc<Client>>>,
    /// Telegrams a client may have queued (started and not yet written) before it misses some.
    max_queue: usize,
    max_clients: usize,
    /// How long a client's queue may stay full before it is disconnected.
    evict_after: Duration,
    next_id: AtomicU64,
    /// Connections refused because `max_clients` were connected and all kept up.
    pub refused: AtomicU64,
    /// Clients that connected since the start.
    pub accepted: AtomicU64,
    /// Clients disconnected because their queue stayed full for `evict_after`.
    pub evicted_stalled: AtomicU64,
    /// Stuck clients disconnected to make room for a newcomer.
    pub evicted_for_room: AtomicU64,
}

#[derive(Debug)]
struct Client {
    id: u64,
    peer: SocketAddr,
    queue: Mutex<Queue>,
    notify: Notify,
    /// Ends the client's tasks: it was evicted or closed its side.
    kill: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    pieces: VecDeque<Piece>,
    /// Telegrams begun for this client and not yet written to the socket.
    telegrams: usize,
    /// Whether this client gets the telegram now on the line.
    receiving: bool,
    /// Telegrams this client missed because its queue was full.
    dropped: u64,
    /// Telegrams written to this client's socket.
    written: u64,
    /// The most telegrams ever queued at once.
    high_water: usize,
    /// Since when the queue has been full (this client missing telegrams).
    full_since: Option<Instant>,
    closed: bool,
}

#[derive(Debug)]
enum Piece {
    Bytes(Arc<[u8]>, Range<usize>),
    End,
}

impl Hub {
    /// A hub whose clients may queue `max_queue` telegrams; one whose queue stays full for three
    /// of `wall_interval` (at least [`MIN_EVICT_AFTER`]) is disconnected.
    pub fn new(max_queue: usize, max_clients: usize, wall_interval: Duration) -> Arc<Hub> {
        Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            max_queue: max_queue.max(1),
            max_clients,
            evict_after: wall_interval.saturating_mul(3).max(MIN_EVICT_AFTER),
            next_id: AtomicU64::new(1),
            refused: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            evicted_stalled: AtomicU64::new(0),
            evicted_for_room: AtomicU64::new(0),
        })
    }

    /// Disconnects a client: its tasks end and it leaves the list at once.
    fn evict(&self, c: &Client, q: &mut Queue) {
        q.closed = true;
        q.pieces.clear();
        c.kill.notify_one();
    }

    /// When full, the client stuck longest (its queue full the longest), evicted to make room;
    /// false when every client keeps up.
    fn make_room(&self) -> bool {
        let clients = self.clients();
        let stuck = clients
            .iter()
            .filter_map(|c| {
                let q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.full_since.filter(|_| !q.closed).map(|since| (since, Arc::clone(c)))
            })
            .min_by_key(|(since, _)| *since);
        match stuck {
            Some((_, c)) => {
                let mut q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
                self.evict(&c, &mut q);
                self.evicted_for_room.fetch_add(1, Atomic::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Clients still connected (evicted ones may not have left the list yet).
    pub fn connected(&self) -> usize {
        self.clients().iter().filter(|c| !c.queue.lock().unwrap_or_else(|e| e.into_inner()).closed).count()
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clients and their counters, for the control API.
    pub fn to_json(&self) -> serde_json::Value {
        let clients: Vec<serde_json::Value> = self
            .clients()
            .iter()
            .map(|c| {
                let q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
                serde_json::json!({
                    "id": c.id,
                    "peer": c.peer.to_string(),
                    "queued_telegrams": q.telegrams,
                    "queue_high_water": q.high_water,
                    "queue_limit": self.max_queue,
                    "written_telegrams": q.written,
                    "dropped_telegrams": q.dropped,
                })
            })
            .collect();
        serde_json::json!({
            "clients": clients,
            "accepted": self.accepted.load(Atomic::Relaxed),
            "refused_max_clients": self.refused.load(Atomic::Relaxed),
            "evicted_stalled": self.evicted_stalled.load(Atomic::Relaxed),
            "evicted_for_room": self.evicted_for_room.load(Atomic::Relaxed),
        })
    }

    /// The pacer-side end of this hub.
    pub fn sink(self: &Arc<Self>) -> HubSink {
        HubSink { hub: Arc::clone(self), receivers: Vec::new() }
    }

    /// Accepts clients for ever; each gets a writer task.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, quiet: bool) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("p1sim run: tcp: cannot accept a client: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if self.connected() >= self.max_clients {
                // Clients that just closed may not have been let go yet: give their tasks a moment.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if self.connected() >= self.max_clients && !self.make_room() {
                // A raw stream has no way to say why; closing is what a full serial bridge does.
                self.refused.fetch_add(1, Atomic::Relaxed);
                if !quiet {
                    eprintln!(
                        "p1sim run: tcp: refused {peer}: --max-clients {} reached and every client keeps up",
                        self.max_clients
                    );
                }
                drop(stream);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, SEND_BUFFER);
            let client = Arc::new(Client {
                id: self.next_id.fetch_add(1, Atomic::Relaxed),
                peer,
                queue: Mutex::new(Queue::default()),
                notify: Notify::new(),
                kill: Notify::new(),
            });
            self.accepted.fetch_add(1, Atomic::Relaxed);
            self.clients().push(Arc::clone(&client));
            if !quiet {
                log::info!("tcp: {peer} connected ({} client(s))", self.connected());
            }
            let hub = Arc::clone(&self);
            tokio::spawn(async move {
                client_loop(Arc::clone(&client), stream).await;
                client.queue.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
                hub.clients().retain(|c| c.id != client.id);
                if !quiet {
                    log::info!("tcp: {peer} disconnected ({} client(s))", hub.connected());
                }
            });
        }
    }
}

/// Writes a client's queue to its socket until the socket fails, the client closes its side or
/// it is evicted. Whatever the client sends is read and ignored on a separate task, so it can
/// never fill our receive buffer; the end of its input (it closed the connection, or at least
/// its sending side) ends the client at once, so a closed client never holds a place.
async fn client_loop(client: Arc<Client>, stream: TcpStream) {
    let (mut rd, mut wr) = stream.into_split();
    let reader = Arc::clone(&client);
    let drain = tokio::spawn(async move {
        let mut ignored = [0u8; 256];
        while let Ok(n) = rd.read(&mut ignored).await {
            if n == 0 {
                break;
            }
        }
        reader.kill.notify_one();
    });
    'outer: loop {
        tokio::select! {
            () = client.notify.notified() => {}
            () = client.kill.notified() => break 'outer,
        }
        loop {
            let piece = client.queue.lock().unwrap_or_else(|e| e.into_inner()).pieces.pop_front();
            match piece {
                None => break,
                Some(Piece::Bytes(bytes, range)) => {
                    // A stalled client parks here; its queue fills and it starts missing telegrams.
                    tokio::select! {
                        r = wr.write_all(&bytes[range]) => if r.is_err() { break 'outer },
                        () = client.kill.notified() => break 'outer,
                    }
                }
                Some(Piece::End) => {
                    let mut q = client.queue.lock().unwrap_or_else(|e| e.into_inner());
                    q.telegrams = q.telegrams.saturating_sub(1);
                    q.written += 1;
                }
            }
        }
    }
    drain.abort();
}

/// The pacer's handle on a hub: decides per telegram which clients get it.
#[derive(Debug)]
pub struct HubSink {
    hub: Arc<Hub>,
    receivers: Vec<Arc<Client>>,
}

impl HubSink {
    fn push(&self, piece: impl Fn() -> Piece) {
        for c in &self.receivers {
            let mut q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.closed {
                continue;
            }
            q.pieces.push_back(piece());
            drop(q);
            c.notify.notify_one();
        }
    }
}

impl Sink for HubSink {
    fn begin(&mut self, _t: &Outgoing, _bytes: &Arc<[u8]>) {
        self.receivers.clear();
        let max = self.hub.max_queue;
        let now = Instant::now();
        for c in self.hub.clients().iter() {
            let mut q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.closed {
                continue;
            }
            if q.telegrams >= max {
                q.dropped += 1;
                q.receiving = false;
                let since = *q.full_since.get_or_insert(now);
                if now.duration_since(since) >= self.hub.evict_after {
                    self.hub.evict(c, &mut q);
                    self.hub.evicted_stalled.fetch_add(1, Atomic::Relaxed);
                }
                continue;
            }
            q.full_since = None;
            q.receiving = true;
            q.telegrams += 1;
            q.high_water = q.high_water.max(q.telegrams);
            drop(q);
            self.receivers.push(Arc::clone(c));
        }
    }

    fn write(&mut self, bytes: &Arc<[u8]>, range: Range<usize>) {
        self.push(|| Piece::Bytes(Arc::clone(bytes), range.clone()));
    }

    fn end(&mut self, _complete: bool) {
        // A telegram cut by Request still ends here: the client has what was on the line.
        self.push(|| Piece::End);
        for c in self.receivers.drain(..) {
            c.queue.lock().unwrap_or_else(|e| e.into_inner()).receiving = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: u64) -> Arc<Client> {
        Arc::new(Client {
            id,
            peer: "127.0.0.1:1".parse().unwrap(),
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            kill: Notify::new(),
        })
    }

    fn telegram() -> Outgoing {
        Outgoing { meter: 0, seq: 0, at: 0, due: Instant::now(), bytes: Arc::from(&b"/X!"[..]) }
    }

    #[test]
    fn a_client_full_for_the_eviction_time_is_disconnected_and_counted() {
        let hub = Hub::new(1, 10, Duration::ZERO);
        assert_eq!(hub.evict_after, MIN_EVICT_AFTER, "never less than the floor");
        let hub = Arc::new(Hub { evict_after: Duration::ZERO, ..Arc::into_inner(hub).unwrap() });
        let (slow, healthy) = (client(1), client(2));
        hub.clients().extend([Arc::clone(&slow), Arc::clone(&healthy)]);
        let mut sink = hub.sink();
        let t = telegram();
        for _ in 0..3 {
            sink.begin(&t, &t.bytes);
            sink.end(true);
            // The healthy client writes its telegram out at once.
            let mut q = healthy.queue.lock().unwrap();
            q.telegrams = 0;
            q.pieces.clear();
        }
        assert!(slow.queue.lock().unwrap().closed, "evicted");
        assert!(!healthy.queue.lock().unwrap().closed);
        assert_eq!(hub.evicted_stalled.load(Atomic::Relaxed), 1);
        assert_eq!(hub.connected(), 1);
    }

    #[test]
    fn a_newcomer_takes_the_place_of_a_stuck_client_never_of_one_that_keeps_up() {
        let hub = Hub::new(1, 2, Duration::from_secs(1));
        let (a, b) = (client(1), client(2));
        hub.clients().extend([Arc::clone(&a), Arc::clone(&b)]);
        assert!(!hub.make_room(), "both keep up: the newcomer is refused");
        b.queue.lock().unwrap().full_since = Some(Instant::now());
        assert!(hub.make_room());
        assert!(b.queue.lock().unwrap().closed && !a.queue.lock().unwrap().closed);
        assert_eq!(hub.evicted_for_room.load(Atomic::Relaxed), 1);
        assert_eq!(hub.connected(), 1);
    }

    #[test]
    fn a_full_queue_misses_whole_telegrams_and_never_grows() {
        let hub = Hub::new(2, 10, Duration::from_secs(1));
        let slow = client(1);
        hub.clients().push(Arc::clone(&slow));
        let mut sink = hub.sink();
        let t = Outgoing { meter: 0, seq: 0, at: 0, due: std::time::Instant::now(), bytes: Arc::from(&b"/X!"[..]) };
        let bytes = Arc::clone(&t.bytes);
        for _ in 0..5 {
            sink.begin(&t, &bytes);
            sink.write(&bytes, 0..1);
            sink.write(&bytes, 1..3);
            sink.end(true);
        }
        let q = slow.queue.lock().unwrap();
        assert_eq!(q.telegrams, 2);
        assert_eq!(q.dropped, 3);
        // Two whole telegrams: two bytes pieces and an end each; nothing of the dropped ones.
        assert_eq!(q.pieces.len(), 6);
        assert!(matches!(q.pieces.back(), Some(Piece::End)));
    }
}
