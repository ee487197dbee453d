// PlanLayout from a config, and its one-line description.
#include "planner/layout.h"

#include <cstdio>

namespace rt {

int64_t plan_padded_length(int64_t seq_len, int64_t cp, bool zigzag, int64_t ulysses) {
  const int64_t pieces = (cp == 1 ? 1 : zigzag ? 2 * cp : cp) * ulysses;
  return (seq_len + pieces - 1) / pieces * pieces;
}

PlanLayout plan_layout_of(const Config& c, int64_t threads) {
  PlanLayout l;
  l.model = c.model;
  l.cp = c.parallel.cp;
  l.dp = c.parallel.dp;
  l.ulysses = c.parallel.ulysses;
  l.zigzag = c.parallel.sharding == "zigzag";
  l.seq_len = plan_padded_length(c.train.seq_len, l.cp, l.zigzag, l.ulysses);
  l.batch_size = c.train.batch_size;
  l.micro_batch = c.train.micro_batch_size;
  l.recompute = c.train.recompute == "full";
  l.bf16 = c.train.precision == "bf16";
  l.document_mask = c.data.document_mask;
  l.threads = threads;
  l.cuda = c.train.device == "cuda";
  return l;
}

std::string plan_layout_describe(const PlanLayout& l) {
  char text[200];
  std::snprintf(text, sizeof text, "cp %ld x dp %ld x ulysses %ld, seq %ld, micro %ld, recompute %s, %s",
                static_cast<long>(l.cp), static_cast<long>(l.dp), static_cast<long>(l.ulysses),
                static_cast<long>(l.seq_len), static_cast<long>(l.micro_batch), l.recompute ? "full" : "none",
                l.bf16 ? "bf16" : "fp32");
  return text;
}

}  // namespace rt
