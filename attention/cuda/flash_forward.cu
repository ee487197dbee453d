// CUDA flash attention forward (FlashAttention-2): bf16 tensor cores, online softmax in registers, lse out.
#include <string>

#include "attention/cuda/attention_cuda.h"
#include "attention/cuda/flash_cuda.h"
#include "attention/cuda/flash_mma.cuh"
#include "core/check.h"
#include "core/cuda/launch.cuh"

namespace rt::flash_cuda {
namespace {

constexpr int kWarps = 8, kThreads = 32 * kWarps;
constexpr int kBr = 16 * kWarps;  // query rows per CTA: 16 per warp
constexpr int kBc = 64;           // keys per K/V tile
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

struct ForwardParams {
  const bf16 *q, *k, *v;  // (Hq,Tq,Dp), (Hk,Tk,Dp), (Hk,Tk,Dp)
  float *o, *lse;         // (Tq,Hq,D), (Hq,Tq)
  int64_t Tq, Tk, q_offset, k_offset;
  int Hq, Hk, D;
  bool causal;
  float scale_log2;       // softmax scale * log2(e): the kernel works in base 2
  const int32_t* q_doc;   // (Tq) document starts (AttentionProblem::q_doc_start), or nullptr
};

template <int DP>
constexpr int forward_smem_bytes() {
  return (kBr + 4 * kBc) * (DP + 8) * static_cast<int>(sizeof(bf16));  // Q, then K and V double-buffered
}

// grid (Hq, query tiles), block 256. Warp w owns query rows [16w, 16w+16) of the tile; lane (g = lane/4, t = lane%4)
// holds rows 16w+g ("lo") and 16w+g+8 ("hi") of the C fragments below.
template <int DP>
__global__ void __launch_bounds__(kThreads) forward_kernel(ForwardParams p) {
  constexpr int kLd = DP + 8;     // smem row stride in bf16: 16 bytes of padding keep ldmatrix conflict-free
  constexpr int kKs = DP / 16;    // k-steps over the head dim
  constexpr int kSt = kBc / 8;    // 8-key C tiles of S
  constexpr int kOt = DP / 8;     // 8-column C tiles of O
  RT_DYNAMIC_SHARED(unsigned char, smem_bytes);
  bf16* sq = reinterpret_cast<bf16*>(smem_bytes);  // (kBr, kLd)
  bf16* sk = sq + kBr * kLd;                       // 2 x (kBc, kLd)
  bf16* sv = sk + 2 * kBc * kLd;                   // 2 x (kBc, kLd)

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int h = blockIdx.x, kvh = h / (p.Hq / p.Hk);
  const int64_t n_qtiles = (p.Tq + kBr - 1) / kBr;
  const int64_t i0 = (n_qtiles - 1 - blockIdx.y) * kBr;  // the late (most expensive causal) tiles start first
  const int64_t rows = min(static_cast<int64_t>(kBr), p.Tq - i0);
  const int64_t ldo = static_cast<int64_t>(p.Hq) * p.D;
  // Keys seen by the tile's last row; tiles past them are skipped.
  const int64_t nk = p.causal ? max(int64_t{0}, min(p.Tk, p.q_offset + i0 + rows - p.k_offset)) : p.Tk;
  if (nk == 0) {
    for (int64_t e = threadIdx.x; e < rows * p.D; e += kThreads) p.o[(i0 + e / p.D) * ldo + h * p.D + e % p.D] = 0.f;
    for (int64_t r = threadIdx.x; r < rows; r += kThreads) p.lse[h * p.Tq + i0 + r] = -INFINITY;
    return;
  }
  const int64_t n_tiles = (nk + kBc - 1) / kBc;
  // Document masking: key tiles before the first row's document (the earliest: starts are non-decreasing) are skipped.
  const int64_t j_first = p.q_doc ? min(nk, max(int64_t{0}, p.q_doc[i0] - p.k_offset)) / kBc : 0;
  const bf16* qh = p.q + h * p.Tq * DP;
  const bf16* kh = p.k + kvh * p.Tk * DP;
  const bf16* vh = p.v + kvh * p.Tk * DP;

  load_rows_async<kBr, DP, kThreads>(sq, qh, i0, p.Tq);
  load_rows_async<kBc, DP, kThreads>(sk, kh, j_first * kBc, p.Tk);
  load_rows_async<kBc, DP, kThreads>(sv, vh, j_first * kBc, p.Tk);
  cp_async_commit();

  uint32_t qf[kKs][4];            // this warp's 16 query rows as A fragments, loaded once
  float acc[kOt][4] = {};         // O (16 x DP), unnormalised
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max (base 2) and partial sums: lo, hi rows
  const int64_t q_lo = p.q_offset + i0 + warp * 16 + g;     // global position of the lo row
  // First visible global key of the lo and hi rows (document masking; 0 without it).
  const int64_t row_lo = i0 + warp * 16 + g;
  const int64_t doc_lo = p.q_doc && row_lo < p.Tq ? p.q_doc[row_lo] : 0;
  const int64_t doc_hi = p.q_doc && row_lo + 8 < p.Tq ? p.q_doc[row_lo + 8] : 0;

  for (int64_t j = j_first; j < n_tiles; ++j) {
    const int stage = static_cast<int>((j - j_first) & 1);
    if (j + 1 < n_tiles) {  // prefetch the next K/V tile into the other stage
      load_rows_async<kBc, DP, kThreads>(sk + (stage ^ 1) * kBc * kLd, kh, (j + 1) * kBc, p.Tk);
      load_rows_async<kBc, DP, kThreads>(sv + (stage ^ 1) * kBc * kLd, vh, (j + 1) * kBc, p.Tk);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == j_first) {
#pragma unroll
      for (int kk = 0; kk < kKs; ++kk) ldmatrix_x4(qf[kk], sq + (warp * 16 + lane % 16) * kLd + kk * 16 + (lane / 16) * 8);
    }
    const bf16* skt = sk + stage * kBc * kLd;
    const bf16* svt = sv + stage * kBc * kLd;

    // S (16 x kBc) = Q K^T. B = K as stored (key rows, d contiguous): matrices (keys 0-7 | 8-15) x (d 0-7 | 8-15).
    float s[kSt][4] = {};
#pragma unroll
    for (int kk = 0; kk < kKs; ++kk)
#pragma unroll
      for (int jp = 0; jp < kSt / 2; ++jp) {
        uint32_t b[4];
        ldmatrix_x4(b, skt + (jp * 16 + (lane / 16) * 8 + lane % 8) * kLd + kk * 16 + ((lane / 8) % 2) * 8);
        mma_bf16_x2(s[2 * jp], s[2 * jp + 1], qf[kk], b);
      }

    // Base-2 scores; -inf where the key is past Tk, (causal) after the query, or before the query's document.
    const int64_t j0 = j * kBc;
    const bool masked =
        j0 + kBc > p.Tk || (p.causal && p.k_offset + j0 + kBc - 1 > p.q_offset + i0) || p.q_doc != nullptr;
#pragma unroll
    for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * p.scale_log2;
        if (masked) {
          const int64_t key = j0 + nt * 8 + 2 * t + (e & 1);
          if (key >= p.Tk || (p.causal && p.k_offset + key > q_lo + (e >= 2 ? 8 : 0)) ||
              p.k_offset + key < (e >= 2 ? doc_hi : doc_lo))
            x = -INFINITY;
        }
        s[nt][e] = x;
      }

    // Online softmax, row by row (r = 0: lo, entries 0-1; r = 1: hi, entries 2-3); a row's 4 lanes form a quad.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kSt; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      const float m_new = fmaxf(m[r], quad_max(mx));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // a row that has seen no key yet stays at 0
      const float alpha = exp2_fast(m[r] - m_use);
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < kSt; ++nt) {
        s[nt][2 * r] = exp2_fast(s[nt][2 * r] - m_use);
        s[nt][2 * r + 1] = exp2_fast(s[nt][2 * r + 1] - m_use);
        sum += s[nt][2 * r] + s[nt][2 * r + 1];
      }
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
#pragma unroll
      for (int ot = 0; ot < kOt; ++ot) {
        acc[ot][2 * r] *= alpha;
        acc[ot][2 * r + 1] *= alpha;
      }
    }

    // O += P V. A = P from registers; B = V transposed by ldmatrix.trans: matrices (keys 0-7 | 8-15) x (d 0-7 | 8-15).
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t a[4];
      c_to_a(s[2 * kk], s[2 * kk + 1], a);
#pragma unroll
      for (int dp = 0; dp < kOt / 2; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, svt + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * kLd + dp * 16 + (lane / 16) * 8);
        mma_bf16_x2(acc[2 * dp], acc[2 * dp + 1], a, b);
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this stage
  }

  // o = acc / l, lse = ln 2 * (m + log2 l); rows that saw no key: o = 0, lse = -inf.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float lsum = quad_sum(l[r]);
    const int64_t row = i0 + warp * 16 + g + 8 * r;
    if (row >= p.Tq) continue;
    const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
    float* orow = p.o + row * ldo + h * p.D;
#pragma unroll
    for (int ot = 0; ot < kOt; ++ot) {
      const int d = ot * 8 + 2 * t;
      if (d < p.D) {  // D is even, so d + 1 < D too
        orow[d] = acc[ot][2 * r] * inv;
        orow[d + 1] = acc[ot][2 * r + 1] * inv;
      }
    }
    if (t == 0) p.lse[h * p.Tq + row] = lsum > 0.f ? (m[r] + log2f(lsum)) * kLn2 : -INFINITY;
  }
}

template <int DP>
void forward_run(const ForwardParams& fp, int64_t Tq, cudaStream_t stream) {
  constexpr int bytes = forward_smem_bytes<DP>();
  static const bool configured = [] {
    RT_CHECK_CUDA(cudaFuncSetAttribute(forward_kernel<DP>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return true;
  }();
  (void)configured;
  const dim3 grid(static_cast<unsigned>(fp.Hq), static_cast<unsigned>((Tq + kBr - 1) / kBr));
  RT_LAUNCH(forward_kernel<DP>, grid, kThreads, bytes, stream)(fp);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace

void forward_launch(const AttentionProblem& p, int64_t Dp, const bf16* q, const bf16* k, const bf16* v, float* o,
                    float* lse, cudaStream_t stream) {
  RT_CHECK((p.Tq + kBr - 1) / kBr <= 65535, "CUDA flash forward: Tq = " + std::to_string(p.Tq) + " is too long");
  const ForwardParams fp{q,          k,          v,
                         o,          lse,        p.Tq,
                         p.Tk,       p.q_offset, p.k_offset,
                         static_cast<int>(p.Hq), static_cast<int>(p.Hk), static_cast<int>(p.D),
                         p.causal,   p.scale * kLog2e,
                         p.q_doc_start};
  switch (Dp) {
    case 32: return forward_run<32>(fp, p.Tq, stream);
    case 64: return forward_run<64>(fp, p.Tq, stream);
    case 128: return forward_run<128>(fp, p.Tq, stream);
    default: RT_CHECK(false, "CUDA flash forward: no kernel for padded head dim " + std::to_string(Dp));
  }
}

}  // namespace rt::flash_cuda

namespace rt {

void attention_cuda_flash_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o,
                                  float* lse, cudaStream_t stream) {
  flash_cuda::check_problem(p);
  if (p.Tq == 0) return;
  flash_cuda::Bf16Inputs in(p, 1, 2, stream);
  flash_cuda::forward_launch(p, in.dp(), in.q_like_from(0, q), in.kv_like_from(0, k), in.kv_like_from(1, v), o, lse,
                             stream);
}

}  // namespace rt
