//! A tiny HTTP/1.1 file server for the repository tests, on 127.0.0.1 with std threads.
//!
//! It answers GET with `ETag`, `If-None-Match` (304) and `Range: bytes=N-` (206), logs every
//! request and can inject failures per path: an HTTP status, or a body cut after N bytes.

use std::{
    collections::{HashMap, VecDeque},
    io::{BufRead, BufReader, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use sha2::{Digest, Sha256};

/// A failure to inject into the next request of a path.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Announce the full length, send this many bytes, then close the connection.
    Cut(usize),
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
    pub if_none_match: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Default)]
struct State {
    files: Mutex<HashMap<String, Vec<u8>>>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    log: Mutex<Vec<Logged>>,
    ignore_range: AtomicBool,
    delay_ms: AtomicU64,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

/// The running server; it stops when the test process ends.
#[derive(Clone)]
pub struct Server {
    address: SocketAddr,
    state: Arc<State>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                thread::spawn(move || handle(stream, &state));
            }
        });
        Self { address, state }
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!(
            "http://{}/{}",
            self.address,
            path.trim_start_matches('/')
        ))
        .unwrap()
    }

    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.state
            .files
            .lock()
            .unwrap()
            .insert(format!("/{}", path.trim_start_matches('/')), body);
    }

    pub fn fault(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .entry(format!("/{}", path.trim_start_matches('/')))
            .or_default()
            .push_back(fault);
    }

    /// Answer 200 with the whole body even when a range is asked for.
    pub fn ignore_range(&self, ignore: bool) {
        self.state.ignore_range.store(ignore, Ordering::SeqCst);
    }

    /// Wait this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.log()
            .into_iter()
            .filter(|logged| logged.path == path)
            .collect()
    }

    /// Most requests served at the same time.
    pub fn max_active(&self) -> usize {
        self.state.max_active.load(Ordering::SeqCst)
    }
}

pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "\"{:02x}{:02x}{:02x}{:02x}-{}\"",
        digest[0],
        digest[1],
        digest[2],
        digest[3],
        body.len()
    )
}

fn handle(stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();

    // Logged before answering, so that a client that got its answer sees the entry.
    state.log.lock().unwrap().push(Logged {
        path: path.clone(),
        range: headers.get("range").cloned(),
        if_none_match: headers.get("if-none-match").cloned(),
        user_agent: headers.get("user-agent").cloned(),
    });
    let active = state.active.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_active.fetch_max(active, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        thread::sleep(Duration::from_millis(delay));
    }
    respond(stream, state, &path, &headers);
    state.active.fetch_sub(1, Ordering::SeqCst);
}

fn respond(mut stream: TcpStream, state: &State, path: &str, headers: &HashMap<String, String>) {
    let fault = state
        .faults
        .lock()
        .unwrap()
        .get_mut(path)
        .and_then(VecDeque::pop_front);
    if let Some(Fault::Status(status)) = fault {
        let _ = write!(
            stream,
            "HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nRetry-After: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let Some(body) = state.files.lock().unwrap().get(path).cloned() else {
        let _ = write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    let etag = etag_of(&body);
    if headers.get("if-none-match") == Some(&etag) {
        let _ = write!(
            stream,
            "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let start = headers
        .get("range")
        .filter(|_| !state.ignore_range.load(Ordering::SeqCst))
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.strip_suffix('-'))
        .and_then(|start| start.parse::<usize>().ok());
    let (head, slice) = match start {
        Some(start) if start >= body.len() => {
            let _ = write!(
                stream,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
            return;
        }
        Some(start) => (
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
            &body[start..],
        ),
        None => ("HTTP/1.1 200 OK\r\n".to_owned(), &body[..]),
    };
    let _ = write!(
        stream,
        "{head}Content-Length: {}\r\nETag: {etag}\r\nLast-Modified: Tue, 01 Sep 2026 10:00:00 GMT\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        slice.len()
    );
    match fault {
        Some(Fault::Cut(count)) => {
            let _ = stream.write_all(&slice[..count.min(slice.len())]);
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
        _ => {
            let _ = stream.write_all(slice);
        }
    }
}
