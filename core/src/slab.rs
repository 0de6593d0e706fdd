//! A slab of values addressed by (index, generation): stale handles never reach a newer value
//! that reused the slot.
use crate::prelude::*;

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Generational slab.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { entries: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    /// Inserts a value built from its (index, generation).
    pub(crate) fn insert_with(&mut self, f: impl FnOnce(u32, u32) -> T) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry { generation: 0, value: None });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[index as usize];
        e.generation = e.generation.wrapping_add(1);
        let generation = e.generation;
        e.value = Some(f(index, generation));
        self.len += 1;
        (index, generation)
    }
    pub(crate) fn get(&self, index: u32, generation: u32) -> Option<&T> {
        let e = self.entries.get(index as usize)?;
        if e.generation != generation {
            return None;
        }
        e.value.as_ref()
    }
    pub(crate) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        let e = self.entries.get_mut(index as usize)?;
        if e.generation != generation {
            return None;
        }
        e.value.as_mut()
    }
    /// By index alone (for internal queues that hold indices of live values).
    pub(crate) fn by_index_mut(&mut self, index: u32) -> Option<&mut T> {
        self.entries.get_mut(index as usize)?.value.as_mut()
    }
    pub(crate) fn by_index(&self, index: u32) -> Option<&T> {
        self.entries.get(index as usize)?.value.as_ref()
    }
    pub(crate) fn generation(&self, index: u32) -> u32 {
        self.entries.get(index as usize).map_or(0, |e| e.generation)
    }
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        let e = self.entries.get_mut(index as usize)?;
        let v = e.value.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(v)
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| e.value.as_ref().map(|v| (i as u32, v)))
    }
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_mut().map(|v| (i as u32, v)))
    }
}
