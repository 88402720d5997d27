//! The teacher-distillation weight λ(t): from `lambda0` down to 0, over frames (linear or
//! geometric) or, as LLM4Teach's kickstarting coefficient, by a fixed step per PPO update.

use crate::env::scene::{DistillSpec, LambdaSchedule};

/// Fraction of `lambda0` the exponential schedule has left at `anneal_frames`.
const EXPONENTIAL_FLOOR: f64 = 0.01;

/// LLM4Teach's kickstarting coefficient falls by this much per update...
const LLM4TEACH_STEP: f64 = 0.005;
/// ...down to this floor...
const LLM4TEACH_FLOOR: f64 = 0.1;
/// ...and is dropped from the loss once this many updates are done.
const LLM4TEACH_UPDATES: u64 = 3000;

/// λ for the update that follows `frames` env frames (over all envs) and `updates` finished
/// PPO updates. The frame schedules read `frames`; `Llm4Teach` reads only `updates`, as
/// LLM4Teach counts its coefficient in updates.
pub fn distill_lambda(spec: &DistillSpec, frames: u64, updates: u64) -> f64 {
    if spec.schedule == LambdaSchedule::Llm4Teach {
        if spec.lambda0 <= 0.0 || updates >= LLM4TEACH_UPDATES {
            return 0.0;
        }
        // A lambda0 below the floor is kept, not raised to it.
        return (spec.lambda0 - LLM4TEACH_STEP * updates as f64).max(LLM4TEACH_FLOOR.min(spec.lambda0));
    }
    if frames >= spec.anneal_frames {
        return 0.0;
    }
    let progress = frames as f64 / spec.anneal_frames.max(1) as f64;
    match spec.schedule {
        LambdaSchedule::Linear => spec.lambda0 * (1.0 - progress),
        LambdaSchedule::Exponential => spec.lambda0 * EXPONENTIAL_FLOOR.powf(progress),
        LambdaSchedule::Llm4Teach => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame schedules ignore the update count.
    fn distill_lambda_f(spec: &DistillSpec, frames: u64) -> f64 {
        let lambda = distill_lambda(spec, frames, 0);
        assert_eq!(lambda, distill_lambda(spec, frames, 1_000_000));
        lambda
    }

    fn spec(schedule: LambdaSchedule) -> DistillSpec {
        DistillSpec { lambda0: 2.0, schedule, anneal_frames: 1000 }
    }

    #[test]
    fn linear_falls_to_zero() {
        let linear = spec(LambdaSchedule::Linear);
        assert_eq!(distill_lambda_f(&linear, 0), 2.0);
        assert!((distill_lambda_f(&linear, 250) - 1.5).abs() < 1e-12);
        assert!((distill_lambda_f(&linear, 999) - 0.002).abs() < 1e-12);
        assert_eq!(distill_lambda_f(&linear, 1000), 0.0);
        assert_eq!(distill_lambda_f(&linear, u64::MAX), 0.0);
    }

    #[test]
    fn exponential_decays_geometrically_then_stops() {
        let exponential = spec(LambdaSchedule::Exponential);
        assert_eq!(distill_lambda_f(&exponential, 0), 2.0);
        // Half way: sqrt(0.01) = 0.1 of lambda0.
        assert!((distill_lambda_f(&exponential, 500) - 0.2).abs() < 1e-12);
        let a = distill_lambda_f(&exponential, 100);
        let b = distill_lambda_f(&exponential, 200);
        let c = distill_lambda_f(&exponential, 300);
        assert!((a / b - b / c).abs() < 1e-9, "constant ratio per step");
        assert_eq!(distill_lambda_f(&exponential, 1000), 0.0);
    }

    #[test]
    fn zero_lambda0_is_off() {
        let off = DistillSpec { lambda0: 0.0, ..spec(LambdaSchedule::Linear) };
        assert_eq!(distill_lambda_f(&off, 0), 0.0);
    }

    #[test]
    fn llm4teach_steps_per_update_to_its_floor_then_drops() {
        let llm4teach = DistillSpec { lambda0: 10.0, schedule: LambdaSchedule::Llm4Teach, anneal_frames: 1 };
        // Frames (even past anneal_frames) do not matter; updates do.
        assert_eq!(distill_lambda(&llm4teach, 0, 0), 10.0);
        assert_eq!(distill_lambda(&llm4teach, 5_000_000, 0), 10.0);
        assert!((distill_lambda(&llm4teach, 0, 1) - 9.995).abs() < 1e-12);
        assert!((distill_lambda(&llm4teach, 0, 1000) - 5.0).abs() < 1e-12);
        // 10 - 0.005 * 1980 = 0.1: the floor, held until update 3,000.
        assert!((distill_lambda(&llm4teach, 0, 1980) - 0.1).abs() < 1e-12);
        assert_eq!(distill_lambda(&llm4teach, 0, 2500), 0.1);
        assert_eq!(distill_lambda(&llm4teach, 0, 2999), 0.1);
        assert_eq!(distill_lambda(&llm4teach, 0, 3000), 0.0);
        assert_eq!(distill_lambda(&llm4teach, 0, u64::MAX), 0.0);
        let off = DistillSpec { lambda0: 0.0, ..llm4teach.clone() };
        assert_eq!(distill_lambda(&off, 0, 0), 0.0);
        let small = DistillSpec { lambda0: 0.05, ..llm4teach };
        assert_eq!(distill_lambda(&small, 0, 100), 0.05);
    }
}
