//! The broker's message counts and rates (`BrokerStatsManager`'s put and get totals, and
//! the `putTps`/`getTransferedTps` of GET_BROKER_RUNTIME_INFO): messages stored by
//! sends, messages handed out by pulls, and their rates over the last 10 s, 1 min and
//! 10 min.
//!
//! The totals are sampled at every client scan (10 s); a rate is the difference between
//! now and the sample nearest the window's start, over the time between them. Counting
//! only: nothing the broker decides reads them.

use std::collections::VecDeque;

/// The windows RocketMQ reports TPS over: 10 s, 1 min, 10 min.
pub const TPS_WINDOWS_MS: [u64; 3] = [10_000, 60_000, 600_000];

#[derive(Default)]
pub(super) struct BrokerStats {
    /// Messages stored by sends (each message of a batch counts).
    pub(super) put_total: u64,
    /// Messages returned by pulls.
    pub(super) get_total: u64,
    /// (time, put_total, get_total), oldest first, spanning at least the longest window.
    samples: VecDeque<(u64, u64, u64)>,
}

impl BrokerStats {
    /// Takes a sample of the totals at `now_ms`, dropping those no window needs.
    pub(super) fn sample(&mut self, now_ms: u64) {
        self.samples
            .push_back((now_ms, self.put_total, self.get_total));
        let longest = TPS_WINDOWS_MS[TPS_WINDOWS_MS.len() - 1];
        // Keep one sample at or before the longest window's start.
        while self.samples.len() > 2 && self.samples[1].0 <= now_ms.saturating_sub(longest) {
            self.samples.pop_front();
        }
    }

    /// Puts and gets per second over each of [`TPS_WINDOWS_MS`], up to `now_ms`.
    pub(super) fn tps(&self, now_ms: u64) -> [(f64, f64); 3] {
        TPS_WINDOWS_MS.map(|window_ms| {
            let start = now_ms.saturating_sub(window_ms);
            // The latest sample at or before the window's start, else the oldest.
            let base = self
                .samples
                .iter()
                .rev()
                .find(|s| s.0 <= start)
                .or(self.samples.front());
            match base {
                Some(&(at_ms, puts, gets)) if at_ms < now_ms => {
                    let seconds = (now_ms - at_ms) as f64 / 1000.0;
                    (
                        (self.put_total - puts) as f64 / seconds,
                        (self.get_total - gets) as f64 / seconds,
                    )
                }
                _ => (0.0, 0.0),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_differences_over_the_time_between_samples() {
        let mut stats = BrokerStats::default();
        assert_eq!(stats.tps(0), [(0.0, 0.0); 3], "no sample yet");
        stats.sample(0);
        // 100 puts/s and 10 gets/s for 20 minutes, sampled every 10 s.
        for t in 1..=120u64 {
            stats.put_total += 1_000;
            stats.get_total += 100;
            stats.sample(t * 10_000);
        }
        let now = 120 * 10_000;
        for (puts, gets) in stats.tps(now) {
            assert_eq!((puts, gets), (100.0, 10.0));
        }
        // Only what the longest window needs is kept.
        assert!(stats.samples.len() <= 62, "{}", stats.samples.len());
        // A burst in the last 10 s shows in the short window first.
        stats.put_total += 5_000;
        let [ten_s, one_min, ten_min] = stats.tps(now + 10_000);
        assert_eq!(ten_s.0, 500.0);
        assert!(one_min.0 < ten_s.0 && ten_min.0 < one_min.0);
    }
}
