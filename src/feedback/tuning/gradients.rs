//! Gradients summed over several backward passes, so a batch of utterances is
//! back-propagated one utterance at a time and one optimizer step takes their sum: only one
//! utterance's graph (on the real Gemma 3 270M with the 242-token tuning prompt, a few GB
//! with its backward pass) is alive at a time, whatever the batch.
//!
//! Only the trained variables' gradients are kept: candle's backward pass also leaves in its
//! store the gradients of constants it met (the frozen weights of a plain matmul, about
//! 400 MB per forward pass before `layers::frozen_linear`; masks and norm weights broadcast
//! into the graph), which a plain `GradStore::extend` would keep for the whole batch.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::Optimizer;

/// The running sum of the gradients of several losses with respect to some variables.
#[derive(Debug)]
pub struct GradientSum {
    variables: Vec<Var>,
    store: GradStore,
}

impl GradientSum {
    /// Sums the gradients of `variables` only (see the module's documentation).
    pub fn new(variables: Vec<Var>) -> Self {
        Self { variables, store: GradStore::default() }
    }

    /// Back-propagates `loss` and adds its gradients; `loss`'s graph can be dropped after.
    pub fn add(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let mut gradients = loss.backward()?;
        for variable in &self.variables {
            let Some(gradient) = gradients.remove(variable.as_tensor()) else { continue };
            let summed = match self.store.remove(variable.as_tensor()) {
                Some(previous) => (previous + gradient)?,
                None => gradient,
            };
            self.store.insert(variable.as_tensor(), summed);
        }
        Ok(())
    }

    /// The summed gradient of `tensor` (None when no loss reached it).
    pub fn get(&self, tensor: &Tensor) -> Option<&Tensor> {
        self.store.get(tensor)
    }

    /// One step of `optimizer` on the summed gradients.
    pub fn step(self, optimizer: &mut impl Optimizer) -> candle_core::Result<()> {
        optimizer.step(&self.store)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::GradientSum;

    #[test]
    fn summed_backward_passes_equal_one_backward_pass_of_the_summed_loss() {
        let x = Var::from_tensor(&Tensor::new(&[0.5f32, -1.0, 2.0], &Device::Cpu).unwrap()).unwrap();
        let y = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
        let first = || (x.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
        let second = || x.as_tensor().broadcast_mul(y.as_tensor()).unwrap().exp().unwrap().sum_all().unwrap();
        let together = (first() + second()).unwrap().backward().unwrap();
        let mut sum = GradientSum::new(vec![x.clone(), y.clone()]);
        sum.add(&first()).unwrap();
        sum.add(&second()).unwrap();
        for var in [&x, &y] {
            let expected: Vec<f32> = together.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let summed: Vec<f32> = sum.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(expected.len(), summed.len());
            for (a, b) in expected.iter().zip(&summed) {
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{expected:?} against {summed:?}");
            }
        }
        // y only reaches the second loss: its gradient is that loss's alone, and it is not zero.
        assert!(sum.get(y.as_tensor()).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 1.0);
    }
}
