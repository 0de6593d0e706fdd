//! The endpoint's maps from connection ids and addresses to connections: hash tables keyed
//! with the endpoint's secret SipHash key (peers choose what is looked up) with feature
//! `hash-maps` (a default), or else a vector searched linearly, for instances that hold a
//! handful of connections (the browser), where it is as fast and its code is a fraction of
//! the table's.

#[cfg(feature = "hash-maps")]
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, crate::siphash::SipKeys>;

#[cfg(not(feature = "hash-maps"))]
pub(crate) use linear::LinearMap as Map;

#[cfg(not(feature = "hash-maps"))]
mod linear {
    use crate::prelude::*;
    use crate::siphash::SipKeys;

    /// A map as an unsorted vector: the subset of the hash map's API the endpoint uses.
    #[derive(Debug, Clone)]
    pub(crate) struct LinearMap<K, V>(Vec<(K, V)>);

    impl<K: Eq, V> LinearMap<K, V> {
        /// An empty map (the key is for the hash table's signature).
        pub(crate) fn with_hasher(_: SipKeys) -> Self {
            LinearMap(Vec::new())
        }

        fn position(&self, k: &K) -> Option<usize> {
            self.0.iter().position(|(x, _)| x == k)
        }

        pub(crate) fn get(&self, k: &K) -> Option<&V> {
            self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v)
        }

        pub(crate) fn contains_key(&self, k: &K) -> bool {
            self.position(k).is_some()
        }

        /// Inserts or replaces; returns the value replaced.
        pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
            match self.position(&k) {
                Some(i) => Some(core::mem::replace(&mut self.0[i].1, v)),
                None => {
                    self.0.push((k, v));
                    None
                }
            }
        }

        pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
            self.position(k).map(|i| self.0.swap_remove(i).1)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        fn behaves_as_a_map() {
            let mut m = LinearMap::with_hasher(SipKeys(1, 2));
            assert_eq!(m.insert((7u32, 1u32), 10u32), None);
            assert_eq!(m.insert((8, 1), 20), None);
            assert_eq!(m.insert((7, 1), 11), Some(10));
            assert_eq!(m.get(&(7, 1)), Some(&11));
            assert!(m.contains_key(&(8, 1)) && !m.contains_key(&(8, 2)));
            assert_eq!(m.remove(&(7, 1)), Some(11));
            assert_eq!(m.remove(&(7, 1)), None);
            assert_eq!(m.get(&(8, 1)), Some(&20));
        }
    }
}
