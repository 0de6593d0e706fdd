//! A set of disjoint half-open `u64` ranges, kept sorted and merged. Small and cache-friendly:
//! the common case (one range growing at the end) is O(1).

use crate::prelude::*;
use core::ops::Range;

/// Sorted, disjoint, non-adjacent half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    r: Vec<Range<u64>>,
}

impl RangeSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.r.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.r.len()
    }
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Range<u64>> {
        self.r.iter()
    }
    pub(crate) fn first(&self) -> Option<Range<u64>> {
        self.r.first().cloned()
    }
    /// Total length of all ranges.
    pub(crate) fn total(&self) -> u64 {
        self.r.iter().map(|x| x.end - x.start).sum()
    }
    /// True if `v` is in a range (the model check of the tests).
    #[cfg(test)]
    pub(crate) fn contains(&self, v: u64) -> bool {
        let i = self.r.partition_point(|x| x.end <= v);
        self.r.get(i).is_some_and(|x| x.start <= v)
    }
    /// Inserts `add`; returns the number of values that were not present before.
    pub(crate) fn insert(&mut self, add: Range<u64>) -> u64 {
        if add.start >= add.end {
            return 0;
        }
        // Fast path: append at or after the end.
        if let Some(last) = self.r.last_mut() {
            if add.start >= last.start && add.start <= last.end {
                let before = last.end;
                if add.end > last.end {
                    last.end = add.end;
                    return add.end - before;
                }
                return 0;
            }
            if add.start > last.end {
                self.r.push(add.clone());
                return add.end - add.start;
            }
        } else {
            self.r.push(add.clone());
            return add.end - add.start;
        }
        // General case: find ranges overlapping or adjacent to `add`.
        let lo = self.r.partition_point(|x| x.end < add.start);
        let hi = self.r.partition_point(|x| x.start <= add.end);
        let mut covered = 0;
        for x in &self.r[lo..hi] {
            covered += x.end.min(add.end).saturating_sub(x.start.max(add.start));
        }
        let start = self.r.get(lo).map_or(add.start, |x| x.start.min(add.start));
        let end = if hi > lo { self.r[hi - 1].end.max(add.end) } else { add.end };
        self.r.splice(lo..hi, core::iter::once(start..end));
        (add.end - add.start) - covered
    }
    /// Removes `rem`; returns the number of values removed.
    pub(crate) fn remove(&mut self, rem: Range<u64>) -> u64 {
        if rem.start >= rem.end || self.r.is_empty() {
            return 0;
        }
        let lo = self.r.partition_point(|x| x.end <= rem.start);
        let hi = self.r.partition_point(|x| x.start < rem.end);
        if lo >= hi {
            return 0;
        }
        let mut removed = 0;
        let mut keep: [Option<Range<u64>>; 2] = [None, None];
        let first = self.r[lo].clone();
        let last = self.r[hi - 1].clone();
        if first.start < rem.start {
            keep[0] = Some(first.start..rem.start);
        }
        if last.end > rem.end {
            keep[1] = Some(rem.end..last.end);
        }
        for x in &self.r[lo..hi] {
            removed += x.end.min(rem.end) - x.start.max(rem.start);
        }
        self.r.splice(lo..hi, keep.into_iter().flatten());
        removed
    }
    /// Removes and returns up to `max` values from the lowest range.
    pub(crate) fn pop_front(&mut self, max: u64) -> Option<Range<u64>> {
        let first = self.r.first_mut()?;
        let take = (first.end - first.start).min(max);
        let out = first.start..first.start + take;
        first.start += take;
        if first.start == first.end {
            self.r.remove(0);
        }
        Some(out)
    }
    /// Drops everything below `v`.
    pub(crate) fn remove_below(&mut self, v: u64) {
        let i = self.r.partition_point(|x| x.end <= v);
        self.r.drain(..i);
        if let Some(f) = self.r.first_mut()
            && f.start < v
        {
            f.start = v;
        }
    }
    /// Drops the lowest range.
    pub(crate) fn drop_first(&mut self) {
        if !self.r.is_empty() {
            self.r.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn matches_a_bitmap() {
        let mut rng = Rng::seeded(5);
        for _ in 0..300 {
            let mut set = RangeSet::new();
            let mut bits = [false; 200];
            for _ in 0..40 {
                let a = rng.range(0, 199);
                let b = rng.range(a, 200);
                let before = bits.iter().filter(|&&x| x).count() as u64;
                if rng.chance(0.6) {
                    let n = set.insert(a..b);
                    bits[a as usize..b as usize].fill(true);
                    assert_eq!(n, bits.iter().filter(|&&x| x).count() as u64 - before);
                } else {
                    let n = set.remove(a..b);
                    bits[a as usize..b as usize].fill(false);
                    assert_eq!(n, before - bits.iter().filter(|&&x| x).count() as u64);
                }
                for (i, &bit) in bits.iter().enumerate() {
                    assert_eq!(set.contains(i as u64), bit);
                }
                let v: Vec<_> = set.iter().cloned().collect();
                for w in v.windows(2) {
                    assert!(w[0].end < w[1].start, "not merged: {v:?}");
                }
            }
        }
    }
}
