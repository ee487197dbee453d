// RoPE frequencies of each Hugging Face rope type (core/rope.h) against transformers' formulas
// (modeling_rope_utils.py, 5.x), ported here as HF writes them: whole frequency vectors, in double.
#include "core/rope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace rt {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<double> ours(const RopeParams& r, int64_t D) {
  std::vector<double> f;
  for (int64_t i = 0; i < D / 2; ++i) f.push_back(rope_inv_freq(r, i, D));
  return f;
}

// inv_freq = 1 / base^(arange(0, dim, 2) / dim)
std::vector<double> hf_default(double base, int64_t dim) {
  std::vector<double> f;
  for (int64_t k = 0; k < dim; k += 2) f.push_back(1.0 / std::pow(base, static_cast<double>(k) / dim));
  return f;
}

std::vector<double> hf_linear(double base, int64_t dim, double factor) {
  std::vector<double> f = hf_default(base, dim);
  for (double& x : f) x /= factor;
  return f;
}

// seq_len = max(seq_len, max_position_embeddings); base *= (factor * seq_len / max_pos - (factor - 1))^(dim/(dim-2))
std::vector<double> hf_dynamic(double base, int64_t dim, double factor, double max_pos, double seq_len) {
  seq_len = std::max(seq_len, max_pos);
  base = base * std::pow(factor * seq_len / max_pos - (factor - 1), static_cast<double>(dim) / (dim - 2));
  return hf_default(base, dim);
}

std::vector<double> hf_yarn(double base, int64_t dim, double factor, double original, double beta_fast,
                            double beta_slow, bool truncate) {
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(original / (rotations * 2 * kPi))) / (2 * std::log(base));
  };
  double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  std::vector<double> f;
  for (int64_t k = 0, j = 0; k < dim; k += 2, ++j) {
    const double pos_freq = std::pow(base, static_cast<double>(k) / dim);
    const double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (factor * pos_freq);
    const double ramp = std::clamp((j - low) / (high - low), 0.0, 1.0);
    const double extrapolation_factor = 1 - ramp;
    f.push_back(interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor);
  }
  return f;
}

std::vector<double> hf_llama3(double base, int64_t dim, double factor, double low_freq_factor, double high_freq_factor,
                              double old_context_len) {
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  std::vector<double> f = hf_default(base, dim);
  for (double& inv_freq : f) {
    const double wavelen = 2 * kPi / inv_freq;
    const double llama = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    const double smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
    const double smoothed = (1 - smooth) * llama / factor + smooth * llama;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    inv_freq = medium ? smoothed : llama;
  }
  return f;
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-14 * std::abs(want[i])) << what << " i=" << i;
}

TEST(RopeFrequencies, DefaultAndLinear) {
  for (int64_t D : {6, 64, 128}) {
    RopeParams r;
    r.theta = 500000;
    expect_near_all(ours(r, D), hf_default(500000, D), "default");
    r.type = RopeType::kLinear, r.factor = 4;
    expect_near_all(ours(r, D), hf_linear(500000, D, 4), "linear");
  }
}

TEST(RopeFrequencies, DynamicScalesOnlyBeyondTheOriginalLength) {
  RopeParams r;
  r.type = RopeType::kDynamic, r.factor = 2, r.original_max_position = 256;
  for (double seq : {64.0, 256.0, 1000.0, 4096.0}) {
    r.seq_len = seq;
    expect_near_all(ours(r, 64), hf_dynamic(10000, 64, 2, 256, seq), "dynamic");
  }
  r.seq_len = 128;  // within the original length: the default frequencies
  expect_near_all(ours(r, 64), hf_default(10000, 64), "dynamic, short");
  r.seq_len = 4096;
  EXPECT_LT(rope_inv_freq(r, 31, 64), hf_default(10000, 64)[31] / 4) << "a longer sequence slows the slow dimensions";
  EXPECT_EQ(rope_inv_freq(r, 0, 64), 1.0) << "pair 0 always turns at one radian per position";
}

TEST(RopeFrequencies, YarnRampsBetweenExtrapolationAndInterpolation) {
  for (bool truncate : {true, false})
    for (int64_t D : {64, 128}) {
      RopeParams r;
      r.type = RopeType::kYarn, r.factor = 4, r.original_max_position = 2048, r.truncate = truncate;
      const std::vector<double> f = ours(r, D), d = hf_default(10000, D);
      expect_near_all(f, hf_yarn(10000, D, 4, 2048, 32, 1, truncate), "yarn");
      EXPECT_EQ(f.front(), d.front()) << "fast dimensions extrapolate";
      EXPECT_NEAR(f.back(), d.back() / 4, 1e-15) << "slow dimensions interpolate";
    }
  EXPECT_NEAR(rope_yarn_mscale(4), 0.1 * std::log(4.0) + 1, 1e-15);
  EXPECT_EQ(rope_yarn_mscale(1), 1.0);
}

TEST(RopeFrequencies, Llama3AsLlama31) {  // Llama 3.1's published rope_scaling
  RopeParams r;
  r.type = RopeType::kLlama3, r.theta = 500000, r.factor = 8, r.low_freq_factor = 1, r.high_freq_factor = 4;
  r.original_max_position = 8192;
  const std::vector<double> f = ours(r, 128), d = hf_default(500000, 128);
  expect_near_all(f, hf_llama3(500000, 128, 8, 1, 4, 8192), "llama3");
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (std::abs(f[i] - d[i]) <= 1e-15 * d[i]) {
      ++kept;
    } else if (std::abs(f[i] - d[i] / 8) <= 1e-15 * d[i]) {
      ++divided;
    } else {
      ++blended;
      EXPECT_TRUE(f[i] < d[i] && f[i] > d[i] / 8)
          << i << ": " << f[i] << " outside (" << d[i] / 8 << ", " << d[i] << ")";
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
}

}  // namespace
}  // namespace rt
