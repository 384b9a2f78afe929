//! Turning a stored layer blob into an unpacked, verified layer directory.

use std::io::Read;
use std::time::{Duration, Instant};

use berth_image::ImageStore;
use berth_image::digest::HashingReader;
use berth_image::layer::{self, Compression};
use berth_image::metadata::LayerRecord;
use berth_image::store::{LayerFill, NewLayer};

use crate::error::{EngineError, Result};

const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Unpacks a stored layer blob into a new layer directory, verifying its diff ID.
/// `progress` is told how many blob bytes were read so far, and the blob's size.
pub(super) fn unpack_blob(
    store: &ImageStore,
    new: NewLayer,
    progress: impl FnMut(u64, u64),
) -> Result<LayerRecord> {
    let file = store.content().open_blob(&new.blob)?;
    unpack_reader(store, new, file, progress)
}

/// Unpacks a layer blob read from `blob` (compressed as its media type says) into a new
/// layer directory. The layer becomes visible only if the whole stream reads to its end
/// without error and its uncompressed digest is the diff ID.
pub(super) fn unpack_reader(
    store: &ImageStore,
    new: NewLayer,
    blob: impl Read,
    mut progress: impl FnMut(u64, u64),
) -> Result<LayerRecord> {
    let short = new.blob.short();
    let file = blob;
    let total = new.blob_size;
    let compression = Compression::from_media_type(&new.blob_media_type);
    let diff_id = new.diff_id;
    store.create_layer(new, |dir| -> Result<LayerFill> {
        let counted = ProgressReader::new(file, |n| progress(n, total));
        let reader = std::io::BufReader::with_capacity(256 * 1024, counted);
        let decompressed = match compression {
            Some(c) => layer::decompress(reader, c),
            None => layer::decompress_auto(reader),
        }
        .map_err(|e| EngineError::invalid(format!("layer {short}: {e}")))?;
        let mut hashing = HashingReader::new(decompressed);
        let stats = layer::apply_layer(&mut hashing, dir)
            .map_err(|e| EngineError::invalid(format!("layer {short}: {e}")))?;
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| EngineError::invalid(format!("layer {short}: {e}")))?;
        let (actual, diff_size) = hashing.finish();
        if actual != diff_id {
            return Err(EngineError::invalid(format!(
                "layer {short}: diff ID mismatch: expected {diff_id}, got {actual}"
            )));
        }
        Ok(LayerFill {
            size: stats.bytes,
            diff_size,
        })
    })
}

/// A reader over chunks sent from the async download loop, so a layer is unpacked while
/// it downloads. An `Err` chunk fails the read; the end of the stream is the sender going
/// away, which the downloader does only after it has verified the whole blob.
pub(super) struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::result::Result<bytes::Bytes, String>>,
    current: bytes::Bytes,
}

impl ChannelReader {
    pub(super) fn new(
        rx: tokio::sync::mpsc::Receiver<std::result::Result<bytes::Bytes, String>>,
    ) -> Self {
        ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(msg)) => return Err(std::io::Error::other(msg)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Counts bytes read and reports them at most every [`PROGRESS_INTERVAL`].
struct ProgressReader<R, F> {
    inner: R,
    read: u64,
    last: Instant,
    report: F,
}

impl<R, F: FnMut(u64)> ProgressReader<R, F> {
    fn new(inner: R, report: F) -> Self {
        ProgressReader {
            inner,
            read: 0,
            last: Instant::now(),
            report,
        }
    }
}

impl<R: Read, F: FnMut(u64)> Read for ProgressReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.last.elapsed() >= PROGRESS_INTERVAL {
            self.last = Instant::now();
            (self.report)(self.read);
        }
        Ok(n)
    }
}
