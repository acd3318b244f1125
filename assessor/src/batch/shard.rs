//! Sharding a batch across pods: each profile belongs to exactly one of N
//! shards, decided by a hash of its id (or, for an unreadable entry, of its
//! source), so shares are deterministic, disjoint, cover every profile once
//! and do not depend on the input's order.

use sha2::{Digest, Sha256};

/// This pod's share: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

impl Shard {
    /// Reads `i/N` (0-based `i`).
    pub(crate) fn parse(value: &str) -> Result<Shard, String> {
        let (index, count) = value
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("expected INDEX/COUNT such as 0/3, found {value:?}"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("expected INDEX/COUNT such as 0/3, found {value:?}"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("expected INDEX/COUNT such as 0/3, found {value:?}"))?;
        Shard::new(index, count)
    }

    pub(crate) fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indexes are 0-based)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard a key belongs to.
    pub(crate) fn of(key: &str, count: u32) -> u32 {
        let digest = Sha256::digest(key.as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        (head % count as u64) as u32
    }

    pub(crate) fn owns(&self, key: &str) -> bool {
        Shard::of(key, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert_eq!(
            Shard::parse(" 0 / 1 ").unwrap(),
            Shard { index: 0, count: 1 }
        );
        assert!(Shard::parse("3/3").unwrap_err().contains("0-based"));
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("a/3").is_err());
    }

    #[test]
    fn shares_are_disjoint_and_cover_everything() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        let mut sizes = [0usize; 3];
        for n in 0..3000 {
            let key = format!("profile-{n}");
            let owners: Vec<u32> = shards
                .iter()
                .filter(|s| s.owns(&key))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{key}");
            sizes[owners[0] as usize] += 1;
        }
        // Roughly even: each share within 10% of a third.
        for size in sizes {
            assert!((900..=1100).contains(&size), "{sizes:?}");
        }
    }
}
