#include "lorahub/worker/fitness.h"

#include <algorithm>
#include <cmath>

#include "lorahub/core/error.h"
#include "lorahub/model/batch.h"
#include "lorahub/worker/answers.h"

namespace lorahub::worker {
using model::pad_sequences;

FitnessEvaluator::FitnessEvaluator(model::T5ModelImpl& model, const lora::ModuleStack& library,
                                   std::vector<std::size_t> modules, const std::vector<data::Example>& examples,
                                   const text::T5Tokenizer& tokenizer, double l1, std::int64_t batch_size)
    : model_(model), library_(library), modules_(std::move(modules)), num_examples_(examples.size()), l1_(l1) {
  std::vector<std::vector<std::int64_t>> inputs, targets;
  for (const auto& e : examples) {
    inputs.push_back(encode_prompt(tokenizer, e.input));
    targets.push_back(encode_prompt(tokenizer, e.target));
  }
  build_batches(inputs, targets, batch_size);
}

FitnessEvaluator::FitnessEvaluator(model::T5ModelImpl& model, const lora::ModuleStack& library,
                                   std::vector<std::size_t> modules,
                                   const std::vector<std::vector<std::int64_t>>& input_ids,
                                   const std::vector<std::vector<std::int64_t>>& target_ids, double l1,
                                   std::int64_t batch_size)
    : model_(model), library_(library), modules_(std::move(modules)), num_examples_(input_ids.size()), l1_(l1) {
  if (input_ids.size() != target_ids.size()) {
    core::fail("the few-shot objective got ", input_ids.size(), " inputs but ", target_ids.size(), " targets");
  }
  const auto vocab = model.config().vocab_size;
  for (const auto* rows : {&input_ids, &target_ids}) {
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const auto& r = (*rows)[i];
      if (r.empty() || r.size() > kMaxInputTokens) {
        core::fail("few-shot example ", i, ": ", rows == &input_ids ? "input" : "target", " has ", r.size(),
                   " tokens, expected 1..", kMaxInputTokens);
      }
      for (auto id : r) {
        if (id < 0 || id >= vocab) core::fail("few-shot example ", i, ": token id ", id, " outside the vocabulary [0, ", vocab, ")");
      }
    }
  }
  build_batches(input_ids, target_ids, batch_size);
}

void FitnessEvaluator::build_batches(const std::vector<std::vector<std::int64_t>>& all_inputs,
                                     const std::vector<std::vector<std::int64_t>>& all_targets,
                                     std::int64_t batch_size) {
  if (all_inputs.empty()) core::fail("the few-shot objective needs at least one example");
  if (modules_.empty()) core::fail("the few-shot objective needs at least one module");
  for (auto i : modules_) {
    if (i >= static_cast<std::size_t>(library_.size())) core::fail("module index ", i, " outside the library");
  }
  const auto device = model_.runtime().device;
  const std::size_t per_batch = batch_size > 0 ? static_cast<std::size_t>(batch_size) : all_inputs.size();
  const auto& cfg = model_.config();
  for (std::size_t begin = 0; begin < all_inputs.size(); begin += per_batch) {
    auto end = std::min(all_inputs.size(), begin + per_batch);
    std::vector<std::vector<std::int64_t>> inputs(all_inputs.begin() + static_cast<std::ptrdiff_t>(begin),
                                                  all_inputs.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<std::vector<std::int64_t>> targets(all_targets.begin() + static_cast<std::ptrdiff_t>(begin),
                                                   all_targets.begin() + static_cast<std::ptrdiff_t>(end));
    Batch b;
    b.input_ids = pad_sequences(inputs, cfg.pad_token_id, &b.attention_mask);
    b.labels = pad_sequences(targets, -100);  // HF: label padding becomes -100
    b.decoder_input_ids = model::shift_right(b.labels, cfg.decoder_start_token_id, cfg.pad_token_id);
    for (auto* t : {&b.input_ids, &b.attention_mask, &b.labels, &b.decoder_input_ids}) *t = t->to(device);
    batches_.push_back(std::move(b));
  }
}

std::vector<double> FitnessEvaluator::evaluate(const std::vector<std::vector<double>>& candidates) {
  const auto k = static_cast<std::int64_t>(candidates.size());
  if (k == 0) return {};
  for (const auto& w : candidates) {
    if (w.size() != modules_.size()) core::fail("a candidate has ", w.size(), " weights for ", modules_.size(), " modules");
  }
  c10::InferenceMode guard;
  lora::ScopedAdapters scope(model_);
  std::vector<double> ce(static_cast<std::size_t>(k), 0.0);
  for (const auto& b : batches_) {
    const auto rows = b.input_ids.size(0);
    lora::apply_unmerged(model_, library_, candidates, k == 1 ? 0 : rows, modules_);
    auto rep = [k](const torch::Tensor& t) { return k == 1 ? t : t.repeat({k, 1}); };
    auto labels = rep(b.labels);
    auto out = model_.forward(rep(b.input_ids), rep(b.attention_mask), rep(b.decoder_input_ids));
    if (k == 1) {
      ce[0] += model::seq2seq_loss(out.logits, labels).loss.item<double>();
    } else {
      auto terms = model::seq2seq_loss(out.logits, labels);
      // HF's per-batch token mean, for each candidate's segment of rows.
      auto sums = terms.token_loss.view({k, -1}).sum(1);
      auto counts = terms.token_count.view({k, -1}).sum(1).to(torch::kFloat);
      auto means = (sums / counts).to(torch::kCPU, torch::kDouble);
      auto* m = means.data_ptr<double>();
      for (std::int64_t i = 0; i < k; ++i) ce[static_cast<std::size_t>(i)] += m[i];
    }
  }
  last_ce_.resize(static_cast<std::size_t>(k));
  std::vector<double> out(static_cast<std::size_t>(k));
  for (std::int64_t i = 0; i < k; ++i) {
    const auto& w = candidates[static_cast<std::size_t>(i)];
    double l1 = 0;
    for (double x : w) l1 += std::abs(x);
    l1 = l1_ * l1 / static_cast<double>(w.size());
    last_ce_[static_cast<std::size_t>(i)] = ce[static_cast<std::size_t>(i)] / static_cast<double>(num_examples_);
    out[static_cast<std::size_t>(i)] = last_ce_[static_cast<std::size_t>(i)] + l1;
  }
  return out;
}

}  // namespace lorahub::worker
