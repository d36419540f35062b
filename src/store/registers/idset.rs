//! A set of id keys (XXH3-128 hashes of ids) that can be asked ahead of time.
//!
//! A run looks up one or two keys per row in sets of hundreds of thousands of keys: the
//! ids of a referenced register, and the ids a first load has already taken. The keys are
//! random, so nearly every lookup misses the caches, and one after another those misses
//! were most of a first load's checking time. `prefetch` starts the memory read of a key's
//! slot without waiting for it; a run prefetches a whole batch's keys before it looks any
//! of them up, so the reads overlap instead of queueing.
//!
//! Open addressing with linear probing over a power-of-two table, at most half full. The
//! keys are already uniform hashes, so their low bits pick the slot. Zero marks an empty
//! slot; the key zero itself is held apart.

/// See the module docs.
#[derive(Default, Clone)]
pub(crate) struct IdSet {
    slots: Vec<u128>,
    len: usize,
    has_zero: bool,
}

impl IdSet {
    /// A set that holds `n` keys without growing.
    #[cfg(test)]
    pub(crate) fn with_capacity(n: usize) -> IdSet {
        IdSet {
            slots: vec![0; Self::slots_for(n)],
            len: 0,
            has_zero: false,
        }
    }

    fn slots_for(n: usize) -> usize {
        (n.max(8) * 2).next_power_of_two()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(self.has_zero)
    }

    /// Where the probe for `key` starts.
    fn home(&self, key: u128) -> usize {
        (key as usize) & (self.slots.len() - 1)
    }

    /// Starts reading the memory that `contains` or `insert` of `key` will read first.
    #[inline]
    pub(crate) fn prefetch(&self, key: u128) {
        if self.slots.is_empty() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let slot = &self.slots[self.home(key)] as *const u128 as *const i8;
            // SAFETY: a prefetch is a hint; it reads nothing and `slot` points into `slots`.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot)
            };
        }
    }

    pub(crate) fn contains(&self, key: u128) -> bool {
        if key == 0 {
            return self.has_zero;
        }
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        loop {
            match self.slots[at] {
                0 => return false,
                k if k == key => return true,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Adds `key`; false if it was there already.
    pub(crate) fn insert(&mut self, key: u128) -> bool {
        if key == 0 {
            return !std::mem::replace(&mut self.has_zero, true);
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        loop {
            match self.slots[at] {
                0 => {
                    self.slots[at] = key;
                    self.len += 1;
                    return true;
                }
                k if k == key => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![0; Self::slots_for(self.len + 1).max(old.len() * 2)];
        let mask = self.slots.len() - 1;
        for key in old.into_iter().filter(|&k| k != 0) {
            let mut at = self.home(key);
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_inserted_and_nothing_else_across_growth() {
        let mut set = IdSet::default();
        assert!(!set.contains(7));
        set.prefetch(7);
        // Keys that share their low bits probe past each other.
        let keys: Vec<u128> = (1..=5_000u128)
            .map(|n| n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | (n << 100))
            .chain((1..=50u128).map(|n| n << 64))
            .collect();
        for &key in &keys {
            assert!(set.insert(key), "{key} is new");
        }
        assert_eq!(set.len(), keys.len());
        for &key in &keys {
            set.prefetch(key);
            assert!(set.contains(key), "{key} was inserted");
            assert!(!set.insert(key), "{key} is there already");
        }
        assert!(!set.contains(3 << 64 | 1));
        assert!(!set.contains(u128::MAX));
        assert_eq!(set.len(), keys.len());
    }

    #[test]
    fn zero_is_a_key_like_any_other() {
        let mut set = IdSet::with_capacity(4);
        assert!(!set.contains(0));
        assert!(set.insert(0));
        assert!(!set.insert(0));
        assert!(set.contains(0));
        assert_eq!(set.len(), 1);
        assert!(!set.contains(1 << 64));
    }
}
