#include "lorahub/train/train_step.h"

#include <ATen/autocast_mode.h>

#include <algorithm>

#include "lorahub/model/batch.h"

namespace lorahub::train {

CpuAutocastBf16::CpuAutocastBf16(bool enabled) : active_(enabled) {
  if (!active_) return;
  previous_enabled_ = at::autocast::is_cpu_enabled();
  previous_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

CpuAutocastBf16::~CpuAutocastBf16() {
  if (!active_) return;
  // The cache holds bf16 copies of the weights; they are stale after the next optimizer step.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(previous_enabled_);
  at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(previous_dtype_));
}

double seq2seq_train_step(model::T5ModelImpl& model, const std::vector<std::vector<std::int64_t>>& inputs,
                          const std::vector<std::vector<std::int64_t>>& labels, torch::optim::Optimizer& optimizer,
                          const std::vector<torch::Tensor>& params, double max_grad_norm, bool autocast_bf16) {
  const auto& cfg = model.config();
  const auto device = model.runtime().device;
  torch::Tensor mask;
  auto ids = model::pad_sequences(inputs, cfg.pad_token_id, &mask).to(device);
  auto y = model::pad_sequences(labels, -100).to(device);
  auto dec = model::shift_right(y, cfg.decoder_start_token_id, cfg.pad_token_id);
  optimizer.zero_grad();
  torch::Tensor loss;
  {
    CpuAutocastBf16 autocast(autocast_bf16);
    auto out = model.forward(ids, mask.to(device), dec);
    loss = model::seq2seq_loss(out.logits, y).loss;
  }
  loss.backward();
  if (max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, max_grad_norm);
  optimizer.step();
  return loss.item<double>();
}

double linear_schedule(std::int64_t step, std::int64_t total, std::int64_t warmup) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<std::int64_t>(1, total - warmup)));
}

}  // namespace lorahub::train
