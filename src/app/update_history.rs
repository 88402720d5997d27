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
        app.init_resource::<UpdateHistory>().add_systems(Update, record_updates);
    }
}

fn record_updates(mut finished: MessageReader<UpdateFinished>, mut history: ResMut<UpdateHistory>) {
    for UpdateFinished(record) in finished.read() {
        history.records.push(record.clone());
    }
}
