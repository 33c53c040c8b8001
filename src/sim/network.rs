//! The simulated network: link latencies and loss, derived from the seed.

use std::time::Duration;

/// Latency and loss between any two simulated nodes.
///
/// Each link's round-trip time is fixed for the whole run and drawn from a
/// log-normal distribution by hashing the seed and the two endpoints, so it
/// costs no memory per link. Each datagram then takes half the link RTT,
/// scaled by a small per-packet jitter.
#[derive(Debug, Clone, Copy)]
pub struct LinkModel {
    seed: u64,
    rtt_median_micros: f64,
    sigma: f64,
}

/// The longest one-way delay the model produces, cutting the log-normal tail.
const ONE_WAY_DELAY_MAX: Duration = Duration::from_secs(5);

impl LinkModel {
    /// A model with median RTT `rtt_median` and log-normal spread `sigma`.
    pub fn new(seed: u64, rtt_median: Duration, sigma: f64) -> LinkModel {
        LinkModel {
            seed,
            rtt_median_micros: rtt_median.as_micros() as f64,
            sigma,
        }
    }

    /// The fixed round-trip time of the link between nodes `a` and `b`.
    pub fn link_rtt(&self, a: u32, b: u32) -> Duration {
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        let key = self.seed
            ^ (u64::from(low) << 32 | u64::from(high)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let u1 = unit(splitmix(key));
        let u2 = unit(splitmix(key ^ 0xdead_beef_cafe_f00d));
        // Box-Muller: a standard normal from two uniforms.
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let micros = self.rtt_median_micros * (self.sigma * z).exp();
        Duration::from_micros(micros as u64)
    }

    /// One datagram's delay from `a` to `b`, given a uniform sample `jitter` in [0, 1).
    pub fn one_way_delay(&self, a: u32, b: u32, jitter: f64) -> Duration {
        let half = self.link_rtt(a, b).as_secs_f64() / 2.0;
        let delay = Duration::from_secs_f64(half * (0.9 + 0.2 * jitter));
        delay.min(ONE_WAY_DELAY_MAX)
    }
}

/// SplitMix64: a fast, well-mixed hash of a 64-bit key.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform number in (0, 1] from 53 random bits.
fn unit(x: u64) -> f64 {
    ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_symmetric_fixed_and_log_normal_around_the_median() {
        let model = LinkModel::new(7, Duration::from_millis(100), 0.5);
        assert_eq!(model.link_rtt(3, 9), model.link_rtt(9, 3));
        let mut rtts: Vec<Duration> = (0..10_000u32).map(|i| model.link_rtt(i, i + 1)).collect();
        rtts.sort();
        let median = rtts[rtts.len() / 2].as_millis();
        assert!((90..=110).contains(&median), "median {median} ms");
        let p99 = rtts[rtts.len() * 99 / 100].as_millis();
        assert!(p99 > 250, "long tail: p99 {p99} ms");
    }
}
