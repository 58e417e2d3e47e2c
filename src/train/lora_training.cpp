#include "lorahub/train/lora_training.h"

#include <algorithm>
#include <cmath>

#include "lorahub/core/error.h"
#include "lorahub/core/random.h"
#include "lorahub/train/train_step.h"

namespace lorahub::train {

static_assert(job::kMaxLoraRank == lora::AdapterConfig::kMaxRank && job::kMaxLoraAlpha == lora::AdapterConfig::kMaxAlpha,
              "the job's [lora_ft] limits must be the ones an adapter may hold");
using core::fail;

namespace {

// Restores the model's training flags, base requires_grad and low-rank additions on every exit path.
class TrainingScope {
 public:
  explicit TrainingScope(model::T5ModelImpl& model) : model_(model) {
    for (auto& p : model_.parameters()) {
      flags_.push_back(p.requires_grad());
      p.requires_grad_(false);
    }
    model_.train();
  }
  ~TrainingScope() {
    std::size_t i = 0;
    for (auto& p : model_.parameters()) p.requires_grad_(flags_[i++]);
    model_.eval();
    model_.clear_low_rank();
  }

 private:
  model::T5ModelImpl& model_;
  std::vector<bool> flags_;
};

}  // namespace

lora::LoraAdapter train_lora(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                             const std::vector<data::Example>& examples, const TrainOptions& options,
                             const std::function<void(std::int64_t, double)>& on_step) {
  const auto& ft = options.lora;
  if (examples.empty()) fail("train-lora: no training examples");
  if (ft.r < 1 || ft.r > lora::AdapterConfig::kMaxRank) fail("train-lora: r must be in [1, ", lora::AdapterConfig::kMaxRank, "], got ", ft.r);
  if (!(ft.alpha > 0 && ft.alpha <= lora::AdapterConfig::kMaxAlpha)) {
    fail("train-lora: lora_alpha must be in (0, ", lora::AdapterConfig::kMaxAlpha, "], got ", ft.alpha);
  }
  if (ft.batch_size < 1) fail("train-lora: batch size must be >= 1");
  if (!(ft.lr > 0)) fail("train-lora: learning rate must be positive");
  const auto device = model.runtime().device;

  lora::LoraAdapter adapter;
  adapter.name = "lora-ft";
  adapter.config.r = ft.r;
  adapter.config.lora_alpha = ft.alpha;
  adapter.config.lora_dropout = ft.dropout;
  adapter.config.target_modules = ft.targets;
  const double scale = adapter.config.scaling();

  std::vector<std::string> targets;
  for (const auto& name : model.projection_names()) {
    if (adapter.config.targets(name)) targets.push_back(name);
  }
  if (targets.empty()) {
    std::string t;
    for (const auto& x : ft.targets) t += (t.empty() ? "" : ",") + x;
    fail("train-lora: target modules '", t, "' match no projection of the model");
  }

  // PEFT's initialisation: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0.
  auto gen = at::detail::createCPUGenerator(options.init_seed.value_or(options.seed));
  std::vector<torch::Tensor> params;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> factors;
  for (const auto& name : targets) {
    auto proj = model.projection(name);
    const double bound = 1.0 / std::sqrt(static_cast<double>(proj->in_features()));
    auto a = at::empty({ft.r, proj->in_features()}, torch::kFloat32);
    a.uniform_(-bound, bound, gen);
    a = a.to(device).requires_grad_(true);
    auto b = torch::zeros({proj->out_features(), ft.r}, torch::TensorOptions().dtype(torch::kFloat32).device(device))
                 .requires_grad_(true);
    params.push_back(a);
    params.push_back(b);
    factors.emplace_back(a, b);
  }

  // Tokenize once; batches are drawn in a seeded order every epoch.
  std::vector<std::vector<std::int64_t>> inputs, labels;
  for (const auto& ex : examples) {
    inputs.push_back(tokenizer.encode(ex.input));
    labels.push_back(tokenizer.encode(ex.target));
  }
  const auto n = static_cast<std::int64_t>(examples.size());
  const auto per_epoch = (n + ft.batch_size - 1) / ft.batch_size;
  const std::int64_t total = options.max_steps > 0 ? options.max_steps : per_epoch * ft.epochs;
  const auto warmup = static_cast<std::int64_t>(std::ceil(options.warmup_ratio * static_cast<double>(total)));

  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(ft.lr).weight_decay(ft.weight_decay));
  core::Rng rng(options.seed ^ 0x5eedf00dULL);
  {
    TrainingScope scope(model);
    for (std::size_t t = 0; t < targets.size(); ++t) {
      model::LowRankAddition add;
      add.a = factors[t].first.unsqueeze(0);
      add.b = factors[t].second.unsqueeze(0);
      add.scale = scale;
      add.dropout = ft.dropout;
      model.projection(targets[t])->set_low_rank(std::move(add));
    }
    std::int64_t step = 0;
    std::vector<std::size_t> order(static_cast<std::size_t>(n));
    while (step < total) {
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      for (std::size_t i = order.size(); i-- > 1;) std::swap(order[i], order[rng.below(i + 1)]);
      for (std::int64_t begin = 0; begin < n && step < total; begin += ft.batch_size) {
        auto end = std::min(n, begin + ft.batch_size);
        std::vector<std::vector<std::int64_t>> in, lab;
        for (auto i = begin; i < end; ++i) {
          in.push_back(inputs[order[static_cast<std::size_t>(i)]]);
          lab.push_back(labels[order[static_cast<std::size_t>(i)]]);
        }
        const double lr = ft.lr * linear_schedule(step, total, warmup);
        for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
        const double value = seq2seq_train_step(model, in, lab, optimizer, params, ft.max_grad_norm, options.autocast_bf16);
        ++step;
        if (!std::isfinite(value)) fail("train-lora: loss became ", value, " at step ", step);
        if (on_step) on_step(step, value);
      }
    }
  }
  for (std::size_t t = 0; t < targets.size(); ++t) {
    adapter.modules[targets[t]] = {factors[t].first.detach().to(torch::kCPU).clone(),
                                   factors[t].second.detach().to(torch::kCPU).clone()};
  }
  return adapter;
}

}  // namespace lorahub::train
