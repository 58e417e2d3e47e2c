#include "lorahub/demo/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "lorahub/core/error.h"
#include "lorahub/core/random.h"
#include "lorahub/model/batch.h"
#include "lorahub/train/train_step.h"

namespace lorahub::demo {
using train::linear_schedule;
using train::seq2seq_train_step;
using core::fail;

PretrainStats pretrain(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                       const std::vector<data::Example>& examples, const PretrainOptions& options,
                       const std::function<void(std::int64_t, double, double)>& on_step) {
  if (examples.empty()) fail("pretrain: no training examples");
  if (options.steps < 1) fail("pretrain: steps must be >= 1, got ", options.steps);
  if (options.batch_size < 1) fail("pretrain: batch size must be >= 1, got ", options.batch_size);
  if (!(options.lr > 0)) fail("pretrain: learning rate must be positive, got ", options.lr);
  if (!(options.relative_bias_lr_factor > 0)) fail("pretrain: relative_bias_lr_factor must be positive");
  if (options.warmup_ratio < 0 || options.warmup_ratio > 1) fail("pretrain: warmup ratio must be in [0, 1]");
  if (model.weight_dtype() != torch::kFloat32) {
    fail("pretrain: the model must hold float32 weights (use autocast for bf16 compute), got ", model.weight_dtype());
  }
  const auto& cfg = model.config();
  const auto t0 = std::chrono::steady_clock::now();

  std::vector<torch::Tensor> bias_params, other_params, all_params;
  std::vector<bool> flags;
  for (auto& item : model.named_parameters()) {
    flags.push_back(item.value().requires_grad());
    item.value().requires_grad_(true);
    (item.key().find("relative_attention_bias") != std::string::npos ? bias_params : other_params).push_back(item.value());
    all_params.push_back(item.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(other_params, std::make_unique<torch::optim::AdamWOptions>(
                                        torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay)));
  const double bias_lr = options.lr * options.relative_bias_lr_factor;
  if (!bias_params.empty()) {
    groups.emplace_back(bias_params, std::make_unique<torch::optim::AdamWOptions>(
                                         torch::optim::AdamWOptions(bias_lr).weight_decay(options.weight_decay)));
  }
  torch::optim::AdamW optimizer(std::move(groups), torch::optim::AdamWOptions(options.lr));

  // Tokenize once; ids never change between passes.
  std::vector<std::vector<std::int64_t>> inputs, labels;
  inputs.reserve(examples.size());
  labels.reserve(examples.size());
  for (const auto& ex : examples) {
    inputs.push_back(tokenizer.encode(ex.input));
    labels.push_back(tokenizer.encode(ex.target));
    for (auto id : inputs.back()) {
      if (id >= cfg.vocab_size) fail("pretrain: token id ", id, " of '", ex.input, "' >= vocab_size ", cfg.vocab_size);
    }
  }

  const auto total = options.steps;
  const auto warmup = static_cast<std::int64_t>(std::ceil(options.warmup_ratio * static_cast<double>(total)));
  const auto n = examples.size();
  std::vector<std::size_t> order(n);
  std::size_t cursor = n;  // forces a shuffle before the first batch
  core::Rng rng(options.seed ^ 0x9e3779b97f4a7c15ULL);
  auto reshuffle = [&] {
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    for (std::size_t i = n; i-- > 1;) std::swap(order[i], order[rng.below(i + 1)]);
    cursor = 0;
  };

  PretrainStats stats;
  std::vector<double> recent;
  model.train();
  try {
    for (std::int64_t step = 0; step < total; ++step) {
      std::vector<std::vector<std::int64_t>> in, lab;
      for (std::int64_t b = 0; b < options.batch_size; ++b) {
        if (cursor == n) reshuffle();
        in.push_back(inputs[order[cursor]]);
        lab.push_back(labels[order[cursor]]);
        ++cursor;
      }
      const double factor = linear_schedule(step, total, warmup);
      auto& pg = optimizer.param_groups();
      static_cast<torch::optim::AdamWOptions&>(pg[0].options()).lr(options.lr * factor);
      if (pg.size() > 1) static_cast<torch::optim::AdamWOptions&>(pg[1].options()).lr(bias_lr * factor);
      const double value =
          seq2seq_train_step(model, in, lab, optimizer, all_params, options.max_grad_norm, options.autocast_bf16);
      if (!std::isfinite(value)) fail("pretrain: loss became ", value, " at step ", step + 1);
      if (step == 0) stats.first_loss = value;
      recent.push_back(value);
      if (recent.size() > 50) recent.erase(recent.begin());
      stats.steps = step + 1;
      if (on_step) on_step(step + 1, value, options.lr * factor);
    }
  } catch (...) {
    model.eval();
    throw;
  }
  model.eval();
  for (std::size_t i = 0; i < all_params.size(); ++i) {
    all_params[i].mutable_grad() = torch::Tensor();
    all_params[i].requires_grad_(flags[i]);
  }
  double sum = 0;
  for (double v : recent) sum += v;
  stats.last_loss = recent.empty() ? 0.0 : sum / static_cast<double>(recent.size());
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace lorahub::demo
