//! A store on a local directory. Keys map to paths below the root; writes go to a temporary file in the
//! same directory and are renamed into place, so a reader never sees a partial variant.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{Store, StoreError, StoredObject};

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens a directory store; the root must exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStore, StoreError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(StoreError::Failed(format!(
                "store root {} is not a directory",
                root.display()
            )));
        }
        let root = root
            .canonicalize()
            .map_err(|e| StoreError::Failed(format!("{}: {e}", root.display())))?;
        Ok(FsStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a key. Only plain relative components are accepted, so no key leaves the root.
    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let relative = Path::new(key);
        let plain = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain || key.contains('\\') {
            return Err(StoreError::Failed(format!(
                "key {key:?} does not map to a path below the store root"
            )));
        }
        Ok(self.root.join(relative))
    }
}

fn io_error(key: &str, e: std::io::Error) -> StoreError {
    match e.kind() {
        // A path segment that is a file (`a.jpg/x`) is as absent as a missing one.
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => StoreError::NotFound,
        _ => StoreError::Failed(format!("{key}: {e}")),
    }
}

#[async_trait]
impl Store for FsStore {
    async fn get(&self, key: &str) -> Result<StoredObject, StoreError> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_error(key, e))?;
        let meta = file.metadata().await.map_err(|e| io_error(key, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotFound);
        }
        let key = key.to_string();
        let body = ReaderStream::with_capacity(file, 64 * 1024)
            .map_err(move |e| io_error(&key, e))
            .boxed();
        let last_modified = meta.modified().ok();
        let etag = last_modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| format!("{:x}-{:x}", meta.len(), d.as_nanos()));
        Ok(StoredObject {
            size: meta.len(),
            last_modified,
            etag,
            body,
        })
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(StoreError::Failed(format!("key {key:?} has no file name")));
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(key, e))?;
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = dir.join(format!(
            ".{}.{}.{unique}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let write = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(&body).await?;
            file.sync_data().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(key, e));
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        match tokio::fs::metadata(&self.root).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(StoreError::Failed(format!(
                "{} is not a directory",
                self.root.display()
            ))),
            Err(e) => Err(StoreError::Failed(format!("{}: {e}", self.root.display()))),
        }
    }

    fn describe(&self) -> String {
        format!("fs:{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_then_get_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store
            .put(
                "copy/a.jpg/w600_q80",
                Bytes::from_static(b"hello"),
                "image/jpeg",
            )
            .await
            .unwrap();
        let obj = store.get("copy/a.jpg/w600_q80").await.unwrap();
        assert_eq!(obj.size, 5);
        assert_eq!(obj.read_all().await.unwrap(), Bytes::from_static(b"hello"));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("copy/a.jpg"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("w600_q80")]);
    }

    #[tokio::test]
    async fn missing_objects_and_directories_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"x").unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get("nope.jpg").await.unwrap_err(),
            StoreError::NotFound
        );
        assert_eq!(store.get("images").await.unwrap_err(), StoreError::NotFound);
        assert_eq!(
            store.get("a.jpg/w600").await.unwrap_err(),
            StoreError::NotFound
        );
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        for key in ["../x", "/etc/passwd", "a/../../x", "", "a\\b"] {
            assert!(
                matches!(store.get(key).await, Err(StoreError::Failed(_))),
                "{key:?}"
            );
            assert!(store.put(key, Bytes::new(), "x").await.is_err(), "{key:?}");
        }
    }
}
