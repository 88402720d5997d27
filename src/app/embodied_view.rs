//! Embodied scenes in the app: the focused apartment in Bevy 3D (an orbit camera, a first-person
//! inset, the followed option's target ringed), and every env as a top-down thumbnail.
//!
//! The 3D cameras draw into the focused view's rectangle of the window (a viewport over the
//! UI's frame), after the UI camera, so the egui panel and the 2D layout stay as they are.

use bevy::camera::{ClearColorConfig, Viewport};
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::light::GlobalAmbientLight;
use bevy::prelude::*;
use bevy::window::PrimaryWindow;

use super::layout::{
    FOCUS_BORDER, FOCUS_INFO_HEIGHT, HEADER_HEIGHT, MARGIN, SpawnSkeleton, THUMBNAIL_GAP, UpdateLayout, ViewLayout,
    ViewSlots,
};
use super::simulation::{FocusedEnv, TrainingSnapshot};
use super::teacher_view::TeacherView;
use super::theme;
use super::world_image::blank_image;
use crate::env::embodied::{EmbodiedEnv, FloorPlan, FurnitureKind, ObjectKind, ObjectPlace, Place};
use crate::skills::TeacherOption;

/// Objects' side (metres), as the simulation's.
const OBJECT_SIZE: f32 = crate::env::embodied::plan::OBJECT_SIZE;
/// Walls are drawn this high (metres).
const WALL_HEIGHT: f32 = 1.1;
/// The first-person inset's share of the focused view's width.
const INSET_SHARE: f32 = 0.3;
/// Thumbnail pixels per metre.
const THUMBNAIL_PX_PER_METRE: f32 = 14.0;

pub struct EmbodiedViewPlugin;

impl Plugin for EmbodiedViewPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(GlobalAmbientLight {
            color: Color::WHITE,
            brightness: 500.0,
            affects_lightmapped_meshes: true,
        })
        .init_resource::<OrbitCamera>()
        .add_systems(Startup, (spawn_apartment, spawn_frame_and_mosaic).after(SpawnSkeleton))
        .add_systems(
            Update,
            (
                spawn_cameras,
                (
                    place_cameras,
                    orbit,
                    move_agent_and_objects,
                    ring_target,
                    info_line,
                    size_frame,
                    size_thumbnails,
                    repaint_thumbnails,
                    focus_on_click,
                ),
            )
                .chain()
                .after(UpdateLayout),
        );
    }
}

/// Where the orbit camera looks from, around the apartment's centre.
#[derive(Resource, Clone, Copy, Debug)]
struct OrbitCamera {
    yaw: f32,
    pitch: f32,
    distance: f32,
}

impl Default for OrbitCamera {
    fn default() -> OrbitCamera {
        OrbitCamera { yaw: -0.6, pitch: 0.95, distance: 11.0 }
    }
}

#[derive(Component)]
struct OrbitView;

#[derive(Component)]
struct FirstPersonView;

#[derive(Component)]
struct AgentBody;

/// The 3D mesh of object `.0` of the focused env.
#[derive(Component)]
struct ObjectMesh(usize);

/// The ring around the followed option's target.
#[derive(Component)]
struct TargetRing;

#[derive(Component)]
struct EmbodiedInfo;

/// The box of the lines above the 3D view, and the view's frame: both as wide as the view, so
/// a long line is clipped rather than pushing the mosaic aside.
#[derive(Component)]
struct EmbodiedInfoBox;
#[derive(Component)]
struct EmbodiedFrame;
/// The thumbnails' wrapping row, as wide as the learning curve under it.
#[derive(Component)]
struct ThumbnailGrid;

#[derive(Component, Clone, Copy)]
struct EmbodiedThumbnail(usize);

/// The thumbnails' images and the snapshot generation they show.
#[derive(Resource)]
struct Thumbnails {
    images: Vec<Handle<Image>>,
    drawn: Option<u64>,
}

fn furniture_color(kind: FurnitureKind) -> Color {
    match kind {
        FurnitureKind::Table => Color::srgb(0.62, 0.45, 0.30),
        FurnitureKind::Counter => Color::srgb(0.78, 0.78, 0.74),
        FurnitureKind::Sofa => Color::srgb(0.30, 0.42, 0.62),
        FurnitureKind::Shelf => Color::srgb(0.48, 0.34, 0.22),
        FurnitureKind::Bed => Color::srgb(0.85, 0.85, 0.92),
        FurnitureKind::Desk => Color::srgb(0.55, 0.40, 0.28),
        FurnitureKind::Cabinet => Color::srgb(0.66, 0.56, 0.44),
    }
}

fn object_color(kind: ObjectKind) -> Color {
    match kind {
        ObjectKind::Apple => Color::srgb(0.90, 0.16, 0.14),
        ObjectKind::Mug => Color::srgb(0.97, 0.85, 0.25),
        ObjectKind::Book => Color::srgb(0.20, 0.65, 0.35),
        ObjectKind::Bowl => Color::srgb(0.95, 0.55, 0.15),
        ObjectKind::Remote => Color::srgb(0.15, 0.15, 0.18),
        ObjectKind::Laptop => Color::srgb(0.60, 0.62, 0.68),
    }
}

/// Room floors take turns through these tints.
const FLOOR_TINTS: [Color; 4] = [
    Color::srgb(0.80, 0.74, 0.64),
    Color::srgb(0.70, 0.76, 0.80),
    Color::srgb(0.76, 0.80, 0.70),
    Color::srgb(0.82, 0.72, 0.74),
];

fn object_mesh(kind: ObjectKind) -> Mesh {
    match kind {
        ObjectKind::Apple => Sphere::new(OBJECT_SIZE * 0.5).mesh().into(),
        ObjectKind::Mug | ObjectKind::Bowl => Cylinder::new(OBJECT_SIZE * 0.5, OBJECT_SIZE * 0.8).mesh().into(),
        ObjectKind::Book => Cuboid::new(OBJECT_SIZE, OBJECT_SIZE * 0.35, OBJECT_SIZE * 0.8).mesh().into(),
        ObjectKind::Remote => Cuboid::new(OBJECT_SIZE * 1.1, OBJECT_SIZE * 0.3, OBJECT_SIZE * 0.45).mesh().into(),
        ObjectKind::Laptop => Cuboid::new(OBJECT_SIZE * 1.3, OBJECT_SIZE * 0.25, OBJECT_SIZE * 1.0).mesh().into(),
    }
}

/// Floors, walls, furniture, objects, the agent, a light: the focused env's apartment.
fn spawn_apartment(
    mut commands: Commands,
    snapshot: Res<TrainingSnapshot>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let Some(env) = snapshot.embodied(0) else { return };
    let plan = env.world.plan();
    let matte = |materials: &mut Assets<StandardMaterial>, color: Color| {
        materials.add(StandardMaterial { base_color: color, perceptual_roughness: 0.9, ..default() })
    };
    for (index, room) in plan.file.rooms.iter().enumerate() {
        let rect = room.rect;
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(rect.width(), 0.02, rect.depth()))),
            MeshMaterial3d(matte(&mut materials, FLOOR_TINTS[index % FLOOR_TINTS.len()])),
            Transform::from_xyz((rect.min.0 + rect.max.0) / 2.0, -0.01, (rect.min.1 + rect.max.1) / 2.0),
        ));
    }
    let wall_material = matte(&mut materials, Color::srgb(0.93, 0.92, 0.89));
    let bounds = plan.bounds.inflated(0.06);
    for wall in &plan.wall_boxes {
        // The plan closes its rooms with thick boxes outside them: draw only their inner edge.
        let (x0, z0) = (wall.min.0.max(bounds.min.0), wall.min.1.max(bounds.min.1));
        let (x1, z1) = (wall.max.0.min(bounds.max.0), wall.max.1.min(bounds.max.1));
        if x1 <= x0 || z1 <= z0 {
            continue;
        }
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(x1 - x0, WALL_HEIGHT, z1 - z0))),
            MeshMaterial3d(wall_material.clone()),
            Transform::from_xyz((x0 + x1) / 2.0, WALL_HEIGHT / 2.0, (z0 + z1) / 2.0),
        ));
    }
    for piece in &plan.file.furniture {
        let rect = piece.rect;
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(rect.width(), piece.height, rect.depth()))),
            MeshMaterial3d(matte(&mut materials, furniture_color(piece.kind))),
            Transform::from_xyz((rect.min.0 + rect.max.0) / 2.0, piece.height / 2.0, (rect.min.1 + rect.max.1) / 2.0),
        ));
    }
    for (index, object) in env.world.objects.iter().enumerate() {
        commands.spawn((
            ObjectMesh(index),
            Mesh3d(meshes.add(object_mesh(object.kind))),
            MeshMaterial3d(materials.add(StandardMaterial {
                base_color: object_color(object.kind),
                perceptual_roughness: 0.5,
                ..default()
            })),
            Transform::default(),
        ));
    }
    // The robot: a body, a head, and a nose that shows where it faces (+x at yaw 0).
    let body = materials.add(StandardMaterial { base_color: theme::ACCENT, perceptual_roughness: 0.4, ..default() });
    let dark = matte(&mut materials, Color::srgb(0.12, 0.13, 0.16));
    commands.spawn((AgentBody, Transform::default(), Visibility::default())).with_children(|robot| {
        robot.spawn((
            Mesh3d(meshes.add(Cylinder::new(0.18, 0.3))),
            MeshMaterial3d(body.clone()),
            Transform::from_xyz(0.0, 0.17, 0.0),
        ));
        robot.spawn((
            Mesh3d(meshes.add(Sphere::new(0.1).mesh())),
            MeshMaterial3d(dark.clone()),
            Transform::from_xyz(0.0, 0.38, 0.0),
        ));
        robot.spawn((
            Mesh3d(meshes.add(Cuboid::new(0.16, 0.06, 0.08))),
            MeshMaterial3d(dark),
            Transform::from_xyz(0.2, 0.36, 0.0),
        ));
    });
    commands.spawn((
        TargetRing,
        Mesh3d(meshes.add(Torus::new(0.32, 0.38).mesh())),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: theme::WARNING,
            emissive: LinearRgba::rgb(2.0, 1.4, 0.3),
            ..default()
        })),
        Transform::default(),
        Visibility::Hidden,
    ));
    commands.spawn((
        DirectionalLight { illuminance: 7000.0, shadow_maps_enabled: false, ..default() },
        Transform::from_xyz(2.0, 10.0, 4.0).looking_at(Vec3::new(5.0, 0.0, 4.0), Vec3::Y),
    ));
}

/// The frame the 3D view draws into, the info line above it, and the thumbnails.
fn spawn_frame_and_mosaic(
    mut commands: Commands,
    slots: Res<ViewSlots>,
    layout: Res<ViewLayout>,
    snapshot: Res<TrainingSnapshot>,
    mut images: ResMut<Assets<Image>>,
) {
    let outer = layout.focus_size + 2.0 * FOCUS_BORDER;
    let info = commands
        .spawn((
            EmbodiedInfoBox,
            Node {
                width: px(outer.x),
                height: px(FOCUS_INFO_HEIGHT),
                flex_direction: FlexDirection::Column,
                justify_content: JustifyContent::Center,
                overflow: Overflow::clip(),
                ..default()
            },
            children![(
                EmbodiedInfo,
                Text::new(""),
                theme::font(theme::BODY_SIZE),
                TextColor(theme::TEXT),
                TextLayout::no_wrap()
            )],
        ))
        .id();
    let frame = commands
        .spawn((
            EmbodiedFrame,
            Node { width: px(outer.x), height: px(outer.y), border: UiRect::all(px(FOCUS_BORDER)), ..default() },
            BorderColor::all(theme::FRAME),
        ))
        .id();
    commands.entity(slots.focus).add_children(&[info, frame]);
    let title = commands
        .spawn((
            Node { height: px(super::layout::MOSAIC_TITLE_HEIGHT), align_items: AlignItems::Center, ..default() },
            children![(
                Text::new(format!("{} envs, seen from above - click one to focus it", snapshot.num_envs())),
                theme::font(theme::BODY_SIZE),
                TextColor(theme::TEXT_DIM)
            )],
        ))
        .id();
    let grid = commands
        .spawn((
            ThumbnailGrid,
            Node {
                width: px(layout.curve.width()),
                flex_wrap: FlexWrap::Wrap,
                row_gap: px(THUMBNAIL_GAP),
                column_gap: px(THUMBNAIL_GAP),
                ..default()
            },
        ))
        .id();
    let shown = snapshot.num_envs().min(super::layout::MAX_THUMBNAILS);
    let mut handles = Vec::with_capacity(shown);
    for env in 0..shown {
        let image = images.add(blank_image(1, 1));
        let button =
            commands.spawn((EmbodiedThumbnail(env), Button, ImageNode::new(image.clone()), Node::default())).id();
        commands.entity(grid).add_child(button);
        handles.push(image);
    }
    commands.entity(slots.mosaic).add_children(&[title, grid]);
    commands.insert_resource(Thumbnails { images: handles, drawn: None });
}

/// The 3D cameras, spawned on the first update so that egui's context stays on the UI camera
/// (it takes the first camera it sees, in `PreUpdate`).
fn spawn_cameras(mut commands: Commands, mut done: Local<bool>) {
    if *done {
        return;
    }
    *done = true;
    let clear = ClearColorConfig::Custom(Color::srgb(0.16, 0.17, 0.20));
    commands.spawn((
        OrbitView,
        Camera3d::default(),
        Camera { order: 1, clear_color: clear, ..default() },
        // The default tonemapper needs lookup tables this build leaves out (the
        // `tonemapping_luts` feature); without them every surface turns magenta.
        Tonemapping::Reinhard,
        Msaa::Off,
        Transform::default(),
    ));
    commands.spawn((
        FirstPersonView,
        Camera3d::default(),
        Camera { order: 2, clear_color: clear, ..default() },
        Projection::Perspective(PerspectiveProjection { fov: 1.5, near: 0.05, ..default() }),
        Tonemapping::Reinhard,
        Msaa::Off,
        Transform::default(),
    ));
}

/// The focused view's rectangle in physical pixels: (position, size).
fn focus_rect(layout: &ViewLayout, window: &Window, ui_scale: f32) -> (UVec2, UVec2) {
    let scale = window.resolution.scale_factor() * ui_scale;
    let origin = Vec2::new(MARGIN + FOCUS_BORDER, MARGIN + HEADER_HEIGHT + FOCUS_INFO_HEIGHT + FOCUS_BORDER) * scale;
    let size = (layout.focus_size * scale).max(Vec2::ONE);
    let window_size = window.resolution.physical_size().as_vec2();
    let size = size.min((window_size - origin).max(Vec2::ONE));
    (origin.as_uvec2(), size.as_uvec2())
}

fn place_cameras(
    layout: Res<ViewLayout>,
    window: Single<&Window, With<PrimaryWindow>>,
    ui_scale: Res<UiScale>,
    mut orbit: Query<&mut Camera, (With<OrbitView>, Without<FirstPersonView>)>,
    mut inset: Query<&mut Camera, (With<FirstPersonView>, Without<OrbitView>)>,
) {
    let (position, size) = focus_rect(&layout, &window, ui_scale.0);
    for mut camera in &mut orbit {
        set_viewport(&mut camera, position, size);
    }
    let inset_size = (size.as_vec2() * INSET_SHARE).as_uvec2().max(UVec2::ONE);
    let inset_position = position + size - inset_size - UVec2::splat(8).min(size - inset_size);
    for mut camera in &mut inset {
        set_viewport(&mut camera, inset_position, inset_size);
    }
}

/// Sets a camera's viewport, touching it only when it changed.
fn set_viewport(camera: &mut Mut<Camera>, position: UVec2, size: UVec2) {
    let same = camera.viewport.as_ref().is_some_and(|v| v.physical_position == position && v.physical_size == size);
    if !same {
        camera.viewport = Some(Viewport { physical_position: position, physical_size: size, ..default() });
    }
}

/// Drag inside the 3D view to orbit, scroll to zoom.
fn orbit(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    window: Single<&Window, With<PrimaryWindow>>,
    layout: Res<ViewLayout>,
    ui_scale: Res<UiScale>,
    mut state: ResMut<OrbitCamera>,
) {
    let Some(cursor) = window.physical_cursor_position() else { return };
    let (position, size) = focus_rect(&layout, &window, ui_scale.0);
    let inside = cursor.x >= position.x as f32
        && cursor.y >= position.y as f32
        && cursor.x < (position.x + size.x) as f32
        && cursor.y < (position.y + size.y) as f32;
    if !inside {
        return;
    }
    if buttons.pressed(MouseButton::Left) {
        state.yaw -= motion.delta.x * 0.008;
        state.pitch = (state.pitch + motion.delta.y * 0.006).clamp(0.25, 1.45);
    }
    if scroll.delta.y != 0.0 {
        state.distance = (state.distance * (1.0 - scroll.delta.y * 0.08)).clamp(3.0, 30.0);
    }
}

/// Where an object of the focused env is drawn: on its furniture's top, on the floor, or held
/// in front of the robot.
fn object_position(env: &EmbodiedEnv, index: usize) -> Vec3 {
    let object = &env.world.objects[index];
    let plan = env.world.plan();
    match object.place {
        ObjectPlace::OnFurniture(f) => Vec3::new(object.x, plan.file.furniture[f].height + OBJECT_SIZE * 0.4, object.z),
        ObjectPlace::Floor => Vec3::new(object.x, OBJECT_SIZE * 0.4, object.z),
        ObjectPlace::Held => {
            let (fx, fz) = env.world.pose.forward();
            Vec3::new(env.world.pose.x + fx * 0.24, 0.5, env.world.pose.z + fz * 0.24)
        }
    }
}

/// The robot and objects follow the focused env (the robot glides between steps), and the
/// cameras follow: the orbit one around the apartment, the inset from the robot's eye.
#[allow(clippy::type_complexity)]
fn move_agent_and_objects(
    snapshot: Res<TrainingSnapshot>,
    focus: Res<FocusedEnv>,
    time: Res<Time>,
    state: Res<OrbitCamera>,
    mut agent: Query<
        &mut Transform,
        (With<AgentBody>, Without<ObjectMesh>, Without<OrbitView>, Without<FirstPersonView>),
    >,
    mut objects: Query<
        (&ObjectMesh, &mut Transform),
        (Without<AgentBody>, Without<OrbitView>, Without<FirstPersonView>),
    >,
    mut orbit: Query<
        &mut Transform,
        (With<OrbitView>, Without<AgentBody>, Without<ObjectMesh>, Without<FirstPersonView>),
    >,
    mut inset: Query<
        &mut Transform,
        (With<FirstPersonView>, Without<AgentBody>, Without<ObjectMesh>, Without<OrbitView>),
    >,
) {
    let Some(env) = snapshot.embodied(focus.0) else { return };
    let pose = env.world.pose;
    let target = Transform::from_xyz(pose.x, 0.0, pose.z).with_rotation(Quat::from_rotation_y(pose.yaw()));
    // Glide a fixed share of the way per 1/60 s: smooth at any frame rate, never far behind.
    let blend = 1.0 - 0.6f32.powf(time.delta_secs() * 60.0);
    for mut transform in &mut agent {
        let far = transform.translation.distance(target.translation) > 1.0;
        if far {
            *transform = target; // a new episode: jump
        } else {
            transform.translation = transform.translation.lerp(target.translation, blend);
            transform.rotation = transform.rotation.slerp(target.rotation, blend);
        }
        for mut camera in &mut inset {
            let eye = transform.translation + Vec3::Y * 0.42;
            let forward = transform.rotation * Vec3::X;
            *camera = Transform::from_translation(eye).looking_to(forward, Vec3::Y);
        }
    }
    for (ObjectMesh(index), mut transform) in &mut objects {
        if *index < env.world.objects.len() {
            transform.translation = object_position(env, *index);
        }
    }
    let bounds = env.world.plan().bounds;
    let centre = Vec3::new((bounds.min.0 + bounds.max.0) / 2.0, 0.0, (bounds.min.1 + bounds.max.1) / 2.0);
    let offset = Vec3::new(
        state.distance * state.pitch.cos() * state.yaw.cos(),
        state.distance * state.pitch.sin(),
        state.distance * state.pitch.cos() * state.yaw.sin(),
    );
    for mut camera in &mut orbit {
        *camera = Transform::from_translation(centre + offset).looking_at(centre, Vec3::Y);
    }
}

/// Where the teacher's most probable option leads in the focused env, if it names a place.
fn option_target(option: TeacherOption, env: &EmbodiedEnv) -> Option<Vec3> {
    let plan: &FloorPlan = env.world.plan();
    let nearest_of = |kind: ObjectKind| env.world.nearest_object(kind, None).map(|i| object_position(env, i));
    match option {
        TeacherOption::GoToObject(kind) | TeacherOption::PickUpObject(kind) => nearest_of(kind),
        TeacherOption::GoToPlace(name) => match plan.place(name.as_str())? {
            Place::Room(index) => {
                let rect = plan.file.rooms[index].rect;
                Some(Vec3::new((rect.min.0 + rect.max.0) / 2.0, 0.02, (rect.min.1 + rect.max.1) / 2.0))
            }
            Place::Furniture(index) => {
                let piece = &plan.file.furniture[index];
                let rect = piece.rect;
                Some(Vec3::new((rect.min.0 + rect.max.0) / 2.0, piece.height + 0.02, (rect.min.1 + rect.max.1) / 2.0))
            }
        },
        TeacherOption::PlaceObject(_) => plan_target_ahead(env),
        _ => None,
    }
}

/// The receptacle the robot would place on now.
fn plan_target_ahead(env: &EmbodiedEnv) -> Option<Vec3> {
    let index = env.world.place_target()?;
    let piece = &env.world.plan().file.furniture[index];
    let rect = piece.rect;
    Some(Vec3::new((rect.min.0 + rect.max.0) / 2.0, piece.height + 0.02, (rect.min.1 + rect.max.1) / 2.0))
}

fn ring_target(
    snapshot: Res<TrainingSnapshot>,
    focus: Res<FocusedEnv>,
    teacher: Res<TeacherView>,
    time: Res<Time>,
    mut ring: Query<(&mut Transform, &mut Visibility), With<TargetRing>>,
) {
    let target = snapshot
        .embodied(focus.0)
        .zip(teacher.followed.as_ref())
        .and_then(|(env, followed)| option_target(followed.option, env));
    for (mut transform, mut visibility) in &mut ring {
        match target {
            Some(at) => {
                let pulse = 1.0 + 0.08 * (time.elapsed_secs() * 4.0).sin();
                *transform = Transform::from_translation(at).with_scale(Vec3::splat(pulse));
                visibility.set_if_neq(Visibility::Visible);
            }
            None => {
                visibility.set_if_neq(Visibility::Hidden);
            }
        }
    }
}

fn info_line(
    snapshot: Res<TrainingSnapshot>,
    focus: Res<FocusedEnv>,
    teacher: Res<TeacherView>,
    mut text: Query<&mut Text, With<EmbodiedInfo>>,
) {
    let Some(env) = snapshot.embodied(focus.0) else { return };
    let room = env.world.plan().room_at(env.world.pose.x, env.world.pose.z).unwrap_or("a doorway");
    let held = env.world.held.map_or("nothing".to_owned(), |i| env.world.objects[i].kind.name().to_owned());
    // The step first and the longest part last: the box clips what does not fit its width.
    let second = match &teacher.followed {
        Some(followed) => format!("following \"{}\"", followed.option),
        None => format!("mission: {}", crate::env::embodied::text::mission(env)),
    };
    let line = format!(
        "env {}/{}  step {}/{}  {room}, holding {held}\n{second}",
        focus.0 + 1,
        snapshot.num_envs(),
        env.steps,
        env.max_steps
    );
    for mut text in &mut text {
        if text.0 != line {
            text.0 = line.clone();
        }
    }
}

/// Paints env `env` seen from above into `pixels` (`width` x `height`, RGBA8).
fn paint_top_down(env: &EmbodiedEnv, width: u32, height: u32, pixels: &mut [u8]) {
    let plan = env.world.plan();
    let bounds = plan.bounds;
    let scale = THUMBNAIL_PX_PER_METRE;
    let to_px = |x: f32, z: f32| (((x - bounds.min.0) * scale) as i32, ((z - bounds.min.1) * scale) as i32);
    let srgb = |color: Color| {
        let c = color.to_srgba();
        [(c.red * 255.0) as u8, (c.green * 255.0) as u8, (c.blue * 255.0) as u8, 255]
    };
    let mut fill = |x0: f32, z0: f32, x1: f32, z1: f32, rgba: [u8; 4]| {
        let (px0, pz0) = to_px(x0, z0);
        let (px1, pz1) = to_px(x1, z1);
        for py in pz0.max(0)..pz1.min(height as i32).max(pz0.max(0)) {
            for px in px0.max(0)..px1.min(width as i32).max(px0.max(0)) {
                let at = ((py as u32 * width + px as u32) * 4) as usize;
                pixels[at..at + 4].copy_from_slice(&rgba);
            }
        }
    };
    fill(bounds.min.0, bounds.min.1, bounds.max.0, bounds.max.1, srgb(Color::srgb(0.16, 0.17, 0.20)));
    for (index, room) in plan.file.rooms.iter().enumerate() {
        let r = room.rect;
        fill(r.min.0, r.min.1, r.max.0, r.max.1, srgb(FLOOR_TINTS[index % FLOOR_TINTS.len()]));
    }
    for piece in &plan.file.furniture {
        let r = piece.rect;
        fill(r.min.0, r.min.1, r.max.0, r.max.1, srgb(furniture_color(piece.kind)));
    }
    for wall in &plan.wall_boxes {
        fill(wall.min.0, wall.min.1, wall.max.0, wall.max.1, srgb(Color::srgb(0.30, 0.31, 0.35)));
    }
    for object in env.world.objects.iter().filter(|o| o.place != ObjectPlace::Held) {
        let half = 0.12;
        fill(object.x - half, object.z - half, object.x + half, object.z + half, srgb(object_color(object.kind)));
    }
    let pose = env.world.pose;
    fill(pose.x - 0.2, pose.z - 0.2, pose.x + 0.2, pose.z + 0.2, srgb(theme::ACCENT));
    let (fx, fz) = pose.forward();
    for step in 1..=3 {
        let (x, z) = (pose.x + fx * 0.15 * step as f32, pose.z + fz * 0.15 * step as f32);
        fill(x - 0.07, z - 0.07, x + 0.07, z + 0.07, srgb(Color::WHITE));
    }
}

fn repaint_thumbnails(
    snapshot: Res<TrainingSnapshot>,
    mut thumbnails: ResMut<Thumbnails>,
    mut images: ResMut<Assets<Image>>,
) {
    if thumbnails.drawn == Some(snapshot.generation) {
        return;
    }
    thumbnails.drawn = Some(snapshot.generation);
    for (env, handle) in thumbnails.images.iter().enumerate() {
        let Some(embodied) = snapshot.embodied(env) else { continue };
        let bounds = embodied.world.plan().bounds;
        let (width, height) =
            ((bounds.width() * THUMBNAIL_PX_PER_METRE) as u32, (bounds.depth() * THUMBNAIL_PX_PER_METRE) as u32);
        let Some(mut image) = images.get_mut(handle) else { continue };
        if image.width() != width || image.height() != height || image.data.is_none() {
            *image = blank_image(width, height);
        }
        if let Some(pixels) = image.data.as_mut() {
            paint_top_down(embodied, width, height, pixels);
        }
    }
}

/// The info lines and the frame follow the view's size when the window changes.
fn size_frame(
    layout: Res<ViewLayout>,
    mut nodes: Query<(&mut Node, Has<EmbodiedFrame>), Or<(With<EmbodiedInfoBox>, With<EmbodiedFrame>)>>,
) {
    if !layout.is_changed() {
        return;
    }
    let outer = layout.focus_size + 2.0 * FOCUS_BORDER;
    for (mut node, is_frame) in &mut nodes {
        node.width = px(outer.x);
        if is_frame {
            node.height = px(outer.y);
        }
    }
}

/// Thumbnails fill the mosaic's column (as wide as the learning curve under it), up to four
/// abreast, and follow the window's size.
fn size_thumbnails(
    layout: Res<ViewLayout>,
    snapshot: Res<TrainingSnapshot>,
    mut nodes: Query<&mut Node, (With<EmbodiedThumbnail>, Without<ThumbnailGrid>)>,
    mut grid: Query<&mut Node, With<ThumbnailGrid>>,
    mut sized: Local<Option<f32>>,
) {
    let Some(env) = snapshot.embodied(0) else { return };
    let width = layout.curve.width();
    if *sized == Some(width) && !layout.is_changed() {
        return;
    }
    *sized = Some(width);
    let shown = snapshot.num_envs().min(super::layout::MAX_THUMBNAILS);
    let columns = (shown as f32).sqrt().ceil().clamp(1.0, 4.0);
    let thumbnail_width = ((width - (columns - 1.0) * THUMBNAIL_GAP) / columns - 1.0).max(8.0);
    let bounds = env.world.plan().bounds;
    let thumbnail_height = thumbnail_width * bounds.depth() / bounds.width();
    for mut node in &mut nodes {
        node.width = px(thumbnail_width);
        node.height = px(thumbnail_height);
    }
    for mut node in &mut grid {
        node.width = px(width);
    }
}

fn focus_on_click(
    clicked: Query<(&Interaction, &EmbodiedThumbnail), Changed<Interaction>>,
    mut focus: ResMut<FocusedEnv>,
) {
    for (interaction, thumbnail) in &clicked {
        if *interaction == Interaction::Pressed {
            focus.set_if_neq(FocusedEnv(thumbnail.0));
        }
    }
}
