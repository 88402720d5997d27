//! `FeedbackRecorder`: per env, the advice segment the student followed and what it led to,
//! aggregated per (abstract state, option) and rendered as lines a small model can copy.

use std::collections::{BTreeMap, VecDeque};

use super::state::AbstractState;
use crate::env::grid::{Action, GridWorld};
use crate::env::vec_env::VecEnv;
use crate::skills::{Knowledge, SkillPlanner, SkillStep, Target, TeacherOption};
use crate::student::teacher::{EpisodeFogs, TeacherPolicy};

/// How many finished segments `recent()` keeps (for panels).
pub const RECENT_SEGMENTS: usize = 256;

/// Options named per rendered line: more makes lines too long for a small model.
const OPTIONS_PER_LINE: usize = 3;

/// Introduces the feedback lines in the teacher's prompt.
pub const FEEDBACK_HEADING: &str = "What happened when the agent followed advice before:";

/// Keeps entries near a state's average in the ranking, by count alone.
const SCORE_FLOOR: f64 = 0.1;

/// One advice segment: from the step the student followed the teacher's top option until the
/// option's target was reached, the teacher advised another option, or the episode ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentRecord {
    pub option: TeacherOption,
    /// The state the advice was followed in.
    pub state: AbstractState,
    /// The option's skill reported its target reached (for "go to the green goal": the
    /// episode was won on the step that ended the segment).
    pub reached: bool,
    /// Reward summed over the segment's steps.
    pub segment_return: f32,
    /// The episode the segment belongs to ended in success.
    pub episode_won: bool,
}

/// Counts for one (abstract state, option).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OutcomeCounts {
    /// Segments in which the student followed the option.
    pub followed: u32,
    /// Of those, segments whose skill reached its target.
    pub reached: u32,
    /// Of those, segments whose episode was won afterwards.
    pub won: u32,
    /// Sum of the segments' returns.
    pub return_sum: f64,
    /// The student's advantage estimate (GAE) at the step each segment began, summed, and
    /// how many segments have one (it is known at the next PPO update, which may come before
    /// or after the segment settles).
    pub advantage_sum: f64,
    pub advantaged: u32,
}

impl OutcomeCounts {
    fn add(&mut self, segment: &SegmentRecord) {
        self.followed += 1;
        self.reached += u32::from(segment.reached);
        self.won += u32::from(segment.episode_won);
        self.return_sum += f64::from(segment.segment_return);
    }

    /// Mean advantage of following the option here: above 0, following it went better than the
    /// student's value estimate expected. None before any segment has one.
    pub fn mean_advantage(&self) -> Option<f64> {
        (self.advantaged > 0).then(|| self.advantage_sum / f64::from(self.advantaged))
    }

    fn won_rate(&self) -> f64 {
        if self.followed == 0 { 0.0 } else { f64::from(self.won) / f64::from(self.followed) }
    }

    /// "'open the yellow door' failed 14 of 14 times".
    fn phrase(&self, option: TeacherOption) -> String {
        let n = self.followed;
        if self.won > 0 {
            format!("'{option}' led to success {} of {n} times", self.won)
        } else if self.reached == 0 {
            format!("'{option}' failed {n} of {n} times")
        } else {
            format!("'{option}' was done {} of {n} times but never led to success", self.reached)
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct OpenSegment {
    option: TeacherOption,
    state: AbstractState,
    segment_return: f32,
}

impl OpenSegment {
    fn close(self, reached: bool) -> SegmentRecord {
        SegmentRecord {
            option: self.option,
            state: self.state,
            reached,
            segment_return: self.segment_return,
            episode_won: false,
        }
    }
}

/// One env's segment in force and those closed in its current episode (their episode's
/// outcome is not known yet).
#[derive(Clone, Debug, Default)]
struct EnvTrack {
    open: Option<OpenSegment>,
    closed: Vec<SegmentRecord>,
}

impl EnvTrack {
    /// `FeedbackRecorder::before_action` for this env; the segment it opens, if any.
    fn decide(
        &mut self,
        world: &GridWorld,
        known: &impl Knowledge,
        advised: Option<TeacherOption>,
        action: Action,
    ) -> Option<(AbstractState, TeacherOption)> {
        if self.open.is_none() && advised.is_none() {
            return None;
        }
        let planner = SkillPlanner::new(world, known);
        if let Some(open) = self.open {
            if planner.action(open.option) == SkillStep::Done {
                self.closed.push(open.close(true));
                self.open = None;
            } else if advised.is_some_and(|option| option != open.option) {
                // A teacher that has not answered yet (LLM) leaves its last advice in force.
                self.closed.push(open.close(false));
                self.open = None;
            }
        }
        if self.open.is_none()
            && let Some(option) = advised
            && planner.action(option) == SkillStep::Act(action)
        {
            let state = AbstractState::of(world, known);
            self.open = Some(OpenSegment { option, state, segment_return: 0.0 });
            return Some((state, option));
        }
        None
    }
}

/// Records, per env, which advice the student followed and what came of it.
#[derive(Clone, Debug, Default)]
pub struct FeedbackRecorder {
    envs: Vec<EnvTrack>,
    /// What each env's agent has seen this episode, as the oracle tracks it.
    fogs: EpisodeFogs,
    counts: BTreeMap<(AbstractState, TeacherOption), OutcomeCounts>,
    recent: VecDeque<SegmentRecord>,
    segments: u64,
    /// Decision steps seen (`observe_decisions` calls), to find a step's advantage.
    steps: u64,
    /// Segments opened whose first step's advantage is not known yet: (step, env, key).
    awaiting_advantage: Vec<(u64, usize, (AbstractState, TeacherOption))>,
}

impl FeedbackRecorder {
    pub fn new() -> FeedbackRecorder {
        FeedbackRecorder::default()
    }

    /// Call before the envs step, with the actions the student is about to take: for each env,
    /// the teacher's top option in force and whether the student followed it.
    pub fn observe_decisions(&mut self, env: &VecEnv, teacher: &dyn TeacherPolicy, actions: &[Action]) {
        let num_envs = env.num_envs().min(actions.len());
        let advised: Vec<Option<TeacherOption>> =
            (0..num_envs).map(|index| teacher.option_advice(index).and_then(|advice| advice.top_option())).collect();
        self.ensure_envs(num_envs);
        let step = self.steps;
        self.steps += 1;
        // Teachers without options (none) cost nothing beyond this check.
        if advised.iter().all(Option::is_none) && self.envs.iter().all(|track| track.open.is_none()) {
            return;
        }
        self.fogs.begin(env);
        for (index, (&option, &action)) in advised.iter().zip(actions).enumerate() {
            let fog = self.fogs.observe(env, index);
            if let Some(key) = self.envs[index].decide(env.world(index), fog, option, action) {
                self.awaiting_advantage.push((step, index, key));
            }
        }
    }

    /// Gives the segments opened during the rollout just finished their first step's advantage:
    /// `advantages` is that rollout's GAE, step-major over `num_envs` envs, its last step the
    /// last `observe_decisions`. Segments from before it (none, normally) are forgotten.
    pub fn attach_advantages(&mut self, advantages: &[f32], num_envs: usize) {
        let steps = (advantages.len() / num_envs.max(1)) as u64;
        for (step, env, key) in self.awaiting_advantage.drain(..) {
            let from_end = self.steps - step;
            if from_end == 0 || from_end > steps || env >= num_envs {
                continue;
            }
            let Some(&advantage) = advantages.get((steps - from_end) as usize * num_envs + env) else { continue };
            let counts = self.counts.entry(key).or_default();
            counts.advantage_sum += f64::from(advantage);
            counts.advantaged += 1;
        }
    }

    /// Call after the envs stepped (before their finished episodes are drained).
    pub fn observe_outcomes(&mut self, env: &VecEnv) {
        let num_envs = env.num_envs().min(self.envs.len());
        for index in 0..num_envs {
            self.after_step(index, env.rewards()[index], env.terminated()[index], env.truncated()[index]);
        }
    }

    /// One env before its action: closes the open segment when its skill is done or the advice
    /// changed, and opens one when the student's `action` is what `advised`'s skill says now.
    pub fn before_action(
        &mut self,
        index: usize,
        world: &GridWorld,
        known: &impl Knowledge,
        advised: Option<TeacherOption>,
        action: Action,
    ) {
        self.ensure_envs(index + 1);
        self.envs[index].decide(world, known, advised, action);
    }

    /// One env after its step: the reward joins the open segment; an ended episode closes it
    /// and settles every segment of the episode with its outcome.
    pub fn after_step(&mut self, index: usize, reward: f32, terminated: bool, truncated: bool) {
        self.ensure_envs(index + 1);
        let track = &mut self.envs[index];
        if let Some(open) = &mut track.open {
            open.segment_return += reward;
        }
        if !(terminated || truncated) {
            return;
        }
        // The env has already reset, so a skill cannot be asked about the final state; the
        // only target an ending episode shows reached is the goal, by winning.
        let won = terminated && reward > 0.0;
        if let Some(open) = track.open.take() {
            let reached = won && open.option == TeacherOption::GoTo(Target::Goal);
            track.closed.push(open.close(reached));
        }
        for mut segment in track.closed.drain(..) {
            segment.episode_won = won;
            self.counts.entry((segment.state, segment.option)).or_default().add(&segment);
            if self.recent.len() == RECENT_SEGMENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(segment);
            self.segments += 1;
        }
    }

    /// Counts per (abstract state, option) over settled segments.
    pub fn counts(&self) -> &BTreeMap<(AbstractState, TeacherOption), OutcomeCounts> {
        &self.counts
    }

    /// The last settled segments, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &SegmentRecord> {
        self.recent.iter()
    }

    /// Segments settled so far.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Segments open or waiting for their episode's end, per env (for tests and panels).
    pub fn pending(&self, index: usize) -> (bool, usize) {
        self.envs.get(index).map_or((false, 0), |track| (track.open.is_some(), track.closed.len()))
    }

    /// At most `max_lines` lines, one per abstract state, the most informative first: an
    /// option weighs by how often it was followed times how far its success rate is from the
    /// state's average (plus a floor, so that frequent advice still counts). Ties go by the
    /// states' and options' order, so the text is deterministic. Empty when nothing is settled.
    pub fn render(&self, max_lines: usize) -> String {
        let mut states: BTreeMap<AbstractState, Vec<(TeacherOption, OutcomeCounts)>> = BTreeMap::new();
        // Entries whose advantage arrived before any of their segments settled have nothing to say yet.
        for (&(state, option), &counts) in self.counts.iter().filter(|(_, counts)| counts.followed > 0) {
            states.entry(state).or_default().push((option, counts));
        }
        let mut lines: Vec<(f64, AbstractState, String)> = states
            .into_iter()
            .map(|(state, entries)| {
                let followed: u32 = entries.iter().map(|(_, c)| c.followed).sum();
                let won: u32 = entries.iter().map(|(_, c)| c.won).sum();
                let average = f64::from(won) / f64::from(followed.max(1));
                let mut scored: Vec<(f64, TeacherOption, OutcomeCounts)> = entries
                    .into_iter()
                    .map(|(option, c)| {
                        (f64::from(c.followed) * ((c.won_rate() - average).abs() + SCORE_FLOOR), option, c)
                    })
                    .collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                scored.truncate(OPTIONS_PER_LINE);
                let score = scored.iter().map(|(s, _, _)| s).sum();
                let phrases: Vec<String> = scored.iter().map(|(_, option, c)| c.phrase(*option)).collect();
                (score, state, format!("When {state}, {}.", phrases.join("; ")))
            })
            .collect();
        lines.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        lines.into_iter().take(max_lines).map(|(_, _, line)| line).collect::<Vec<_>>().join("\n")
    }

    /// `render(max_lines)` framed for the prompt's `{feedback}` slot, which sits right before
    /// the state's text: a heading, the lines, and a blank line; empty when there is nothing.
    pub fn prompt_text(&self, max_lines: usize) -> String {
        let lines = self.render(max_lines);
        if lines.is_empty() { lines } else { format!("{FEEDBACK_HEADING}\n{lines}\n\n") }
    }

    fn ensure_envs(&mut self, num_envs: usize) {
        if self.envs.len() < num_envs {
            self.envs.resize_with(num_envs, EnvTrack::default);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::{Cell, Color, DoorState, Pos};
    use crate::skills::{Carryable, Item, TrueState, skill_action};

    const KEY: TeacherOption = TeacherOption::PickUp(Item { kind: Carryable::Key, color: Color::Yellow });
    const DOOR: TeacherOption = TeacherOption::OpenDoor(Color::Yellow);

    /// A walled 7x5 room: the agent at (1,1) facing east, the yellow key two cells ahead, a
    /// closed yellow door in the east wall.
    fn world() -> GridWorld {
        let mut world = GridWorld::new(7, 5);
        world.wall_rect(0, 0, 7, 5);
        world.agent_pos = Pos::new(1, 1);
        world.agent_dir = 0;
        world.set(Pos::new(3, 1), Cell::Key(Color::Yellow));
        world.set(Pos::new(6, 2), Cell::Door { color: Color::Yellow, state: DoorState::Closed });
        world
    }

    fn skill(option: TeacherOption, world: &GridWorld) -> Action {
        match skill_action(option, world, &TrueState) {
            SkillStep::Act(action) => action,
            other => panic!("{option} should act here, not {other:?}"),
        }
    }

    /// A different action than the skill's, so the advice is not followed.
    fn other_than(action: Action) -> Action {
        if action == Action::Done { Action::Left } else { Action::Done }
    }

    /// Steps `world` with `action` through the recorder, as the trainer does.
    fn step(rec: &mut FeedbackRecorder, world: &mut GridWorld, advised: Option<TeacherOption>, action: Action) {
        rec.before_action(0, world, &TrueState, advised, action);
        let outcome = world.step(action);
        rec.after_step(0, outcome.reward, outcome.terminated, outcome.truncated);
    }

    #[test]
    fn advantages_go_to_the_segments_opened_in_the_rollout() {
        let mut rec = FeedbackRecorder::new();
        let start = AbstractState::of(&world(), &TrueState);
        // Three decision steps seen; the rollout covers the last two, over two envs.
        rec.steps = 3;
        rec.awaiting_advantage = vec![(0, 0, (start, DOOR)), (1, 1, (start, KEY)), (2, 0, (start, KEY))];
        rec.attach_advantages(&[0.5, 0.25, -1.0, 4.0], 2);
        let key = rec.counts()[&(start, KEY)];
        // Step 1 is the rollout's first row (env 1: 0.25), step 2 its second (env 0: -1.0).
        assert_eq!((key.advantaged, key.advantage_sum), (2, -0.75));
        assert_eq!(key.mean_advantage(), Some(-0.375));
        assert!(!rec.counts().contains_key(&(start, DOOR)), "step 0 is before the rollout");
        assert!(rec.awaiting_advantage.is_empty());
        assert_eq!(key.followed, 0, "advantages alone settle no segment");
        assert_eq!(rec.render(4), "", "and say nothing in the prompt");
    }

    #[test]
    fn segment_opens_only_when_followed_and_closes_when_the_target_is_reached() {
        let mut rec = FeedbackRecorder::new();
        let mut world = world();
        let start = AbstractState::of(&world, &TrueState);
        let followed = skill(KEY, &world);
        step(&mut rec, &mut world, Some(KEY), other_than(followed));
        assert_eq!(rec.pending(0), (false, 0), "advice not followed opens nothing");
        // The agent did not move on `Done`/`Left`, so ask the skill again.
        let mut world = self::world();
        let action = skill(KEY, &world);
        step(&mut rec, &mut world, Some(KEY), action);
        assert_eq!(rec.pending(0), (true, 0));
        // Once the key is held the skill is done: the segment closes as reached, and stays
        // pending until its episode ends.
        while world.carrying == Cell::Empty {
            let action = skill(KEY, &world);
            step(&mut rec, &mut world, Some(KEY), action);
        }
        rec.before_action(0, &world, &TrueState, Some(KEY), Action::Done);
        assert_eq!(rec.pending(0), (false, 1));
        rec.after_step(0, 0.0, false, true);
        assert_eq!(rec.segments(), 1);
        let segment = *rec.recent().next().expect("one segment");
        assert_eq!(segment.option, KEY);
        assert_eq!(segment.state, start);
        assert!(segment.reached);
        assert!(!segment.episode_won);
        let counts = rec.counts()[&(start, KEY)];
        assert_eq!((counts.followed, counts.reached, counts.won), (1, 1, 0));
    }

    #[test]
    fn option_change_and_episode_end_close_segments_unreached() {
        let mut rec = FeedbackRecorder::new();
        let mut world = world();
        let start = AbstractState::of(&world, &TrueState);
        let action = skill(KEY, &world);
        step(&mut rec, &mut world, Some(KEY), action);
        // No answer from the teacher (an LLM still thinking) keeps the segment open.
        rec.before_action(0, &world, &TrueState, None, Action::Done);
        assert_eq!(rec.pending(0), (true, 0));
        // The teacher switches to the door; the student does not follow: the key segment
        // closes unreached and nothing opens.
        let door_state = AbstractState::of(&world, &TrueState);
        rec.before_action(0, &world, &TrueState, Some(DOOR), other_than(skill(DOOR, &world)));
        assert_eq!(rec.pending(0), (false, 1));
        // Now it follows the door advice; the episode then ends in success with reward 0.5.
        rec.before_action(0, &world, &TrueState, Some(DOOR), skill(DOOR, &world));
        assert_eq!(rec.pending(0), (true, 1));
        rec.after_step(0, 0.5, true, false);
        assert_eq!(rec.pending(0), (false, 0));
        let segments: Vec<SegmentRecord> = rec.recent().copied().collect();
        assert_eq!(
            segments,
            vec![
                SegmentRecord { option: KEY, state: start, reached: false, segment_return: 0.0, episode_won: true },
                SegmentRecord {
                    option: DOOR,
                    state: door_state,
                    reached: false,
                    segment_return: 0.5,
                    episode_won: true
                },
            ]
        );
        // An episode won while "go to the green goal" is in force reached its target.
        let goal = TeacherOption::GoTo(Target::Goal);
        let mut world = self::world();
        world.set(Pos::new(5, 3), Cell::Goal);
        rec.before_action(0, &world, &TrueState, Some(goal), skill(goal, &world));
        rec.after_step(0, 0.9, true, false);
        let last = *rec.recent().last().expect("segments");
        assert!(last.reached && last.episode_won && last.option == goal);
        // No advice at all records nothing.
        rec.before_action(0, &world, &TrueState, None, Action::Forward);
        rec.after_step(0, 0.0, false, true);
        assert_eq!(rec.segments(), 3);
    }

    #[test]
    fn counts_aggregate_and_render_the_most_informative_lines() {
        let mut rec = FeedbackRecorder::new();
        let world = world();
        let state = AbstractState::of(&world, &TrueState);
        let followed = |rec: &mut FeedbackRecorder, option: TeacherOption, won: bool| {
            rec.before_action(0, &world, &TrueState, Some(option), skill(option, &world));
            rec.after_step(0, if won { 1.0 } else { 0.0 }, won, !won);
        };
        assert_eq!(rec.render(3), "");
        for _ in 0..14 {
            followed(&mut rec, DOOR, false);
        }
        for round in 0..11 {
            followed(&mut rec, KEY, round < 9);
        }
        // A second state, seen less often: the key held.
        let mut holding = world.clone();
        holding.set(Pos::new(3, 1), Cell::Empty);
        holding.carrying = Cell::Key(Color::Yellow);
        let held_state = AbstractState::of(&holding, &TrueState);
        rec.before_action(0, &holding, &TrueState, Some(DOOR), skill(DOOR, &holding));
        rec.after_step(0, 1.0, true, false);
        let counts = rec.counts()[&(state, KEY)];
        assert_eq!((counts.followed, counts.reached, counts.won), (11, 0, 9));
        assert!((counts.return_sum - 9.0).abs() < 1e-9);
        assert_eq!(rec.counts()[&(state, DOOR)].followed, 14);
        assert_eq!(rec.counts()[&(held_state, DOOR)].won, 1);
        assert_eq!(
            rec.render(2),
            "When the door was closed, nothing was held, a key was seen, the goal was not seen and nothing was in \
             front, 'open the yellow door' failed 14 of 14 times; 'pick up the yellow key' led to success 9 of 11 times.\n\
             When the door was closed, the yellow key was held, no key was seen, the goal was not seen and nothing was \
             in front, 'open the yellow door' led to success 1 of 1 times."
        );
        assert_eq!(rec.render(1).lines().count(), 1);
        assert_eq!(rec.prompt_text(1), format!("{FEEDBACK_HEADING}\n{}\n\n", rec.render(1)));
        assert_eq!(FeedbackRecorder::new().prompt_text(4), "");
        assert_eq!(rec.render(2), rec.clone().render(2), "deterministic");
    }
}
