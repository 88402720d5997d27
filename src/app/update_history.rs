//! Every PPO update's record since the run started, for the curves panel: one point per
//! update on each curve, x = env frames.

use bevy::prelude::*;

use super::ppo_worker::UpdateFinished;
use crate::metrics::UpdateRecord;

/// The run's update records, oldest first.
#[derive(Resource, Clone, Debug, Default)]
pub struct UpdateHistory {
    pub records: Vec<UpdateRecord>,
}

impl UpdateHistory {
    pub fn clear(&mut self) {
        self.records.clear();
    }
}

pub struct UpdateHistoryPlugin;

impl Plugin for UpdateHistoryPlugin {
    fn build(&self, app: &mut App) {
        // In `PreUpdate`, right after the finished updates are collected: a Reset or Load
        // (`Update`) then clears the history after the old run's last record, never before it.
        app.init_resource::<UpdateHistory>()
            .add_systems(PreUpdate, record_updates.after(super::ppo_worker::CollectUpdates));
    }
}

fn record_updates(mut finished: MessageReader<UpdateFinished>, mut history: ResMut<UpdateHistory>) {
    for UpdateFinished(record) in finished.read() {
        history.records.push(record.clone());
    }
}
