//! The seeded choices of the fault campaigns (`server/tests/suite/durability.rs`,
//! `testbed/tests/suite/kill_campaign.rs`): the same seed, the same moments.

/// A small deterministic generator.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A number from the environment (`TENANTLESS_KILLS`, `TENANTLESS_SEED`), or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
