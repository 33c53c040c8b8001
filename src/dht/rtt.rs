//! Round-trip times of recent answers, for timeouts that follow the network.
//!
//! A lookup's soft timeout decides when a silent node stops holding up the
//! next query. Fixed values are either too slow on a fast network or too
//! trigger-happy on a slow one; a high quantile of recently measured RTTs
//! tracks the network instead. Quantiles, not a mean, because RTTs on the
//! Internet are heavy-tailed.

use std::time::Duration;

/// RTT samples kept (a ring buffer; older samples are overwritten).
const RTT_SAMPLES_MAX: usize = 64;
/// Samples needed before the estimate is trusted.
const RTT_SAMPLES_MIN: usize = 8;

/// Recent round-trip times.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    samples_us: [u32; RTT_SAMPLES_MAX],
    len: usize,
    next: usize,
}

impl Default for RttEstimator {
    fn default() -> RttEstimator {
        RttEstimator {
            samples_us: [0; RTT_SAMPLES_MAX],
            len: 0,
            next: 0,
        }
    }
}

impl RttEstimator {
    /// Records one measured round trip.
    pub fn record(&mut self, rtt: Duration) {
        let micros = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        self.samples_us[self.next] = micros;
        self.next = (self.next + 1) % RTT_SAMPLES_MAX;
        self.len = (self.len + 1).min(RTT_SAMPLES_MAX);
    }

    /// The `q` quantile (0..=1) of the recent samples, once there are enough.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.len < RTT_SAMPLES_MIN {
            return None;
        }
        let mut sorted = self.samples_us;
        let sorted = &mut sorted[..self.len];
        sorted.sort_unstable();
        let index = ((q.clamp(0.0, 1.0) * self.len as f64).ceil() as usize).clamp(1, self.len) - 1;
        Some(Duration::from_micros(u64::from(sorted[index])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_recent_samples_only() {
        let mut rtt = RttEstimator::default();
        for ms in 1..=7 {
            rtt.record(Duration::from_millis(ms));
        }
        assert_eq!(rtt.quantile(0.9), None, "too few samples");
        for ms in 8..=100 {
            rtt.record(Duration::from_millis(ms));
        }
        // The last 64 samples are 37..=100 ms.
        assert_eq!(rtt.quantile(0.0), Some(Duration::from_millis(37)));
        assert_eq!(rtt.quantile(0.5), Some(Duration::from_millis(68)));
        assert_eq!(rtt.quantile(1.0), Some(Duration::from_millis(100)));
    }
}
