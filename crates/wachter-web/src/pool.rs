//! A few store handles shared by the request handlers. The store is synchronous, so each
//! use runs on Tokio's blocking pool while holding one handle.
//!
//! Handles are opened lazily up to `size`; a semaphore bounds how many are in use, so a
//! burst of requests waits for a handle instead of opening one per request. A closure that
//! panics loses its handle (its state is unknown) but never the pool: the permit goes
//! back and the next request opens a fresh handle.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use wachter_store::{Store, StoreError};

use crate::error::WebError;

#[derive(Clone)]
pub struct StorePool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    /// Where the store is, as given (to open more handles).
    connection_string: String,
    /// Idle handles; at most `size`.
    handles: Mutex<Vec<Store>>,
    /// One permit per handle that may be in use.
    permits: Arc<Semaphore>,
}

impl StorePool {
    /// Opens (and migrates) the store once to check it, keeping up to `size` handles.
    pub fn open(location: &str, size: usize) -> Result<StorePool, WebError> {
        let size = size.max(1);
        let first = Store::open(location).map_err(|e| {
            WebError::Internal(format!(
                "opening the store {}: {e}",
                wachter_store::redact(location)
            ))
        })?;
        Ok(StorePool {
            inner: Arc::new(PoolInner {
                connection_string: location.to_string(),
                handles: Mutex::new(vec![first]),
                permits: Arc::new(Semaphore::new(size)),
            }),
        })
    }

    /// Runs `f` with a store handle on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WebError::Internal("the store pool is closed".into()))?;
        let inner = self.inner.clone();
        // The permit moves into the blocking task: if the request is dropped (a timeout),
        // the handle stays counted as busy until the work on it ends.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let store = match inner.take_idle() {
                Some(store) => store,
                None => Store::open(&inner.connection_string)?,
            };
            match std::panic::catch_unwind(AssertUnwindSafe(|| f(&store))) {
                Ok(result) => {
                    inner.give_back(store);
                    result.map_err(WebError::from)
                }
                Err(_) => Err(WebError::Internal(
                    "a store operation panicked; its handle was dropped".into(),
                )),
            }
        });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(WebError::Internal(format!("store task failed: {e}"))),
        }
    }

    /// [`StorePool::run`] for a lookup: `NotFound` when `f` finds nothing.
    pub async fn find<T, F>(&self, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<Option<T>, StoreError> + Send + 'static,
    {
        self.run(f).await?.ok_or(WebError::NotFound)
    }
}

impl PoolInner {
    fn take_idle(&self) -> Option<Store> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, store: Store) {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use wachter_store::testing::remove_sqlite;

    fn temp_store(name: &str) -> String {
        wachter_store::testing::temp_sqlite("web-pool", name)
    }

    #[tokio::test]
    async fn a_panicking_closure_reports_an_error_and_the_pool_goes_on() {
        let path = temp_store("panic");
        let pool = StorePool::open(&path, 1).unwrap();
        let failed = pool
            .run(|_store| -> Result<(), StoreError> { panic!("boom") })
            .await;
        assert!(
            matches!(failed, Err(WebError::Internal(ref m)) if m.contains("panicked")),
            "{:?}",
            failed.err()
        );
        // The only permit came back; a fresh handle is opened for the next use.
        let version = pool.run(|store| store.schema_version()).await.unwrap();
        assert_eq!(version, wachter_store::SCHEMA_VERSION);
        remove_sqlite(&path);
    }

    #[tokio::test]
    async fn handles_are_reused_and_bounded() {
        let path = temp_store("bounded");
        let pool = StorePool::open(&path, 2).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                pool.run(|store| store.schema_version()).await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        let idle = pool.inner.handles.lock().unwrap().len();
        assert!((1..=2).contains(&idle), "{idle} idle handles");
        remove_sqlite(&path);
    }

    #[test]
    fn a_store_that_is_not_ours_is_a_clear_error() {
        let path = temp_store("foreign");
        std::fs::write(&path, b"not a database at all, just text").unwrap();
        let err = StorePool::open(&path, 1).err().expect("refused");
        assert!(err.to_string().contains("opening the store"), "{err}");
        remove_sqlite(&path);
    }
}
