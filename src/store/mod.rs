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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no such object")]
    NotFound,
    /// The store failed or could not be reached; the message is for logs.
    #[error("store failure: {0}")]
    Failed(String),
}

/// A body streamed from a store.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// An object as a store returns it: its size and dates up front, its body as a stream.
pub struct StoredObject {
    pub size: u64,
    pub last_modified: Option<SystemTime>,
    pub etag: Option<String>,
    pub body: ByteStream,
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
        let announced = self.size;
        let capacity = usize::try_from(announced)
            .map_err(|_| StoreError::Failed("object too large".into()))?;
        let mut buf = BytesMut::with_capacity(capacity);
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

    /// Writes an object whole. Readers see either the previous state or all of `body`, never a part.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;

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

    #[derive(Default)]
    pub struct MemoryStore {
        pub objects: Mutex<HashMap<String, Bytes>>,
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
            Ok(StoredObject {
                size: bytes.len() as u64,
                last_modified: None,
                etag: None,
                body: futures_util::stream::iter([Ok(bytes)]).boxed(),
            })
        }

        async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
            self.objects
                .lock()
                .expect("lock")
                .insert(key.to_string(), body);
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
