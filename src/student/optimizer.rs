//! Adam (PyTorch's, no weight decay) over the network's parameters in their fixed order,
//! and global gradient-norm clipping done by scaling the gradients in the `GradStore`.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::StudentError;

/// Adam with its moments kept per parameter, in the parameters' order (checkpointable). The
/// moments are plain f32 vectors so that the fused update steps them without candle ops.
pub struct Adam {
    parameters: Vec<Var>,
    first_moments: Vec<Vec<f32>>,
    second_moments: Vec<Vec<f32>>,
    steps: u64,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Adam {
    pub fn new(parameters: Vec<Var>, lr: f64, eps: f64) -> Result<Adam, StudentError> {
        let first_moments: Vec<Vec<f32>> = parameters.iter().map(|v| vec![0.0; v.elem_count()]).collect();
        let second_moments = first_moments.clone();
        Ok(Adam { parameters, first_moments, second_moments, steps: 0, lr, beta1: 0.9, beta2: 0.999, eps })
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// First and second moments as tensors shaped like their parameters, in the parameters'
    /// order (for checkpoints).
    pub fn moments(&self) -> (Vec<Tensor>, Vec<Tensor>) {
        let tensors = |moments: &[Vec<f32>]| -> Vec<Tensor> {
            moments
                .iter()
                .zip(&self.parameters)
                .map(|(m, p)| {
                    // Each moment vector is created and restored with its parameter's length.
                    Tensor::from_slice(m, p.dims(), p.device()).expect("a moment has its parameter's element count")
                })
                .collect()
        };
        (tensors(&self.first_moments), tensors(&self.second_moments))
    }

    /// Puts back moments and the step count saved from an optimizer over the same parameters.
    pub fn restore(&mut self, steps: u64, first: Vec<Tensor>, second: Vec<Tensor>) -> Result<(), StudentError> {
        if first.len() != self.parameters.len() || second.len() != self.parameters.len() {
            return Err(StudentError::Config(format!(
                "optimizer state has {} and {} moments for {} parameters",
                first.len(),
                second.len(),
                self.parameters.len()
            )));
        }
        for ((parameter, m), v) in self.parameters.iter().zip(&first).zip(&second) {
            if m.dims() != parameter.dims() || v.dims() != parameter.dims() {
                return Err(StudentError::Config(format!(
                    "optimizer moment of shape {:?} for a parameter of shape {:?}",
                    m.dims(),
                    parameter.dims()
                )));
            }
        }
        let flat = |tensors: Vec<Tensor>| -> Result<Vec<Vec<f32>>, StudentError> {
            tensors.iter().map(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?)).collect()
        };
        let (first, second) = (flat(first)?, flat(second)?);
        self.steps = steps;
        self.first_moments = first;
        self.second_moments = second;
        Ok(())
    }

    /// The per-step constants: (beta1, 1 - beta1, beta2, 1 - beta2, lr / bias correction 1,
    /// bias correction 2, eps), as f32 the way candle's scalar ops round them.
    fn constants(&self) -> [f32; 7] {
        let step = i32::try_from(self.steps).unwrap_or(i32::MAX);
        let first_correction = 1.0 - self.beta1.powi(step);
        let second_correction = 1.0 - self.beta2.powi(step);
        [
            self.beta1 as f32,
            (1.0 - self.beta1) as f32,
            self.beta2 as f32,
            (1.0 - self.beta2) as f32,
            (self.lr / first_correction) as f32,
            second_correction as f32,
            self.eps as f32,
        ]
    }

    /// PyTorch's update of one parameter: p -= lr / bc1 * m / (sqrt(v / bc2) + eps).
    #[inline(always)]
    fn step_parameter(constants: &[f32; 7], values: &mut [f32], grads: &[f32], first: &mut [f32], second: &mut [f32]) {
        let [beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, second_correction, eps] = *constants;
        for (((p, &g), m), v) in values.iter_mut().zip(grads).zip(first.iter_mut()).zip(second.iter_mut()) {
            *m = *m * beta1 + g * one_minus_beta1;
            *v = *v * beta2 + (g * g) * one_minus_beta2;
            let denominator = (*v / second_correction).sqrt() + eps;
            *p -= (*m / denominator) * step_size;
        }
    }

    /// One update from `grads`; parameters without a gradient keep their value and moments.
    pub fn step(&mut self, grads: &GradStore) -> Result<(), StudentError> {
        self.steps += 1;
        let constants = self.constants();
        for (index, parameter) in self.parameters.iter().enumerate() {
            let Some(grad) = grads.get(parameter.as_tensor()) else { continue };
            let grad = grad.flatten_all()?.to_vec1::<f32>()?;
            let mut values = parameter.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            Self::step_parameter(
                &constants,
                &mut values,
                &grad,
                &mut self.first_moments[index],
                &mut self.second_moments[index],
            );
            parameter.set(&Tensor::from_vec(values, parameter.dims(), parameter.device())?)?;
        }
        Ok(())
    }

    /// One update of flat parameter values (every parameter, concatenated in order) from flat
    /// gradients, each gradient multiplied by `grad_scale` first (norm clipping). The `Var`s
    /// are not written: the caller writes `values` back when it is done.
    pub fn step_flat(
        &mut self,
        values: &mut [f32],
        grads: &[f32],
        grad_scale: Option<f32>,
    ) -> Result<(), StudentError> {
        let total: usize = self.first_moments.iter().map(Vec::len).sum();
        if values.len() != total || grads.len() != total {
            return Err(StudentError::Config(format!(
                "flat Adam step over {} values and {} gradients for {total} parameters",
                values.len(),
                grads.len()
            )));
        }
        self.steps += 1;
        let constants = self.constants();
        let mut scaled = Vec::new();
        let grads = match grad_scale {
            Some(scale) => {
                scaled.extend(grads.iter().map(|g| g * scale));
                &scaled[..]
            }
            None => grads,
        };
        let mut offset = 0;
        for (first, second) in self.first_moments.iter_mut().zip(&mut self.second_moments) {
            let len = first.len();
            let range = offset..offset + len;
            step_parameter_fast(&constants, &mut values[range.clone()], &grads[range], first, second);
            offset += len;
        }
        Ok(())
    }
}

/// `Adam::step_parameter` with wider vectors where the CPU has them (elementwise: the same
/// results).
fn step_parameter_fast(constants: &[f32; 7], values: &mut [f32], grads: &[f32], first: &mut [f32], second: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(constants: &[f32; 7], values: &mut [f32], grads: &[f32], first: &mut [f32], second: &mut [f32]) {
            Adam::step_parameter(constants, values, grads, first, second)
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the function is compiled for.
            return unsafe { avx512(constants, values, grads, first, second) };
        }
    }
    Adam::step_parameter(constants, values, grads, first, second)
}

/// Scales every gradient so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`), summing in the parameters' order so that runs repeat exactly.
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, parameters: &[Var], max_norm: f64) -> Result<f64, StudentError> {
    let mut squared = 0.0f64;
    for parameter in parameters {
        if let Some(grad) = grads.get(parameter.as_tensor()) {
            squared += f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = squared.sqrt();
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        for parameter in parameters {
            if let Some(grad) = grads.get(parameter.as_tensor()) {
                let scaled = (grad * scale)?;
                grads.insert(parameter.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_first_step_moves_by_lr_against_the_gradient() {
        let x = Var::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).expect("var");
        let mut adam = Adam::new(vec![x.clone()], 0.1, 1e-8).expect("adam");
        // loss = 3*x0 - 0.5*x1: the first Adam step is lr * sign(grad).
        let loss = (x.as_tensor() * &Tensor::from_slice(&[3.0f32, -0.5], 2, &Device::Cpu).expect("t"))
            .and_then(|t| t.sum_all())
            .expect("loss");
        adam.step(&loss.backward().expect("grads")).expect("step");
        let after: Vec<f32> = x.as_tensor().to_vec1().expect("values");
        assert!((after[0] - 0.9).abs() < 1e-6 && (after[1] + 1.9).abs() < 1e-6, "{after:?}");
        assert_eq!(adam.steps(), 1);
    }

    #[test]
    fn clipping_scales_to_the_global_norm() {
        let a = Var::from_slice(&[0.0f32, 0.0], 2, &Device::Cpu).expect("var");
        let b = Var::from_slice(&[0.0f32], 1, &Device::Cpu).expect("var");
        // Gradients (3, 0) and (4): global norm 5.
        let loss = (a.as_tensor().narrow(0, 0, 1).expect("n") * 3.0)
            .and_then(|t| t.sum_all())
            .and_then(|t| t + (b.as_tensor() * 4.0)?.sum_all()?)
            .expect("loss");
        let mut grads = loss.backward().expect("grads");
        let parameters = [a.clone(), b.clone()];
        let norm = clip_grad_norm(&mut grads, &parameters, 1.0).expect("clip");
        assert!((norm - 5.0).abs() < 1e-6);
        let ga: Vec<f32> = grads.get(a.as_tensor()).expect("ga").to_vec1().expect("v");
        let gb: Vec<f32> = grads.get(b.as_tensor()).expect("gb").to_vec1().expect("v");
        assert!((ga[0] - 0.6).abs() < 1e-5 && (gb[0] - 0.8).abs() < 1e-5, "{ga:?} {gb:?}");
        // Under the limit: untouched.
        let norm = clip_grad_norm(&mut grads, &parameters, 10.0).expect("clip");
        assert!((norm - 1.0).abs() < 1e-4);
        let gb: Vec<f32> = grads.get(b.as_tensor()).expect("gb").to_vec1().expect("v");
        assert!((gb[0] - 0.8).abs() < 1e-5);
    }
}
