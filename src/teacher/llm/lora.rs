//! LoRA adapters for the teacher's decoder: trainable low-rank updates `B·A` (scaled by
//! alpha / rank) beside frozen projection weights, saved and loaded as safetensors.
//!
//! The base weights stay frozen tensors; only the adapters are candle `Var`s, so a backward
//! pass through the differentiable forward (`LanguageModel::differentiable_logits`) gives
//! gradients to them alone. B starts at zero, so a fresh adapter leaves the model unchanged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::ModelSpec;

/// The projections an adapter can wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum LoraTarget {
    Query,
    Key,
    Value,
    Output,
    Gate,
    Up,
    Down,
}

impl LoraTarget {
    pub const ALL: [LoraTarget; 7] = [
        LoraTarget::Query,
        LoraTarget::Key,
        LoraTarget::Value,
        LoraTarget::Output,
        LoraTarget::Gate,
        LoraTarget::Up,
        LoraTarget::Down,
    ];

    /// The short name used in files and on the command line ("q", "k", "v", "o", "gate", ...).
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::Query => "q",
            LoraTarget::Key => "k",
            LoraTarget::Value => "v",
            LoraTarget::Output => "o",
            LoraTarget::Gate => "gate",
            LoraTarget::Up => "up",
            LoraTarget::Down => "down",
        }
    }

    pub fn from_name(name: &str) -> Option<LoraTarget> {
        LoraTarget::ALL.into_iter().find(|target| target.name() == name)
    }

    /// `(out, in)` of this projection in a model of `spec`.
    pub fn shape(self, spec: &ModelSpec) -> (usize, usize) {
        let (hidden, attention) = (spec.hidden_size, spec.head_count * spec.head_dim);
        let key_value = spec.kv_head_count * spec.head_dim;
        match self {
            LoraTarget::Query => (attention, hidden),
            LoraTarget::Key | LoraTarget::Value => (key_value, hidden),
            LoraTarget::Output => (hidden, attention),
            LoraTarget::Gate | LoraTarget::Up => (spec.intermediate_size, hidden),
            LoraTarget::Down => (hidden, spec.intermediate_size),
        }
    }
}

/// Rank, scale and targets of a set of adapters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraConfig {
    pub rank: usize,
    /// The update is scaled by alpha / rank.
    pub alpha: f64,
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    /// Rank 8, alpha 16, on the attention projections (q, k, v, o).
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            targets: vec![LoraTarget::Query, LoraTarget::Key, LoraTarget::Value, LoraTarget::Output],
        }
    }
}

/// What went wrong making, saving or loading adapters.
#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    #[error("LoRA rank must be at least 1 and alpha positive (got rank {rank}, alpha {alpha})")]
    InvalidConfig { rank: usize, alpha: f64 },
    #[error("LoRA needs at least one target projection")]
    NoTargets,
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("LoRA computation failed: {0}")]
    Compute(#[from] candle_core::Error),
}

/// One adapter: `A` `[rank, in]` and `B` `[out, rank]`.
#[derive(Clone, Debug)]
struct Pair {
    down: Var,
    up: Var,
}

/// Adapters on `config.targets` of every layer.
#[derive(Clone, Debug)]
pub struct LoraAdapters {
    config: LoraConfig,
    scale: f64,
    pairs: HashMap<(usize, LoraTarget), Pair>,
    layer_count: usize,
}

impl LoraAdapters {
    /// Fresh adapters for a model of `spec`: `A` uniform in ±1/sqrt(in) (PEFT's default), `B`
    /// zero, so the adapted model starts equal to the base.
    pub fn new(spec: &ModelSpec, config: LoraConfig, seed: u64) -> Result<Self, LoraError> {
        Self::check(&config)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pairs = HashMap::new();
        for layer in 0..spec.layer_count {
            for &target in &config.targets {
                let (out, input) = target.shape(spec);
                let bound = 1.0 / (input as f32).sqrt();
                let values: Vec<f32> = (0..config.rank * input).map(|_| rng.random_range(-bound..bound)).collect();
                let down = Var::from_tensor(&Tensor::from_vec(values, (config.rank, input), &Device::Cpu)?)?;
                let up = Var::zeros((out, config.rank), DType::F32, &Device::Cpu)?;
                pairs.insert((layer, target), Pair { down, up });
            }
        }
        Ok(Self { scale: config.alpha / config.rank as f64, config, pairs, layer_count: spec.layer_count })
    }

    fn check(config: &LoraConfig) -> Result<(), LoraError> {
        if config.rank == 0 || config.alpha.is_nan() || config.alpha <= 0.0 {
            return Err(LoraError::InvalidConfig { rank: config.rank, alpha: config.alpha });
        }
        if config.targets.is_empty() {
            return Err(LoraError::NoTargets);
        }
        Ok(())
    }

    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// Every trainable tensor, for an optimizer (A then B per adapter, in layer/target order).
    pub fn vars(&self) -> Vec<Var> {
        let mut keys: Vec<&(usize, LoraTarget)> = self.pairs.keys().collect();
        keys.sort();
        keys.into_iter().flat_map(|key| [self.pairs[key].down.clone(), self.pairs[key].up.clone()]).collect()
    }

    /// The adapter's `(A, B)` at `layer`/`target`, if there is one.
    pub fn pair(&self, layer: usize, target: LoraTarget) -> Option<(&Var, &Var)> {
        self.pairs.get(&(layer, target)).map(|pair| (&pair.down, &pair.up))
    }

    /// The adapter's addition to the projection of `input` `[rows, in]`: `(input·Aᵀ)·Bᵀ · scale`
    /// (`None` when this projection has no adapter).
    pub fn delta(&self, layer: usize, target: LoraTarget, input: &Tensor) -> Option<candle_core::Result<Tensor>> {
        let pair = self.pairs.get(&(layer, target))?;
        let compute = || {
            let input = input.to_dtype(DType::F32)?;
            input.matmul(&pair.down.as_tensor().t()?)?.matmul(&pair.up.as_tensor().t()?)? * self.scale
        };
        Some(compute())
    }

    /// Writes the adapters to `path` as safetensors (`layers.<i>.<target>.a` / `.b`, plus
    /// `alpha`), through a temporary file renamed into place.
    pub fn save(&self, path: &Path) -> Result<(), LoraError> {
        let file_error = |problem: String| LoraError::File { path: path.to_path_buf(), problem };
        let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
        for ((layer, target), pair) in &self.pairs {
            tensors.insert(format!("layers.{layer}.{}.a", target.name()), pair.down.as_tensor().clone());
            tensors.insert(format!("layers.{layer}.{}.b", target.name()), pair.up.as_tensor().clone());
        }
        tensors.insert("alpha".into(), Tensor::new(&[self.config.alpha as f32], &Device::Cpu)?);
        let temporary = path.with_extension("safetensors.tmp");
        let map: HashMap<String, Tensor> = tensors.into_iter().collect();
        candle_core::safetensors::save(&map, &temporary).map_err(|error| file_error(error.to_string()))?;
        std::fs::rename(&temporary, path).map_err(|error| file_error(format!("cannot rename into place: {error}")))
    }

    /// Reads adapters saved by [`LoraAdapters::save`] for a model of `spec`, checking that
    /// every adapter fits the model's projections.
    pub fn load(path: &Path, spec: &ModelSpec) -> Result<Self, LoraError> {
        let file_error = |problem: String| LoraError::File { path: path.to_path_buf(), problem };
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|error| file_error(format!("not a readable safetensors file: {error}")))?;
        let alpha = tensors
            .get("alpha")
            .ok_or_else(|| file_error("no `alpha` tensor: not a duet LoRA file".into()))?
            .flatten_all()?
            .to_vec1::<f32>()?
            .first()
            .copied()
            .ok_or_else(|| file_error("`alpha` is empty".into()))? as f64;
        let mut halves: HashMap<(usize, LoraTarget), (Option<Tensor>, Option<Tensor>)> = HashMap::new();
        for (name, tensor) in &tensors {
            if name == "alpha" {
                continue;
            }
            let parts: Vec<&str> = name.split('.').collect();
            let parsed = match parts.as_slice() {
                ["layers", layer, target, half] => {
                    layer.parse::<usize>().ok().zip(LoraTarget::from_name(target)).map(|key| (key, *half))
                }
                _ => None,
            };
            let Some((key, half)) = parsed else { return Err(file_error(format!("unexpected tensor `{name}`"))) };
            if key.0 >= spec.layer_count {
                return Err(file_error(format!("`{name}`: the model has {} layers", spec.layer_count)));
            }
            let entry = halves.entry(key).or_default();
            match half {
                "a" => entry.0 = Some(tensor.to_dtype(DType::F32)?),
                "b" => entry.1 = Some(tensor.to_dtype(DType::F32)?),
                _ => return Err(file_error(format!("unexpected tensor `{name}`"))),
            }
        }
        let mut rank = None;
        let mut targets = std::collections::BTreeSet::new();
        let mut pairs = HashMap::new();
        for ((layer, target), (down, up)) in halves {
            let (Some(down), Some(up)) = (down, up) else {
                return Err(file_error(format!("layer {layer} {}: A or B is missing", target.name())));
            };
            let (out, input) = target.shape(spec);
            let this_rank = down.dim(0)?;
            if down.dims() != [this_rank, input] || up.dims() != [out, this_rank] || this_rank == 0 {
                return Err(file_error(format!(
                    "layer {layer} {}: A {:?} and B {:?} do not fit a [{out}, {input}] projection",
                    target.name(),
                    down.dims(),
                    up.dims()
                )));
            }
            if *rank.get_or_insert(this_rank) != this_rank {
                return Err(file_error("adapters of different ranks".into()));
            }
            targets.insert(target);
            pairs.insert((layer, target), Pair { down: Var::from_tensor(&down)?, up: Var::from_tensor(&up)? });
        }
        let Some(rank) = rank else { return Err(file_error("no adapters in the file".into())) };
        let config = LoraConfig { rank, alpha, targets: targets.into_iter().collect() };
        Self::check(&config).map_err(|error| file_error(error.to_string()))?;
        let expected = spec.layer_count * config.targets.len();
        if pairs.len() != expected {
            return Err(file_error(format!(
                "{} adapters, expected {expected} ({} targets on each of {} layers)",
                pairs.len(),
                config.targets.len(),
                spec.layer_count
            )));
        }
        Ok(Self { scale: alpha / rank as f64, config, pairs, layer_count: spec.layer_count })
    }

    pub fn layer_count(&self) -> usize {
        self.layer_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        ModelSpec {
            architecture: "gemma3".into(),
            vocabulary_size: 40,
            hidden_size: 16,
            intermediate_size: 24,
            layer_count: 2,
            head_count: 4,
            kv_head_count: 2,
            head_dim: 8,
            context_length: 64,
            sliding_window: None,
            final_logit_softcapping: None,
        }
    }

    #[test]
    fn adapters_start_at_zero_update_and_round_trip_through_a_file() {
        let adapters = LoraAdapters::new(&spec(), LoraConfig::default(), 3).expect("adapters");
        assert_eq!(adapters.vars().len(), 2 * 2 * 4);
        let input = Tensor::ones((3, 16), DType::F32, &Device::Cpu).expect("input");
        let delta = adapters.delta(1, LoraTarget::Key, &input).expect("a key adapter").expect("delta");
        assert_eq!(delta.dims(), [3, 16]);
        assert_eq!(delta.abs().and_then(|d| d.max_all()).and_then(|d| d.to_scalar::<f32>()).expect("max"), 0.0);
        assert!(adapters.delta(0, LoraTarget::Gate, &input).is_none());

        // Give B values, save, load: the same update.
        let (_, up) = adapters.pair(1, LoraTarget::Key).expect("pair");
        up.set(&Tensor::full(0.5f32, (16, 8), &Device::Cpu).expect("B")).expect("set");
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("adapters.safetensors");
        adapters.save(&path).expect("save");
        assert!(!path.with_extension("safetensors.tmp").exists());
        let loaded = LoraAdapters::load(&path, &spec()).expect("load");
        assert_eq!(loaded.config(), adapters.config());
        let before: Vec<Vec<f32>> = delta_of(&adapters, &input);
        assert_eq!(delta_of(&loaded, &input), before);
        assert!(before[0][0] != 0.0);
    }

    fn delta_of(adapters: &LoraAdapters, input: &Tensor) -> Vec<Vec<f32>> {
        adapters.delta(1, LoraTarget::Key, input).expect("pair").and_then(|d| d.to_vec2()).expect("values")
    }

    #[test]
    fn bad_configs_and_files_are_refused_with_the_file_named() {
        let bad = LoraConfig { rank: 0, ..LoraConfig::default() };
        assert!(matches!(LoraAdapters::new(&spec(), bad, 0), Err(LoraError::InvalidConfig { .. })));
        let none = LoraConfig { targets: vec![], ..LoraConfig::default() };
        assert!(matches!(LoraAdapters::new(&spec(), none, 0), Err(LoraError::NoTargets)));

        let directory = tempfile::tempdir().expect("temporary directory");
        let garbage = directory.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"not safetensors").expect("write");
        let message = LoraAdapters::load(&garbage, &spec()).expect_err("garbage").to_string();
        assert!(message.contains("garbage.safetensors") && message.contains("not a readable"), "{message}");

        // Adapters of another model: the shapes do not fit.
        let path = directory.path().join("other-model.safetensors");
        let wider = ModelSpec { hidden_size: 32, ..spec() };
        LoraAdapters::new(&wider, LoraConfig::default(), 0).expect("adapters").save(&path).expect("save");
        let message = LoraAdapters::load(&path, &spec()).expect_err("wrong model").to_string();
        assert!(message.contains("other-model.safetensors") && message.contains("do not fit"), "{message}");
    }
}
