// RoPE frequencies of Hugging Face's rope types (default, linear, dynamic, yarn, llama3) as pure functions of the
// parameters, shared by the CPU and CUDA kernels (transformers' modeling_rope_utils.py, computed here in double).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(RT_SIMT_EMULATION)
#define RT_ROPE_HD __host__ __device__
#else
#define RT_ROPE_HD
#endif

namespace rt {

enum class RopeType : int32_t { kDefault, kLinear, kDynamic, kYarn, kLlama3 };

// Everything the rotation of pair i of a head of D needs. attention_factor multiplies cos and sin (so q and k, and
// the scores by its square): yarn's mscale, 1 for the others; config code resolves HF's defaults into it.
struct RopeParams {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;                    // rope_theta
  double factor = 1.0;                       // linear, dynamic, yarn, llama3
  double original_max_position = 0;          // original_max_position_embeddings: dynamic, yarn, llama3
  double low_freq_factor = 1.0;              // llama3
  double high_freq_factor = 4.0;             // llama3
  double beta_fast = 32.0, beta_slow = 1.0;  // yarn
  bool truncate = true;                      // yarn: correction range rounded outwards to whole dimensions
  double attention_factor = 1.0;
  double seq_len = 0;  // dynamic: the (global) sequence length the frequencies are scaled for
};

// yarn: the dimension (of D) whose wavelength makes `rotations` turns over the original length.
RT_ROPE_HD inline double rope_yarn_correction_dim(double rotations, double D, double theta, double original) {
  return D * log(original / (rotations * 2 * 3.14159265358979323846)) / (2 * log(theta));
}

// Inverse frequency of pair i < D/2: the rotation angle of position p is p * rope_inv_freq(params, i, D).
RT_ROPE_HD inline double rope_inv_freq(const RopeParams& r, int64_t i, int64_t D) {
  const double d = static_cast<double>(D), e = 2.0 * static_cast<double>(i) / d;
  switch (r.type) {
    case RopeType::kDefault:
      break;
    case RopeType::kLinear:
      return pow(r.theta, -e) / r.factor;
    case RopeType::kDynamic: {  // NTK-aware: the base grows with the sequence beyond the original length
      const double len = r.seq_len > r.original_max_position ? r.seq_len : r.original_max_position;
      const double base = r.theta * pow(r.factor * len / r.original_max_position - (r.factor - 1), d / (d - 2));
      return pow(base, -e);
    }
    case RopeType::kYarn: {  // extrapolate the fast dimensions, interpolate (/factor) the slow ones, a ramp between
      double low = rope_yarn_correction_dim(r.beta_fast, d, r.theta, r.original_max_position);
      double high = rope_yarn_correction_dim(r.beta_slow, d, r.theta, r.original_max_position);
      if (r.truncate) low = floor(low), high = ceil(high);
      low = low > 0 ? low : 0;
      high = high < d - 1 ? high : d - 1;
      if (low == high) high += 0.001;
      double ramp = (static_cast<double>(i) - low) / (high - low);
      ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
      const double extrapolated = pow(r.theta, -e), extrapolation_weight = 1 - ramp;
      return extrapolated / r.factor * (1 - extrapolation_weight) + extrapolated * extrapolation_weight;
    }
    case RopeType::kLlama3: {  // long wavelengths /factor, short ones kept, a smooth blend between
      const double f = pow(r.theta, -e), wavelen = 2 * 3.14159265358979323846 / f;
      const double low_wavelen = r.original_max_position / r.low_freq_factor;
      const double high_wavelen = r.original_max_position / r.high_freq_factor;
      if (wavelen > low_wavelen) return f / r.factor;
      if (wavelen < high_wavelen) return f;
      const double smooth =
          (r.original_max_position / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      return (1 - smooth) * f / r.factor + smooth * f;
    }
  }
  return pow(r.theta, -e);
}

// yarn's default attention factor from HF: 0.1 ln(factor) + 1 (1 when factor <= 1), or with mscale and mscale_all_dim
// the ratio of the two.
inline double rope_yarn_mscale(double factor, double mscale = 1.0) {
  return factor <= 1 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

}  // namespace rt
