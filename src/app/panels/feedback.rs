//! The feedback tab: what the student reports back to the teacher — outcomes per (situation,
//! option) followed, the exact text last put in the teacher's prompt, and agreement over time.

use bevy_egui::egui;
use egui_plot::{Corner, Legend, Line, Plot, PlotPoints};

use super::super::feedback_view::{FeedbackRow, FeedbackView};
use super::super::learning_curve::short_count;
use super::super::simulation::TrainingSnapshot;
use super::super::theme::{self, egui_color};
use super::super::update_history::UpdateHistory;

/// Situations listed before "show all": the most followed carry the signal, and a long list
/// costs layout time every frame.
const SITUATIONS_SHOWN: usize = 5;

/// The tab's own choices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedbackChoice {
    pub show_all: bool,
    pub order: SituationOrder,
}

/// How the situations are listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SituationOrder {
    /// Where the student followed advice most: the numbers the teacher hears most about.
    #[default]
    MostFollowed,
    /// Lowest share of won episodes first: where the advice led nowhere.
    WorstFirst,
}

pub fn show(
    ui: &mut egui::Ui,
    choice: &mut FeedbackChoice,
    snapshot: &TrainingSnapshot,
    history: &UpdateHistory,
    teacher_name: &str,
) {
    let view = &snapshot.feedback;
    let dim = egui_color(theme::TEXT_DIM);
    section(ui, "What following the advice led to");
    if !view.recording {
        ui.label(egui::RichText::new("Feedback recording is off for this run.").color(dim));
    } else if view.situations.is_empty() {
        let why = if snapshot.teacher == crate::training::TeacherKind::None {
            "The teacher is off: there is no advice to follow, so nothing to report."
        } else {
            "Nothing settled yet: a followed option is counted when its episode ends."
        };
        ui.label(egui::RichText::new(why).color(dim));
    } else {
        ui.label(
            egui::RichText::new(format!(
                "{} segments of followed advice in {} situations ({} rows); per option: times followed, \
                 share whose skill reached its target, share whose episode was won after, mean reward, \
                 mean advantage (the student's GAE where it began: above 0, better than it expected)",
                view.segments,
                view.situations.len(),
                view.rows()
            ))
            .small()
            .color(dim),
        );
        outcome_table(ui, choice, view);
    }

    section(ui, "Sent to the teacher");
    sent_text(ui, view, teacher_name);

    section(ui, "Teacher and student agreement");
    agreement_plot(ui, history);
}

/// Column widths of the outcome table (option, followed, reached, won, reward): fixed, so
/// the rows of every situation line up under one header.
const COLUMNS: [f32; 6] = [140.0, 44.0, 44.0, 36.0, 40.0, 40.0];
/// Between the table's cells (narrower than egui's default, so six columns fit the panel).
const COLUMN_GAP: f32 = 6.0;

fn outcome_table(ui: &mut egui::Ui, choice: &mut FeedbackChoice, view: &FeedbackView) {
    let dim = egui_color(theme::TEXT_DIM);
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new("order:").small().color(dim));
        ui.selectable_value(&mut choice.order, SituationOrder::MostFollowed, "most followed");
        ui.selectable_value(&mut choice.order, SituationOrder::WorstFirst, "least won first");
    });
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = COLUMN_GAP;
        for (header, width) in ["option", "followed", "reached", "won", "reward", "adv."].into_iter().zip(COLUMNS) {
            cell(ui, width, egui::RichText::new(header).small().color(dim));
        }
    });
    let shown = if choice.show_all { view.situations.len() } else { SITUATIONS_SHOWN.min(view.situations.len()) };
    // The copy is kept most followed first; the other order is a sort of a few dozen indices.
    let mut order: Vec<usize> = (0..view.situations.len()).collect();
    if choice.order == SituationOrder::WorstFirst {
        let won_share = |index: usize| {
            let situation = &view.situations[index];
            let won: u32 = situation.rows.iter().map(|row| row.counts.won).sum();
            f64::from(won) / f64::from(situation.followed.max(1))
        };
        order.sort_by(|&a, &b| won_share(a).total_cmp(&won_share(b)).then(a.cmp(&b)));
    }
    for situation in order.into_iter().take(shown).map(|index| &view.situations[index]) {
        ui.add_space(2.0);
        ui.label(
            egui::RichText::new(format!("{} ({}x)", situation.label, situation.followed))
                .size(12.0)
                .color(egui_color(theme::ACCENT)),
        );
        for row in &situation.rows {
            option_row(ui, row);
        }
    }
    let hidden = view.situations.len() - shown;
    if hidden > 0 || choice.show_all {
        let label = if choice.show_all { "show fewer".to_owned() } else { format!("show {hidden} more situations") };
        if ui.small_button(label).clicked() {
            choice.show_all = !choice.show_all;
        }
    }
}

fn option_row(ui: &mut egui::Ui, row: &FeedbackRow) {
    let success = row.success_rate();
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = COLUMN_GAP;
        cell(ui, COLUMNS[0], egui::RichText::new(row.option.to_string()));
        cell(ui, COLUMNS[1], egui::RichText::new(row.counts.followed.to_string()));
        cell(ui, COLUMNS[2], egui::RichText::new(format!("{:.0}%", 100.0 * row.reached_rate())));
        cell(ui, COLUMNS[3], egui::RichText::new(format!("{:.0}%", 100.0 * success)).color(rate_color(success)));
        cell(ui, COLUMNS[4], egui::RichText::new(format!("{:.2}", row.mean_return())));
        // Known from the PPO update after the segment began; "-" until then.
        let advantage = match row.counts.mean_advantage() {
            Some(advantage) => {
                let color = if advantage >= 0.0 { theme::SUCCESS } else { theme::FAILURE };
                egui::RichText::new(format!("{advantage:+.2}")).color(egui_color(color))
            }
            None => egui::RichText::new("-").color(egui_color(theme::TEXT_DIM)),
        };
        cell(ui, COLUMNS[5], advantage);
    });
}

/// `text` left-aligned in a cell `width` wide (cut short with "…" if longer).
fn cell(ui: &mut egui::Ui, width: f32, text: egui::RichText) {
    ui.allocate_ui_with_layout(
        egui::vec2(width, ui.spacing().interact_size.y),
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_min_width(width);
            ui.add(egui::Label::new(text).truncate());
        },
    );
}

/// Red for never, green for always, grey between: the eye finds what works.
fn rate_color(rate: f64) -> egui::Color32 {
    let failure = egui_color(theme::FAILURE);
    let success = egui_color(theme::SUCCESS);
    let neutral = egui_color(theme::TEXT);
    if rate >= 0.5 {
        neutral.lerp_to_gamma(success, ((rate - 0.5) * 2.0) as f32)
    } else {
        failure.lerp_to_gamma(neutral, (rate * 2.0) as f32)
    }
}

fn sent_text(ui: &mut egui::Ui, view: &FeedbackView, teacher_name: &str) {
    let dim = egui_color(theme::TEXT_DIM);
    let (text, caption) = match &view.sent {
        Some(sent) => {
            let version = sent.prompt_version.map_or(String::new(), |version| format!(", prompt version {version}"));
            let caption = format!(
                "put in the prompt's {{feedback}} slot after update {} ({} frames{version}); refreshed every {} \
                 updates when it changed",
                sent.update,
                short_count(sent.frames as f64),
                view.every_updates
            );
            (sent.text.as_str(), caption)
        }
        None if view.teacher_takes_feedback => (
            view.current_text.as_str(),
            format!("not sent yet: the first refresh comes after update {}; it would send this", view.every_updates),
        ),
        None => (
            view.current_text.as_str(),
            format!("the {teacher_name} teacher takes no feedback; an LLM teacher would get this"),
        ),
    };
    ui.label(egui::RichText::new(caption).small().color(dim));
    if text.trim().is_empty() {
        ui.label(egui::RichText::new("(nothing to say yet)").color(dim));
        return;
    }
    super::text_card(ui, text.trim_end(), 11.5);
}

/// Agreement (the student's most likely action is one the teacher rates best) and advice
/// coverage per update, x = frames.
fn agreement_plot(ui: &mut egui::Ui, history: &UpdateHistory) {
    let agreement: Vec<[f64; 2]> = history
        .records
        .iter()
        .filter_map(|record| record.teacher_agreement.map(|rate| [record.frames as f64, 100.0 * rate]))
        .collect();
    if agreement.is_empty() {
        ui.label(
            egui::RichText::new("No advised update yet: agreement is measured over each rollout's advised samples.")
                .color(egui_color(theme::TEXT_DIM)),
        );
        return;
    }
    let coverage: Vec<[f64; 2]> =
        history.records.iter().map(|record| [record.frames as f64, 100.0 * record.teacher_coverage]).collect();
    Plot::new("feedback_agreement")
        .height(150.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_x(0.0)
        .include_y(0.0)
        .include_y(100.0)
        .legend(Legend::default().position(Corner::LeftTop))
        .x_axis_formatter(|mark, _| short_count(mark.value))
        .y_axis_formatter(|mark, _| format!("{:.0}%", mark.value))
        .y_axis_min_width(36.0)
        .show(ui, |plot| {
            plot.line(
                Line::new("agreement", PlotPoints::from(agreement))
                    .color(egui::Color32::from_rgb(92, 157, 255))
                    .width(1.8),
            );
            plot.line(
                Line::new("advised samples", PlotPoints::from(coverage)).color(egui_color(theme::TEXT_DIM)).width(1.2),
            );
        });
}

/// A small heading with space above it.
fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(8.0);
    ui.label(egui::RichText::new(title).strong().size(14.5).color(egui_color(theme::TEXT)));
    ui.add_space(2.0);
}
