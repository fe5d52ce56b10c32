//! Slow clients over real TCP: a request head trickled byte by byte (slowloris) is dropped
//! `server.header_read_timeout_ms` after the connection opened, however many bytes keep coming; it never
//! keeps a normal client from its image; connections above `server.max_connections` wait for a slot
//! without taking the server down; idle keep-alive connections live `server.keep_alive_timeout_ms`; a
//! trickled body gets a 408; a client that reads its response a byte now and then is cut off
//! `server.write_timeout_ms` after the server's writes stopped making progress.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// What a slowloris connection went through.
#[derive(Debug)]
struct Trickled {
    opened: Instant,
    /// When the server closed it (end of stream or reset), if it did.
    closed: Instant,
    /// Bytes of the head sent one by one after its start.
    trickled: usize,
}

/// Opens a connection and sends a request head one byte every `every`, never finishing it, until the server
/// closes the connection.
async fn slowloris(addr: String, every: Duration) -> Trickled {
    let opened = Instant::now();
    let stream = TcpStream::connect(&addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let start = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    let mut trickled = 0;
    let mut closed = None;
    if write.write_all(start.as_bytes()).await.is_ok() {
        let mut ticks = tokio::time::interval(every);
        let mut buf = [0u8; 512];
        while closed.is_none() {
            tokio::select! {
                read = read.read(&mut buf) => match read {
                    Ok(0) | Err(_) => closed = Some(Instant::now()),
                    // Whatever the server says before closing (nothing, today) is not an answer.
                    Ok(_) => {}
                },
                _ = ticks.tick() => {
                    if write.write_all(b"a").await.is_err() {
                        closed = Some(Instant::now());
                    } else {
                        trickled += 1;
                    }
                }
            }
        }
    }
    Trickled {
        opened,
        closed: closed.unwrap_or_else(Instant::now),
        trickled,
    }
}

fn addr_of(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads one response (head, and a body of `Content-Length` bytes) from a raw connection.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok((status, head, body))
}

/// Waits until the server closes `stream` (end of stream or reset); `None` if it stays open for `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Instant> {
    let mut buf = [0u8; 512];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_cannot_keep_a_normal_client_from_its_image() {
    const SLOW: usize = 100;
    let header_timeout = Duration::from_millis(2_000);
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("x.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.server.header_read_timeout_ms = 2_000;
    let app = spawn_app(&store, config).await;
    let addr = addr_of(&app);

    let slow: Vec<_> = (0..SLOW)
        .map(|_| tokio::spawn(slowloris(addr.clone(), Duration::from_millis(100))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let res = app.get(&format!("/w/300/{key}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (300, 188));
    let served = Instant::now();

    let mut trickled = Vec::new();
    for task in slow {
        trickled.push(
            tokio::time::timeout(header_timeout * 5, task)
                .await
                .expect("the server drops every slowloris connection")
                .unwrap(),
        );
    }
    for t in &trickled {
        assert!(
            t.closed > served,
            "the image was served while the slowloris held {SLOW} connections"
        );
        assert!(
            t.closed - t.opened >= header_timeout - Duration::from_millis(50),
            "dropped at the head timeout, not before: {:?}",
            t.closed - t.opened
        );
        assert!(
            t.trickled >= 10,
            "bytes kept coming and did not extend the head timer: {t:?}"
        );
    }
    let held: Vec<Duration> = trickled.iter().map(|t| t.closed - t.opened).collect();
    eprintln!(
        "slowloris: image served in {:?} while {SLOW} connections trickled; they were dropped after \
         {:?} to {:?} (head timeout {header_timeout:?})",
        served - asked,
        held.iter().min().unwrap(),
        held.iter().max().unwrap()
    );
    // The server is none the worse.
    assert_eq!(app.get(&format!("/w/200/{key}")).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_above_the_cap_wait_for_a_slot_and_the_server_stays_up() {
    const CAP: usize = 4;
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("x.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.server.max_connections = CAP;
    config.server.header_read_timeout_ms = 1_500;
    let app = spawn_app(&store, config).await;
    let addr = addr_of(&app);

    // Every slot held by a slowloris.
    let slow: Vec<_> = (0..CAP)
        .map(|_| tokio::spawn(slowloris(addr.clone(), Duration::from_millis(100))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // One more client: its connection waits in the accept queue, unanswered, until a slot frees.
    let mut waiting = TcpStream::connect(&addr).await.expect("connect");
    waiting
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), read_response(&mut waiting))
            .await
            .is_err(),
        "a connection above the cap is not served while every slot is held"
    );
    // Many more above the cap, silent, queue behind it.
    let mut crowd = Vec::new();
    for _ in 0..50 {
        crowd.push(TcpStream::connect(&addr).await.expect("connect"));
    }

    let (status, _, body) =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut waiting))
            .await
            .expect("served once the head timer freed a slot")
            .expect("a whole response");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("ok"));
    for task in slow {
        task.await.unwrap();
    }
    // The crowd goes away; the server serves as before.
    drop(crowd);
    let res = tokio::time::timeout(Duration::from_secs(10), app.get(&format!("/w/300/{key}")))
        .await
        .expect("the server is up");
    assert_eq!(res.status(), 200);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (300, 188));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_outlives_the_head_timer_and_closes_at_its_own() {
    let keep_alive = Duration::from_millis(2_000);
    let store = TestStore::new(Backend::Fs).await;
    let mut config = test_config();
    config.server.header_read_timeout_ms = 500;
    config.server.keep_alive_timeout_ms = 2_000;
    let app = spawn_app(&store, config).await;
    let addr = addr_of(&app);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");

    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    // Idle past the head timeout: still open, and the next request is answered on it.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    let idle_since = Instant::now();
    let closed = closed_within(&mut stream, keep_alive * 4)
        .await
        .expect("the idle connection is closed");
    let idle = closed - idle_since;
    assert!(
        idle >= keep_alive - Duration::from_millis(100),
        "closed after {idle:?} idle"
    );

    // A connection that never sends a byte has the head timeout, not the keep-alive one.
    let opened = Instant::now();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let closed = closed_within(&mut silent, keep_alive * 4)
        .await
        .expect("the silent connection is closed");
    assert!(
        closed - opened < keep_alive,
        "closed after {:?}",
        closed - opened
    );
    app.stop().await;
}

const EVENTS_TOKEN: &str = "test-webhook-token-0123456789";

/// A configuration with `POST /events` on, behind [`EVENTS_TOKEN`].
fn events_config() -> sizer::Config {
    let mut config = test_config();
    config.events.webhook_token = EVENTS_TOKEN.into();
    config
}

/// The head of a `POST /events` announcing a body of `length` bytes.
fn event_head(addr: &str, length: usize) -> String {
    format!(
        "POST /events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {EVENTS_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_event_body_gets_408_and_the_connection_closes() {
    let store = TestStore::new(Backend::Fs).await;
    let mut config = events_config();
    config.server.body_read_timeout_ms = 500;
    let app = spawn_app(&store, config).await;
    let addr = addr_of(&app);

    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = event_head(&addr, 1000) + "{\"Records\": [";
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, _) =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
            .await
            .expect("answered once the body timeout passed")
            .unwrap();
    assert_eq!(status, 408);
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        closed_within(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection is closed after the 408"
    );
    app.stop().await;
}

/// An event body over the 1 MiB cap gets its 413, whole, even when the sender writes every byte before
/// it reads: the server reads the rest and throws it away rather than close a connection with unread
/// bytes in it (which resets it, and the sender saw "connection reset" instead of the 413: a CI failure).
/// One that announces more than the server will ever drain is refused before its body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_body_gets_its_413_whole() {
    let store = TestStore::new(Backend::Fs).await;
    let app = spawn_app(&store, events_config()).await;
    let addr = addr_of(&app);
    for round in 0..5 {
        let body = format!("{{\"x\": \"{}\"}}", "a".repeat(3 << 20));
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let mut request = event_head(&addr, body.len()).into_bytes();
        request.extend_from_slice(body.as_bytes());
        stream
            .write_all(&request)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the server stopped reading: {e}"));
        let (status, _, body) =
            tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
                .await
                .expect("answered")
                .unwrap_or_else(|e| panic!("round {round}: no whole answer: {e}"));
        assert_eq!(status, 413, "round {round}");
        assert!(
            String::from_utf8_lossy(&body).contains("above"),
            "round {round}"
        );
    }
    // 100 MiB announced, nothing sent: answered at once.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(event_head(&addr, 100 << 20).as_bytes())
        .await
        .unwrap();
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    assert_eq!(status, 413);
    app.stop().await;
}

/// Four clients that read their 12 MB response one byte every 50 ms, holding every slot of a server
/// capped at four connections: once the server's writes have made no progress for
/// `server.write_timeout_ms` (1 s here) their connections are closed, and a new client gets `/healthz`.
/// Without the write timeout they held the server for as long as they cared to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_cut_off_when_the_writes_stall() {
    const CAP: usize = 4;
    let store = TestStore::new(Backend::Fs).await;
    let noise: Vec<u8> = {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..2000 * 2000 * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let mut png = Vec::new();
    image::RgbImage::from_raw(2000, 2000, noise)
        .expect("pixels")
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let key = store.put_original("noise.png", png.into()).await;
    let mut config = test_config();
    config.server.max_connections = CAP;
    config.server.write_timeout_ms = 1_000;
    let app = spawn_app(&store, config).await;
    let addr = addr_of(&app);
    // Made once before the slow readers come, so that their wait is all in the writes.
    let made = app.get(&format!("/w/2000/{key}")).await;
    assert_eq!(made.status(), 200);
    assert!(made.bytes().await.unwrap().len() > 8 << 20);

    let readers: Vec<_> = (0..CAP)
        .map(|_| {
            let (addr, key) = (addr.clone(), key.clone());
            tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_recv_buffer_size(4096).unwrap();
                let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
                stream
                    .write_all(
                        format!("GET /w/2000/{key} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
                    )
                    .await
                    .unwrap();
                let mut byte = [0u8; 1];
                // A byte every 50 ms, until the test ends it.
                while let Ok(1) = stream.read(&mut byte).await {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    let mut healthz = TcpStream::connect(&addr).await.expect("connect");
    healthz
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(8), read_response(&mut healthz))
        .await
        .expect("a slot freed once the slow readers' writes stalled")
        .expect("a whole response");
    assert_eq!(status, 200);
    let waited = asked.elapsed();
    drop(healthz);
    // The server let go of the slow readers (what it had queued in the kernel still trickles to them).
    let mut open = u64::MAX;
    for _ in 0..100 {
        // The scrape's own connection is one.
        open = app.metric("sizer_connections_open").await;
        if open <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 1, "the slow readers' connections were closed");
    for reader in readers {
        reader.abort();
    }
    eprintln!("slow readers: /healthz answered {waited:?} after it was asked");
    app.stop().await;
}
