//! One download into a `.part` file: `file://` copies, or HTTP(S) with retries, exponential
//! backoff, resumption through `Range` and conditional requests.

use std::{
    error::Error as _,
    path::Path,
    time::{Duration, UNIX_EPOCH},
};

use futures_util::StreamExt as _;
use reqwest::{
    StatusCode,
    header::{
        CONTENT_RANGE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RANGE,
        RETRY_AFTER,
    },
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

use super::fetch::{FetchError, Fetcher};
use crate::events::Event;

/// Cache validators of a downloaded resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Validators {
    /// The `ETag` header (or a size and mtime stamp for `file://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    pub(crate) fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What one transfer is about, for events and errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// Event item: package name or repository id.
    pub item: &'a str,
    /// Error text, e.g. "package `bash`".
    pub label: &'a str,
}

/// How a transfer ended.
#[derive(Debug)]
pub(crate) enum Transfer {
    /// The `.part` file holds the whole resource.
    Complete {
        /// Its size.
        bytes: u64,
        /// Validators to send next time.
        validators: Validators,
        /// Some bytes came from an earlier, interrupted attempt or run.
        resumed: bool,
    },
    /// The conditional request says the cached copy is current; nothing was written.
    NotModified,
}

/// Settings of one transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub subject: Subject<'a>,
    pub url: &'a Url,
    pub part: &'a Path,
    /// Keep an existing `.part` and ask for the rest with `Range`.
    pub resume: bool,
    /// Expected size, when known.
    pub size: Option<u64>,
    /// Validators of the cached copy, for a conditional request.
    pub conditional: Option<&'a Validators>,
}

/// A failed attempt.
enum Failure {
    /// Worth retrying (network trouble, timeouts, 5xx, 429), with a server-suggested delay.
    Transient(String, Option<Duration>),
    /// Not worth retrying.
    Fatal(FetchError),
}

impl Fetcher {
    /// Download `request.url` into `request.part`.
    pub(crate) async fn transfer(&self, request: Request<'_>) -> Result<Transfer, FetchError> {
        match request.url.scheme() {
            "file" => self.copy_file(request).await,
            "http" | "https" => self.download(request).await,
            _ => Err(FetchError::UnsupportedUrl {
                subject: request.subject.label.to_owned(),
                url: request.url.to_string(),
            }),
        }
    }

    async fn copy_file(&self, request: Request<'_>) -> Result<Transfer, FetchError> {
        let unreachable = |reason: String| FetchError::Unreachable {
            subject: request.subject.label.to_owned(),
            url: request.url.to_string(),
            attempts: 1,
            reason,
        };
        let path = request
            .url
            .to_file_path()
            .map_err(|()| unreachable("the URL does not name a local path".to_owned()))?;
        let mut source = tokio::fs::File::open(&path)
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let metadata = source
            .metadata()
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        let validators = Validators {
            etag: Some(format!("file:{}:{modified}", metadata.len())),
            last_modified: None,
        };
        if request
            .conditional
            .is_some_and(|conditional| conditional.etag == validators.etag)
        {
            return Ok(Transfer::NotModified);
        }
        let mut out = create_part(request.part, false).await?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut written = 0u64;
        loop {
            let got = source
                .read(&mut buffer)
                .await
                .map_err(|error| unreachable(error.to_string()))?;
            if got == 0 {
                break;
            }
            out.write_all(&buffer[..got])
                .await
                .map_err(|source| io_error(request.part, source))?;
            written += got as u64;
            self.progress(request.subject, written);
        }
        finish_part(out, request.part).await?;
        Ok(Transfer::Complete {
            bytes: written,
            validators,
            resumed: false,
        })
    }

    async fn download(&self, request: Request<'_>) -> Result<Transfer, FetchError> {
        let mut attempt = 1u32;
        loop {
            let mut offset = if request.resume {
                part_length(request.part).await
            } else {
                0
            };
            if request.size.is_some_and(|size| offset > size) {
                // Longer than the whole file: not a prefix of it.
                remove_part(request.part).await?;
                offset = 0;
            }
            if offset > 0 && request.size == Some(offset) {
                // A previous run got every byte; the caller verifies them.
                return Ok(Transfer::Complete {
                    bytes: offset,
                    validators: Validators::default(),
                    resumed: true,
                });
            }
            match self.attempt(request, offset).await {
                Ok(transfer) => return Ok(transfer),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Transient(reason, suggested)) => {
                    if attempt >= self.options.attempts.max(1) {
                        return Err(FetchError::Unreachable {
                            subject: request.subject.label.to_owned(),
                            url: request.url.to_string(),
                            attempts: attempt,
                            reason,
                        });
                    }
                    attempt += 1;
                    self.reporter.report(Event::Retry {
                        item: request.subject.item.to_owned(),
                        attempt,
                        reason,
                    });
                    tokio::time::sleep(self.backoff(attempt, suggested)).await;
                }
            }
        }
    }

    /// Delay before attempt `attempt` (from 2): exponential, at least what the server asked for,
    /// capped by the options.
    pub(crate) fn backoff(&self, attempt: u32, suggested: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(2).min(20);
        let delay = self.options.initial_backoff.saturating_mul(1 << exponent);
        delay
            .max(suggested.unwrap_or_default())
            .min(self.options.max_backoff)
    }

    /// One request, resuming at `offset` when it is not 0.
    async fn attempt(&self, request: Request<'_>, offset: u64) -> Result<Transfer, Failure> {
        let client = self
            .client
            .as_ref()
            .map_err(|error| Failure::Fatal(FetchError::Client(error.clone())))?;
        let mut builder = client.get(request.url.clone());
        if offset > 0 {
            builder = builder.header(RANGE, format!("bytes={offset}-"));
        } else if let Some(conditional) = request.conditional {
            if let Some(etag) = &conditional.etag {
                builder = builder.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &conditional.last_modified {
                builder = builder.header(IF_MODIFIED_SINCE, modified);
            }
        }
        let response = builder
            .send()
            .await
            .map_err(|error| classify(&error, request))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && request.conditional.is_some() && offset == 0 {
            return Ok(Transfer::NotModified);
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            remove_part(request.part).await.map_err(Failure::Fatal)?;
            return Err(Failure::Transient(
                "the server cannot resume the partial download (HTTP 416); restarting".to_owned(),
                None,
            ));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Transient(
                format!("the server answered HTTP {status}"),
                retry_after(response.headers()),
            ));
        }
        if !status.is_success() {
            return Err(Failure::Fatal(FetchError::Status {
                subject: request.subject.label.to_owned(),
                url: request.url.to_string(),
                status: status.as_u16(),
            }));
        }
        let append = offset > 0 && status == StatusCode::PARTIAL_CONTENT;
        if append && content_range_start(response.headers()) != Some(offset) {
            remove_part(request.part).await.map_err(Failure::Fatal)?;
            return Err(Failure::Transient(
                "the server resumed at the wrong offset; restarting".to_owned(),
                None,
            ));
        }
        let validators = Validators {
            etag: header_text(response.headers(), ETAG),
            last_modified: header_text(response.headers(), LAST_MODIFIED),
        };
        let mut out = create_part(request.part, append)
            .await
            .map_err(Failure::Fatal)?;
        let mut written = if append { offset } else { 0 };
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    // Keep what arrived: the next attempt resumes from it.
                    let _ = out.flush().await;
                    return Err(classify(&error, request));
                }
            };
            out.write_all(&chunk)
                .await
                .map_err(|source| Failure::Fatal(io_error(request.part, source)))?;
            written += chunk.len() as u64;
            self.progress(request.subject, written);
        }
        finish_part(out, request.part)
            .await
            .map_err(Failure::Fatal)?;
        Ok(Transfer::Complete {
            bytes: written,
            validators,
            resumed: append,
        })
    }

    fn progress(&self, subject: Subject<'_>, bytes: u64) {
        self.reporter.report(Event::DownloadProgress {
            item: subject.item.to_owned(),
            bytes,
        });
    }
}

/// Network errors, timeouts and cut bodies are transient; a malformed request or a redirect loop
/// is not.
fn classify(error: &reqwest::Error, request: Request<'_>) -> Failure {
    let reason = describe(error);
    if error.is_builder() || error.is_redirect() {
        Failure::Fatal(FetchError::Unreachable {
            subject: request.subject.label.to_owned(),
            url: request.url.to_string(),
            attempts: 1,
            reason,
        })
    } else {
        Failure::Transient(reason, None)
    }
}

/// An error and its causes, most specific last, without the URL reqwest repeats.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the transfer broke off"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_text(headers, RETRY_AFTER)?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// First byte of a `Content-Range: bytes START-END/TOTAL` answer.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let text = header_text(headers, CONTENT_RANGE)?;
    let range = text.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> FetchError {
    FetchError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) async fn part_length(part: &Path) -> u64 {
    tokio::fs::metadata(part)
        .await
        .map_or(0, |metadata| metadata.len())
}

pub(crate) async fn remove_part(part: &Path) -> Result<(), FetchError> {
    match tokio::fs::remove_file(part).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io_error(part, error)),
        _ => Ok(()),
    }
}

async fn create_part(part: &Path, append: bool) -> Result<tokio::fs::File, FetchError> {
    if let Some(parent) = part.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| io_error(parent, source))?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options
        .open(part)
        .await
        .map_err(|source| io_error(part, source))
}

async fn finish_part(mut out: tokio::fs::File, part: &Path) -> Result<(), FetchError> {
    out.flush().await.map_err(|source| io_error(part, source))?;
    out.sync_all()
        .await
        .map_err(|source| io_error(part, source))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn content_range() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(content_range_start(&headers), Some(100));
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes */200"));
        assert_eq!(content_range_start(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }
}
