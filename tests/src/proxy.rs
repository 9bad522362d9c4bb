//! A TCP proxy between the browser and the relay that can misbehave on command, the way proxies,
//! VPNs and sleeping laptops do: cut every connection, refuse new ones, or go silent while
//! keeping connections open (half-open: neither side learns anything is wrong).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct FaultyProxy {
    pub addr: SocketAddr,
    refusing: Arc<AtomicBool>,
    /// Bumped by `cut`: every connection opened before ends.
    generation: watch::Sender<u64>,
    /// While true, bytes are held, not forwarded (connections stay open).
    frozen: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl FaultyProxy {
    pub async fn start(upstream: SocketAddr) -> Result<FaultyProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let refusing = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (frozen, _) = watch::channel(false);
        let accept = {
            let refusing = refusing.clone();
            let generation = generation.clone();
            let frozen = frozen.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if refusing.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let cut = generation.subscribe();
                    let frozen = frozen.subscribe();
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(upstream).await {
                            pipe(client, server, cut, frozen).await;
                        }
                    });
                }
            })
        };
        Ok(FaultyProxy {
            addr,
            refusing,
            generation,
            frozen,
            accept,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every open connection (both sides see a reset).
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Closes new connections at once while true.
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Holds every byte in both directions while true, connections staying open.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mut cut: watch::Receiver<u64>,
    frozen: watch::Receiver<bool>,
) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = forward(client_read, server_write, frozen.clone());
    let down = forward(server_read, client_write, frozen);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
}

/// Copies one direction, waiting while frozen; ends when either side closes.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *frozen.borrow_and_update() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// The platform's router in front of several relay instances (Cloud Foundry's gorouter): each
/// new connection goes to the first instance that takes it, so a provider posting to one public
/// URL reaches whichever instance is alive. Connections wait until instances are known, so the
/// router's address can be configured before the instances behind it exist.
#[derive(Debug)]
pub struct Router {
    pub addr: SocketAddr,
    instances: watch::Sender<Vec<SocketAddr>>,
    accept: JoinHandle<()>,
}

impl Router {
    pub async fn start() -> Result<Router> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (instances, _) = watch::channel(Vec::<SocketAddr>::new());
        let accept = {
            let instances = instances.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mut known = instances.subscribe();
                    tokio::spawn(async move {
                        let upstreams = match known.wait_for(|list| !list.is_empty()).await {
                            Ok(list) => list.clone(),
                            Err(_) => return,
                        };
                        for upstream in upstreams {
                            if let Ok(server) = TcpStream::connect(upstream).await {
                                // Never cut nor frozen: the senders live as long as the pipe.
                                let (_never_cut, cut) = watch::channel(0u64);
                                let (_never_frozen, frozen) = watch::channel(false);
                                pipe(client, server, cut, frozen).await;
                                return;
                            }
                        }
                    });
                }
            })
        };
        Ok(Router {
            addr,
            instances,
            accept,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The instances behind the router, tried in this order.
    pub fn route_to(&self, instances: Vec<SocketAddr>) {
        self.instances.send_replace(instances);
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
