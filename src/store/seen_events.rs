//! SQLite's dedupe of event ids, in memory (PostgreSQL keeps a unique index: several replicas
//! write there).
//!
//! A unique index on `inbox_events.event_id` costs one B-tree page per event of every commit, since
//! event ids are random: 137 of the 159 pages a 100-event acknowledgement wrote to the WAL. SQLite
//! serves one process, and all its inbox inserts go through the one writer turn
//! (`store/writer.rs`), so a set kept beside the table is exact: it is loaded from the table at
//! start, consulted under the turn, and extended only once the insert has committed.
//!
//! **What it holds: 8 bytes an event.** Each event id is fingerprinted to 64 bits; the top 12
//! choose one of [`SHARDS`] sorted arrays, and an entry keeps the next 32 bits (its key) and the
//! low 32 bits of the event's row id. So 44 bits of the fingerprint are compared. A fingerprint
//! alone would be a guess: a new event whose 44 bits an old one shares would be taken for a
//! duplicate and dropped, acknowledged and lost. So a match is only a candidate, and the row it
//! names is read (by primary key) to compare the ids: the set answers "certainly new" for nearly
//! every event (at two million events, all but one in 8.8 million new events), and the table
//! answers the rest, exactly. Two events sharing a key are both kept. The row id comes back whole
//! from its low 32 bits and the newest row id, since the rows the set holds span far fewer than
//! 2³² ids.
//!
//! Before, the set held 128-bit fingerprints in hash tables, plus a copy of each in groups by row
//! id for forgetting: ~44 bytes an event in theory, 102 MiB of RSS at 1.3 million events measured;
//! then whole 64-bit fingerprints, 12 bytes an event.
//!
//! **Forgetting.** After a pruning pass the set drops the entries below the lowest row id the table
//! still holds, a shard at a time.
//!
//! **Growth.** A shard grows by an eighth when full (not by doubling, which would leave up to half
//! of it unused), and an insert moves the entries after it in its shard only: ~500 of them at two
//! million events.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use diesel::prelude::*;

use super::schema::inbox_events;

/// Rows read at a time when the set is loaded: the ids themselves (~90 bytes each) are never all
/// in memory at once.
const LOADED_READ: i64 = 20_000;
/// Top bits of a fingerprint that choose its shard.
const SHARD_BITS: u32 = 12;
/// Sorted arrays the set is spread over.
pub const SHARDS: usize = 1 << SHARD_BITS;

/// A fingerprint of an event id.
pub type Fingerprint = u64;

/// SipHash of the id, with the fixed keys of [`DefaultHasher::new`] (the set lives in one process,
/// so the hash need not be stable across builds).
pub fn fingerprint(event_id: &str) -> Fingerprint {
    let mut hasher = DefaultHasher::new();
    event_id.hash(&mut hasher);
    hasher.finish()
}

/// One stored event: 8 bytes.
#[derive(Clone, Copy)]
struct Entry {
    /// The fingerprint's 32 bits below those that chose the shard.
    key: u32,
    /// The low 32 bits of its row id.
    row: u32,
}

/// The event ids the inbox holds.
pub struct SeenEvents {
    /// Each sorted by fingerprint; an event's shard is its fingerprint's top bits.
    shards: Vec<Vec<Entry>>,
    /// The highest row id remembered: the others are at most 2³² below it.
    newest_row: i64,
}

impl Default for SeenEvents {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Vec::new()).collect(),
            newest_row: 0,
        }
    }
}

fn shard(fingerprint: Fingerprint) -> usize {
    (fingerprint >> (64 - SHARD_BITS)) as usize
}

/// What an entry keeps of a fingerprint in its shard.
fn key(fingerprint: Fingerprint) -> u32 {
    (fingerprint >> (64 - SHARD_BITS - 32)) as u32
}

impl SeenEvents {
    /// Every event id the table holds now, read [`LOADED_READ`] rows at a time.
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
                break;
            };
            for (row, event_id) in &rows {
                seen.push(*row, fingerprint(event_id));
            }
            after = last;
        }
        for shard in &mut seen.shards {
            shard.sort_unstable_by_key(|entry| entry.key);
        }
        Ok(seen)
    }

    /// Appends to a shard without keeping it sorted (loading sorts once at the end).
    fn push(&mut self, row: i64, fingerprint: Fingerprint) {
        let shard = &mut self.shards[shard(fingerprint)];
        grow(shard);
        shard.push(Entry {
            key: key(fingerprint),
            row: row as u32,
        });
        self.newest_row = self.newest_row.max(row);
    }

    /// The row ids stored under `fingerprint`'s shard and key: the events whose id may be the one
    /// fingerprinted (read the rows to know). Usually none.
    pub fn candidates(&self, fingerprint: Fingerprint) -> impl Iterator<Item = i64> + '_ {
        let shard = &self.shards[shard(fingerprint)];
        let key = key(fingerprint);
        let start = shard.partition_point(|entry| entry.key < key);
        shard[start..]
            .iter()
            .take_while(move |entry| entry.key == key)
            .map(|entry| self.row_id(entry.row))
    }

    /// Adds an event a committed insert stored as row `row`.
    pub fn remember(&mut self, row: i64, fingerprint: Fingerprint) {
        let shard = &mut self.shards[shard(fingerprint)];
        let key = key(fingerprint);
        let at = shard.partition_point(|entry| entry.key <= key);
        grow(shard);
        shard.insert(
            at,
            Entry {
                key,
                row: row as u32,
            },
        );
        self.newest_row = self.newest_row.max(row);
    }

    /// Forgets the events stored below `first_row`, the lowest row id the table still holds
    /// (`None`: the table is empty).
    pub fn forget_below(&mut self, first_row: Option<i64>) {
        let newest_row = self.newest_row;
        for shard in &mut self.shards {
            match first_row {
                Some(first) => shard.retain(|entry| full_row_id(newest_row, entry.row) >= first),
                None => shard.clear(),
            }
            if shard.capacity() > 2 * shard.len() + 16 {
                shard.shrink_to(shard.len() + shard.len() / 8);
            }
        }
    }

    fn row_id(&self, low: u32) -> i64 {
        full_row_id(self.newest_row, low)
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(Vec::is_empty)
    }

    /// Bytes the entries take (capacity included): what the set costs.
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.capacity() * size_of::<Entry>())
            .sum::<usize>()
            + self.shards.capacity() * size_of::<Vec<Entry>>()
    }
}

/// Whether the set keeps the same shard and key for both ids, so that each is a candidate for the
/// other and only the row read tells them apart (for tests that store such a pair).
pub fn share_an_entry(a: &str, b: &str) -> bool {
    let (a, b) = (fingerprint(a), fingerprint(b));
    shard(a) == shard(b) && key(a) == key(b)
}

/// The row id whose low 32 bits are `low`, at or below `newest` and less than 2³² under it.
fn full_row_id(newest: i64, low: u32) -> i64 {
    newest - i64::from((newest as u32).wrapping_sub(low))
}

/// Room for one more entry, growing by an eighth (at least 16) when full.
fn grow(shard: &mut Vec<Entry>) {
    if shard.len() == shard.capacity() {
        shard.reserve_exact((shard.len() / 8).max(16));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn an_entry_takes_eight_bytes() {
        assert_eq!(size_of::<Entry>(), 8);
    }

    /// A fingerprint in shard `shard` with key `key` (and low bits `low`, which the set drops).
    fn made(shard: u64, key: u64, low: u64) -> Fingerprint {
        (shard << (64 - SHARD_BITS)) | (key << (64 - SHARD_BITS - 32)) | low
    }

    #[test]
    fn fingerprints_differ_for_different_ids_and_agree_for_equal_ones() {
        let ids: Vec<String> = (0..100_000).map(|i| format!("$event{i}:server")).collect();
        let distinct: HashSet<Fingerprint> = ids.iter().map(|id| fingerprint(id)).collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(fingerprint("$a"), fingerprint("$a"));
    }

    #[test]
    fn events_sharing_a_fingerprint_are_both_candidates() {
        let mut seen = SeenEvents::default();
        seen.remember(7, made(5, 42, 0));
        seen.remember(9, made(5, 43, 0));
        seen.remember(8, made(5, 42, 0));
        seen.remember(10, made(6, 42, 0));
        let mut rows: Vec<i64> = seen.candidates(made(5, 42, 0)).collect();
        rows.sort();
        assert_eq!(rows, [7, 8]);
        assert_eq!(seen.candidates(made(5, 44, 0)).count(), 0);
        assert_eq!(seen.candidates(made(7, 42, 0)).count(), 0);
    }

    #[test]
    fn fingerprints_differing_only_in_the_dropped_bits_are_candidates_for_each_other() {
        // The set keeps 44 of the 64 bits: the 20 it drops may differ, and the row read decides.
        let mut seen = SeenEvents::default();
        seen.remember(3, made(9, 7, 1));
        assert_eq!(
            seen.candidates(made(9, 7, 0xfffff)).collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(seen.candidates(made(9, 8, 1)).count(), 0);
    }

    #[test]
    fn row_ids_come_back_whole_across_the_32_bit_boundary() {
        let mut seen = SeenEvents::default();
        let below = (1_i64 << 32) - 3;
        let above = (1_i64 << 32) + 5;
        let (one, two) = (made(0, 1, 0), made(0, 2, 0));
        seen.remember(below, one);
        seen.remember(above, two);
        assert_eq!(seen.candidates(one).collect::<Vec<_>>(), [below]);
        assert_eq!(seen.candidates(two).collect::<Vec<_>>(), [above]);
        seen.forget_below(Some(1 << 32));
        assert_eq!(seen.candidates(one).count(), 0);
        assert_eq!(seen.candidates(two).collect::<Vec<_>>(), [above]);
    }

    #[test]
    fn events_below_the_first_row_left_are_forgotten_and_the_others_kept() {
        let mut seen = SeenEvents::default();
        for row in 1..=20 {
            seen.remember(row, fingerprint(&format!("${row}")));
        }
        seen.forget_below(Some(11));
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.candidates(fingerprint("$10")).count(), 0);
        assert_eq!(
            seen.candidates(fingerprint("$11")).collect::<Vec<_>>(),
            [11]
        );
        seen.forget_below(None);
        assert!(seen.is_empty());
    }

    #[test]
    fn loading_reads_the_table_in_parts_and_keeps_every_id_with_its_row() {
        use diesel::connection::SimpleConnection;
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE inbox_events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL)",
        )
        .unwrap();
        let count = LOADED_READ as usize * 2 + 500;
        let ids: Vec<String> = (0..count).map(|i| format!("$loaded{i}:server")).collect();
        conn.transaction(|conn| {
            for id in &ids {
                diesel::insert_into(inbox_events::table)
                    .values(inbox_events::event_id.eq(id))
                    .execute(conn)?;
            }
            QueryResult::Ok(())
        })
        .unwrap();
        let seen = SeenEvents::load(&mut conn).unwrap();
        assert_eq!(seen.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                seen.candidates(fingerprint(id)).collect::<Vec<_>>(),
                [i as i64 + 1],
                "{id}"
            );
        }
        assert!(
            SeenEvents::load(&mut SqliteConnection::establish(":memory:").unwrap()).is_err(),
            "no table, no set"
        );
    }

    #[test]
    fn shards_stay_sorted_and_slack_stays_small() {
        let mut seen = SeenEvents::default();
        let n = 200_000;
        for row in 0..n {
            seen.remember(row, fingerprint(&format!("$event{row}:server")));
        }
        assert_eq!(seen.len(), n as usize);
        for shard in &seen.shards {
            assert!(shard.windows(2).all(|w| w[0].key <= w[1].key));
        }
        // 8 bytes an event, plus at most an eighth (and 16 a shard) of room.
        let bytes = seen.heap_bytes();
        let floor = n as usize * 8;
        assert!(
            bytes <= floor + floor / 8 + SHARDS * 16 * 8 + SHARDS * 24,
            "{bytes} bytes for {n} events"
        );
        assert!(!seen.candidates(fingerprint("$never:server")).any(|_| true));
    }
}
