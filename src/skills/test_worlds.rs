//! Hand-built worlds for the skills' unit tests: ASCII maps and fog of war over them.
//! Shared by option, skill and oracle tests so every test reads its map at a glance.

use crate::env::grid::{Cell, Color, DoorState, FogOfWar, GridWorld, Pos};

/// A world from an ASCII map: `#` wall, `.` empty, `G` goal, `L` lava, `k` yellow key, `r` red
/// key, `D` locked yellow door, `d` closed red door, `o` open red door, `a` blue ball, `B`
/// green box holding the yellow key, `>` `v` `<` `^` the agent. View size 3 unless changed.
pub fn world_from(rows: &[&str]) -> GridWorld {
    let (height, width) = (rows.len(), rows.first().map_or(0, |row| row.len()));
    let mut world = GridWorld::new(width, height);
    world.max_steps = 1000;
    world.agent_view_size = 3;
    for (y, row) in rows.iter().enumerate() {
        for (x, symbol) in row.chars().enumerate() {
            let p = Pos::new(x as i32, y as i32);
            if let Some(dir) = ">v<^".find(symbol) {
                world.agent_pos = p;
                world.agent_dir = dir as u8;
            }
            world.set(p, cell_of(symbol));
        }
    }
    world
}

fn cell_of(symbol: char) -> Cell {
    match symbol {
        '#' => Cell::WALL,
        'G' => Cell::Goal,
        'L' => Cell::Lava,
        'k' => Cell::Key(Color::Yellow),
        'r' => Cell::Key(Color::Red),
        'D' => Cell::Door { color: Color::Yellow, state: DoorState::Locked },
        'd' => Cell::Door { color: Color::Red, state: DoorState::Closed },
        'o' => Cell::Door { color: Color::Red, state: DoorState::Open },
        'a' => Cell::Ball(Color::Blue),
        'B' => Cell::boxed(Color::Green, Cell::Key(Color::Yellow)),
        _ => Cell::Empty,
    }
}

/// A fog that has seen exactly the cells for which `seen` says so.
pub fn fog_where(world: &GridWorld, seen: impl Fn(Pos) -> bool) -> FogOfWar {
    // FogOfWar only learns by looking: stand a one-cell-view copy of the agent on each wanted
    // cell in turn, so each look reveals exactly that cell.
    let mut fog = FogOfWar::new(world.width(), world.height());
    let mut looker = world.clone();
    looker.agent_view_size = 1;
    for y in 0..world.height() as i32 {
        for x in 0..world.width() as i32 {
            let p = Pos::new(x, y);
            if seen(p) {
                looker.agent_pos = p;
                fog.reveal(&looker);
            }
        }
    }
    fog
}
