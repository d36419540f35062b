//! What a run knows of the table it writes, and which stored rows the file has named.
//!
//! A run starts knowing only the stored row hashes, in stored order (`Known::Hashes`). A
//! row hash covers the row's id, so a file row whose hash is the next stored hash is that
//! very row, unchanged: an export regenerated with nothing changed is compared without
//! reading a single id. At the first row out of step the stored keys are read
//! (`Known::Keys`), and the rows matched so far are marked in them.
//!
//! The stored keys are read in the table's stored order into a plain array. Exports are
//! regenerated in the same order each time (usually by key), and a table first loaded
//! from such an export stores its rows in that order, so the rows of the next file are
//! compared by walking the array in step with the file: no hash lookup and no cache miss
//! per row. A row that is out of step is found through a hash index over the array, built
//! the first time one is needed; the walk then continues after the row it found. Either
//! way every row is classified correctly; the order only decides how fast.

use rustc_hash::{FxHashMap, FxHashSet};

use super::idset::IdSet;
use super::{KeyReader, SyncError};

/// How a row of the file stands against the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Unchanged,
    Changed,
    New,
    /// The file named this id before.
    Duplicate,
}

#[derive(Default)]
pub(super) struct StoredKeys {
    /// (id key, row hash) in stored order.
    stored: Vec<(u128, i64)>,
    /// Which of `stored` the file has named.
    seen: Vec<u64>,
    /// Where the walk expects the next row.
    cursor: usize,
    /// Position of each stored key, built on first need.
    index: Option<FxHashMap<u128, u32>>,
    /// Keys the file added (to catch an id named twice).
    added: IdSet,
}

impl StoredKeys {
    pub(super) fn with_capacity(n: usize) -> StoredKeys {
        StoredKeys {
            stored: Vec::with_capacity(n),
            ..StoredKeys::default()
        }
    }

    /// Adds a stored key, in stored order (before any `classify`).
    pub(super) fn push(&mut self, key: u128, hash: i64) {
        self.stored.push((key, hash));
    }

    pub(super) fn len(&self) -> usize {
        self.stored.len()
    }

    fn index(&mut self) -> &FxHashMap<u128, u32> {
        let stored = &self.stored;
        self.index.get_or_insert_with(|| {
            let mut index = FxHashMap::with_capacity_and_hasher(stored.len(), Default::default());
            for (position, (key, _)) in stored.iter().enumerate() {
                index.insert(*key, position as u32);
            }
            index
        })
    }

    fn mark(&mut self, position: usize, hash: i64) -> Standing {
        if self.seen.is_empty() {
            self.seen = vec![0; self.stored.len().div_ceil(64)];
        }
        let (word, bit) = (position / 64, 1u64 << (position % 64));
        if self.seen[word] & bit != 0 {
            return Standing::Duplicate;
        }
        self.seen[word] |= bit;
        self.cursor = position + 1;
        if self.stored[position].1 == hash {
            Standing::Unchanged
        } else {
            Standing::Changed
        }
    }

    /// Marks as named every stored row whose hash is in `hashes`, the walk continuing after
    /// the last of them; returns how many.
    pub(super) fn mark_hashes(&mut self, hashes: &FxHashSet<i64>) -> usize {
        let mut marked = 0;
        for position in 0..self.stored.len() {
            if hashes.contains(&self.stored[position].1) {
                let hash = self.stored[position].1;
                if self.mark(position, hash) == Standing::Unchanged {
                    marked += 1;
                }
            }
        }
        marked
    }

    /// Classifies the file's next row, and remembers that the file named it.
    pub(super) fn classify(&mut self, key: u128, hash: i64) -> Standing {
        if self.stored.get(self.cursor).is_some_and(|(k, _)| *k == key) {
            return self.mark(self.cursor, hash);
        }
        if let Some(&position) = self.index().get(&key) {
            return self.mark(position as usize, hash);
        }
        if self.added.insert(key) {
            Standing::New
        } else {
            Standing::Duplicate
        }
    }

    /// How many stored rows the file did not name.
    pub(super) fn unseen(&self) -> usize {
        let seen: usize = self.seen.iter().map(|w| w.count_ones() as usize).sum();
        self.stored.len() - seen
    }

    /// Whether `key` is stored and the file did not name it.
    pub(super) fn is_unseen(&mut self, key: u128) -> bool {
        let Some(&position) = self.index().get(&key) else {
            return false;
        };
        let position = position as usize;
        self.seen
            .get(position / 64)
            .is_none_or(|word| word & (1u64 << (position % 64)) == 0)
    }
}

/// What a run knows of its table (see the module docs).
pub(super) enum Known {
    /// The stored row hashes in stored order, and how many of the first of them the file's
    /// rows matched.
    Hashes {
        hashes: Vec<i64>,
        matched: usize,
    },
    Keys(StoredKeys),
    /// The table is empty: every row is new. The backend's load catches an id the file
    /// names twice (the primary key), and names its line; a set of every id taken so far
    /// was the largest thing a first load held.
    Empty,
}

impl Known {
    pub(super) fn new(hashes: Vec<i64>) -> Known {
        if hashes.is_empty() {
            Known::Empty
        } else {
            Known::Hashes { matched: 0, hashes }
        }
    }

    /// How many rows the table held at the start.
    pub(super) fn stored(&self) -> usize {
        match self {
            Known::Hashes { hashes, .. } => hashes.len(),
            Known::Keys(keys) => keys.len(),
            Known::Empty => 0,
        }
    }

    /// The row's standing; `None` when the stored keys are needed first (`upgrade`).
    pub(super) fn classify(&mut self, key: u128, hash: i64) -> Option<Standing> {
        match self {
            Known::Hashes { hashes, matched } => {
                if hashes.get(*matched) == Some(&hash) {
                    *matched += 1;
                    Some(Standing::Unchanged)
                } else {
                    None
                }
            }
            Known::Keys(keys) => Some(keys.classify(key, hash)),
            Known::Empty => Some(Standing::New),
        }
    }

    /// Reads the stored keys of `table` and marks the rows matched so far.
    pub(super) async fn upgrade(
        &mut self,
        reader: &mut impl KeyReader,
        table: &str,
    ) -> Result<(), SyncError> {
        let Known::Hashes { hashes, matched } = self else {
            return Ok(());
        };
        let mut keys = StoredKeys::with_capacity(hashes.len());
        reader
            .read_keys(&format!("SELECT id, row_hash FROM {table}"), |id, hash| {
                keys.push(id, hash)
            })
            .await?;
        let changed = || SyncError::Other(format!("{table} changed while this run read it"));
        if keys.len() != hashes.len() {
            return Err(changed());
        }
        // A row hash covers the row's id: the rows matched so far are the stored rows with
        // those hashes.
        let seen: FxHashSet<i64> = hashes[..*matched].iter().copied().collect();
        if keys.mark_hashes(&seen) != *matched {
            return Err(changed());
        }
        *self = Known::Keys(keys);
        Ok(())
    }

    /// How many stored rows the file did not name.
    pub(super) fn unseen(&self) -> usize {
        match self {
            Known::Hashes { hashes, matched } => hashes.len() - matched,
            Known::Keys(keys) => keys.unseen(),
            Known::Empty => 0,
        }
    }

    /// Whether `key` is stored and the file did not name it (after `upgrade`).
    pub(super) fn is_unseen(&mut self, key: u128) -> bool {
        match self {
            Known::Keys(keys) => keys.is_unseen(key),
            Known::Hashes { .. } | Known::Empty => {
                unreachable!("is_unseen is asked after upgrade, of a table with rows")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(keys: &[(u128, i64)]) -> StoredKeys {
        let mut s = StoredKeys::with_capacity(keys.len());
        for (k, h) in keys {
            s.push(*k, *h);
        }
        s
    }

    #[test]
    fn in_step_out_of_step_new_duplicate_and_unseen() {
        let mut s = stored(&[(1, 10), (2, 20), (3, 30), (4, 40)]);
        assert_eq!(s.classify(1, 10), Standing::Unchanged);
        assert!(s.index.is_none(), "in step: no index needed");
        assert_eq!(s.classify(2, 21), Standing::Changed);
        // Out of step: 4 before 3, found through the index.
        assert_eq!(s.classify(4, 40), Standing::Unchanged);
        assert!(s.index.is_some());
        assert_eq!(s.classify(9, 90), Standing::New);
        assert_eq!(s.classify(9, 90), Standing::Duplicate);
        assert_eq!(s.classify(2, 20), Standing::Duplicate);
        assert_eq!(s.unseen(), 1);
        assert!(s.is_unseen(3));
        assert!(!s.is_unseen(1));
        assert!(!s.is_unseen(9));
    }

    /// Keys served from memory, for `Known::upgrade`.
    struct Table(Vec<(u128, i64)>);

    impl KeyReader for Table {
        async fn read_keys(
            &mut self,
            _query: &str,
            mut each: impl FnMut(u128, i64),
        ) -> Result<(), SyncError> {
            for (k, h) in &self.0 {
                each(*k, *h);
            }
            Ok(())
        }

        async fn read_hashes(&mut self, _table: &str) -> Result<Vec<i64>, SyncError> {
            Ok(self.0.iter().map(|(_, h)| *h).collect())
        }
    }

    #[tokio::test]
    async fn hashes_first_then_keys_from_the_first_row_out_of_step() {
        let mut table = Table(vec![(1, 10), (2, 20), (3, 30)]);
        let mut known = Known::new(vec![10, 20, 30]);
        assert_eq!(known.classify(1, 10), Some(Standing::Unchanged));
        // Row 2 changed: its hash is not the next stored one.
        assert_eq!(known.classify(2, 21), None);
        known.upgrade(&mut table, "t").await.unwrap();
        assert!(matches!(known, Known::Keys(_)));
        assert_eq!(known.classify(2, 21), Some(Standing::Changed));
        assert_eq!(
            known.classify(1, 10),
            Some(Standing::Duplicate),
            "1 was matched before"
        );
        assert_eq!(known.unseen(), 1);
        assert!(known.is_unseen(3));
    }

    #[tokio::test]
    async fn all_in_step_needs_no_keys_and_counts_what_is_left() {
        let mut known = Known::new(vec![10, 20, 30]);
        assert_eq!(known.classify(1, 10), Some(Standing::Unchanged));
        assert_eq!(known.classify(2, 20), Some(Standing::Unchanged));
        assert!(matches!(known, Known::Hashes { .. }));
        assert_eq!(known.unseen(), 1, "the third row was not named");
        // A table that changed under the run is refused, not guessed at.
        let mut other = Table(vec![(1, 10), (3, 30)]);
        assert!(known.upgrade(&mut other, "t").await.is_err());
    }

    #[test]
    fn an_empty_table_takes_everything_as_new() {
        let mut s = StoredKeys::default();
        assert_eq!(s.len(), 0);
        assert_eq!(s.classify(5, 1), Standing::New);
        assert_eq!(s.classify(6, 1), Standing::New);
        assert_eq!(s.classify(5, 2), Standing::Duplicate);
        assert_eq!(s.unseen(), 0);
    }

    #[test]
    fn a_duplicate_in_step_is_caught() {
        // The file names 1 twice in a row; the cursor has moved past it.
        let mut s = stored(&[(1, 10), (2, 20)]);
        assert_eq!(s.classify(1, 10), Standing::Unchanged);
        assert_eq!(s.classify(1, 10), Standing::Duplicate);
        assert_eq!(s.classify(2, 20), Standing::Unchanged);
        assert_eq!(s.unseen(), 0);
    }
}
