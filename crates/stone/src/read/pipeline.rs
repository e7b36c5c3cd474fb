//! The two-thread content path: zstd content is decompressed and hashed on a second thread
//! while the calling thread hands file bodies to the sink.

use super::*;

/// Plain bytes delivered to the sink per step when nothing is decompressed.
pub(super) const PLAIN_CHUNK: usize = 256 * 1024;

/// Stored bytes handed to the zstd decoder per read.
pub(super) const INPUT_CHUNK: usize = 256 * 1024;

/// Stored chunks queued ahead of the decompression thread, so that it does not wait while the
/// consuming thread is busy in the sink.
pub(super) const INPUT_BUFFERS: usize = 4;

/// Decompressed bytes per block passed from the decompression thread.
pub(super) const OUTPUT_CHUNK: usize = 1024 * 1024;

/// Output blocks in flight between the decompression thread and the sink.
pub(super) const OUTPUT_BUFFERS: usize = 4;

/// Content at least this large is decompressed on a second thread, overlapped with the sink's
/// writes; smaller content is not worth a thread.
pub(super) const PIPELINE_MIN_PLAIN: u64 = 2 * 1024 * 1024;

/// A zstd decoder over the stored bytes, in the calling thread.
pub(super) fn inline_decoder<R: Read>(
    stored: R,
) -> Result<BufReader<zstd::stream::read::Decoder<'static, BufReader<R>>>, PayloadError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(INPUT_CHUNK, stored))
            .map_err(PayloadError::Decompress)?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(PayloadError::Decompress)?;
    Ok(BufReader::with_capacity(PLAIN_CHUNK, decoder))
}

/// Decompress on a scoped second thread while this thread feeds it the stored bytes and hands
/// the plain blocks to the sink. The second thread also computes the payload checksum and every
/// entry's digest, so this thread only reads the file and calls the sink. Only byte blocks,
/// digests and hash states cross threads, so neither the reader nor the sink needs to be
/// `Send`. Falls back to [`inline_decoder`] when no thread can be started.
pub(super) fn pipelined<R: Read, S: ContentSink>(
    stored: &mut ChecksumReader<R>,
    entries: &[(usize, IndexEntry)],
    sink: &mut S,
    plain_size: u64,
) -> Result<u64, PayloadError> {
    thread::scope(|scope| {
        let (to_main, from_worker) = mpsc::channel();
        let (input, input_queue) = mpsc::channel();
        let (free, free_queue) = mpsc::channel();
        let worker = Worker {
            input: input_queue,
            free: free_queue,
            to_main,
            ranges: digested_ranges(entries, plain_size),
        };
        let spawned = thread::Builder::new()
            .name("stone-unpack".to_owned())
            .spawn_scoped(scope, move || worker.run());
        let Ok(handle) = spawned else {
            return deliver(&mut inline_decoder(stored)?, entries, sink, plain_size);
        };
        for _ in 0..OUTPUT_BUFFERS {
            // Cannot fail: the worker holds the receiver until this function returns.
            let _ = free.send(Vec::new());
        }
        let mut plain = Pipeline {
            stored,
            from_worker,
            input,
            free,
            current: Vec::new(),
            filled: 0,
            position: 0,
            digests: VecDeque::new(),
            ended: false,
        };
        // Chunks queued ahead, so that the decoder does not wait while this thread is in the
        // sink; every chunk it uses up is replaced when this thread next reads its messages.
        let mut result = Ok(0);
        for _ in 0..INPUT_BUFFERS {
            if let Err(error) = plain.feed(Vec::new()) {
                result = Err(PayloadError::Decompress(error));
                break;
            }
        }
        if result.is_ok() {
            result = deliver(&mut plain, entries, sink, plain_size);
        }
        // Closing the channels stops the worker if it is still running (after an error). Join
        // it explicitly rather than through the scope: that waits for the thread to exit
        // completely, thread-local destructors included.
        drop(plain);
        if let Err(panic) = handle.join() {
            panic::resume_unwind(panic);
        }
        result
    })
}

/// What the decompression thread tells the consuming thread.
pub(super) enum Message {
    /// A block of plain bytes (the buffer and how much of it is filled), and the digests of
    /// the entries that end in it.
    Output(Vec<u8>, usize, Vec<u128>),
    /// The decoder needs more stored bytes; the buffer is handed back for reuse.
    NeedInput(Vec<u8>),
    /// The stream ended cleanly; the XXH3-64 state over every stored byte received.
    End(Box<Xxh3>),
    /// Decompression failed (after every block before the failure was sent).
    Failed(io::Error),
}

/// The decompression thread.
pub(super) struct Worker {
    input: Receiver<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    to_main: Sender<Message>,
    /// Non-overlapping, sorted ranges of the entries to digest.
    ranges: Vec<(u64, u64)>,
}

impl Worker {
    /// Stored chunks in, plain blocks out, until the stream ends, it fails, or the consumer
    /// goes away.
    fn run(self) {
        let Worker {
            input,
            free,
            to_main,
            ranges,
        } = self;
        let inbox = Inbox {
            input,
            to_main: to_main.clone(),
            buffer: Vec::new(),
            position: 0,
            ended: false,
            checksum: Box::new(Xxh3::new()),
        };
        let digester = Digester {
            ranges,
            next: 0,
            position: 0,
            partial: None,
        };
        if let Err(error) = decompress_blocks(inbox, digester, &free, &to_main) {
            let _ = to_main.send(Message::Failed(error));
        }
    }
}

pub(super) fn decompress_blocks(
    inbox: Inbox,
    mut digester: Digester,
    free: &Receiver<Vec<u8>>,
    to_main: &Sender<Message>,
) -> io::Result<()> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(inbox)?;
    decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    loop {
        let Ok(mut buffer) = free.recv() else {
            return Ok(()); // the consumer stopped
        };
        buffer.resize(OUTPUT_CHUNK, 0);
        let mut filled = 0;
        let mut result = Ok(false);
        while filled < buffer.len() {
            match decoder.read(&mut buffer[filled..]) {
                Ok(0) => {
                    result = Ok(true);
                    break;
                }
                Ok(count) => filled += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        if filled > 0 {
            let digests = digester.block(&buffer[..filled]);
            if to_main
                .send(Message::Output(buffer, filled, digests))
                .is_err()
            {
                return Ok(());
            }
        }
        if result? {
            let checksum = mem::take(&mut decoder.get_mut().checksum);
            let _ = to_main.send(Message::End(checksum));
            return Ok(());
        }
    }
}

/// Digests entries as their bytes pass through the decompression thread.
pub(super) struct Digester {
    pub(super) ranges: Vec<(u64, u64)>,
    /// The next range to finish.
    pub(super) next: usize,
    /// Plain offset of the next block.
    pub(super) position: u64,
    /// State of a range that started in an earlier block.
    pub(super) partial: Option<Xxh3>,
}

impl Digester {
    /// Digest the parts of the ranges in this block; returns the digests of the ranges that
    /// end in it, in order.
    pub(super) fn block(&mut self, block: &[u8]) -> Vec<u128> {
        let start = self.position;
        let end = start + block.len() as u64;
        self.position = end;
        let mut digests = Vec::new();
        while let Some(&(range_start, range_end)) = self.ranges.get(self.next) {
            if range_start >= end {
                break;
            }
            let from = range_start.max(start);
            let to = range_end.min(end);
            let bytes = &block[(from - start) as usize..(to - start) as usize];
            if from == range_start && to == range_end {
                digests.push(xxh3_128(bytes));
            } else {
                self.partial.get_or_insert_with(Xxh3::new).update(bytes);
                if to < range_end {
                    break; // continues in the next block
                }
                digests.push(self.partial.take().map_or(0, |hasher| hasher.digest128()));
            }
            self.next += 1;
        }
        digests
    }
}

/// The decompression thread's view of the stored bytes: chunks sent by the consuming thread,
/// hashed (XXH3-64) as they arrive.
pub(super) struct Inbox {
    input: Receiver<Vec<u8>>,
    to_main: Sender<Message>,
    buffer: Vec<u8>,
    position: usize,
    ended: bool,
    checksum: Box<Xxh3>,
}

impl Read for Inbox {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl BufRead for Inbox {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.buffer.len() && !self.ended {
            let spent = mem::take(&mut self.buffer);
            self.position = 0;
            if self.to_main.send(Message::NeedInput(spent)).is_err() {
                return Err(io::Error::other("the content consumer stopped"));
            }
            match self.input.recv() {
                // An empty chunk marks the end of the stored bytes.
                Ok(chunk) if !chunk.is_empty() => {
                    self.checksum.update(&chunk);
                    self.buffer = chunk;
                }
                _ => self.ended = true,
            }
        }
        Ok(&self.buffer[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.buffer.len());
    }
}

/// The consuming thread's view of the plain bytes: blocks from the decompression thread. It
/// also answers the decoder's requests for stored bytes.
pub(super) struct Pipeline<'a, R> {
    stored: &'a mut ChecksumReader<R>,
    from_worker: Receiver<Message>,
    input: Sender<Vec<u8>>,
    free: Sender<Vec<u8>>,
    current: Vec<u8>,
    filled: usize,
    position: usize,
    digests: VecDeque<u128>,
    ended: bool,
}

impl<R: Read> Pipeline<'_, R> {
    /// Send the next stored chunk (empty at the end of the payload). The worker hashes it.
    fn feed(&mut self, mut buffer: Vec<u8>) -> io::Result<()> {
        buffer.clear();
        buffer.reserve_exact(INPUT_CHUNK);
        (&mut self.stored.inner)
            .take(INPUT_CHUNK as u64)
            .read_to_end(&mut buffer)?;
        // A worker that is gone has sent its reason, which `fill_buf` reports.
        let _ = self.input.send(buffer);
        Ok(())
    }
}

impl<R: Read> Read for Pipeline<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: Read> BufRead for Pipeline<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.filled && !self.ended {
            if self.current.capacity() > 0 {
                // Hand the spent block back; a worker that is gone does not need it.
                let _ = self.free.send(mem::take(&mut self.current));
            }
            self.filled = 0;
            self.position = 0;
            match self.from_worker.recv() {
                Ok(Message::Output(buffer, filled, digests)) => {
                    self.current = buffer;
                    self.filled = filled;
                    self.digests.extend(digests);
                }
                Ok(Message::NeedInput(buffer)) => self.feed(buffer)?,
                Ok(Message::End(checksum)) => {
                    // Every stored byte read so far went to the worker, which hashed it; the
                    // caller hashes whatever is left.
                    self.stored.hasher = *checksum;
                    self.ended = true;
                }
                Ok(Message::Failed(error)) => {
                    self.ended = true;
                    return Err(error);
                }
                Err(_) => {
                    self.ended = true;
                    return Err(io::Error::other("the decompression thread stopped"));
                }
            }
        }
        Ok(&self.current[self.position..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.filled);
    }
}

impl<R: Read> Plain for Pipeline<'_, R> {
    fn digests_entries(&self) -> bool {
        true
    }

    fn next_digest(&mut self) -> io::Result<u128> {
        self.digests
            .pop_front()
            .ok_or_else(|| io::Error::other("the decompression thread sent no digest"))
    }
}
