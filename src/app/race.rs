//! The race view (`--race`, or the Run tab's switch): the same scene trained a second time
//! without a teacher beside the run, its focused env in the mosaic's place, both success curves.
//!
//! The second run is a plain `Trainer` started where the first run started (`RunOrigin`: same
//! scene and seed, so the same envs and the same initial student; for a loaded run the same
//! checkpoint, continued without the teacher) kept in a `LiveTrainer`, updated by its own
//! `UpdateWorker` and drawn from its own `TrainingSnapshot`: the app's machinery, a second time.
//! Reset, Load and a new scene restart both runs from their common start.

use std::time::{Duration, Instant};

use bevy::diagnostic::FrameCount;
use bevy::prelude::*;

use super::control::{Controls, RunOrigin};
use super::flash::frame_edges;
use super::layout::{FOCUS_BORDER, MOSAIC_TITLE_HEIGHT, SpawnSkeleton, UpdateLayout, ViewLayout, ViewSlots};
use super::learning_curve::short_count;
use super::ppo_worker::UpdateWorker;
use super::render_grid::{GridPainter, WorldStyle};
use super::simulation::{FocusedEnv, LiveTrainer, Speed, TrainingSnapshot};
use super::theme;
use super::world_image::{blank_image, repaint};
use crate::metrics::UpdateRecord;
use crate::training::{TeacherKind, Trainer, TrainerConfig};

/// Wall time the second run may step per frame at max speed (the first has as much).
const RIVAL_FRAME_BUDGET: Duration = Duration::from_millis(8);

/// Whether the race is on (wanted; the second run starts and stops to match).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaceMode(pub bool);

/// A run (re)started in the app: Reset, a loaded checkpoint, another scene. The race's second
/// run starts afresh on the run's scene with it.
#[derive(Message, Clone, Copy, Debug)]
pub struct RunStarted;

/// The race's second run: the scene without a teacher.
#[derive(Resource)]
pub struct Rival {
    live: LiveTrainer,
    worker: UpdateWorker,
    /// What its views draw, as the first run's snapshot does.
    pub snapshot: TrainingSnapshot,
    /// Its update records, oldest first.
    pub records: Vec<UpdateRecord>,
    /// Why it stopped (a failed step or update); it then stands still until the next run.
    pub fault: Option<String>,
}

impl Rival {
    /// The first run's start (`origin`) without a teacher: a fresh run on its configuration,
    /// or its checkpoint continued by the student alone; its PPO updates get their own thread.
    pub fn start(origin: &RunOrigin) -> anyhow::Result<Rival> {
        let config = TrainerConfig { teacher: TeacherKind::None, ..origin.config.clone() };
        let mut trainer = match &origin.checkpoint {
            None => Trainer::new(config)?,
            Some(dir) => Trainer::resume_without_teacher(config, dir)?,
        };
        trainer.start_clock();
        let snapshot = TrainingSnapshot::of(&trainer);
        Ok(Rival {
            live: LiveTrainer::new(trainer),
            worker: UpdateWorker::spawn()?,
            snapshot,
            records: Vec::new(),
            fault: None,
        })
    }

    /// Steps once, or with a `budget` as often as fits in it, but never past `frames_cap`
    /// (the first run's frames: the two runs go at one pace, so the views compare like with
    /// like); publishes; hands a full rollout to its worker.
    fn advance(&mut self, budget: Option<Duration>, frames_cap: u64) {
        if self.fault.is_some() {
            return;
        }
        let Some(trainer) = self.live.trainer_mut() else {
            return; // updating
        };
        if trainer.frames() >= frames_cap {
            return;
        }
        let started = Instant::now();
        let out_of_time = || budget.is_none_or(|budget| started.elapsed() >= budget);
        let full = loop {
            match trainer.step() {
                Ok(full) if full || out_of_time() || trainer.frames() >= frames_cap => break full,
                Ok(_) => {}
                Err(error) => {
                    self.fault = Some(format!("the run without a teacher stopped: {error}"));
                    return;
                }
            }
        };
        self.snapshot.publish(trainer);
        if full && let Some(trainer) = self.live.take() {
            match self.worker.start_update(trainer) {
                Ok(()) => self.snapshot.updating = true,
                Err(trainer) => {
                    self.live.put_back(trainer);
                    self.fault = Some("the run without a teacher lost its PPO worker".to_owned());
                }
            }
        }
    }

    /// Takes finished updates back.
    fn collect(&mut self) {
        for (trainer, result) in self.worker.try_finished() {
            match result {
                Ok(record) => {
                    self.snapshot.latest = Some(record.clone());
                    self.records.push(record);
                }
                Err(failure) => self.fault = Some(format!("the run without a teacher stopped: {failure}")),
            }
            self.snapshot.publish(&trainer);
            self.snapshot.updating = false;
            self.live.put_back(trainer);
        }
        if self.snapshot.updating && self.worker.is_gone() {
            self.fault = Some("the run without a teacher lost its PPO worker".to_owned());
            self.snapshot.updating = false;
        }
    }
}

/// The second run's stepping and updates (also in the headless app).
pub struct RaceSimPlugin;

impl Plugin for RaceSimPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<RaceMode>()
            .add_message::<RunStarted>()
            .add_systems(PreUpdate, collect_rival)
            .add_systems(Update, start_or_stop_rival)
            .add_systems(FixedUpdate, step_rival);
    }
}

/// Starts the second run when the race is turned on or a new run starts, drops it when off.
fn start_or_stop_rival(
    mut commands: Commands,
    race: Res<RaceMode>,
    rival: Option<Res<Rival>>,
    mut started: MessageReader<RunStarted>,
    origin: Res<RunOrigin>,
    mut controls: ResMut<Controls>,
) {
    let new_run = started.read().count() > 0;
    match (race.0, rival.is_some()) {
        (true, running) if !running || new_run => match Rival::start(&origin) {
            Ok(rival) => {
                commands.insert_resource(rival);
                controls.tell("race: the same scene trains without a teacher beside this run", false);
            }
            Err(error) => {
                controls.tell(format!("race not started: {error:#}"), true);
                commands.insert_resource(RaceMode(false));
            }
        },
        // Dropping it ends its worker thread once an update in flight is done.
        (false, true) => commands.remove_resource::<Rival>(),
        _ => {}
    }
}

/// As `simulation::step_trainer`: one step per tick, or at max speed a budget once a frame;
/// never ahead of the first run.
fn step_rival(
    rival: Option<ResMut<Rival>>,
    first_run: Res<TrainingSnapshot>,
    speed: Res<Speed>,
    frame: Res<FrameCount>,
    mut last_max_frame: Local<Option<u32>>,
) {
    let Some(mut rival) = rival else { return };
    if *speed == Speed::Max {
        if *last_max_frame == Some(frame.0) {
            return;
        }
        *last_max_frame = Some(frame.0);
    }
    rival.advance((*speed == Speed::Max).then_some(RIVAL_FRAME_BUDGET), first_run.frames);
}

fn collect_rival(rival: Option<ResMut<Rival>>) {
    if let Some(mut rival) = rival {
        rival.collect();
    }
}

/// Marks what the mosaic column shows when there is no race, with the display it has then
/// (its grid lays out as a grid): hidden in a race, restored after.
#[derive(Component)]
pub struct MosaicContent(pub Display);

/// The race view's column: a title, the second run's numbers, its focused env.
#[derive(Component)]
struct RaceColumn;

#[derive(Component)]
struct RivalFrame;

#[derive(Component)]
struct RivalStats;

#[derive(Resource)]
struct RivalCanvas {
    image: Handle<Image>,
    painter: GridPainter,
    /// `(generation, env)` drawn.
    drawn: Option<(u64, usize)>,
}

/// The second run's view (the windowed app only).
pub struct RaceViewPlugin;

impl Plugin for RaceViewPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_race_view.after(SpawnSkeleton)).add_systems(
            Update,
            (show_race_or_mosaic, size_rival_frame, redraw_rival, rival_stats).chain().after(UpdateLayout),
        );
    }
}

fn spawn_race_view(mut commands: Commands, slots: Res<ViewSlots>, mut images: ResMut<Assets<Image>>) {
    let image = images.add(blank_image(1, 1));
    commands.insert_resource(RivalCanvas { image: image.clone(), painter: GridPainter::new(1), drawn: None });
    let column = commands
        .spawn((RaceColumn, Node { flex_direction: FlexDirection::Column, display: Display::None, ..default() }))
        .with_children(|column| {
            column
                .spawn(Node {
                    height: px(MOSAIC_TITLE_HEIGHT),
                    flex_direction: FlexDirection::Column,
                    justify_content: JustifyContent::Center,
                    row_gap: px(4),
                    overflow: Overflow::clip(),
                    ..default()
                })
                .with_children(|lines| {
                    lines.spawn((
                        Text::new("the same scene without a teacher"),
                        theme::font(theme::BODY_SIZE),
                        TextColor(theme::WARNING),
                        TextLayout::no_wrap(),
                    ));
                    lines.spawn((
                        RivalStats,
                        Text::new(""),
                        theme::font(theme::SMALL_SIZE),
                        TextColor(theme::TEXT_DIM),
                        TextLayout::no_wrap(),
                    ));
                });
            column
                .spawn((
                    RivalFrame,
                    ImageNode::new(image),
                    Node { border: UiRect::all(px(FOCUS_BORDER)), ..default() },
                    // No background under the opaque image, the border as edge nodes (as the
                    // focused view: cheaper to draw).
                ))
                .with_children(|frame| {
                    for edge in frame_edges(FOCUS_BORDER, theme::WARNING) {
                        frame.spawn(edge);
                    }
                });
        })
        .id();
    commands.entity(slots.mosaic).add_child(column);
}

/// In a race the second run's view takes the mosaic's place.
fn show_race_or_mosaic(
    race: Res<RaceMode>,
    mut column: Single<&mut Node, (With<RaceColumn>, Without<MosaicContent>)>,
    mut mosaic: Query<(&MosaicContent, &mut Node), Without<RaceColumn>>,
    mut canvas: ResMut<RivalCanvas>,
) {
    if !race.is_changed() {
        return;
    }
    column.display = if race.0 { Display::Flex } else { Display::None };
    for (MosaicContent(shown), mut node) in &mut mosaic {
        node.display = if race.0 { Display::None } else { *shown };
    }
    canvas.drawn = None;
}

fn size_rival_frame(
    layout: Res<ViewLayout>,
    mut canvas: ResMut<RivalCanvas>,
    mut frame: Single<&mut Node, With<RivalFrame>>,
) {
    if !layout.is_changed() {
        return;
    }
    let outer = layout.rival_size + 2.0 * FOCUS_BORDER;
    frame.width = px(outer.x);
    frame.height = px(outer.y);
    if canvas.painter.tile_px() != layout.rival_tile_px {
        canvas.painter = GridPainter::new(layout.rival_tile_px);
        canvas.drawn = None;
    }
}

/// Repaints the second run's env with the first run's focus, after each of its steps.
fn redraw_rival(
    rival: Option<Res<Rival>>,
    focus: Res<FocusedEnv>,
    mut canvas: ResMut<RivalCanvas>,
    mut images: ResMut<Assets<Image>>,
) {
    let Some(rival) = rival else { return };
    let env = focus.0.min(rival.snapshot.num_envs() - 1);
    let wanted = (rival.snapshot.generation, env);
    if canvas.drawn == Some(wanted) {
        return;
    }
    let canvas = &mut *canvas;
    let style = WorldStyle { draw_agent: true, highlight_view: true };
    repaint(&mut images, &canvas.image, &mut canvas.painter, rival.snapshot.world(env), style);
    canvas.drawn = Some(wanted);
}

/// "env 3   frames 40,960   updates 20   success 12% of 100", or why it stopped.
fn rival_stats(rival: Option<Res<Rival>>, focus: Res<FocusedEnv>, mut stats: Single<&mut Text, With<RivalStats>>) {
    let Some(rival) = rival else { return };
    let snapshot = &rival.snapshot;
    let text = match &rival.fault {
        Some(fault) => fault.clone(),
        None => {
            let success = snapshot
                .success_rate
                .map_or("-".to_owned(), |rate| format!("{:.0}% of {}", 100.0 * rate, snapshot.window_episodes));
            let env = focus.0.min(snapshot.num_envs() - 1);
            let frames = short_count(snapshot.frames as f64);
            format!("env {}  frames {frames}  updates {}  success {success}", env + 1, snapshot.updates)
        }
    };
    if stats.0 != text {
        stats.0 = text;
    }
}
