// AdamW with decoupled weight decay on matrices only, and the warm-up + cosine learning-rate schedule.
#include "trainer/optimizer.h"

#include <cmath>

namespace rt {

AdamW::AdamW(Backend& backend, Parameters& params, const TrainConfig& config)
    : backend_(backend), params_(params), config_(config) {
  m_ = backend.alloc({params.count()});
  v_ = backend.alloc({params.count()});
}

void AdamW::step(float lr, float grad_scale) {
  ++step_;
  for (size_t i = 0; i < params_.infos().size(); ++i) {
    const ParameterInfo& info = params_.infos()[i];
    AdamWStep s;
    s.lr = lr;
    s.beta1 = static_cast<float>(config_.beta1);
    s.beta2 = static_cast<float>(config_.beta2);
    s.eps = static_cast<float>(config_.eps);
    s.weight_decay = info.decay ? static_cast<float>(config_.weight_decay) : 0.f;
    s.grad_scale = grad_scale;
    s.step = step_;
    Tensor p = params_.value(i), m = m_.slice(info.offset, info.shape), v = v_.slice(info.offset, info.shape);
    backend_.adamw_update(p, params_.grad(i), m, v, s);
  }
}

double lr_at(const TrainConfig& c, int64_t step) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  const int64_t decay_steps = c.steps - c.warmup_steps;
  if (decay_steps <= 1) return c.lr;
  const double progress = static_cast<double>(step - c.warmup_steps) / static_cast<double>(decay_steps - 1);
  return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

}  // namespace rt
