//! Dotted version numbers as MSI packages and the IME write them (`1.83.107.0`).

use std::cmp::Ordering;

/// Orders versions part by part numerically (`1.10` after `1.9`, `1.2` equal to
/// `1.2.0`); a part that is not a number counts as 0.
pub fn cmp(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let o = pa.get(i).unwrap_or(&0).cmp(pb.get(i).unwrap_or(&0));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_compare_as_numbers() {
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(cmp("1.83.107.0", "1.84.1.0"), Ordering::Less);
        assert_eq!(cmp("x", "0"), Ordering::Equal);
    }
}
