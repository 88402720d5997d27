//! Situations the teacher is asked about, sampled from a level's episodes as the student meets
//! them: the world, what the agent has seen, the request described as the teacher reads it,
//! and the option the oracle pursues there (for agreement, benchmarks and tuning); apartments too.

use std::collections::HashSet;

use crate::env::embodied::{self, EmbodiedEnv};
use crate::env::grid::levels::LevelRng;
use crate::env::grid::{Action, FogOfWar, GridWorld, Level};
use crate::env::text::{Detail, describe_at};
use crate::env::vec_env::EmbodiedSetup;
use crate::skills::embodied::{embodied_options_in_view, embodied_oracle_advice};
use crate::skills::{TeacherOption, TrueState, available_options, oracle_advice, oracle_needs_true_state};
use crate::teacher::advisor::AdviceRequest;

/// A state the teacher is asked about, with the option the oracle pursues there.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherState {
    pub request: AdviceRequest,
    pub oracle_option: TeacherOption,
}

/// The request (described at `detail`) and the oracle's option for `world` as seen through `fog`.
pub fn teacher_state(level: &Level, world: &GridWorld, fog: &FogOfWar, detail: Detail) -> TeacherState {
    let oracle_option = if oracle_needs_true_state(level) {
        oracle_advice(world, &TrueState).option
    } else {
        oracle_advice(world, fog).option
    };
    TeacherState {
        request: AdviceRequest {
            mission: world.mission.clone(),
            description: describe_at(detail, world, Some(fog)),
            options: available_options(world, fog),
        },
        oracle_option,
    }
}

/// The episode of `level` for `seed` after `steps` oracle actions (fewer if it ends).
pub fn state_after_oracle_steps(level: &Level, seed: u64, steps: usize) -> (GridWorld, FogOfWar) {
    let mut world = level.generate(seed);
    let mut fog = FogOfWar::for_world(&world);
    for _ in 0..steps {
        let action = oracle_advice(&world, &fog).best_action();
        let mut next = world.clone();
        if next.step(action).done() {
            break;
        }
        world = next;
        fog.reveal(&world);
    }
    (world, fog)
}

/// Up to `count` distinct states (by description, menu and the oracle's option: a coarse
/// description may stand for states where the oracle does different things) from alternating
/// oracle-driven and random-action episodes of `level`, starting at episode seed `seed`.
pub fn sample_states(level: &Level, seed: u64, count: usize, detail: Detail) -> Vec<TeacherState> {
    sample_situations(level, seed, count, detail).into_iter().map(|situation| situation.state).collect()
}

/// The question for an embodied env's state: its task, what the agent sees, the options.
pub fn embodied_advice_request(env: &EmbodiedEnv) -> AdviceRequest {
    // The description and the menu read the same view: cast its rays once.
    let view = embodied::text::in_view(&env.world);
    AdviceRequest {
        mission: embodied::text::mission(env),
        description: embodied::text::describe_in_view(env, &view),
        options: embodied_options_in_view(env, &view),
    }
}

/// Up to `count` distinct embodied states (by request and the oracle's option), each met by
/// following the all-seeing oracle for 0-79 steps of an episode seeded from `seed` (an
/// embodied description is the same whether the agent walked there or not).
pub fn sample_embodied_states(setup: &EmbodiedSetup, seed: u64, count: usize) -> Result<Vec<TeacherState>, String> {
    let mut env = setup.build()?;
    let mut rng = LevelRng::new(seed ^ 0x7EAC_4E56);
    let mut states = Vec::new();
    let mut seen = HashSet::new();
    for episode in 0..count.max(1) as u64 * 20 {
        if states.len() >= count {
            break;
        }
        env.reset(seed.wrapping_add(episode));
        for _ in 0..rng.rand_usize(0, 80) {
            if env.step(embodied_oracle_advice(&env).action()).done {
                break;
            }
        }
        if env.is_done() {
            continue;
        }
        let state =
            TeacherState { request: embodied_advice_request(&env), oracle_option: embodied_oracle_advice(&env).option };
        if seen.insert((state.request.clone(), state.oracle_option)) {
            states.push(state);
        }
    }
    Ok(states)
}

/// A sampled state with the world it was met in and what the agent had seen there.
#[derive(Clone, Debug)]
pub struct Situation {
    pub world: GridWorld,
    pub fog: FogOfWar,
    pub state: TeacherState,
}

/// [`sample_states`] with each state's world and fog of war.
pub fn sample_situations(level: &Level, seed: u64, count: usize, detail: Detail) -> Vec<Situation> {
    let mut rng = LevelRng::new(seed ^ 0x7EAC_4E55);
    let mut situations = Vec::new();
    let mut seen = HashSet::new();
    // Enough episodes for any level that yields states at all; bounded so a level whose
    // states all look alike cannot loop forever.
    for episode in 0..count.max(1) * 20 {
        if situations.len() >= count {
            break;
        }
        let oracle_driven = episode % 2 == 0;
        let mut world = level.generate(seed.wrapping_add(episode as u64));
        let mut fog = FogOfWar::for_world(&world);
        for _ in 0..world.max_steps {
            // Keep about one state in four so one episode does not fill the sample.
            if rng.rand_usize(0, 4) == 0 {
                let state = teacher_state(level, &world, &fog, detail);
                let key = (state.request.description.clone(), state.request.options.clone(), state.oracle_option);
                if seen.insert(key) {
                    situations.push(Situation { world: world.clone(), fog: fog.clone(), state });
                    if situations.len() >= count {
                        break;
                    }
                }
            }
            let action = if oracle_driven && rng.rand_usize(0, 10) != 0 {
                oracle_advice(&world, &fog).best_action()
            } else {
                Action::ALL[rng.rand_usize(0, Action::COUNT)]
            };
            if world.step(action).done() {
                break;
            }
            fog.reveal(&world);
        }
    }
    situations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_states_are_distinct_and_the_oracle_option_is_on_the_menu() {
        let level = Level::from_name("DoorKey-8x8").expect("a level");
        let states = sample_states(&level, 3, 30, Detail::Detailed);
        assert_eq!(states.len(), 30);
        let distinct: HashSet<_> = states.iter().map(|state| state.request.description.clone()).collect();
        assert!(distinct.len() >= 20, "{}", distinct.len());
        // Coarse descriptions: DoorKey has a handful of situations (held x seen objects).
        let coarse = sample_states(&level, 3, 200, Detail::Coarse);
        let distinct: HashSet<_> = coarse.iter().map(|state| state.request.description.clone()).collect();
        assert!((4..=40).contains(&distinct.len()), "{distinct:#?}");
        for state in &states {
            assert!(state.request.options.contains(&state.oracle_option), "{state:?}");
            assert!(state.request.description.starts_with("Mission: "));
        }
        let (world, fog) = state_after_oracle_steps(&level, 3, 5);
        let state = teacher_state(&level, &world, &fog, Detail::Coarse);
        assert_eq!(state, teacher_state(&level, &world, &fog, Detail::Coarse));
    }

    #[test]
    fn situations_keep_the_world_and_fog_their_state_was_described_from() {
        let level = Level::from_name("DoorKey-5x5").expect("a level");
        for situation in sample_situations(&level, 7, 10, Detail::Coarse) {
            assert_eq!(teacher_state(&level, &situation.world, &situation.fog, Detail::Coarse), situation.state);
        }
    }

    #[test]
    fn embodied_states_are_distinct_and_described_as_the_teacher_reads_them() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenes/pickplace-apartment-1.ron");
        let scene = crate::env::scene::Scene::load(path).expect("the shipped scene loads");
        let Ok(crate::env::vec_env::EnvKind::Embodied(setup)) = scene.env_kind() else { panic!("an embodied scene") };
        let states = sample_embodied_states(&setup, 1, 30).expect("states");
        assert_eq!(states.len(), 30);
        let distinct: HashSet<_> = states.iter().map(|state| (state.request.clone(), state.oracle_option)).collect();
        assert_eq!(distinct.len(), 30);
        for state in &states {
            assert!(state.request.description.starts_with("Mission: put the apple on the kitchen table."), "{state:?}");
            assert!(state.request.options.contains(&TeacherOption::Explore));
        }
        // Both halves of the task come up: fetching the apple and carrying it to the table.
        assert!(states.iter().any(|state| state.oracle_option.phrase() == "pick up the apple"));
        assert!(states.iter().any(|state| state.oracle_option.phrase() == "go to the kitchen table"));
    }
}
