#include "lorahub/worker/worker.h"

#include <chrono>

#include "lorahub/core/error.h"
#include "lorahub/train/lora_training.h"
#include "lorahub/worker/answers.h"

namespace lorahub::worker {
using core::fail;
using core::WorkItem;
using core::WorkKind;
using core::WorkResult;

namespace {
core::NamedArray to_array(const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  core::NamedArray a;
  a.name = name;
  a.shape.assign(c.sizes().begin(), c.sizes().end());
  a.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return a;
}

}  // namespace

std::vector<core::NamedArray> composition_arrays(const lora::Composition& c) {
  std::vector<core::NamedArray> out;
  for (std::size_t t = 0; t < c.targets.size(); ++t) {
    out.push_back(to_array(lora::peft_key(c.targets[t], true), c.a[t]));
    out.push_back(to_array(lora::peft_key(c.targets[t], false), c.b[t]));
  }
  return out;
}

std::vector<std::size_t> Worker::modules_of(const RunContext& ctx, const WorkItem& item) {
  if (item.modules.empty()) return ctx.modules;
  std::vector<std::size_t> out;
  for (auto p : item.modules) {
    if (p < 0 || static_cast<std::size_t>(p) >= ctx.modules.size()) {
      fail("module position ", p, " outside the run's ", ctx.modules.size(), " modules");
    }
    out.push_back(ctx.modules[static_cast<std::size_t>(p)]);
  }
  return out;
}

Worker::Worker(Engine& engine, const std::vector<job::RunSpec>& runs, const job::JobConfig& config)
    : engine_(engine), runs_(runs), config_(config) {}

Worker::RunContext& Worker::context(const job::RunSpec& spec) {
  auto it = contexts_.find(spec.id);
  if (it != contexts_.end()) return it->second;
  RunContext ctx;
  if (!spec.modules.empty()) {
    if (!engine_.library) fail("the job has no LoRA library loaded");
    for (const auto& name : spec.modules) ctx.modules.push_back(engine_.library->index_of(name));
  }
  return contexts_.emplace(spec.id, std::move(ctx)).first->second;
}

WorkResult Worker::handle(const WorkItem& item) {
  auto t0 = std::chrono::steady_clock::now();
  WorkResult r;
  const job::RunSpec* spec = nullptr;
  try {
    if (item.run < 0 || item.run >= static_cast<std::int64_t>(runs_.size())) {
      fail("work item for run ", item.run, " outside the job's ", runs_.size(), " runs");
    }
    spec = &runs_[static_cast<std::size_t>(item.run)];
    r = handle_unchecked(item, *spec);
  } catch (const std::exception& e) {
    r = WorkResult{};
    r.ok = false;
    r.error = spec ? core::cat("task '", spec->task, "' ", job::to_string(spec->method), " seed ", spec->seed, ": ", e.what())
                   : std::string(e.what());
  }
  r.run = item.run;
  r.seq = item.seq;
  r.kind = item.kind;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

WorkResult Worker::handle_unchecked(const WorkItem& item, const job::RunSpec& spec) {
  WorkResult r;
  if (!spec.error.empty()) fail(spec.error);
  auto& model = *engine_.model;
  const auto& tok = *engine_.tokenizer;
  auto& ctx = context(spec);
  switch (item.kind) {
    case WorkKind::kFitness:
    case WorkKind::kGradient: {
      if (!ctx.fitness) {
        ctx.fitness = std::make_unique<FitnessEvaluator>(model, *engine_.stack, ctx.modules, spec.train, tok, config_.lorahub.l1,
                                                         config_.lorahub.batch_size);
      }
      if (item.kind == WorkKind::kFitness) {
        r.losses = ctx.fitness->evaluate(item.weights, item.modules);
        return r;
      }
      for (const auto& w : item.weights) {
        auto g = ctx.fitness->evaluate_gradient(w, item.modules);
        r.losses.push_back(g.loss);
        r.gradients.push_back(std::move(g.gradient));
        r.forward_seconds += g.forward_seconds;
        r.backward_seconds += g.backward_seconds;
      }
      return r;
    }
    case WorkKind::kEvaluate: {
      if (item.begin < 0 || item.end > static_cast<std::int64_t>(spec.test.size()) || item.begin >= item.end) {
        fail("test shard [", item.begin, ", ", item.end, ") outside the ", spec.test.size(), " test examples");
      }
      std::vector<std::string> prompts;
      for (auto i = item.begin; i < item.end; ++i) prompts.push_back(spec.test[static_cast<std::size_t>(i)].input);
      lora::ScopedAdapters scope(model);
      if (!item.weights.empty()) {
        auto comp = lora::compose(*engine_.stack, item.weights.front(), modules_of(ctx, item));
        lora::merge(model, comp);
        if (item.want_composition) r.arrays = composition_arrays(comp);
      }
      r.predictions = generate_answers(model, tok, prompts, config_.eval.max_new_tokens, config_.eval.batch_size);
      return r;
    }
    case WorkKind::kFineTune: {
      train::TrainOptions opts;
      opts.lora = config_.lora_ft;
      opts.seed = static_cast<std::uint64_t>(spec.seed);
      auto t0 = std::chrono::steady_clock::now();
      auto adapter = train::train_lora(model, tok, spec.train, opts, [&](std::int64_t, double loss) { r.values.push_back(loss); });
      r.learn_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      lora::Composition comp;
      comp.scaling = adapter.config.scaling();
      for (const auto& [name, ab] : adapter.modules) {
        comp.targets.push_back(name);
        comp.a.push_back(ab.first.to(model.runtime().device));
        comp.b.push_back(ab.second.to(model.runtime().device));
      }
      lora::ScopedAdapters scope(model);
      lora::merge(model, comp);
      std::vector<std::string> prompts;
      for (const auto& ex : spec.test) prompts.push_back(ex.input);
      r.predictions = generate_answers(model, tok, prompts, config_.eval.max_new_tokens, config_.eval.batch_size);
      r.arrays = composition_arrays(comp);
      return r;
    }
  }
  fail("unknown work kind");
}

}  // namespace lorahub::worker
