//! `duet tune`: tunes the LLM teacher's LoRA adapters (PPO, CORY or ArCHer) from what its
//! advice earns a frozen student on a scene's level; metrics JSONL and adapters to `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::env::scene::Scene;
use crate::env::vec_env::VecEnv;
use crate::feedback::tuning::{
    AdapterSaves, AdviceJudge, Algorithm, DEFAULT_OPTION_STEPS, TuneConfig, TuneRun, TuningTeacher,
};
use crate::student::{ObservationLayout, Student};
use crate::training::checkpoint::{read_checkpoint_summary, write_file_atomically};
use crate::training::{TeacherKind, Trainer, TrainerConfig};

/// `duet tune`'s arguments.
#[derive(Clone, Debug)]
pub struct TuneArgs {
    pub scene: PathBuf,
    pub algorithm: Algorithm,
    pub iterations: usize,
    pub out: Option<PathBuf>,
    pub student: Option<PathBuf>,
    pub batch: usize,
    pub situations: usize,
    pub prompt: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub evaluate_every: usize,
    pub archer_turns: usize,
    pub teacher_finishes: bool,
}

pub fn tune(args: &TuneArgs) -> anyhow::Result<ExitCode> {
    if args.iterations == 0 || args.batch == 0 || args.situations == 0 {
        bail!("--iterations, --batch and --situations must be at least 1");
    }
    if args.archer_turns == 0 {
        bail!("--archer-turns must be at least 1");
    }
    if args.teacher_finishes && args.algorithm != Algorithm::Archer {
        bail!("--teacher-finishes needs --algo archer (PPO and CORY judge single advices)");
    }
    let mut scene = Scene::load(&args.scene)?;
    if let Some(model) = &args.model {
        scene.teacher.model = Some(model.clone());
    }
    let trainer_config = TrainerConfig::from_scene(&scene, TeacherKind::None)?;
    let Some(level) = trainer_config.env.level().cloned() else {
        bail!("{}: tuning the teacher needs a grid scene (embodied scenes are not tuned yet)", args.scene.display());
    };

    // The judge: the student of `--student RUN` (same level), or a fresh one.
    let env_config = trainer_config.env_config(1, scene.seed);
    let trained;
    let fresh;
    let student: &Student = match &args.student {
        Some(run) => {
            let summary = read_checkpoint_summary(run)?;
            let mut run_scene = Scene::load(run.join("config.ron"))?;
            run_scene.seed = summary.seed;
            let run_config = TrainerConfig::from_scene(&run_scene, TeacherKind::None)?;
            if run_config.env.level() != Some(&level) {
                bail!(
                    "{}: the run trained on {:?}, the scene {} is {:?}",
                    run.display(),
                    run_config.env.name(),
                    args.scene.display(),
                    level
                );
            }
            // The student alone: whatever teacher the run had is not needed to judge.
            trained = Trainer::resume_without_teacher(run_config, run)?;
            trained.student()
        }
        None => {
            eprintln!("no --student: a fresh (untrained) student judges the advice");
            let world = VecEnv::new(env_config.clone()).world(0).clone();
            let layout = ObservationLayout::for_env(trainer_config.observation, &world);
            fresh = Student::new(layout, trainer_config.student.clone(), scene.seed)?;
            &fresh
        }
    };
    let mut judge = AdviceJudge::new(student, env_config, DEFAULT_OPTION_STEPS, scene.seed)?;

    let TuningTeacher { model, tokenizer, template } = TuningTeacher::load(&scene.teacher, args.prompt.as_deref())?;

    let config = TuneConfig {
        iterations: args.iterations,
        batch: args.batch,
        situations: args.situations,
        seed: scene.seed,
        detail: scene.teacher.description,
        evaluate_every: args.evaluate_every,
        archer_turns: args.archer_turns,
        archer_teacher_finishes: args.teacher_finishes,
        ..TuneConfig::new(level, args.algorithm)
    };
    let run = TuneRun::new(&model, &tokenizer, &template, config)?;
    let algorithm_name = args.algorithm.name();
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.scene.file_stem().map_or("scene".into(), |stem| stem.to_string_lossy().into_owned());
        PathBuf::from("runs").join(format!("tune-{stem}-{algorithm_name}"))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let metrics_path = out.join("metrics.jsonl");

    // Iteration 0: the base teacher, for comparison.
    let base = run.base_record()?;
    let base_agreement = base.agreement.unwrap_or(0.0);
    let mut lines = vec![serde_json::to_string(&base)?];
    write_file_atomically(&metrics_path, format!("{}\n", lines.join("\n")).as_bytes())?;

    let progress = ProgressBar::new(args.iterations as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} iterations {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_message(format!("{} situations, base agreement {base_agreement:.2}", run.situation_count()));
    let mut write_error = None;
    // Metrics and adapters are written after every iteration (the last write is the run's
    // result): a run stopped part-way keeps what it had.
    let mut saves = AdapterSaves::new(&out, "adapters");
    let (records, _) = run.run(&mut judge, |record, adapters| {
        match serde_json::to_string(record) {
            Ok(line) => lines.push(line),
            Err(error) => {
                write_error.get_or_insert(anyhow::Error::from(error));
            }
        }
        if let Err(error) = write_file_atomically(&metrics_path, format!("{}\n", lines.join("\n")).as_bytes()) {
            write_error
                .get_or_insert(anyhow::Error::from(error).context(format!("writing {}", metrics_path.display())));
        }
        saves.save(adapters);
        let agreement = record.agreement.map_or(String::new(), |agreement| format!(", agreement {agreement:.2}"));
        progress.set_message(format!("reward {:.3}{agreement}", record.task_reward));
        progress.inc(1);
        true
    })?;
    progress.finish();
    if let Some(error) = write_error {
        return Err(error);
    }
    let saved: Vec<String> = saves.finish()?.iter().map(|path| path.display().to_string()).collect();
    let last = records.last().cloned().unwrap_or_default();
    let summary = serde_json::json!({
        "tune": algorithm_name,
        "scene": args.scene.display().to_string(),
        "situations": run.situation_count(),
        "iterations": records.len(),
        "base_agreement": base_agreement,
        "agreement": last.agreement,
        "kl_to_base": last.kl_to_base,
        "task_reward": last.task_reward,
        "metrics": metrics_path.display().to_string(),
        "adapters": saved,
    });
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
