//! An app's content bytes in the store, never whole in memory: a request body streamed
//! into one block of a file's blob, a committed file read back chunk by chunk (to a
//! device, or through [`syncml::intunewin::ContentCheck`] at commit).
//!
//! A long upload does not hold the store's transaction: after each chunk the request
//! leaves it, and every [`COMMIT_EVERY`] chunks it commits what it wrote so far (the
//! answer still waits for the last commit, as every answer does).

use std::collections::VecDeque;

use axum::body::Body;
use futures_util::StreamExt;

use crate::state::Shared;
use crate::storage::{ContentFileRow, StoreError, CHUNK};

/// Chunks written between two commits of a long upload (64 MiB).
const COMMIT_EVERY: i64 = 64;

/// Why a body could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// More than the limit.
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    /// The client's body broke off.
    #[error("the body could not be read: {0}")]
    Body(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Streams `body` into block `block_id` of file `file_id` (replacing a block of that
/// id): its length.
pub async fn put_block(
    state: &Shared,
    file_id: &str,
    block_id: &str,
    body: Body,
    limit: u64,
) -> Result<u64, PutError> {
    state.store.drop_block(file_id, block_id).await?;
    let mut chunks = ChunkWriter::new(state, file_id, block_id);
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| PutError::Body(e.to_string()))?;
        if chunks.len + piece.len() as u64 > limit {
            return Err(PutError::TooLarge(limit));
        }
        chunks.write(&piece).await?;
    }
    chunks.finish().await
}

/// Cuts what it is given into chunks of [`CHUNK`] bytes and stores them.
pub struct ChunkWriter<'a> {
    state: &'a Shared,
    file_id: &'a str,
    block_id: &'a str,
    buffer: Vec<u8>,
    seq: i64,
    /// Bytes taken so far.
    pub len: u64,
}

impl<'a> ChunkWriter<'a> {
    /// A writer for one block.
    pub fn new(state: &'a Shared, file_id: &'a str, block_id: &'a str) -> Self {
        ChunkWriter {
            state,
            file_id,
            block_id,
            buffer: Vec::with_capacity(CHUNK),
            seq: 0,
            len: 0,
        }
    }

    /// Takes more bytes, storing every chunk they complete.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), StoreError> {
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (CHUNK - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        let store = &self.state.store;
        store
            .put_chunk(self.file_id, self.block_id, self.seq, &self.buffer)
            .await?;
        self.buffer.clear();
        self.seq += 1;
        store.pause_request();
        if self.seq % COMMIT_EVERY == 0 {
            self.state
                .journal
                .commit(crate::storage::request_started())
                .await?;
        }
        Ok(())
    }

    /// Stores the last, short chunk: the block's length.
    pub async fn finish(mut self) -> Result<u64, PutError> {
        if !self.buffer.is_empty() {
            self.flush().await?;
        }
        Ok(self.len)
    }
}

/// A committed file's bytes, chunk by chunk, in its block list's order.
pub struct FileReader {
    state: Shared,
    file_id: String,
    /// Blocks still to read: id and chunk count.
    blocks: VecDeque<(String, i64)>,
    seq: i64,
    /// The file's length.
    pub len: u64,
}

impl FileReader {
    /// A reader over a file's listed blocks; `None` when a block of the list is missing.
    pub async fn open(state: &Shared, file: &ContentFileRow) -> Result<Option<Self>, StoreError> {
        let stored = state.store.blocks(&file.id).await?;
        let mut blocks = VecDeque::new();
        let mut len = 0u64;
        for id in file.blocks() {
            let Some(block) = stored.iter().find(|b| b.id == id) else {
                return Ok(None);
            };
            blocks.push_back((id, block.chunks));
            len += u64::try_from(block.len).unwrap_or(0);
        }
        Ok(Some(FileReader {
            state: state.clone(),
            file_id: file.id.clone(),
            blocks,
            seq: 0,
            len,
        }))
    }

    /// The next chunk, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            let Some((block, chunks)) = self.blocks.front() else {
                return Ok(None);
            };
            if self.seq >= *chunks {
                self.blocks.pop_front();
                self.seq = 0;
                continue;
            }
            let chunk = self
                .state
                .store
                .chunk(&self.file_id, block, self.seq)
                .await?;
            self.state.store.pause_request();
            self.seq += 1;
            // A chunk counted a moment ago and gone now: the file was deleted meanwhile.
            return chunk.map(Some).ok_or(StoreError::Aborted);
        }
    }

    /// The file as a response body that reads one chunk at a time.
    pub fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::try_unfold(
            self,
            |mut reader| async move {
                Ok::<_, StoreError>(reader.next().await?.map(|chunk| (chunk, reader)))
            },
        ))
    }

    /// Checks the file against its encryption info (MAC, padding, digest).
    pub async fn check(
        mut self,
        info: &syncml::intunewin::EncryptionInfo,
    ) -> Result<Result<(), syncml::intunewin::ContentError>, StoreError> {
        let mut check = match syncml::intunewin::ContentCheck::new(info) {
            Ok(check) => check,
            Err(e) => return Ok(Err(e)),
        };
        while let Some(chunk) = self.next().await? {
            check.update(&chunk);
        }
        Ok(check.finish())
    }
}
