//! The teacher client's advice cache: the newest advice per (model, request), tagged with the
//! prompt version it was computed under, so stale advice stays usable until a fresh one lands.

use std::collections::HashMap;
use std::sync::Arc;

use crate::teacher::advisor::{AdviceOrigin, AdviceRequest, TeacherAdvice};

/// What a cache entry is found by: the model that answered and the request. The prompt
/// version is kept in the entry instead of the key, so that a version bump does not hide the
/// advice computed under the previous prompt before the new prompt's advice arrives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    model: String,
    request: AdviceRequest,
}

#[derive(Clone, Debug)]
struct CacheEntry {
    /// The advice as stored (origin `Cache`).
    advice: Arc<TeacherAdvice>,
    /// Whether the advice was handed out since it was computed; the first hand-out is the
    /// answer to the lookup that queued it (origin `Fresh`).
    delivered: bool,
    /// Tick of the last lookup or insertion, for evicting the least recently used.
    last_used: u64,
}

/// A found advice and whether it was computed under the prompt version asked for.
#[derive(Clone, Debug)]
pub struct CacheLookup {
    pub advice: Arc<TeacherAdvice>,
    /// False when it was computed under an older prompt (the caller should ask again).
    pub current: bool,
}

/// Advice by (model, request), holding at most `capacity` entries.
#[derive(Debug)]
pub struct AdviceCache {
    entries: HashMap<CacheKey, CacheEntry>,
    capacity: usize,
    tick: u64,
}

impl AdviceCache {
    /// A cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> AdviceCache {
        AdviceCache { entries: HashMap::new(), capacity: capacity.max(1), tick: 0 }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newest advice for `request` from `model`, whatever its version, marked current
    /// when it was computed under `version` or later. The first hand-out of a computed advice
    /// says `Fresh`, later ones `Cache`.
    pub fn get(&mut self, model: &str, request: &AdviceRequest, version: u64) -> Option<CacheLookup> {
        self.tick += 1;
        // The key owns its strings; build it only to look up (the request is small).
        let key = CacheKey { model: model.to_owned(), request: request.clone() };
        let entry = self.entries.get_mut(&key)?;
        entry.last_used = self.tick;
        let current = entry.advice.prompt_version >= version;
        let advice = if entry.delivered {
            Arc::clone(&entry.advice)
        } else {
            entry.delivered = true;
            Arc::new(TeacherAdvice { origin: AdviceOrigin::Fresh, ..(*entry.advice).clone() })
        };
        Some(CacheLookup { advice, current })
    }

    /// Stores `advice` for `request` unless an advice from a newer prompt is already there (a
    /// late answer to an old prompt must not replace a newer one). Returns whether it stored.
    pub fn insert(&mut self, model: &str, request: AdviceRequest, mut advice: TeacherAdvice) -> bool {
        self.tick += 1;
        let key = CacheKey { model: model.to_owned(), request };
        if let Some(existing) = self.entries.get(&key)
            && existing.advice.prompt_version > advice.prompt_version
        {
            return false;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.evict_least_recently_used();
        }
        advice.origin = AdviceOrigin::Cache;
        self.entries.insert(key, CacheEntry { advice: Arc::new(advice), delivered: false, last_used: self.tick });
        true
    }

    /// Drops the least recently used eighth of the entries at once, so that a full cache pays
    /// the scan once per many insertions rather than on each.
    fn evict_least_recently_used(&mut self) {
        let mut ticks: Vec<u64> = self.entries.values().map(|entry| entry.last_used).collect();
        let drop_count = (ticks.len() / 8).max(1);
        let (_, &mut threshold, _) = ticks.select_nth_unstable(drop_count - 1);
        self.entries.retain(|_, entry| entry.last_used > threshold);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::skills::TeacherOption;

    fn request(description: &str) -> AdviceRequest {
        AdviceRequest {
            mission: "get to the goal".into(),
            description: description.into(),
            options: vec![TeacherOption::Explore, TeacherOption::Drop],
        }
    }

    fn advice(version: u64, explore: f32) -> TeacherAdvice {
        TeacherAdvice {
            options: vec![TeacherOption::Explore, TeacherOption::Drop],
            probabilities: vec![explore, 1.0 - explore],
            rationale: None,
            prompt_version: version,
            origin: AdviceOrigin::Fresh,
            latency: Duration::from_millis(5),
        }
    }

    #[test]
    fn first_hand_out_is_fresh_then_cached() {
        let mut cache = AdviceCache::new(10);
        assert!(cache.get("m", &request("a"), 0).is_none());
        assert!(cache.insert("m", request("a"), advice(0, 0.7)));
        let first = cache.get("m", &request("a"), 0).expect("stored");
        assert_eq!((first.advice.origin, first.current), (AdviceOrigin::Fresh, true));
        let second = cache.get("m", &request("a"), 0).expect("stored");
        assert_eq!(second.advice.origin, AdviceOrigin::Cache);
        assert_eq!(second.advice.probabilities, vec![0.7, 0.3]);
        assert!(cache.get("other model", &request("a"), 0).is_none());
        assert!(cache.get("m", &request("b"), 0).is_none());
    }

    #[test]
    fn older_prompt_advice_stays_until_replaced_and_never_replaces_newer() {
        let mut cache = AdviceCache::new(10);
        cache.insert("m", request("a"), advice(1, 0.7));
        let stale = cache.get("m", &request("a"), 2).expect("still usable");
        assert!(!stale.current);
        assert_eq!(stale.advice.prompt_version, 1);
        assert!(cache.insert("m", request("a"), advice(2, 0.2)));
        let fresh = cache.get("m", &request("a"), 2).expect("replaced");
        assert!(fresh.current);
        assert_eq!(fresh.advice.probabilities, vec![0.2, 0.8]);
        assert!(!cache.insert("m", request("a"), advice(1, 0.9)), "a late old answer is refused");
        assert_eq!(cache.get("m", &request("a"), 2).expect("kept").advice.prompt_version, 2);
    }

    #[test]
    fn full_cache_evicts_the_least_recently_used() {
        let mut cache = AdviceCache::new(8);
        for index in 0..8 {
            cache.insert("m", request(&index.to_string()), advice(0, 0.5));
        }
        // Touch all but "0", which becomes the least recently used.
        for index in 1..8 {
            cache.get("m", &request(&index.to_string()), 0).expect("stored");
        }
        cache.insert("m", request("8"), advice(0, 0.5));
        assert_eq!(cache.len(), 8);
        assert!(cache.get("m", &request("0"), 0).is_none());
        assert!(cache.get("m", &request("8"), 0).is_some());
    }
}
