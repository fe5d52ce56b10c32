//! A store on a local directory. Keys map to paths below the root; writes go to a temporary file in the
//! same directory and are renamed (or, for a write only-if-absent, hard-linked) into place, so a reader
//! never sees a partial variant. A directory has no object metadata: variants are not marked as sizer's
//! output here, and the copy prefix alone keeps them from being read as originals. Hidden files (names
//! starting with `.`, such as the temporary files of writes in progress) are not listed.
//!
//! Symbolic links are followed only while they stay inside the root: a key whose path resolves outside
//! it (a link to `/etc/passwd`, a linked directory elsewhere) is not found, never read, written or
//! listed. The check resolves the path and then opens the resolved one, so a link swapped in between by
//! someone who can write into the root is not guarded against: the root is trusted not to change under
//! us that way.

use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::config::DEFAULT_ROOT;

use super::{Listing, ObjectInfo, PutOptions, Store, StoreError, StoredObject, Written};

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

/// The default root, `samples`, resolves against the working directory; a binary started elsewhere on the
/// machine that built it falls back to the repository's own sample directory, so `sizer` alone always works.
pub fn resolve_root(root: &Path) -> PathBuf {
    if root == Path::new(DEFAULT_ROOT) && !root.is_dir() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ROOT);
        if shipped.is_dir() {
            return shipped;
        }
    }
    root.to_path_buf()
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

    /// `path` with every symbolic link resolved, if that is still below the root; a link that leads out
    /// of it is as absent as a missing file (and logged), so no key reads or writes outside the root.
    /// Links that stay inside the root work.
    async fn confined(&self, key: &str, path: &Path) -> Result<PathBuf, StoreError> {
        let resolved = tokio::fs::canonicalize(path)
            .await
            .map_err(|e| io_error(key, e))?;
        if !resolved.starts_with(&self.root) {
            tracing::warn!(
                key,
                target = %resolved.display(),
                root = %self.root.display(),
                "symbolic link out of the store root refused"
            );
            return Err(StoreError::NotFound);
        }
        Ok(resolved)
    }

    /// The directory a write of `key` goes into: created if need be, from an existing ancestor that is
    /// (links resolved) below the root, so a linked directory cannot carry writes out of it.
    async fn confined_dir(&self, key: &str, dir: &Path) -> Result<PathBuf, StoreError> {
        let mut existing = dir;
        while !tokio::fs::try_exists(existing).await.unwrap_or(false) {
            match existing.parent() {
                Some(parent) if parent.starts_with(&self.root) => existing = parent,
                _ => break,
            }
        }
        let outside = |_| StoreError::Failed(format!("key {key:?} leads out of the store root"));
        self.confined(key, existing).await.map_err(outside)?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(key, e))?;
        self.confined(key, dir).await.map_err(outside)
    }
}

/// Size and modification time stand in for an ETag: they change whenever the file is replaced.
fn etag_of(meta: &std::fs::Metadata) -> Option<String> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format!("{:x}-{:x}", meta.len(), d.as_nanos()))
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
        let path = self.confined(key, &path).await?;
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
        Ok(StoredObject {
            size: meta.len(),
            last_modified: meta.modified().ok(),
            etag: etag_of(&meta),
            marked: false,
            body,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let path = self.path_of(key)?;
        let path = self.confined(key, &path).await?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_error(key, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotFound);
        }
        Ok(ObjectInfo {
            key: key.to_string(),
            size: meta.len(),
            last_modified: meta.modified().ok(),
            etag: etag_of(&meta),
            marked: false,
            source_etag: None,
        })
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: PutOptions<'_>,
    ) -> Result<Written, StoreError> {
        let path = self.path_of(key)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(StoreError::Failed(format!("key {key:?} has no file name")));
        };
        let dir = self.confined_dir(key, dir).await?;
        let path = dir.join(name);
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
            if !options.only_if_absent {
                tokio::fs::rename(&tmp, &path).await?;
                return Ok(Written::Written);
            }
            // A hard link never replaces an existing name: the directory's own if-none-match.
            let linked = match tokio::fs::hard_link(&tmp, &path).await {
                Ok(()) => Ok(Written::Written),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Ok(Written::AlreadyThere)
                }
                Err(e) => Err(e),
            };
            tokio::fs::remove_file(&tmp).await?;
            linked
        };
        match write.await {
            Ok(written) => Ok(written),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(io_error(key, e))
            }
        }
    }

    fn list(&self, prefix: &str) -> Listing {
        // Start in the deepest directory the prefix names; keep what starts with the prefix.
        let start = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
        let walk = Walk {
            root: self.root.clone(),
            prefix: prefix.to_string(),
            pending: vec![(start.to_string(), None)],
        };
        futures_util::stream::unfold(walk, |mut walk| async move {
            let next = walk.next().await?;
            Some((next, walk))
        })
        .boxed()
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(());
        };
        // The file itself may be a link (removing it removes the link), but not the way to it.
        let dir = match self.confined(key, dir).await {
            Ok(dir) => dir,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        match tokio::fs::remove_file(dir.join(name)).await {
            Ok(()) => {}
            Err(e) => match io_error(key, e) {
                StoreError::NotFound => return Ok(()),
                other => return Err(other),
            },
        }
        // Empty directories left behind go too (a purged original's variant directory), up to the root.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root && d.starts_with(&self.root)) {
            if tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
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

/// A depth-first walk in key order: each directory is read (and sorted) when the walk reaches it.
struct Walk {
    root: PathBuf,
    prefix: String,
    /// Directories being walked: the key prefix of each (`""`, `images/`) and its entries still to visit
    /// (`None`: not read yet).
    pending: Vec<(String, Option<VecDeque<Entry>>)>,
}

struct Entry {
    name: String,
    is_dir: bool,
    is_link: bool,
}

impl Walk {
    async fn next(&mut self) -> Option<Result<ObjectInfo, StoreError>> {
        loop {
            let (dir_key, entries) = self.pending.last_mut()?;
            let entries = match entries {
                Some(entries) => entries,
                None => match read_sorted(self.root.join(dir_key.as_str())).await {
                    Ok(read) => entries.insert(read),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.pending.pop();
                        continue;
                    }
                    Err(e) => {
                        let failed = io_error(dir_key, e);
                        self.pending.pop();
                        return Some(Err(failed));
                    }
                },
            };
            let Some(entry) = entries.pop_front() else {
                self.pending.pop();
                continue;
            };
            let key = format!("{dir_key}{}", entry.name);
            if entry.is_dir {
                let dir = format!("{key}/");
                if dir.starts_with(&self.prefix) || self.prefix.starts_with(&dir) {
                    self.pending.push((dir, None));
                }
                continue;
            }
            if !key.starts_with(&self.prefix) {
                continue;
            }
            // Directories on the way are never links (not followed above); a linked file is an object
            // only if it stays inside the root, as `get` has it.
            if entry.is_link {
                let inside = tokio::fs::canonicalize(self.root.join(&key))
                    .await
                    .is_ok_and(|target| target.starts_with(&self.root));
                if !inside {
                    continue;
                }
            }
            match tokio::fs::metadata(self.root.join(&key)).await {
                Ok(meta) if meta.is_file() => {
                    return Some(Ok(ObjectInfo {
                        size: meta.len(),
                        last_modified: meta.modified().ok(),
                        etag: etag_of(&meta),
                        marked: false,
                        source_etag: None,
                        key,
                    }));
                }
                // Gone since the directory was read, or not a file: not an object.
                _ => continue,
            }
        }
    }
}

/// A directory's visible entries with UTF-8 names, in the order their keys sort: a directory sorts as
/// its name followed by `/`. Symbolic links to directories are not followed.
async fn read_sorted(dir: PathBuf) -> std::io::Result<VecDeque<Entry>> {
    tokio::task::spawn_blocking(move || {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let file_type = entry.file_type()?;
            entries.push(Entry {
                name,
                is_dir: file_type.is_dir(),
                is_link: file_type.is_symlink(),
            });
        }
        entries.sort_by_cached_key(|e| {
            let mut k = e.name.clone();
            if e.is_dir {
                k.push('/');
            }
            k
        });
        Ok(entries.into())
    })
    .await
    .map_err(std::io::Error::other)?
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
                PutOptions::plain("image/jpeg"),
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
            assert!(
                store
                    .put(key, Bytes::new(), PutOptions::plain("x"))
                    .await
                    .is_err(),
                "{key:?}"
            );
        }
    }
}
