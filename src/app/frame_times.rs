//! How long frames take, and the longest while a PPO update runs on the worker: the check
//! that updates do not stall drawing. Logged after each update and when the app exits.

use std::time::Duration;

use bevy::diagnostic::FrameCount;
use bevy::prelude::*;

use super::simulation::TrainingSnapshot;

/// Frames at startup (pipelines compiling, the window appearing) that say nothing about
/// training and are not counted.
const WARMUP_FRAMES: u32 = 10;

/// Frame intervals so far, overall and while an update ran.
#[derive(Resource, Clone, Debug, Default)]
pub struct FrameTimes {
    frames: u64,
    total: Duration,
    longest: Duration,
    frames_during_updates: u64,
    total_during_updates: Duration,
    longest_during_updates: Duration,
    updates: u64,
    longest_update: Duration,
    /// An update was in flight at the end of the previous frame.
    was_updating: bool,
}

impl FrameTimes {
    /// Counts one frame interval; `during_update` when an update ran through it.
    pub fn record_frame(&mut self, interval: Duration, during_update: bool) {
        self.frames += 1;
        self.total += interval;
        self.longest = self.longest.max(interval);
        if during_update {
            self.frames_during_updates += 1;
            self.total_during_updates += interval;
            self.longest_during_updates = self.longest_during_updates.max(interval);
        }
    }

    /// Counts one finished update that took `took` on the worker.
    pub fn note_update(&mut self, took: Duration) {
        self.updates += 1;
        self.longest_update = self.longest_update.max(took);
    }

    pub fn longest_during_updates(&self) -> Duration {
        self.longest_during_updates
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
        let mean = |total: Duration, count: u64| if count == 0 { 0.0 } else { ms(total) / count as f64 };
        format!(
            "frame times: {} frames, mean {:.1} ms, longest {:.1} ms; {} frames during {} PPO updates, \
             mean {:.1} ms, longest {:.1} ms (longest update {:.0} ms)",
            self.frames,
            mean(self.total, self.frames),
            ms(self.longest),
            self.frames_during_updates,
            self.updates,
            mean(self.total_during_updates, self.frames_during_updates),
            ms(self.longest_during_updates),
            ms(self.longest_update)
        )
    }
}

pub struct FrameTimesPlugin;

impl Plugin for FrameTimesPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<FrameTimes>().add_systems(Last, (measure_frame, log_on_exit).chain());
    }
}

/// `Time<Real>`'s delta is the interval from the previous frame's start to this one's; an
/// update in flight when the previous frame ended ran through it.
fn measure_frame(
    real_time: Res<Time<Real>>,
    frame: Res<FrameCount>,
    snapshot: Res<TrainingSnapshot>,
    mut times: ResMut<FrameTimes>,
) {
    if frame.0 > WARMUP_FRAMES {
        let during_update = times.was_updating;
        times.record_frame(real_time.delta(), during_update);
    }
    times.was_updating = snapshot.updating;
}

fn log_on_exit(mut exits: MessageReader<AppExit>, times: Res<FrameTimes>) {
    if exits.read().next().is_some() {
        info!("{}", times.summary());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_frames_are_kept_apart_for_updates() {
        let mut times = FrameTimes::default();
        times.record_frame(Duration::from_millis(30), false);
        times.record_frame(Duration::from_millis(12), true);
        times.record_frame(Duration::from_millis(9), true);
        times.note_update(Duration::from_millis(150));
        assert_eq!(times.longest_during_updates(), Duration::from_millis(12));
        assert_eq!(times.longest, Duration::from_millis(30));
        let summary = times.summary();
        assert!(summary.contains("2 frames during 1 PPO updates, mean 10.5 ms, longest 12.0 ms"), "{summary}");
    }
}
