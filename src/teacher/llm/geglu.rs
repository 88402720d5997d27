//! The inference path's GeGLU activation, `gelu_tanh(gate) * up`, fused into one pass over
//! contiguous f32 rows with a vectorisable tanh (forward only: no backward is recorded).
//!
//! candle's `gelu` calls libm's `tanhf` once per element: ~12% of a prompt pass of Gemma 3
//! 270M here (2,048 activations per token per layer), and an extra tensor for `gate * up`.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::numerics::fast_tanh;

/// sqrt(2 / pi), GELU's tanh-approximation scale.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// `gelu_tanh(gate) * up` for one element.
#[inline(always)]
fn gelu_tanh_times_one(gate: f32, up: f32) -> f32 {
    let inner = SQRT_2_OVER_PI * (gate + 0.044_715 * gate * gate * gate);
    0.5 * gate * (1.0 + fast_tanh(inner)) * up
}

#[inline(always)]
fn fill(out: &mut [f32], gate: &[f32], up: &[f32]) {
    for ((out, &gate), &up) in out.iter_mut().zip(gate).zip(up) {
        *out = gelu_tanh_times_one(gate, up);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(out: &mut [f32], gate: &[f32], up: &[f32]) {
    fill(out, gate, up);
}

/// Writes `gelu_tanh(gate) * up` into `out`, with AVX2 when the CPU has it (same arithmetic:
/// the tanh uses plain multiplies and adds, so results do not depend on the CPU).
pub fn gelu_tanh_times_into(out: &mut [f32], gate: &[f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { fill_avx2(out, gate, up) };
        return;
    }
    fill(out, gate, up);
}

struct GeluTanhTimes;

impl CustomOp2 for GeluTanhTimes {
    fn name(&self) -> &'static str {
        "gelu-tanh-times"
    }

    fn cpu_fwd(
        &self,
        gate: &CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(gate), CpuStorage::F32(up)) = (gate, up) else {
            candle_core::bail!("gelu-tanh-times takes f32 tensors");
        };
        let (Some((gate_start, gate_end)), Some((up_start, up_end))) =
            (gate_layout.contiguous_offsets(), up_layout.contiguous_offsets())
        else {
            candle_core::bail!("gelu-tanh-times takes contiguous tensors");
        };
        if gate_layout.shape() != up_layout.shape() {
            candle_core::bail!("gelu-tanh-times: shapes {:?} and {:?} differ", gate_layout.shape(), up_layout.shape());
        }
        let mut out = vec![0.0f32; gate_end - gate_start];
        gelu_tanh_times_into(&mut out, &gate[gate_start..gate_end], &up[up_start..up_end]);
        Ok((CpuStorage::F32(out), gate_layout.shape().clone()))
    }
}

/// `gelu_tanh(gate) * up`: fused for contiguous f32 tensors on the CPU, candle's ops otherwise.
pub fn gelu_tanh_times(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    let fusable = gate.device().is_cpu()
        && gate.dtype() == candle_core::DType::F32
        && up.dtype() == candle_core::DType::F32
        && gate.is_contiguous()
        && up.is_contiguous();
    if fusable { gate.apply_op2_no_bwd(up, &GeluTanhTimes) } else { gate.gelu()? * up }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn fused_geglu_matches_candles_gelu_times_up() {
        let values: Vec<f32> = (0..4096).map(|i| (i as f32 - 2048.0) / 200.0).collect();
        let gate = Tensor::from_vec(values.clone(), (64, 64), &Device::Cpu).expect("gate");
        let up = Tensor::from_vec(values.iter().map(|v| 1.0 - v * 0.3).collect(), (64, 64), &Device::Cpu).expect("up");
        let fused =
            gelu_tanh_times(&gate, &up).expect("fused").flatten_all().expect("flat").to_vec1::<f32>().expect("v");
        let reference = (gate.gelu().expect("gelu") * &up).expect("mul").flatten_all().expect("flat");
        for (i, (a, b)) in fused.iter().zip(reference.to_vec1::<f32>().expect("v")).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{i}: {a} vs {b} (x = {})", values[i]);
        }
        // Not contiguous: candle's ops, same values.
        let transposed = gelu_tanh_times(&gate.t().expect("t"), &up.t().expect("t")).expect("strided");
        let expected = (gate.t().expect("t").gelu().expect("gelu") * up.t().expect("t")).expect("mul");
        let difference = (transposed - expected).expect("sub").abs().expect("abs").max_all().expect("max");
        assert!(difference.to_scalar::<f32>().expect("scalar") < 1e-6);
    }
}
