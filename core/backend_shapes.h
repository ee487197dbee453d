// Shape checks shared by the Backend implementations: a tensor as (rows, last dim), GEMM dims, equal sizes.
#pragma once
#include <initializer_list>
#include <string>

#include "core/check.h"
#include "core/tensor.h"

namespace rt::shapes {

inline void same_numel(const Tensor& a, const Tensor& b, const char* what) {
  RT_CHECK(a.numel() == b.numel(), std::string(what) + ": " + a.shape_string() + " vs " + b.shape_string());
}

// Folds leading dims: a tensor is seen as (rows, last dim).
inline int64_t cols(const Tensor& t) { return t.rank() == 0 ? 1 : t.dim(-1); }
inline int64_t rows(const Tensor& t) { return t.numel() / (cols(t) ? cols(t) : 1); }

// Matrices are (dim 0, everything else): a (N,H,D) is the (N, H*D) matrix. c (M,N) = op(a) (M,K) @ op(b) (K,N);
// lda, ldb are the row lengths of a and b as stored.
struct GemmDims {
  int64_t M, N, K, lda, ldb;
};
inline GemmDims gemm_dims(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c) {
  const int64_t ar = a.dim(0), ac = a.numel() / ar, br = b.dim(0), bc = b.numel() / br;
  const int64_t M = ta ? ac : ar, K = ta ? ar : ac;
  const int64_t N = tb ? br : bc, Kb = tb ? bc : br;
  RT_CHECK(K == Kb && c.dim(0) == M && c.numel() == M * N,
           "gemm shapes " + a.shape_string() + (ta ? "^T" : "") + " @ " + b.shape_string() + (tb ? "^T" : "") + " -> " +
               c.shape_string());
  return {M, N, K, ac, bc};
}

// RMSNorm over the last dim: x (N,C) -> (N, C) after checking w (C), rstd (N) and y like x.
struct RowsCols {
  int64_t N, C;
};
inline RowsCols rmsnorm_dims(const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& rstd) {
  const int64_t C = cols(x), N = rows(x);
  RT_CHECK(w.numel() == C && rstd.numel() == N, "rmsnorm shapes " + x.shape_string() + " " + w.shape_string());
  same_numel(x, y, "rmsnorm");
  return {N, C};
}
inline RowsCols rmsnorm_backward_dims(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                                      const Tensor& dx, const Tensor& dw) {
  const int64_t C = cols(x), N = rows(x);
  RT_CHECK(w.numel() == C && dw.numel() == C && rstd.numel() == N, "rmsnorm backward shapes");
  same_numel(x, dy, "rmsnorm backward");
  same_numel(x, dx, "rmsnorm backward");
  return {N, C};
}

// SwiGLU: every tensor has gate's size.
inline void swiglu_check(std::initializer_list<const Tensor*> others, const Tensor& gate, const char* what) {
  for (const Tensor* t : others) same_numel(gate, *t, what);
}

// Cross-entropy over the last dim: logits (N,V) -> (N, V) after checking the (N) tensors.
inline RowsCols cross_entropy_dims(const Tensor& logits, std::initializer_list<const Tensor*> per_row) {
  const int64_t N = rows(logits), V = cols(logits);
  for (const Tensor* t : per_row) RT_CHECK(t->numel() == N, "cross-entropy shapes " + logits.shape_string());
  return {N, V};
}

// copy_columns: src (rows, ls) and dst (rows, ld) f32, columns [src_col, src_col + width) and [dst_col, ...) inside.
struct ColumnsDims {
  int64_t ls, ld;
};
inline ColumnsDims copy_columns_dims(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col,
                                     int64_t rows, int64_t width) {
  RT_CHECK(src.dtype() == DType::f32 && dst.dtype() == DType::f32 && rows > 0 && width >= 0 &&
               src.numel() % rows == 0 && dst.numel() % rows == 0,
           "copy_columns of " + src.shape_string() + " to " + dst.shape_string() + " in " + std::to_string(rows) +
               " rows");
  const ColumnsDims d{src.numel() / rows, dst.numel() / rows};
  RT_CHECK(src_col >= 0 && src_col + width <= d.ls && dst_col >= 0 && dst_col + width <= d.ld,
           "copy_columns: columns out of range");
  return d;
}

inline void rope_check(const Tensor& x, const Tensor& pos) {
  RT_CHECK(x.rank() == 3 && pos.numel() == x.dim(0) && x.dim(2) % 2 == 0, "rope shapes " + x.shape_string());
}

}  // namespace rt::shapes
