//! The teacher-distillation weight λ(t): from `lambda0` at frame 0 down to 0 at
//! `anneal_frames`, linearly or geometrically (as LLM4Teach anneals its teacher term).

use crate::env::scene::{DistillSpec, LambdaSchedule};

/// Fraction of `lambda0` the exponential schedule has left at `anneal_frames`.
const EXPONENTIAL_FLOOR: f64 = 0.01;

/// λ after `frames` env frames (over all envs).
pub fn distill_lambda(spec: &DistillSpec, frames: u64) -> f64 {
    if frames >= spec.anneal_frames {
        return 0.0;
    }
    let progress = frames as f64 / spec.anneal_frames.max(1) as f64;
    match spec.schedule {
        LambdaSchedule::Linear => spec.lambda0 * (1.0 - progress),
        LambdaSchedule::Exponential => spec.lambda0 * EXPONENTIAL_FLOOR.powf(progress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(schedule: LambdaSchedule) -> DistillSpec {
        DistillSpec { lambda0: 2.0, schedule, anneal_frames: 1000 }
    }

    #[test]
    fn linear_falls_to_zero() {
        let linear = spec(LambdaSchedule::Linear);
        assert_eq!(distill_lambda(&linear, 0), 2.0);
        assert!((distill_lambda(&linear, 250) - 1.5).abs() < 1e-12);
        assert!((distill_lambda(&linear, 999) - 0.002).abs() < 1e-12);
        assert_eq!(distill_lambda(&linear, 1000), 0.0);
        assert_eq!(distill_lambda(&linear, u64::MAX), 0.0);
    }

    #[test]
    fn exponential_decays_geometrically_then_stops() {
        let exponential = spec(LambdaSchedule::Exponential);
        assert_eq!(distill_lambda(&exponential, 0), 2.0);
        // Half way: sqrt(0.01) = 0.1 of lambda0.
        assert!((distill_lambda(&exponential, 500) - 0.2).abs() < 1e-12);
        let a = distill_lambda(&exponential, 100);
        let b = distill_lambda(&exponential, 200);
        let c = distill_lambda(&exponential, 300);
        assert!((a / b - b / c).abs() < 1e-9, "constant ratio per step");
        assert_eq!(distill_lambda(&exponential, 1000), 0.0);
    }

    #[test]
    fn zero_lambda0_is_off() {
        let off = DistillSpec { lambda0: 0.0, ..spec(LambdaSchedule::Linear) };
        assert_eq!(distill_lambda(&off, 0), 0.0);
    }
}
