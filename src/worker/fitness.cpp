#include "lorahub/worker/fitness.h"

#include <algorithm>
#include <chrono>
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

std::vector<std::size_t> FitnessEvaluator::modules_at(const std::vector<std::int64_t>& positions,
                                                      std::size_t weights) const {
  if (positions.empty()) {
    if (weights != modules_.size()) core::fail("a candidate has ", weights, " weights for ", modules_.size(), " modules");
    return modules_;
  }
  if (weights != positions.size()) core::fail("a candidate has ", weights, " weights for ", positions.size(), " modules");
  std::vector<std::size_t> out;
  for (auto p : positions) {
    if (p < 0 || static_cast<std::size_t>(p) >= modules_.size()) {
      core::fail("module position ", p, " outside the run's ", modules_.size(), " modules");
    }
    out.push_back(modules_[static_cast<std::size_t>(p)]);
  }
  return out;
}

double FitnessEvaluator::l1_term(const std::vector<double>& w) const {
  double l1 = 0;
  for (double x : w) l1 += std::abs(x);
  return l1_ * l1 / static_cast<double>(w.size());
}

std::vector<double> FitnessEvaluator::evaluate(const std::vector<std::vector<double>>& candidates,
                                               const std::vector<std::int64_t>& positions) {
  const auto k = static_cast<std::int64_t>(candidates.size());
  if (k == 0) return {};
  const auto modules = modules_at(positions, candidates.front().size());
  for (const auto& w : candidates) {
    if (w.size() != modules.size()) core::fail("a candidate has ", w.size(), " weights for ", modules.size(), " modules");
  }
  c10::InferenceMode guard;
  lora::ScopedAdapters scope(model_);
  std::vector<double> ce(static_cast<std::size_t>(k), 0.0);
  for (const auto& b : batches_) {
    const auto rows = b.input_ids.size(0);
    lora::apply_unmerged(model_, library_, candidates, k == 1 ? 0 : rows, modules);
    auto rep = [k](const torch::Tensor& t) { return k == 1 ? t : t.repeat({k, 1}); };
    auto labels = rep(b.labels);
    auto out = model_.forward(rep(b.input_ids), rep(b.attention_mask), rep(b.decoder_input_ids), false,
                              /*skip_padding=*/true);
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
    last_ce_[static_cast<std::size_t>(i)] = ce[static_cast<std::size_t>(i)] / static_cast<double>(num_examples_);
    out[static_cast<std::size_t>(i)] = last_ce_[static_cast<std::size_t>(i)] + l1_term(w);
  }
  return out;
}

namespace {

// No model parameter takes part in autograd while it lives: only the path from the weights is recorded.
class FrozenParameters {
 public:
  explicit FrozenParameters(torch::nn::Module& model) : params_(model.parameters()) {
    for (auto& p : params_) {
      flags_.push_back(p.requires_grad());
      p.requires_grad_(false);
    }
  }
  ~FrozenParameters() {
    for (std::size_t i = 0; i < params_.size(); ++i) params_[i].requires_grad_(flags_[i]);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
  std::vector<bool> flags_;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

FitnessEvaluator::Gradient FitnessEvaluator::evaluate_gradient(const std::vector<double>& weights,
                                                               const std::vector<std::int64_t>& positions) {
  const auto modules = modules_at(positions, weights.size());
  FrozenParameters frozen(model_);
  torch::AutoGradMode grad_mode(true);
  lora::ScopedAdapters scope(model_);
  const auto device = library_.a.front().device();
  std::vector<float> w32(weights.begin(), weights.end());
  auto w = torch::from_blob(w32.data(), {static_cast<std::int64_t>(w32.size())}, torch::kFloat32)
               .to(device)
               .requires_grad_(true);
  Gradient g;
  auto t0 = std::chrono::steady_clock::now();
  lora::apply_unmerged_differentiable(model_, library_, w, modules);
  torch::Tensor ce;
  double ce_value = 0;
  for (const auto& b : batches_) {
    auto out = model_.forward(b.input_ids, b.attention_mask, b.decoder_input_ids, false, /*skip_padding=*/true);
    auto loss = model::seq2seq_loss(out.logits, b.labels).loss;
    // Summed batch by batch in double, as evaluate() does, so both give the same value.
    ce_value += loss.item<double>();
    ce = ce.defined() ? ce + loss : loss;
  }
  g.forward_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  (ce / static_cast<double>(num_examples_)).backward();
  auto grad = w.grad().to(torch::kCPU, torch::kDouble).contiguous();
  g.backward_seconds = seconds_since(t0);
  g.gradient.assign(grad.data_ptr<double>(), grad.data_ptr<double>() + grad.numel());
  g.loss = ce_value / static_cast<double>(num_examples_) + l1_term(weights);
  return g;
}

}  // namespace lorahub::worker
