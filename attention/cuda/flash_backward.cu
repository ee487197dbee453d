// CUDA flash attention backward (FlashAttention-2): per key tile, dK/dV in registers over the query tiles; dQ atomics.
#include <string>

#include "attention/cuda/attention_cuda.h"
#include "attention/cuda/flash_cuda.h"
#include "attention/cuda/flash_mma.cuh"
#include "core/check.h"
#include "core/cuda/launch.cuh"

namespace rt::flash_cuda {
namespace {

constexpr int kWarps = 8, kThreads = 32 * kWarps;
constexpr int kBc = 16 * kWarps;  // keys per CTA: 16 per warp
constexpr int kBr = 64;           // query rows per step
constexpr float kLog2e = 1.4426950408889634f;

struct BackwardParams {
  const bf16 *q, *k, *v, *dout;  // (Hq,Tq,Dp), (Hk,Tk,Dp), (Hk,Tk,Dp), (Hq,Tq,Dp)
  const float *lse, *delta;      // (Hq,Tq)
  float *dq, *dk, *dv;           // (Tq,Hq,D), (Tk,Hk,D), (Tk,Hk,D): accumulated into
  int64_t Tq, Tk, q_offset, k_offset;
  int Hq, Hk, D;
  bool causal;
  float scale, scale_log2;
  const int32_t* q_doc;  // (Tq) document starts (AttentionProblem::q_doc_start), or nullptr
};

template <int DP>
constexpr int backward_smem_bytes() {
  return (2 * kBc + 4 * kBr) * (DP + 8) * static_cast<int>(sizeof(bf16))  // K, V; Q and dO double-buffered
         + kBc * (kBr + 8) * static_cast<int>(sizeof(bf16))              // dS^T of one step
         + 4 * kBr * static_cast<int>(sizeof(float));                    // lse, delta double-buffered
}

// grid (Hk, key tiles), block 256. Warp w owns keys [16w, 16w+16) of the tile: it computes S^T = K Q^T and
// dP^T = V dO^T (16 keys x 64 queries), keeps P^T and dS^T in registers for dV += P^T dO and dK += dS^T Q, and
// stages dS^T in shared memory for dQ = dS K, which the 8 warps split as 4 query blocks x 2 halves of the head dim.
// Lane (g = lane/4, t = lane%4) holds keys 16w+g ("lo") and 16w+g+8 ("hi") of the S^T-shaped fragments.
template <int DP>
__global__ void __launch_bounds__(kThreads, 1) backward_kernel(BackwardParams p) {
  constexpr int kLd = DP + 8, kLdS = kBr + 8;  // padded smem rows (bf16)
  constexpr int kKs = DP / 16;                 // k-steps over the head dim
  constexpr int kSt = kBr / 8;                 // 8-query C tiles of S^T
  constexpr int kOt = DP / 8;                  // 8-column C tiles of dK, dV
  constexpr int kQt = kOt / 2;                 // 8-column C tiles of a warp's half of dQ
  RT_DYNAMIC_SHARED(unsigned char, smem_bytes);
  bf16* sk = reinterpret_cast<bf16*>(smem_bytes);  // (kBc, kLd)
  bf16* sv = sk + kBc * kLd;                       // (kBc, kLd)
  bf16* sq = sv + kBc * kLd;                       // 2 x (kBr, kLd)
  bf16* sdo = sq + 2 * kBr * kLd;                  // 2 x (kBr, kLd)
  bf16* sds = sdo + 2 * kBr * kLd;                 // (kBc, kLdS): dS^T, keys x queries
  float* slse = reinterpret_cast<float*>(sds + kBc * kLdS);  // 2 x kBr, lse * log2(e), +inf = no probability
  float* sdelta = slse + 2 * kBr;                            // 2 x kBr

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int kvh = blockIdx.x, group = p.Hq / p.Hk;
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * kBc;
  // Queries before i_first see none of these keys (causal): their tiles are skipped.
  const int64_t i_first = p.causal ? max(int64_t{0}, p.k_offset + j0 - p.q_offset) : 0;
  if (i_first >= p.Tq) return;
  const int64_t it0 = i_first / kBr, per_head = (p.Tq + kBr - 1) / kBr - it0, steps = group * per_head;
  const bf16* kh = p.k + kvh * p.Tk * DP;
  const bf16* vh = p.v + kvh * p.Tk * DP;

  // Step s: query head kvh*group + s / per_head, query tile it0 + s % per_head.
  auto head_of = [&](int64_t s) { return kvh * group + static_cast<int>(s / per_head); };
  auto row_of = [&](int64_t s) { return (it0 + s % per_head) * kBr; };
  auto stage_load = [&](int64_t s, int stage) {
    const int h = head_of(s);
    const int64_t i0 = row_of(s);
    load_rows_async<kBr, DP, kThreads>(sq + stage * kBr * kLd, p.q + h * p.Tq * DP, i0, p.Tq);
    load_rows_async<kBr, DP, kThreads>(sdo + stage * kBr * kLd, p.dout + h * p.Tq * DP, i0, p.Tq);
    for (int r = threadIdx.x; r < kBr; r += kThreads) {
      const int64_t i = i0 + r;
      const float L = i < p.Tq ? p.lse[h * p.Tq + i] : INFINITY;
      slse[stage * kBr + r] = L == -INFINITY ? INFINITY : L * kLog2e;  // rows that see no key: P = 0
      sdelta[stage * kBr + r] = i < p.Tq ? p.delta[h * p.Tq + i] : 0.f;
    }
  };

  load_rows_async<kBc, DP, kThreads>(sk, kh, j0, p.Tk);
  load_rows_async<kBc, DP, kThreads>(sv, vh, j0, p.Tk);
  stage_load(0, 0);
  cp_async_commit();

  float dk_acc[kOt][4] = {}, dv_acc[kOt][4] = {};  // this warp's 16 keys x DP
  const int key_lo = warp * 16 + g;                // local key of the lo entries; hi = +8

  for (int64_t s = 0; s < steps; ++s) {
    const int stage = static_cast<int>(s & 1);
    if (s + 1 < steps) {
      stage_load(s + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int h = head_of(s);
    const int64_t i0 = row_of(s);
    const bf16* sqt = sq + stage * kBr * kLd;
    const bf16* sdot = sdo + stage * kBr * kLd;
    const float* sl = slse + stage * kBr;
    const float* sd = sdelta + stage * kBr;

    // S^T = K Q^T and dP^T = V dO^T (16 keys x kBr queries). A = this warp's K / V rows; B = Q / dO as stored.
    float st[kSt][4] = {}, dpt[kSt][4] = {};
#pragma unroll
    for (int kk = 0; kk < kKs; ++kk) {
      uint32_t ka[4], va[4];
      ldmatrix_x4(ka, sk + (warp * 16 + lane % 16) * kLd + kk * 16 + (lane / 16) * 8);
      ldmatrix_x4(va, sv + (warp * 16 + lane % 16) * kLd + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int jp = 0; jp < kSt / 2; ++jp) {
        const int offset = (jp * 16 + (lane / 16) * 8 + lane % 8) * kLd + kk * 16 + ((lane / 8) % 2) * 8;
        uint32_t b[4];
        ldmatrix_x4(b, sqt + offset);
        mma_bf16_x2(st[2 * jp], st[2 * jp + 1], ka, b);
        ldmatrix_x4(b, sdot + offset);
        mma_bf16_x2(dpt[2 * jp], dpt[2 * jp + 1], va, b);
      }
    }

    // P^T = exp2(S^T * scale log2 e - lse log2 e), 0 where masked (past Tk, after the query, or before the query's
    // document); dS^T = P^T * (dP^T - delta).
    const bool masked =
        j0 + kBc > p.Tk || (p.causal && p.k_offset + j0 + kBc - 1 > p.q_offset + i0) || p.q_doc != nullptr;
#pragma unroll
    for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key_lo + (e >= 2 ? 8 : 0), query = nt * 8 + 2 * t + (e & 1);
        float pv = exp2_fast(st[nt][e] * p.scale_log2 - sl[query]);
        if (masked && (j0 + key >= p.Tk || (p.causal && p.k_offset + j0 + key > p.q_offset + i0 + query) ||
                       (p.q_doc && i0 + query < p.Tq && p.k_offset + j0 + key < p.q_doc[i0 + query])))
          pv = 0.f;
        st[nt][e] = pv;
        dpt[nt][e] = pv * (dpt[nt][e] - sd[query]);
      }

    // dV += P^T dO and dK += dS^T Q: A from registers (keys x queries), B = dO / Q transposed by ldmatrix.trans.
#pragma unroll
    for (int kq = 0; kq < kBr / 16; ++kq) {
      uint32_t pa[4], dsa[4];
      c_to_a(st[2 * kq], st[2 * kq + 1], pa);
      c_to_a(dpt[2 * kq], dpt[2 * kq + 1], dsa);
#pragma unroll
      for (int dp = 0; dp < kOt / 2; ++dp) {
        const int offset = (kq * 16 + ((lane / 8) % 2) * 8 + lane % 8) * kLd + dp * 16 + (lane / 16) * 8;
        uint32_t b[4];
        ldmatrix_x4_trans(b, sdot + offset);
        mma_bf16_x2(dv_acc[2 * dp], dv_acc[2 * dp + 1], pa, b);
        ldmatrix_x4_trans(b, sqt + offset);
        mma_bf16_x2(dk_acc[2 * dp], dk_acc[2 * dp + 1], dsa, b);
      }
    }

    // dS^T (bf16) to shared memory, then dQ (kBr x DP) += dS K: warp -> query block warp % 4, columns half warp / 4.
#pragma unroll
    for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        *reinterpret_cast<uint32_t*>(sds + (key_lo + 8 * r) * kLdS + nt * 8 + 2 * t) =
            pack_bf16(dpt[nt][2 * r], dpt[nt][2 * r + 1]);
    __syncthreads();
    {
      const int mq = warp % 4, col0 = (warp / 4) * (DP / 2);
      float dq_acc[kQt][4] = {};
#pragma unroll
      for (int kk = 0; kk < kBc / 16; ++kk) {
        // A = dS (queries x keys) read transposed from dS^T: matrices (queries 0-7 | 8-15) x (keys 0-7 | 8-15).
        uint32_t a[4];
        ldmatrix_x4_trans(a, sds + (kk * 16 + (lane / 16) * 8 + lane % 8) * kLdS + mq * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
        for (int dp = 0; dp < kQt / 2; ++dp) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, sk + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * kLd + col0 + dp * 16 + (lane / 16) * 8);
          mma_bf16_x2(dq_acc[2 * dp], dq_acc[2 * dp + 1], a, b);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int64_t row = i0 + mq * 16 + g + 8 * r;
        if (row >= p.Tq) continue;
        float* dqrow = p.dq + (row * p.Hq + h) * p.D;
#pragma unroll
        for (int nt = 0; nt < kQt; ++nt) {
          const int d = col0 + nt * 8 + 2 * t;
          if (d < p.D) {
            atomicAdd(dqrow + d, dq_acc[nt][2 * r] * p.scale);
            atomicAdd(dqrow + d + 1, dq_acc[nt][2 * r + 1] * p.scale);
          }
        }
      }
    }
    __syncthreads();  // the next step's loads overwrite this stage and dS^T
  }

  // dK (scaled), dV += this CTA's sums; the CTA owns these rows of its key/value head.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t key = j0 + key_lo + 8 * r;
    if (key >= p.Tk) continue;
    float* dkrow = p.dk + (key * p.Hk + kvh) * p.D;
    float* dvrow = p.dv + (key * p.Hk + kvh) * p.D;
#pragma unroll
    for (int ot = 0; ot < kOt; ++ot) {
      const int d = ot * 8 + 2 * t;
      if (d < p.D) {
        dkrow[d] += dk_acc[ot][2 * r] * p.scale;
        dkrow[d + 1] += dk_acc[ot][2 * r + 1] * p.scale;
        dvrow[d] += dv_acc[ot][2 * r];
        dvrow[d + 1] += dv_acc[ot][2 * r + 1];
      }
    }
  }
}

template <int DP>
void backward_run(const BackwardParams& bp, cudaStream_t stream) {
  constexpr int bytes = backward_smem_bytes<DP>();
  static const bool configured = [] {
    RT_CHECK_CUDA(cudaFuncSetAttribute(backward_kernel<DP>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return true;
  }();
  (void)configured;
  const dim3 grid(static_cast<unsigned>(bp.Hk), static_cast<unsigned>((bp.Tk + kBc - 1) / kBc));
  RT_LAUNCH(backward_kernel<DP>, grid, kThreads, bytes, stream)(bp);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace

void backward_launch(const AttentionProblem& p, int64_t Dp, const bf16* q, const bf16* k, const bf16* v,
                     const bf16* dout, const float* lse, const float* delta, float* dq, float* dk, float* dv,
                     cudaStream_t stream) {
  RT_CHECK((p.Tk + kBc - 1) / kBc <= 65535, "CUDA flash backward: Tk = " + std::to_string(p.Tk) + " is too long");
  const BackwardParams bp{q,    k,    v,    dout, lse,        delta,      dq,
                          dk,   dv,   p.Tq, p.Tk, p.q_offset, p.k_offset, static_cast<int>(p.Hq),
                          static_cast<int>(p.Hk), static_cast<int>(p.D), p.causal, p.scale, p.scale * kLog2e,
                          p.q_doc_start};
  switch (Dp) {
    case 32: return backward_run<32>(bp, stream);
    case 64: return backward_run<64>(bp, stream);
    case 128: return backward_run<128>(bp, stream);
    default: RT_CHECK(false, "CUDA flash backward: no kernel for padded head dim " + std::to_string(Dp));
  }
}

}  // namespace rt::flash_cuda

namespace rt {

void attention_cuda_flash_backward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                   const float* dout, const float* lse, const float* delta, float* dq, float* dk,
                                   float* dv, cudaStream_t stream) {
  flash_cuda::check_problem(p);
  if (p.Tq == 0 || p.Tk == 0) return;
  flash_cuda::Bf16Inputs in(p, 2, 2, stream);
  flash_cuda::backward_launch(p, in.dp(), in.q_like_from(0, q), in.kv_like_from(0, k), in.kv_like_from(1, v),
                              in.q_like_from(1, dout), lse, delta, dq, dk, dv, stream);
}

}  // namespace rt
