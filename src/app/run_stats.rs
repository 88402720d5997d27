//! The numbers in the app's header: episodes finished, recent success rate and env steps per
//! second of wall time. Bevy-free; the caller passes the clock in.

use std::collections::VecDeque;

use crate::env::vec_env::EpisodeStats;

/// How many recent episodes the success rate covers.
pub const SUCCESS_WINDOW: usize = 100;
/// Wall-clock span the steps-per-second rate is averaged over.
const RATE_WINDOW_SECS: f64 = 1.0;

/// Running totals of a run as the viewer shows them.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    episodes: u64,
    recent_successes: VecDeque<bool>,
    /// `(wall seconds, total env steps)` samples spanning about `RATE_WINDOW_SECS`.
    step_samples: VecDeque<(f64, u64)>,
}

impl RunStats {
    pub fn record_episode(&mut self, episode: &EpisodeStats) {
        self.episodes += 1;
        if self.recent_successes.len() == SUCCESS_WINDOW {
            self.recent_successes.pop_front();
        }
        self.recent_successes.push_back(episode.success);
    }

    /// Notes that `total_steps` env steps had been taken by wall time `now_secs`.
    pub fn record_steps(&mut self, now_secs: f64, total_steps: u64) {
        self.step_samples.push_back((now_secs, total_steps));
        // Keep one sample older than the window so the rate spans all of it.
        while self.step_samples.len() > 2 && self.step_samples[1].0 < now_secs - RATE_WINDOW_SECS {
            self.step_samples.pop_front();
        }
    }

    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Successes among the last `SUCCESS_WINDOW` episodes, and how many that was.
    pub fn recent_success(&self) -> (usize, usize) {
        (self.recent_successes.iter().filter(|&&s| s).count(), self.recent_successes.len())
    }

    /// Env steps per wall-clock second over the last second or so (0 when paused).
    pub fn steps_per_sec(&self, now_secs: f64) -> f64 {
        let (Some(&(first_time, first_steps)), Some(&(_, last_steps))) =
            (self.step_samples.front(), self.step_samples.back())
        else {
            return 0.0;
        };
        let span = (now_secs - first_time).max(RATE_WINDOW_SECS);
        (last_steps - first_steps) as f64 / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(success: bool) -> EpisodeStats {
        EpisodeStats { env: 0, episode_return: 0.0, length: 1, success, truncated: !success }
    }

    #[test]
    fn success_rate_covers_the_last_hundred() {
        let mut stats = RunStats::default();
        assert_eq!(stats.recent_success(), (0, 0));
        for _ in 0..150 {
            stats.record_episode(&episode(false));
        }
        for _ in 0..40 {
            stats.record_episode(&episode(true));
        }
        assert_eq!(stats.episodes(), 190);
        assert_eq!(stats.recent_success(), (40, 100));
    }

    #[test]
    fn steps_per_second_follows_the_recent_rate_and_drops_when_idle() {
        let mut stats = RunStats::default();
        assert_eq!(stats.steps_per_sec(0.0), 0.0);
        for tick in 0..=40 {
            // 16 envs stepped 10 times a second.
            stats.record_steps(tick as f64 * 0.1, tick * 16);
        }
        let rate = stats.steps_per_sec(4.0);
        assert!((rate - 160.0).abs() < 20.0, "{rate}");
        // Paused for 3 s: nothing new, the rate decays to zero.
        stats.record_steps(7.0, 640);
        assert_eq!(stats.steps_per_sec(7.0), 0.0);
    }
}
