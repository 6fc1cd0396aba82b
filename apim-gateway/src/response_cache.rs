//! The response cache of `cache-lookup` / `cache-store`
//! (learn.microsoft.com/azure/api-management/cache-lookup-policy,
//! cache-store-policy): the gateway's own memory, as APIM's internal cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A stored response.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Status.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

/// Entries by key, each until it expires.
#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<String, (Instant, Stored)>>,
}

/// Bound on entries; past it, expired ones go, then the cache refuses more.
const MAX_ENTRIES: usize = 10_000;
/// Largest body stored.
const MAX_BODY: usize = 1024 * 1024;

impl ResponseCache {
    /// The live entry under `key`.
    pub fn get(&self, key: &str) -> Option<Stored> {
        let entries = self.entries.lock().ok()?;
        let (expires, stored) = entries.get(key)?;
        (Instant::now() < *expires).then(|| stored.clone())
    }

    /// Stores `response` under `key` for `duration`.
    pub fn put(&self, key: String, response: Stored, duration: Duration) {
        // Bounded in bytes as well as entries: 1 MiB a response at most.
        if response.body.len() > MAX_BODY {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (expires, _)| now < *expires);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(key, (now + duration, response));
    }
}
