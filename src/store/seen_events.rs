//! SQLite's dedupe of event ids, in memory (PostgreSQL keeps a unique index: several replicas
//! write there).
//!
//! A unique index on `inbox_events.event_id` costs one B-tree page per event of every commit, since
//! event ids are random: 137 of the 159 pages a 100-event acknowledgement wrote to the WAL. SQLite
//! serves one process, and all its inbox inserts go through the one writer turn
//! (`store/writer.rs`), so a set kept beside the table is exact: it is loaded from the table on the
//! first transaction, consulted under the turn, and extended only once the insert has committed.
//!
//! The set holds 128-bit fingerprints of the ids, not the ids (~44 bytes of memory per event
//! instead of ~90): two different ids share one with a probability of about n²/2¹²⁹, nil for the
//! millions of events one retention window holds. It forgets what the retention pruner deleted:
//! fingerprints are kept in groups by the highest row id they were stored under, and a group goes
//! once every row up to that id is gone — so it never forgets an event the table still has.
//!
//! The set is [`SHARDS`] tables chosen by a fingerprint's top byte, each growing on its own: one
//! table of a million fingerprints doubled inside an acknowledgement's turn, rehashing all of them
//! there (28, 42 and 59 ms for the extend at 0.46, 0.92 and 1.84 million on the 2-core machine);
//! a shard doubles at 1/256 of that size.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use diesel::prelude::*;

use super::schema::inbox_events;

/// Rows per group when the set is loaded from the table (after that, a group is a transaction).
const LOADED_GROUP: usize = 1_000;
/// Rows read at a time when the set is loaded.
const LOADED_READ: i64 = 20_000;
/// Tables the set is spread over (by a fingerprint's top byte).
const SHARDS: usize = 256;

/// A fingerprint of an event id.
pub type Fingerprint = u128;

/// Two independent 64-bit SipHashes of the id (the second over a prefixed id).
pub fn fingerprint(event_id: &str) -> Fingerprint {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        event_id.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// The set's own hasher: a fingerprint is already a hash, so its low bits are the bucket.
#[derive(Default)]
pub struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used by `Fingerprint`; anything else still hashes soundly.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

pub type BuildFingerprintHasher = BuildHasherDefault<FingerprintHasher>;

/// The event ids the inbox holds.
pub struct SeenEvents {
    /// The fingerprints, by their top byte ([`shard`]).
    shards: Vec<HashSet<Fingerprint, BuildFingerprintHasher>>,
    /// (highest row id, fingerprints stored up to it), oldest first.
    groups: VecDeque<(i64, Vec<Fingerprint>)>,
}

impl Default for SeenEvents {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| HashSet::default()).collect(),
            groups: VecDeque::new(),
        }
    }
}

/// The shard of `fingerprint`: its top byte (the tables hash by its low bits).
fn shard(fingerprint: &Fingerprint) -> usize {
    (fingerprint >> 120) as usize
}

impl SeenEvents {
    /// Every event id the table holds now, read [`LOADED_READ`] rows at a time: the ids themselves
    /// (~90 bytes each) are never all in memory at once, only their fingerprints.
    pub fn load(conn: &mut SqliteConnection) -> QueryResult<Self> {
        let mut seen = Self::default();
        let mut after = i64::MIN;
        loop {
            let rows: Vec<(i64, String)> = inbox_events::table
                .select((inbox_events::id, inbox_events::event_id))
                .filter(inbox_events::id.gt(after))
                .order(inbox_events::id)
                .limit(LOADED_READ)
                .load(conn)?;
            let Some(&(last, _)) = rows.last() else {
                return Ok(seen);
            };
            // In groups, so that pruning the oldest rows frees their part.
            for group in rows.chunks(LOADED_GROUP) {
                if let Some(&(last, _)) = group.last() {
                    seen.remember(last, group.iter().map(|(_, id)| fingerprint(id)).collect());
                }
            }
            after = last;
        }
    }

    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.shards[shard(fingerprint)].contains(fingerprint)
    }

    /// Adds what a committed insert stored, under the highest row id it used.
    pub fn remember(&mut self, last_row_id: i64, fingerprints: Vec<Fingerprint>) {
        if fingerprints.is_empty() {
            return;
        }
        for fingerprint in &fingerprints {
            self.shards[shard(fingerprint)].insert(*fingerprint);
        }
        self.groups.push_back((last_row_id, fingerprints));
    }

    /// Forgets the groups stored entirely below `first_row_id`, the lowest row id the table
    /// still holds (`None`: the table is empty).
    pub fn forget_below(&mut self, first_row_id: Option<i64>) {
        while let Some((last, _)) = self.groups.front() {
            if first_row_id.is_some_and(|first| *last >= first) {
                break;
            }
            if let Some((_, fingerprints)) = self.groups.pop_front() {
                for fingerprint in &fingerprints {
                    self.shards[shard(fingerprint)].remove(fingerprint);
                }
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashSet::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(HashSet::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_for_different_ids_and_agree_for_equal_ones() {
        let ids: Vec<String> = (0..100_000).map(|i| format!("$event{i}:server")).collect();
        let distinct: HashSet<Fingerprint> = ids.iter().map(|id| fingerprint(id)).collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(fingerprint("$a"), fingerprint("$a"));
    }

    #[test]
    fn a_group_is_forgotten_only_when_every_row_up_to_it_is_gone() {
        let mut seen = SeenEvents::default();
        seen.remember(10, vec![fingerprint("$a"), fingerprint("$b")]);
        seen.remember(20, vec![fingerprint("$c")]);
        // Row 10 still there (the pruner deleted up to 9): nothing goes.
        seen.forget_below(Some(10));
        assert_eq!(seen.len(), 3);
        // Rows up to 10 gone: the first group goes, the second stays.
        seen.forget_below(Some(11));
        assert!(!seen.contains(&fingerprint("$a")));
        assert!(seen.contains(&fingerprint("$c")));
        // The table is empty: everything goes.
        seen.forget_below(None);
        assert!(seen.is_empty());
    }

    #[test]
    fn loading_reads_the_table_a_group_at_a_time_and_keeps_every_id() {
        use diesel::connection::SimpleConnection;
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE inbox_events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL)",
        )
        .unwrap();
        let ids: Vec<String> = (0..2_500).map(|i| format!("$loaded{i}:server")).collect();
        for id in &ids {
            diesel::insert_into(inbox_events::table)
                .values(inbox_events::event_id.eq(id))
                .execute(&mut conn)
                .unwrap();
        }
        let seen = SeenEvents::load(&mut conn).unwrap();
        assert_eq!(seen.len(), ids.len());
        assert!(ids.iter().all(|id| seen.contains(&fingerprint(id))));
        let groups: Vec<(i64, usize)> = seen
            .groups
            .iter()
            .map(|(last, group)| (*last, group.len()))
            .collect();
        assert_eq!(groups, [(1_000, 1_000), (2_000, 1_000), (2_500, 500)]);
        assert!(
            SeenEvents::load(&mut SqliteConnection::establish(":memory:").unwrap()).is_err(),
            "no table, no set"
        );
    }

    #[test]
    fn fingerprints_spread_over_the_shards_and_are_found_in_theirs() {
        let mut seen = SeenEvents::default();
        let ids: Vec<String> = (0..50_000).map(|i| format!("$event{i}:server")).collect();
        seen.remember(1, ids.iter().map(|id| fingerprint(id)).collect());
        assert_eq!(seen.len(), ids.len());
        assert!(ids.iter().all(|id| seen.contains(&fingerprint(id))));
        assert!(!seen.contains(&fingerprint("$never:server")));
        // About 195 a shard; none empty, none with more than twice its share.
        let sizes: Vec<usize> = seen.shards.iter().map(HashSet::len).collect();
        assert!(
            sizes
                .iter()
                .all(|size| (1..=2 * ids.len() / SHARDS).contains(size)),
            "{sizes:?}"
        );
    }
}
