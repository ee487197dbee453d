// CPU bf16 GEMM: inputs rounded to bf16 (nearest even), then oneDNN's bf16 matmul (AMX or AVX512-BF16) with fp32
// accumulation into the fp32 C; where oneDNN has no bf16 matmul for this CPU, the same products in fp32 (sgemm).
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/bf16.h"
#include "core/check.h"
#include "core/cpu/cpu_features.h"
#include "core/cpu/kernels.h"
#include "core/memory_count.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

namespace rt::cpu {
namespace {

// rows x cols of x (leading dimension ld) -> packed bf16 bits, rounded to nearest even: vcvtneps2bf16 where the CPU
// has it (16 at a time; it was a tenth of a bf16 training step as a scalar loop; it flushes fp32 denormals to zero),
// else bf16_bits.
void to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, uint16_t* out) {
#if defined(__AVX512BF16__)
  if (cpu_features().avx512_bf16) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * ld;
      uint16_t* o = out + r * cols;
      for (int64_t c = 0; c < cols; c += 16) {
        const __mmask16 m = c + 16 <= cols ? 0xffff : static_cast<__mmask16>((1u << (cols - c)) - 1);
        _mm256_mask_storeu_epi16(o + c, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, xr + c)));
      }
    }
    return;
  }
#endif
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = bf16_bits(x[r * ld + c]);
}

// The same values widened back to fp32 (exact), for the fallback.
void round_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = bf16_round(x[r * ld + c]);
}

// One oneDNN matmul per GEMM shape, created on first use (creation costs milliseconds; the model has a dozen shapes).
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, float, float>;  // M N K ta tb ldc alpha beta

struct Matmuls {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, dnnl::matmul> cache;
  std::string implementation;  // of the first matmul made, e.g. "brg:avx512_core_amx"
  bool unsupported = false;    // oneDNN has no bf16 matmul on this CPU: the fallback runs
  std::mutex mutex;
};
Matmuls& matmuls() {
  static Matmuls m;
  return m;
}

// op(A) (M,K) with A packed as stored: (M,K), or (K,M) when ta; op(B) (K,N): (K,N), or (N,K) when tb.
dnnl::matmul* matmul_for(Matmuls& m, int64_t M, int64_t N, int64_t K, bool ta, bool tb, int64_t ldc, float alpha,
                         float beta) {
  const Key key{M, N, K, ta, tb, ldc, alpha, beta};
  auto it = m.cache.find(key);
  if (it != m.cache.end()) return &it->second;
  using dt = dnnl::memory::data_type;
  const dnnl::memory::desc a_md({M, K}, dt::bf16, ta ? dnnl::memory::dims{1, M} : dnnl::memory::dims{K, 1});
  const dnnl::memory::desc b_md({K, N}, dt::bf16, tb ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1});
  const dnnl::memory::desc c_md({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  try {
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, m.engine);
    if (m.implementation.empty()) m.implementation = pd.impl_info_str();
    return &m.cache.emplace(key, dnnl::matmul(pd)).first->second;
  } catch (const dnnl::error& e) {
    RT_CHECK(e.status == dnnl_unimplemented, std::string("oneDNN bf16 matmul: ") + e.what());
    m.unsupported = true;
    return nullptr;
  }
}

thread_local std::vector<uint16_t> a_bits, b_bits;
thread_local std::vector<float> a_rounded, b_rounded;

// Grows a staging buffer, recording what it takes in memory_count (they stay allocated: the largest GEMM's inputs).
template <class T>
T* staging(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.capacity()) < n) {
    memory_count_add(-static_cast<int64_t>(v.capacity() * sizeof(T)));
    std::vector<T>().swap(v);
    v.reserve(static_cast<size_t>(n));  // exactly n (resize alone may double)
    memory_count_add(static_cast<int64_t>(v.capacity() * sizeof(T)));
  }
  v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K, b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  Matmuls& m = matmuls();
  dnnl::matmul* mm = nullptr;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    if (!m.unsupported && K > 0) mm = matmul_for(m, M, N, K, trans_a, trans_b, ldc, alpha, beta);
  }
  if (!mm) {  // the same rounded inputs, multiplied and summed in fp32 (a bf16 x bf16 product is exact in fp32)
    round_bf16(A, a_rows, a_cols, lda, staging(a_rounded, a_rows * a_cols));
    round_bf16(B, b_rows, b_cols, ldb, staging(b_rounded, b_rows * b_cols));
    gemm(trans_a, trans_b, M, N, K, alpha, a_rounded.data(), a_cols, b_rounded.data(), b_cols, beta, C, ldc);
    return;
  }
  to_bf16(A, a_rows, a_cols, lda, staging(a_bits, a_rows * a_cols));
  to_bf16(B, b_rows, b_cols, ldb, staging(b_bits, b_rows * b_cols));
  using dt = dnnl::memory::data_type;
  dnnl::memory a_mem({{M, K}, dt::bf16, trans_a ? dnnl::memory::dims{1, M} : dnnl::memory::dims{K, 1}}, m.engine,
                     a_bits.data());
  dnnl::memory b_mem({{K, N}, dt::bf16, trans_b ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1}}, m.engine,
                     b_bits.data());
  dnnl::memory c_mem({{M, N}, dt::f32, dnnl::memory::dims{ldc, 1}}, m.engine, C);
  mm->execute(m.stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
  m.stream.wait();
}

std::string gemm_bf16_implementation() {
  Matmuls& m = matmuls();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (m.implementation.empty() && !m.unsupported) matmul_for(m, 64, 64, 64, false, true, 64, 1.f, 0.f);
  return m.unsupported ? "" : m.implementation;
}

}  // namespace rt::cpu
