//! The TCP output: a raw byte stream to any number of clients, the way ESP serial bridges and
//! ser2net in raw mode serve a meter.
//!
//! Each client has its own bounded queue of whole telegrams. The pacer decides at a telegram's
//! first byte whether a client gets it: a client whose queue is full misses that telegram
//! entirely (counted), so a slow or stalled client never slows the others, never makes memory
//! grow, and never receives a partial telegram. A client joining mid-telegram starts with the
//! next one. A Request drop still cuts every client's telegram, because that is what the meter
//! does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::pacer::{Outgoing, Sink};

/// Kernel send buffer per client. Small, like a serial bridge's: a stalled client then shows up
/// as dropped telegrams within seconds instead of hiding megabytes in socket buffers.
const SEND_BUFFER: usize = 16 * 1024;

/// The clients of one meter's TCP output.
#[derive(Debug)]
pub struct Hub {
    clients: Mutex<Vec<Arc<Client>>>,
    /// Telegrams a client may have queued (started and not yet written) before it misses some.
    max_queue: usize,
    max_clients: usize,
    next_id: AtomicU64,
    /// Connections refused because `max_clients` were connected.
    pub refused: AtomicU64,
    /// Clients that connected since the start.
    pub accepted: AtomicU64,
}

#[derive(Debug)]
struct Client {
    id: u64,
    peer: SocketAddr,
    queue: Mutex<Queue>,
    notify: Notify,
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
    closed: bool,
}

#[derive(Debug)]
enum Piece {
    Bytes(Arc<[u8]>, Range<usize>),
    End,
}

impl Hub {
    pub fn new(max_queue: usize, max_clients: usize) -> Arc<Hub> {
        Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            max_queue: max_queue.max(1),
            max_clients,
            next_id: AtomicU64::new(1),
            refused: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        })
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
            if self.clients().len() >= self.max_clients {
                // A raw stream has no way to say why; closing is what a full serial bridge does.
                self.refused.fetch_add(1, Atomic::Relaxed);
                if !quiet {
                    eprintln!("p1sim run: tcp: refused {peer}: --max-clients {} reached", self.max_clients);
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
            });
            self.accepted.fetch_add(1, Atomic::Relaxed);
            self.clients().push(Arc::clone(&client));
            let hub = Arc::clone(&self);
            tokio::spawn(async move {
                client_loop(&client, stream).await;
                client.queue.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
                hub.clients().retain(|c| c.id != client.id);
            });
        }
    }
}

/// Writes a client's queue to its socket until the socket fails. Whatever the client sends is
/// read and ignored on a separate task, so it can never fill our receive buffer; end of input is
/// not a disconnect (a client may half-close and keep reading), a failed write is.
async fn client_loop(client: &Client, stream: TcpStream) {
    let (mut rd, mut wr) = stream.into_split();
    let drain = tokio::spawn(async move {
        let mut ignored = [0u8; 256];
        while let Ok(n) = rd.read(&mut ignored).await {
            if n == 0 {
                break;
            }
        }
    });
    'outer: loop {
        client.notify.notified().await;
        loop {
            let piece = client.queue.lock().unwrap_or_else(|e| e.into_inner()).pieces.pop_front();
            match piece {
                None => break,
                Some(Piece::Bytes(bytes, range)) => {
                    // A stalled client parks here; its queue fills and it starts missing telegrams.
                    if wr.write_all(&bytes[range]).await.is_err() {
                        break 'outer;
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
        for c in self.hub.clients().iter() {
            let mut q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.closed {
                continue;
            }
            if q.telegrams >= max {
                q.dropped += 1;
                q.receiving = false;
                continue;
            }
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
        })
    }

    #[test]
    fn a_full_queue_misses_whole_telegrams_and_never_grows() {
        let hub = Hub::new(2, 10);
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
