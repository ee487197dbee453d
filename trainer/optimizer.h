// AdamW over the model's flat parameters, with the learning-rate schedule (linear warm-up, cosine decay).
#pragma once
#include "core/backend.h"
#include "trainer/config.h"
#include "trainer/parameters.h"

namespace rt {

class AdamW {
 public:
  AdamW(Backend& backend, Parameters& params, const TrainConfig& config);
  // One update with learning rate lr; the gradients are multiplied by grad_scale (clipping) first.
  void step(float lr, float grad_scale);
  int64_t steps_done() const { return step_; }
  void set_steps_done(int64_t steps) { step_ = steps; }  // when resuming from a checkpoint
  Tensor& first_moment() { return m_; }   // (count)
  Tensor& second_moment() { return v_; }  // (count)

 private:
  Backend& backend_;
  Parameters& params_;
  TrainConfig config_;
  Tensor m_, v_;
  int64_t step_ = 0;
};

// Learning rate at 0-based step: linear warm-up to lr over warmup_steps, then cosine down to min_lr at the end.
double lr_at(const TrainConfig& config, int64_t step);

}  // namespace rt
