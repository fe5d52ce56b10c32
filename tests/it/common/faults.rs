//! A fault-injecting HTTP/1.1 proxy for the S3 tests: sizer's S3 endpoint is the proxy, the proxy forwards
//! to the real S3 server, and the test switches the fault at any time with [`FaultProxy::set`].
//!
//! Plain HTTP over loopback, one request at a time per client connection (keep-alive kept towards sizer).
//! Each forwarded request goes upstream on a fresh connection with `Connection: close`, so the reply is
//! simply everything until the server closes: the proxy never needs to understand a reply's framing,
//! only where its head ends. Requests are read whole (`Content-Length` or chunked) before anything is
//! decided, so a fault never leaves a request half-sent upstream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything untouched.
    None,
    /// Wait this long before forwarding each request (a latency spike).
    Latency(Duration),
    /// Forward, then send the reply's head and half its body and reset the connection (RST).
    ResetMidBody,
    /// Forward, then send the reply's head (its `Content-Length` unchanged) and half its body, and close
    /// the connection cleanly (FIN).
    TruncateBody,
    /// Forward, then send the reply's head and half its body, and nothing more: the connection stays open.
    StallMidBody,
    /// Answer `503 SlowDown` with S3's XML error body, without forwarding.
    SlowDown,
    /// Answer `500 InternalError` with S3's XML error body, without forwarding.
    InternalError,
    /// Nothing listens on the proxy's port: connecting is refused, open connections are closed.
    Dead,
    /// Accept and read requests, never answer.
    BlackHole,
}

#[derive(Debug, Clone, Copy)]
struct Setting {
    fault: Fault,
    /// Only requests with this method get the fault; the others are forwarded untouched.
    method: Option<&'static str>,
    /// How many more requests get the fault (`None`: all of them); the rest are forwarded untouched.
    remaining: Option<usize>,
}

struct Shared {
    upstream: SocketAddr,
    setting: Mutex<Setting>,
    /// Requests received, by method (counted whatever the fault).
    requests: Mutex<HashMap<String, usize>>,
    /// Connections holding a black-holed request right now.
    held: AtomicUsize,
    /// Bumped to close every open connection (the endpoint died, or the proxy is dropped).
    epoch: watch::Sender<u64>,
}

impl Shared {
    fn fault_for(&self, method: &str) -> Fault {
        let mut setting = self.setting.lock().unwrap();
        if setting.method.is_some_and(|only| only != method) {
            return Fault::None;
        }
        let fault = setting.fault;
        match &mut setting.remaining {
            Some(0) => Fault::None,
            Some(left) => {
                *left -= 1;
                fault
            }
            None => fault,
        }
    }

    fn close_connections(&self) {
        self.epoch.send_modify(|epoch| *epoch += 1);
    }
}

/// A running proxy; dropping it stops it and closes its connections.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl FaultProxy {
    /// A pass-through proxy on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let authority = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the fault proxy speaks plain HTTP; upstream is {upstream}"))
            .trim_end_matches('/');
        let upstream = tokio::net::lookup_host(authority)
            .await
            .expect("upstream resolves")
            .next()
            .expect("upstream has an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            setting: Mutex::new(Setting {
                fault: Fault::None,
                method: None,
                remaining: None,
            }),
            requests: Mutex::default(),
            held: AtomicUsize::new(0),
            epoch: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FaultProxy {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// The endpoint to give sizer: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to every request from now on.
    pub fn set(&self, fault: Fault) {
        self.apply(Setting {
            fault,
            method: None,
            remaining: None,
        });
    }

    /// Applies `fault` to requests with `method` only (`"PUT"`: write-backs); forwards the others.
    pub fn set_for(&self, method: &'static str, fault: Fault) {
        assert_ne!(
            fault,
            Fault::Dead,
            "a dead endpoint is dead for every method"
        );
        self.apply(Setting {
            fault,
            method: Some(method),
            remaining: None,
        });
    }

    /// Applies `fault` to the next `count` requests with `method`, then forwards everything again (a
    /// passing throttle).
    pub fn set_for_next(&self, method: &'static str, fault: Fault, count: usize) {
        assert_ne!(
            fault,
            Fault::Dead,
            "a dead endpoint is dead for every request"
        );
        self.apply(Setting {
            fault,
            method: Some(method),
            remaining: Some(count),
        });
    }

    /// Back to pass-through (and listening again after [`Fault::Dead`]).
    pub fn clear(&self) {
        self.set(Fault::None);
    }

    fn apply(&self, setting: Setting) {
        *self.shared.setting.lock().unwrap() = setting;
        let mut accept = self.accept.lock().unwrap();
        if setting.fault == Fault::Dead {
            if let Some(task) = accept.take() {
                // Dropping the listener closes the port: connecting is refused from here on.
                task.abort();
            }
            self.shared.close_connections();
        } else if accept.is_none() {
            // Same port again, so sizer's endpoint stays valid. The std listener binds synchronously
            // (with SO_REUSEADDR, as tokio's would), so `set` needs no await.
            let listener = std::net::TcpListener::bind(self.addr).expect("rebind the proxy port");
            listener
                .set_nonblocking(true)
                .expect("non-blocking listener");
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            *accept = Some(tokio::spawn(accept_loop(
                listener,
                Arc::clone(&self.shared),
            )));
        }
    }

    /// Requests received with `method` since the start (or the last [`FaultProxy::reset_counts`]).
    pub fn requests(&self, method: &str) -> usize {
        let requests = self.shared.requests.lock().unwrap();
        requests.get(method).copied().unwrap_or(0)
    }

    pub fn reset_counts(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Connections holding a black-holed request that their client has not given up on yet.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        self.shared.close_connections();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors, say: let some close rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        let mut epoch = shared.epoch.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve(client, &shared) => {}
                _ = epoch.changed() => {}
            }
        });
    }
}

/// A request as read from the client: its method and its bytes as they go upstream.
struct Request {
    method: String,
    upstream_bytes: Vec<u8>,
}

async fn serve(client: TcpStream, shared: &Shared) {
    let mut client = BufReader::new(client);
    // Any I/O error ends the connection, which is what sizer would see of a broken proxy too.
    while let Ok(Some(request)) = read_request(&mut client).await {
        *shared
            .requests
            .lock()
            .unwrap()
            .entry(request.method.clone())
            .or_default() += 1;
        let head_only = request.method == "HEAD";
        let fault = shared.fault_for(&request.method);
        let reply = match fault {
            Fault::Dead => return,
            Fault::BlackHole => return hold(&mut client, shared).await,
            Fault::SlowDown => s3_error(503, "Slow Down", "SlowDown", head_only),
            Fault::InternalError => {
                s3_error(500, "Internal Server Error", "InternalError", head_only)
            }
            Fault::Latency(delay) => {
                tokio::time::sleep(delay).await;
                match forward(shared.upstream, &request).await {
                    Ok(reply) => reply,
                    Err(_) => return,
                }
            }
            Fault::None | Fault::ResetMidBody | Fault::TruncateBody | Fault::StallMidBody => {
                match forward(shared.upstream, &request).await {
                    Ok(reply) => reply,
                    Err(_) => return,
                }
            }
        };
        let Some(head_end) = head_end(&reply) else {
            return;
        };
        let (head, body) = reply.split_at(head_end);
        let cut = matches!(
            fault,
            Fault::ResetMidBody | Fault::TruncateBody | Fault::StallMidBody
        ) && !head_only
            && status(head).is_some_and(|s| (200..300).contains(&s))
            && body.len() >= 2;
        if cut {
            let stream = client.get_mut();
            let _ = stream.write_all(head).await;
            let _ = stream.write_all(&body[..body.len() / 2]).await;
            let _ = stream.flush().await;
            if fault == Fault::StallMidBody {
                return hold(&mut client, shared).await;
            }
            if fault == Fault::ResetMidBody {
                // Linger 0: closing sends RST instead of FIN.
                let _ = stream.set_zero_linger();
            } else {
                let _ = stream.shutdown().await;
            }
            return;
        }
        let framed = head_only || is_framed(head);
        let head = if framed {
            without_header(head, "connection")
        } else {
            head.to_vec()
        };
        let stream = client.get_mut();
        if stream.write_all(&head).await.is_err() || stream.write_all(body).await.is_err() {
            return;
        }
        if !framed {
            // The body ends where the connection does.
            return;
        }
    }
}

/// Holds the connection without a word until the client gives up and closes it (anything it sends is
/// ignored), counted in [`FaultProxy::held`].
async fn hold(client: &mut BufReader<TcpStream>, shared: &Shared) {
    shared.held.fetch_add(1, Ordering::SeqCst);
    let mut sink = [0u8; 1024];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    shared.held.fetch_sub(1, Ordering::SeqCst);
}

/// Reads one request (head and body, `Content-Length` or chunked); `None` at a clean end of connection.
async fn read_request<R: AsyncBufRead + Unpin>(client: &mut R) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if client.read_until(b'\n', &mut head).await? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        if &head[before..] == b"\r\n" && before > 0 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let method = text.split(' ').next().unwrap_or_default().to_string();
    let mut body = Vec::new();
    if header_value(&text, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(client, &mut body).await?;
    } else if let Some(length) = header_value(&text, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| std::io::ErrorKind::InvalidData)?;
        body.resize(length, 0);
        client.read_exact(&mut body).await?;
    }
    // Upstream: one request per connection, no 100-continue (the body is already here).
    let mut upstream_bytes = without_header(&without_header(&head, "connection"), "expect");
    let end = upstream_bytes.len() - 2;
    upstream_bytes.splice(end..end, b"Connection: close\r\n".iter().copied());
    upstream_bytes.extend_from_slice(&body);
    Ok(Some(Request {
        method,
        upstream_bytes,
    }))
}

/// Copies a chunked body as it is, framing included.
async fn read_chunked<R: AsyncBufRead + Unpin>(
    client: &mut R,
    body: &mut Vec<u8>,
) -> std::io::Result<()> {
    loop {
        let start = body.len();
        client.read_until(b'\n', body).await?;
        let line = String::from_utf8_lossy(&body[start..]).into_owned();
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| std::io::ErrorKind::InvalidData)?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let start = body.len();
                client.read_until(b'\n', body).await?;
                if &body[start..] == b"\r\n" || body.len() == start {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        client.read_exact(&mut body[start..]).await?;
    }
}

/// Sends the request upstream on a connection of its own and reads the reply until the server closes.
async fn forward(upstream: SocketAddr, request: &Request) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&request.upstream_bytes).await?;
    let mut reply = Vec::new();
    server.read_to_end(&mut reply).await?;
    Ok(reply)
}

/// An S3 error reply, as S3 words it.
fn s3_error(status: u16, reason: &str, code: &str, head_only: bool) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the test proxy</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    let mut reply = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         x-amz-request-id: fault-proxy\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        reply.extend_from_slice(body.as_bytes());
    }
    reply
}

/// Where the head ends (the body starts), if the reply has a whole head.
fn head_end(reply: &[u8]) -> Option<usize> {
    reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn status(head: &[u8]) -> Option<u16> {
    String::from_utf8_lossy(head)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
}

/// Whether the reply says where its body ends (so the connection can stay open after it).
fn is_framed(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    header_value(&text, "content-length").is_some()
        || header_value(&text, "transfer-encoding").is_some_and(|v| v.contains("chunked"))
        || status(head).is_some_and(|s| s == 204 || s == 304)
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_ascii_lowercase())
    })
}

/// The head without any `name:` line.
fn without_header(head: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive("\r\n").enumerate() {
        let drop = i > 0
            && line
                .split_once(':')
                .is_some_and(|(key, _)| key.trim().eq_ignore_ascii_case(name));
        if !drop {
            out.push_str(line);
        }
    }
    out.into_bytes()
}
