#include "lorahub/search/run_driver.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/core/version.h"
#include "lorahub/data/metric.h"

namespace lorahub::search {
using core::WorkItem;
using core::WorkKind;
using core::WorkResult;
using job::Learning;

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

RunDriver::RunDriver(const job::RunSpec& spec, const job::JobConfig& config,
                     const std::map<std::string, std::string>& adapter_config)
    : spec_(spec), config_(config), adapter_config_(adapter_config) {}

RunDriver::~RunDriver() = default;

WorkItem RunDriver::make_item(WorkKind kind) {
  WorkItem item;
  item.run = spec_.id;
  item.seq = next_seq_++;
  item.kind = kind;
  return item;
}

bool RunDriver::selects_modules() const {
  return spec_.info().modules == job::ModuleUse::kSampled && config_.library.select == job::ModuleSelect::kLoss;
}

std::size_t RunDriver::modules_used() const { return chosen_.empty() ? spec_.modules.size() : chosen_.size(); }

std::vector<WorkItem> RunDriver::start() {
  started_ = now_s();
  start_time_ = core::utc_timestamp();
  if (!spec_.error.empty()) {
    fail_run(spec_.error);
    return {};
  }
  try {
    if (selects_modules()) return start_selection();
    return start_learning();
  } catch (const std::exception& e) {
    fail_run(e.what());
  }
  return {};
}

std::vector<WorkItem> RunDriver::start_selection() {
  phase_ = Phase::kSelect;
  const std::size_t pool = spec_.modules.size();
  selection_losses_.assign(pool, 0.0);
  selection_filled_.assign(pool, false);
  // Each module alone at weight 1, in fixed chunks (results never depend on the number of ranks).
  std::vector<WorkItem> items;
  const auto chunk = static_cast<std::size_t>(config_.schedule.candidates_per_request);
  for (std::size_t begin = 0; begin < pool; begin += chunk) {
    auto item = make_item(WorkKind::kFitness);
    for (std::size_t i = begin; i < std::min(pool, begin + chunk); ++i) {
      item.weights.emplace_back(pool, 0.0);
      item.weights.back()[i] = 1.0;
    }
    item.begin = static_cast<std::int64_t>(begin);
    item.end = static_cast<std::int64_t>(begin + item.weights.size());
    slots_[item.seq] = Slot{0, begin};
    items.push_back(std::move(item));
  }
  pending_ = static_cast<std::int64_t>(items.size());
  return items;
}

void RunDriver::take_selection(const WorkResult& result, std::size_t offset) {
  if (offset + result.losses.size() > selection_losses_.size()) core::fail("selection result ", result.seq, " has too many losses");
  for (std::size_t i = 0; i < result.losses.size(); ++i) {
    if (!std::isfinite(result.losses[i])) {
      core::fail("non-finite loss ", result.losses[i], " scoring module '", spec_.modules[offset + i], "' (task '",
                 spec_.task, "', seed ", spec_.seed, ")");
    }
    selection_losses_[offset + i] = result.losses[i];
    selection_filled_[offset + i] = true;
  }
}

std::vector<WorkItem> RunDriver::start_learning() {
  switch (spec_.info().learning) {
    case Learning::kSearch: {
      auto options = config_.lorahub.optimizer;
      options.seed = static_cast<std::uint64_t>(spec_.seed);
      options.l1 = config_.lorahub.l1;
      if (config_.lorahub.start == job::SearchStart::kBestModule) {
        // The search starts from the best module alone (weight 1, within the bounds): the lowest-loss module of the
        // selection, which is first in the chosen order.
        if (!selects_modules()) core::fail("lorahub.start = \"best-module\" needs library.select = \"loss\"");
        options.init.assign(modules_used(), 0.0);
        options.init[0] = std::min(1.0, options.upper);
      }
      optimizer_ = opt::make_optimizer(options, static_cast<int>(modules_used()));
      phase_ = Phase::kSearch;
      return ask_next();
    }
    case Learning::kFineTune: {
      phase_ = Phase::kFineTune;
      auto item = make_item(WorkKind::kFineTune);
      item.begin = 0;
      item.end = static_cast<std::int64_t>(spec_.test.size());
      slots_[item.seq] = Slot{};
      ++pending_;
      return {item};
    }
    case Learning::kNone:
      search_done_ = now_s();
      return start_evaluation();
  }
  return {};
}

std::vector<WorkItem> RunDriver::ask_next() {
  while (true) {
    if (optimizer_->done()) {
      search_done_ = now_s();
      return start_evaluation();
    }
    ask_ = optimizer_->ask();
    if (ask_.empty()) continue;  // done() now true
    ask_losses_.assign(ask_.size(), 0.0);
    ask_gradients_.assign(ask_.size(), {});
    ask_filled_.assign(ask_.size(), false);
    std::vector<WorkItem> items;
    // Fixed chunks: which candidates share a forward never depends on the number of ranks. A gradient is one
    // forward and one backward per candidate.
    const bool gradient = optimizer_->uses_gradient();
    const auto chunk = gradient ? std::size_t{1} : static_cast<std::size_t>(config_.schedule.candidates_per_request);
    for (std::size_t begin = 0; begin < ask_.size(); begin += chunk) {
      auto end = std::min(ask_.size(), begin + chunk);
      auto item = make_item(gradient ? WorkKind::kGradient : WorkKind::kFitness);
      item.modules = chosen_;
      item.weights.assign(ask_.begin() + static_cast<std::ptrdiff_t>(begin), ask_.begin() + static_cast<std::ptrdiff_t>(end));
      item.begin = static_cast<std::int64_t>(begin);
      item.end = static_cast<std::int64_t>(end);
      slots_[item.seq] = Slot{0, begin};
      items.push_back(std::move(item));
    }
    pending_ = static_cast<std::int64_t>(items.size());
    return items;
  }
}

std::vector<WorkItem> RunDriver::evaluation_items(const std::vector<double>* weights, bool want_composition) {
  std::size_t comp = eval_weights_.size();
  eval_weights_.push_back(weights ? *weights : std::vector<double>{});
  predictions_.emplace_back(spec_.test.size());
  std::vector<WorkItem> items;
  const auto shard = config_.schedule.eval_shard;
  const auto total = static_cast<std::int64_t>(spec_.test.size());
  for (std::int64_t begin = 0; begin < total; begin += shard) {
    auto item = make_item(WorkKind::kEvaluate);
    if (weights) {
      item.weights = {*weights};
      item.modules = chosen_;
    }
    item.begin = begin;
    item.end = std::min(total, begin + shard);
    item.want_composition = want_composition && begin == 0;
    slots_[item.seq] = Slot{comp, static_cast<std::size_t>(begin)};
    items.push_back(std::move(item));
  }
  pending_ += static_cast<std::int64_t>(items.size());
  return items;
}

std::vector<WorkItem> RunDriver::start_evaluation() {
  phase_ = Phase::kEvaluate;
  const auto& m = spec_.info();
  if (m.learning == Learning::kSearch) {
    auto w = optimizer_->best_w();
    return evaluation_items(&w, true);
  }
  if (!m.compositions) return evaluation_items(nullptr, false);  // the base model
  // Fixed compositions: one is stored with the run; of several (an oracle), only the best one's answers.
  const auto compositions = m.compositions(modules_used());
  std::vector<WorkItem> items;
  for (const auto& w : compositions) {
    auto more = evaluation_items(&w, compositions.size() == 1);
    items.insert(items.end(), more.begin(), more.end());
  }
  return items;
}

void RunDriver::take_fitness(const WorkResult& result, std::size_t offset) {
  if (phase_ != Phase::kSearch) core::fail("unexpected fitness result");
  if (offset + result.losses.size() > ask_.size()) core::fail("fitness result ", result.seq, " has too many losses");
  if (result.kind == WorkKind::kGradient) {
    if (result.gradients.size() != result.losses.size()) {
      core::fail("gradient result ", result.seq, " has ", result.gradients.size(), " gradients for ", result.losses.size(),
                 " losses");
    }
    if (result.forward_seconds > 0) {
      forward_equivalents_ += static_cast<double>(result.losses.size()) *
                              (1.0 + result.backward_seconds / result.forward_seconds);
    }
  }
  for (std::size_t i = 0; i < result.losses.size(); ++i) {
    double loss = result.losses[i];
    if (!std::isfinite(loss)) {
      core::fail("non-finite loss ", loss, " at evaluation ", evaluations_ + static_cast<std::int64_t>(offset + i) + 1,
                 " (task '", spec_.task, "', seed ", spec_.seed, ")");
    }
    ask_losses_[offset + i] = loss;
    if (result.kind == WorkKind::kGradient) ask_gradients_[offset + i] = result.gradients[i];
    ask_filled_[offset + i] = true;
  }
}

std::vector<WorkItem> RunDriver::on_result(const WorkResult& result) {
  if (phase_ == Phase::kDone) return {};  // results still in flight for a failed run
  --pending_;
  worker_seconds_ += result.seconds;
  if (!result.ok) {
    fail_run(result.error.empty() ? "a worker failed without a reason" : result.error);
    return {};
  }
  try {
    auto slot_it = slots_.find(result.seq);
    if (slot_it == slots_.end()) core::fail("result ", result.seq, " of run ", spec_.id, " was not asked for");
    const Slot slot = slot_it->second;
    slots_.erase(slot_it);
    switch (result.kind) {
      case WorkKind::kFitness:
      case WorkKind::kGradient: {
        if (phase_ == Phase::kSelect) {
          take_selection(result, slot.begin);
          if (pending_ > 0) return {};
          if (!std::all_of(selection_filled_.begin(), selection_filled_.end(), [](bool b) { return b; })) {
            core::fail("module selection finished with missing losses");
          }
          // The lowest losses, ties to the earlier module; kept in that order.
          std::vector<std::int64_t> order(selection_losses_.size());
          for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
          std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
            return selection_losses_[static_cast<std::size_t>(a)] < selection_losses_[static_cast<std::size_t>(b)];
          });
          order.resize(std::min(order.size(), static_cast<std::size_t>(config_.library.modules)));
          chosen_ = order;
          return start_learning();
        }
        take_fitness(result, slot.begin);
        if (pending_ > 0) return {};
        if (!std::all_of(ask_filled_.begin(), ask_filled_.end(), [](bool b) { return b; })) {
          core::fail("a fitness step finished with missing losses");
        }
        if (optimizer_->uses_gradient()) {
          optimizer_->tell(ask_losses_, ask_gradients_);
        } else {
          optimizer_->tell(ask_losses_);
        }
        evaluations_ += static_cast<std::int64_t>(ask_losses_.size());
        return ask_next();
      }
      case WorkKind::kEvaluate: {
        auto& preds = predictions_[slot.composition];
        const std::size_t begin = slot.begin;
        if (begin + result.predictions.size() > preds.size()) core::fail("evaluation result out of range");
        for (std::size_t i = 0; i < result.predictions.size(); ++i) preds[begin + i] = result.predictions[i];
        composed_.insert(composed_.end(), result.arrays.begin(), result.arrays.end());
        if (pending_ == 0) finish_evaluation();
        return {};
      }
      case WorkKind::kFineTune: {
        if (result.predictions.size() != spec_.test.size()) core::fail("fine-tuning returned the wrong number of answers");
        eval_weights_.push_back({});
        predictions_.emplace_back();
        for (const auto& p : result.predictions) predictions_.back().push_back(p);
        composed_.insert(composed_.end(), result.arrays.begin(), result.arrays.end());
        fine_tune_losses_ = result.values;
        search_done_ = now_s();
        fine_tune_seconds_ = {result.learn_seconds, result.seconds - result.learn_seconds};
        finish_evaluation();
        return {};
      }
    }
  } catch (const std::exception& e) {
    fail_run(e.what());
  }
  return {};
}

void RunDriver::finish_evaluation() {
  auto& r = record_;
  std::vector<std::string> targets;
  for (const auto& ex : spec_.test) targets.push_back(ex.target);
  // Accuracy of every composition evaluated; the record keeps the best one (an oracle keeps its best).
  std::size_t best = 0;
  double best_acc = -1;
  std::vector<double> accs;
  for (std::size_t c = 0; c < predictions_.size(); ++c) {
    std::vector<std::string> preds;
    for (const auto& p : predictions_[c]) {
      if (!p) core::fail("missing prediction in evaluation of task '", spec_.task, "'");
      preds.push_back(*p);
    }
    double acc = data::accuracy(preds, targets);
    accs.push_back(acc);
    if (acc > best_acc) {
      best_acc = acc;
      best = c;
    }
  }
  for (const auto& p : predictions_[best]) r.predictions.push_back(*p);
  r.accuracy = best_acc;
  r.correct.clear();
  for (std::size_t i = 0; i < targets.size(); ++i) r.correct.push_back(data::exact_match(r.predictions[i], targets[i]) ? 1 : 0);
  if (spec_.info().compositions) {
    r.best_weights = eval_weights_[best];
    if (accs.size() > 1) {
      // The oracle over single modules: composition c is module c alone.
      for (std::size_t c = 0; c < accs.size(); ++c) r.number_attrs["accuracy_" + spec_.modules[c]] = accs[c];
      r.text_attrs["best_module"] = spec_.modules[best];
    }
  }
  r.status = "complete";
  phase_ = Phase::kDone;
  finish_record();
}

void RunDriver::fail_run(const std::string& reason) {
  record_.status = "failed";
  record_.failure_reason = reason;
  phase_ = Phase::kDone;
  finish_record();
}

void RunDriver::finish_record() {
  auto& r = record_;
  const auto& c = config_;
  const bool fine_tuned = spec_.info().learning == Learning::kFineTune;
  r.task = spec_.task;
  r.method = job::to_string(spec_.method);
  r.seed = spec_.seed;
  r.module_names = spec_.modules;
  if (!chosen_.empty()) {
    r.module_names.clear();
    for (auto p : chosen_) r.module_names.push_back(spec_.modules[static_cast<std::size_t>(p)]);
  }
  if (selects_modules() && !selection_losses_.empty()) {
    r.selection_modules = spec_.modules;
    r.selection_losses = selection_losses_;
    r.number_attrs["selection_evaluations"] = static_cast<double>(selection_losses_.size());
    r.text_attrs["select"] = job::to_string(config_.library.select);
  }
  for (const auto& ex : spec_.train) {
    r.train_inputs.push_back(ex.input);
    r.train_targets.push_back(ex.target);
  }
  for (const auto& ex : spec_.test) {
    r.test_inputs.push_back(ex.input);
    r.test_targets.push_back(ex.target);
  }
  if (optimizer_) {
    r.history_weights = optimizer_->history_w();
    r.history_loss = optimizer_->history_loss();
    r.history_gradient = optimizer_->history_gradient();
    if (optimizer_->uses_gradient()) {
      r.number_attrs["gradient_evaluations"] = static_cast<double>(optimizer_->evaluations());
      r.number_attrs["forward_equivalents"] = forward_equivalents_;
    }
    if (optimizer_->best_index() >= 0) {
      r.best_weights = optimizer_->best_w();
      r.best_loss = optimizer_->best_loss();
    }
    r.text_attrs["optimizer"] = optimizer_->name();
  }
  r.composed = composed_;
  if (!composed_.empty()) {
    if (fine_tuned) {
      const auto& ft = c.lora_ft;
      r.adapter_config = {{"peft_type", "\"LORA\""}, {"task_type", "\"SEQ_2_SEQ_LM\""},
                          {"r", std::to_string(ft.r)}, {"lora_alpha", nlohmann::json(ft.alpha).dump()},
                          {"lora_dropout", nlohmann::json(ft.dropout).dump()},
                          {"target_modules", nlohmann::json(ft.targets).dump()}, {"bias", "\"none\""},
                          {"fan_in_fan_out", "false"}, {"inference_mode", "true"}};
    } else {
      r.adapter_config = adapter_config_;
    }
  }
  if (!fine_tune_losses_.empty()) r.number_attrs["fine_tune_final_loss"] = fine_tune_losses_.back();
  r.text_attrs["model_path"] = c.model.path;
  r.text_attrs["library_path"] = c.library.path;
  r.text_attrs["tokenizer_path"] = c.tokenizer_path();
  r.text_attrs["software_version"] = core::software_version();
  r.text_attrs["start_time"] = start_time_;
  r.text_attrs["end_time"] = core::utc_timestamp();
  r.text_attrs["config"] = c.to_json().dump();
  r.text_attrs["dtype"] = job::to_string(c.model.dtype);
  r.text_attrs["sampler"] = job::to_string(c.library.sampler);
  r.text_attrs["description"] = spec_.description;
  r.number_attrs["budget"] = c.lorahub.optimizer.budget;
  r.number_attrs["shots"] = static_cast<double>(spec_.train.size());
  r.number_attrs["l1"] = c.lorahub.l1;
  r.number_attrs["max_new_tokens"] = static_cast<double>(c.eval.max_new_tokens);
  r.number_attrs["num_modules"] = static_cast<double>(spec_.modules.size());
  r.number_attrs["evaluations"] = static_cast<double>(evaluations_);
  double end = now_s();
  if (fine_tune_seconds_) {
    // Training and answering happen in one work item; the worker timed the two parts.
    r.number_attrs["learn_seconds"] = fine_tune_seconds_->first;
    r.number_attrs["eval_seconds"] = fine_tune_seconds_->second;
  } else if (started_ > 0) {
    double learned = search_done_ > 0 ? search_done_ : end;
    r.number_attrs["learn_seconds"] = learned - started_;
    r.number_attrs["eval_seconds"] = end - learned;
  }
  r.number_attrs["worker_seconds"] = worker_seconds_;
  if (fine_tuned) {
    r.number_attrs["lora_ft_r"] = static_cast<double>(c.lora_ft.r);
    r.number_attrs["lora_ft_lr"] = c.lora_ft.lr;
    r.number_attrs["lora_ft_epochs"] = static_cast<double>(c.lora_ft.epochs);
  }
}

io::RunRecord RunDriver::take_record() {
  if (phase_ != Phase::kDone) core::fail("run ", spec_.id, " is not finished");
  return std::move(record_);
}

}  // namespace lorahub::search
