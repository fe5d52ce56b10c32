//! Where originals are read and variants written: one small trait, two implementations.
//!
//! - [`fs::FsStore`]: a local directory (the embedded default, and handy for development).
//! - [`s3::S3Store`]: any S3-compatible bucket through aws-sdk-s3.
//!
//! A store moves bytes and knows nothing of images, variants or HTTP. Keys reaching it were validated by
//! `spec`; the directory store checks them again because it maps keys to paths.

pub mod fs;
pub mod s3;

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

pub use fs::FsStore;
pub use s3::S3Store;

use crate::config::{StoreConfig, StoreKind};

/// Opens the store `config` names: the one place a store kind becomes a store. A new kind is one module
/// beside `fs` and `s3`, one `StoreKind` arm and its settings in `StoreConfig`, and one arm here.
pub async fn open(config: &StoreConfig) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match config.kind {
        StoreKind::Fs => std::sync::Arc::new(FsStore::open(fs::resolve_root(&config.root))?),
        StoreKind::S3 => std::sync::Arc::new(S3Store::connect(config).await),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no such object")]
    NotFound,
    /// The store failed or could not be reached: refused, reset, an error reply, a body cut short. The
    /// message is for logs.
    #[error("store failure: {0}")]
    Failed(String),
    /// The store asked us to slow down (S3 503 `SlowDown`), still after the retries.
    #[error("store throttling: {0}")]
    Throttled(String),
    /// The store did not answer in time (a reply or the next piece of a body), still after the retries.
    #[error("store timed out: {0}")]
    TimedOut(String),
}

/// A body streamed from a store.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// An object as a store returns it: its size and dates up front, its body as a stream.
pub struct StoredObject {
    pub size: u64,
    pub last_modified: Option<SystemTime>,
    pub etag: Option<String>,
    /// Carries sizer's output mark (see [`OUTPUT_MARK`]): never to be read as an original.
    pub marked: bool,
    pub body: ByteStream,
}

/// What is known of an object without its body: from a listing or a HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
    pub etag: Option<String>,
    /// Carries sizer's output mark. Listings do not return metadata: `false` there.
    pub marked: bool,
    /// For a variant: the ETag of the original it was made from (metadata: HEAD only, S3 only).
    pub source_etag: Option<String>,
}

/// Objects under a prefix, one at a time: pages are fetched as the stream is read, so a listing of
/// millions of keys is never held in memory. Keys come in lexicographic order.
pub type Listing = BoxStream<'static, Result<ObjectInfo, StoreError>>;

/// User metadata marking an object as written by sizer (S3: `x-amz-meta-sizer-variant`). Events for a
/// marked object are never processed, whatever its key: the second half of the loop guard.
pub const OUTPUT_MARK: &str = "sizer-variant";
/// User metadata recording the ETag of the original a variant was made from.
pub const SOURCE_ETAG: &str = "sizer-source-etag";

/// How an object is written.
#[derive(Debug, Clone, Copy)]
pub struct PutOptions<'a> {
    pub content_type: &'a str,
    /// Marks the object as sizer's output; the ETag of its original, when known.
    pub variant_of: Option<Option<&'a str>>,
    /// Write only if no object has the key yet (S3 `If-None-Match: *`).
    pub only_if_absent: bool,
    /// Retry a throttled or failed write with the store's backoff (S3: the SDK's standard mode,
    /// `store.max_attempts`), for writes that are the work itself (pre-generation). A write-back after a
    /// response is tried once: failing costs only a recompute, and retrying adds load to a store that
    /// is already struggling.
    pub retried: bool,
}

impl<'a> PutOptions<'a> {
    /// A plain write that replaces whatever is there.
    pub fn plain(content_type: &'a str) -> PutOptions<'a> {
        PutOptions {
            content_type,
            variant_of: None,
            only_if_absent: false,
            retried: false,
        }
    }

    /// A variant of the original whose ETag is `source_etag`, marked as sizer's output.
    pub fn variant(content_type: &'a str, source_etag: Option<&'a str>) -> PutOptions<'a> {
        PutOptions {
            content_type,
            variant_of: Some(source_etag),
            only_if_absent: false,
            retried: false,
        }
    }
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Written,
    /// `only_if_absent` and the key was taken: nothing was written.
    AlreadyThere,
}

impl std::fmt::Debug for StoredObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredObject")
            .field("size", &self.size)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

impl StoredObject {
    /// Reads the whole body. `size` was announced by the store; a body longer than it is a store failure,
    /// so a lying store cannot make us buffer more than the caller allowed for.
    pub async fn read_all(self) -> Result<Bytes, StoreError> {
        self.read_rest(Vec::new()).await
    }

    /// Reads the body's first chunks, up to at least `max` bytes or until `enough` says what was read
    /// suffices (an image header), and leaves the rest in the stream: for deciding what to reserve before
    /// holding the whole body. Fewer bytes only where the body ends.
    pub async fn read_start(
        &mut self,
        max: usize,
        enough: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, StoreError> {
        let mut start = Vec::new();
        while start.len() < max && !enough(&start) {
            match self.body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    if (start.len() + chunk.len()) as u64 > self.size {
                        return Err(StoreError::Failed(format!(
                            "object body longer than its announced {} bytes",
                            self.size
                        )));
                    }
                    start.extend_from_slice(&chunk);
                }
                None => break,
            }
        }
        Ok(start)
    }

    /// Reads the rest of the body after `start` (what [`StoredObject::read_start`] returned): the whole
    /// object, checked against its announced size.
    pub async fn read_rest(self, start: Vec<u8>) -> Result<Bytes, StoreError> {
        let announced = self.size;
        let capacity = usize::try_from(announced)
            .map_err(|_| StoreError::Failed("object too large".into()))?;
        let mut buf = BytesMut::with_capacity(capacity.max(start.len()));
        buf.extend_from_slice(&start);
        drop(start);
        let mut body = self.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if (buf.len() + chunk.len()) as u64 > announced {
                return Err(StoreError::Failed(format!(
                    "object body longer than its announced {announced} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        if (buf.len() as u64) < announced {
            return Err(StoreError::Failed(format!(
                "object body ended at {} of {announced} bytes",
                buf.len()
            )));
        }
        Ok(buf.freeze())
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Opens an object for reading; [`StoreError::NotFound`] when there is none.
    async fn get(&self, key: &str) -> Result<StoredObject, StoreError>;

    /// What is known of an object without reading it; [`StoreError::NotFound`] when there is none.
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError>;

    /// Writes an object whole. Readers see either the previous state or all of `body`, never a part.
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: PutOptions<'_>,
    ) -> Result<Written, StoreError>;

    /// Every object whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> Listing;

    /// Removes an object; removing one that is not there succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Whether the store answers now (readiness): the directory is there, the bucket answers.
    async fn check(&self) -> Result<(), StoreError>;

    /// A one-line description for logs (`fs:/srv/images`, `s3://bucket`).
    fn describe(&self) -> String;
}

#[cfg(test)]
pub(crate) mod memory {
    //! An in-memory store for unit tests of the layers above; integration tests use the real stores.
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn info(key: &str, bytes: &Bytes) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size: bytes.len() as u64,
            last_modified: None,
            etag: Some(format!("{:x}", xxhash_rust::xxh3::xxh3_64(bytes))),
            marked: false,
            source_etag: None,
        }
    }

    #[derive(Default)]
    pub struct MemoryStore {
        pub objects: Mutex<HashMap<String, Bytes>>,
        /// Keys written with sizer's output mark, with the ETag of the original they record.
        pub marked: Mutex<HashMap<String, Option<String>>>,
    }

    #[async_trait]
    impl Store for MemoryStore {
        async fn get(&self, key: &str) -> Result<StoredObject, StoreError> {
            let bytes = self
                .objects
                .lock()
                .expect("lock")
                .get(key)
                .cloned()
                .ok_or(StoreError::NotFound)?;
            let info = self.head(key).await?;
            Ok(StoredObject {
                size: info.size,
                last_modified: None,
                etag: info.etag,
                marked: info.marked,
                body: futures_util::stream::iter([Ok(bytes)]).boxed(),
            })
        }

        async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
            let objects = self.objects.lock().expect("lock");
            let bytes = objects.get(key).ok_or(StoreError::NotFound)?;
            let mut info = info(key, bytes);
            if let Some(source_etag) = self.marked.lock().expect("lock").get(key) {
                info.marked = true;
                info.source_etag = source_etag.clone();
            }
            Ok(info)
        }

        async fn put(
            &self,
            key: &str,
            body: Bytes,
            options: PutOptions<'_>,
        ) -> Result<Written, StoreError> {
            let mut objects = self.objects.lock().expect("lock");
            if options.only_if_absent && objects.contains_key(key) {
                return Ok(Written::AlreadyThere);
            }
            objects.insert(key.to_string(), body);
            let mut marked = self.marked.lock().expect("lock");
            match options.variant_of {
                Some(source_etag) => {
                    marked.insert(key.to_string(), source_etag.map(str::to_string));
                }
                None => {
                    marked.remove(key);
                }
            }
            Ok(Written::Written)
        }

        fn list(&self, prefix: &str) -> Listing {
            let mut found: Vec<ObjectInfo> = self
                .objects
                .lock()
                .expect("lock")
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| info(k, v))
                .collect();
            found.sort_by(|a, b| a.key.cmp(&b.key));
            futures_util::stream::iter(found.into_iter().map(Ok)).boxed()
        }

        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.objects.lock().expect("lock").remove(key);
            self.marked.lock().expect("lock").remove(key);
            Ok(())
        }

        async fn check(&self) -> Result<(), StoreError> {
            Ok(())
        }

        fn describe(&self) -> String {
            "memory".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(size: u64, chunks: &[&'static [u8]]) -> StoredObject {
        let chunks: Vec<Result<Bytes, StoreError>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        StoredObject {
            size,
            last_modified: None,
            etag: None,
            marked: false,
            body: futures_util::stream::iter(chunks).boxed(),
        }
    }

    #[tokio::test]
    async fn read_all_joins_chunks() {
        assert_eq!(
            object(6, &[b"abc", b"def"]).read_all().await.unwrap(),
            Bytes::from_static(b"abcdef")
        );
    }

    #[tokio::test]
    async fn read_all_refuses_a_body_that_disagrees_with_its_size() {
        assert!(object(4, &[b"abc", b"def"]).read_all().await.is_err());
        assert!(object(9, &[b"abc", b"def"]).read_all().await.is_err());
    }
}
