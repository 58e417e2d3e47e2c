#include "lorahub/hub/driver.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/adapter_folders.h"
#include "lorahub/core/error.h"
#include "lorahub/data/metric.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::hub {
using core::WorkItem;
using core::WorkKind;
using core::WorkResult;

std::string software_version() { return "lorahub-hpc 0.1.0"; }

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

RunDriver::RunDriver(const RunSpec& spec, const JobConfig& config, const std::map<std::string, std::string>& adapter_config)
    : spec_(spec), config_(config), adapter_config_(adapter_config) {}

std::map<std::string, std::string> library_adapter_config(const std::string& library) {
  std::map<std::string, std::string> out;
  if (library.empty()) return out;
  auto folders = core::list_adapter_folders(library);
  auto path = folders.front() + "/adapter_config.json";
  std::ifstream in(path);
  if (!in) core::fail(path, ": cannot read");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    core::fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) core::fail(path, ": expected a JSON object");
  for (const auto& [k, v] : j.items()) out[k] = v.dump();
  return out;
}
RunDriver::~RunDriver() = default;

WorkItem RunDriver::make_item(WorkKind kind) {
  WorkItem item;
  item.run = spec_.id;
  item.seq = next_seq_++;
  item.kind = kind;
  return item;
}

std::vector<WorkItem> RunDriver::start() {
  started_ = now_s();
  start_time_ = core::utc_timestamp();
  if (!spec_.error.empty()) {
    fail_run(spec_.error);
    return {};
  }
  try {
    switch (spec_.method) {
      case Method::kLoraHub: {
        auto options = config_.optimizer;
        options.seed = static_cast<std::uint64_t>(spec_.seed);
        optimizer_ = opt::make_optimizer(options, static_cast<int>(spec_.modules.size()));
        phase_ = Phase::kSearch;
        return ask_next();
      }
      case Method::kLoraFt: {
        phase_ = Phase::kFineTune;
        auto item = make_item(WorkKind::kFineTune);
        item.begin = 0;
        item.end = static_cast<std::int64_t>(spec_.test.size());
        slots_[item.seq] = Slot{};
        ++pending_;
        return {item};
      }
      default:
        search_done_ = now_s();
        return start_evaluation();
    }
  } catch (const std::exception& e) {
    fail_run(e.what());
    return {};
  }
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
    ask_filled_.assign(ask_.size(), false);
    std::vector<WorkItem> items;
    // Fixed chunks: which candidates share a forward never depends on the number of ranks.
    const auto chunk = static_cast<std::size_t>(config_.candidates_per_request);
    for (std::size_t begin = 0; begin < ask_.size(); begin += chunk) {
      auto end = std::min(ask_.size(), begin + chunk);
      auto item = make_item(WorkKind::kFitness);
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
  const auto shard = config_.eval_shard;
  const auto total = static_cast<std::int64_t>(spec_.test.size());
  for (std::int64_t begin = 0; begin < total; begin += shard) {
    auto item = make_item(WorkKind::kEvaluate);
    if (weights) item.weights = {*weights};
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
  const auto n = spec_.modules.size();
  switch (spec_.method) {
    case Method::kLoraHub: {
      auto w = optimizer_->best_w();
      return evaluation_items(&w, true);
    }
    case Method::kUniform: {
      std::vector<double> w(n, 1.0 / static_cast<double>(n));
      return evaluation_items(&w, true);
    }
    case Method::kLoraSingle: {
      std::vector<WorkItem> items;
      for (std::size_t i = 0; i < n; ++i) {
        std::vector<double> w(n, 0.0);
        w[i] = 1.0;
        auto more = evaluation_items(&w, false);
        items.insert(items.end(), more.begin(), more.end());
      }
      return items;
    }
    default:
      return evaluation_items(nullptr, false);
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
      case WorkKind::kFitness: {
        if (phase_ != Phase::kSearch) core::fail("unexpected fitness result");
        const std::size_t offset = slot.begin;
        if (offset + result.losses.size() > ask_.size()) core::fail("fitness result ", result.seq, " has too many losses");
        for (std::size_t i = 0; i < result.losses.size(); ++i) {
          double loss = result.losses[i];
          if (!std::isfinite(loss)) {
            core::fail("non-finite loss ", loss, " at evaluation ", evaluations_ + static_cast<std::int64_t>(offset + i) + 1,
                       " (task '", spec_.task, "', seed ", spec_.seed, ")");
          }
          ask_losses_[offset + i] = loss;
          ask_filled_[offset + i] = true;
        }
        if (pending_ > 0) return {};
        if (!std::all_of(ask_filled_.begin(), ask_filled_.end(), [](bool b) { return b; })) {
          core::fail("a fitness step finished with missing losses");
        }
        optimizer_->tell(ask_losses_);
        evaluations_ += static_cast<std::int64_t>(ask_losses_.size());
        return ask_next();
      }
      case WorkKind::kEvaluate: {
        auto& preds = predictions_[slot.composition];
        const std::size_t begin = slot.begin;
        if (begin + result.predictions.size() > preds.size()) core::fail("evaluation result out of range");
        for (std::size_t i = 0; i < result.predictions.size(); ++i) preds[begin + i] = result.predictions[i];
        for (const auto& a : result.arrays) composed_.push_back(io::Matrix{a.name, a.shape, a.data});
        if (pending_ == 0) finish_evaluation();
        return {};
      }
      case WorkKind::kFineTune: {
        if (result.predictions.size() != spec_.test.size()) core::fail("fine-tuning returned the wrong number of answers");
        eval_weights_.push_back({});
        predictions_.emplace_back();
        for (const auto& p : result.predictions) predictions_.back().push_back(p);
        for (const auto& a : result.arrays) composed_.push_back(io::Matrix{a.name, a.shape, a.data});
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
  // Accuracy of every composition evaluated; the record keeps the best one (lora-single: the oracle).
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
  if (spec_.method == Method::kLoraSingle) {
    r.best_weights = eval_weights_[best];
    for (std::size_t c = 0; c < accs.size(); ++c) r.number_attrs["accuracy_" + spec_.modules[c]] = accs[c];
    r.text_attrs["best_module"] = spec_.modules[best];
  } else if (spec_.method == Method::kUniform) {
    r.best_weights = eval_weights_[best];
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
  r.task = spec_.task;
  r.method = to_string(spec_.method);
  r.seed = spec_.seed;
  r.module_names = spec_.modules;
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
    if (optimizer_->best_index() >= 0) {
      r.best_weights = optimizer_->best_w();
      r.best_loss = optimizer_->best_loss();
    }
    r.text_attrs["optimizer"] = optimizer_->name();
  }
  r.composed = composed_;
  if (!composed_.empty()) {
    if (spec_.method == Method::kLoraFt) {
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
  r.text_attrs["model_path"] = c.model_dir;
  r.text_attrs["library_path"] = c.library;
  r.text_attrs["tokenizer_path"] = c.tokenizer_path();
  r.text_attrs["software_version"] = software_version();
  r.text_attrs["start_time"] = start_time_;
  r.text_attrs["end_time"] = core::utc_timestamp();
  r.text_attrs["config"] = c.to_json().dump();
  r.text_attrs["dtype"] = c.dtype;
  r.text_attrs["sampler"] = c.sampler;
  r.text_attrs["description"] = spec_.description;
  r.number_attrs["budget"] = c.optimizer.budget;
  r.number_attrs["shots"] = static_cast<double>(spec_.train.size());
  r.number_attrs["l1"] = c.l1;
  r.number_attrs["max_new_tokens"] = static_cast<double>(c.max_new_tokens);
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
  if (spec_.method == Method::kLoraFt) {
    r.number_attrs["lora_ft_r"] = static_cast<double>(c.lora_ft.r);
    r.number_attrs["lora_ft_lr"] = c.lora_ft.lr;
    r.number_attrs["lora_ft_epochs"] = static_cast<double>(c.lora_ft.epochs);
  }
}

io::RunRecord RunDriver::take_record() {
  if (phase_ != Phase::kDone) core::fail("run ", spec_.id, " is not finished");
  return std::move(record_);
}

// ---------------------------------------------------------------------------------------------
JobDriver::JobDriver(const std::vector<RunSpec>& runs, const JobConfig& config, RecordSink sink,
                     const std::set<std::int64_t>& skip, const text::T5Tokenizer* tokenizer, std::int64_t workers)
    : runs_(runs),
      config_(config),
      sink_(std::move(sink)),
      tokenizer_(tokenizer),
      max_active_(config.max_active_runs > 0 ? config.max_active_runs : std::max<std::int64_t>(4, 4 * workers)),
      progress_("runs", 0, "run") {
  adapter_config_ = library_adapter_config(config.library);
  for (const auto& r : runs_) {
    if (!skip.count(r.id)) waiting_.push_back(r.id);
  }
  total_ = static_cast<std::int64_t>(waiting_.size());
  progress_ = core::Progress("runs", static_cast<std::size_t>(total_), "run");
}

JobDriver::~JobDriver() = default;

void JobDriver::activate() {
  while (ready_.empty() && !waiting_.empty() && static_cast<std::int64_t>(active_.size()) < max_active_) {
    auto id = waiting_.front();
    waiting_.pop_front();
    auto driver = std::make_unique<RunDriver>(runs_.at(static_cast<std::size_t>(id)), config_, adapter_config_);
    auto items = driver->start();
    active_[id] = std::move(driver);
    for (auto& i : items) ready_.push_back(std::move(i));
    if (active_[id]->finished()) finish(id);
  }
}

std::optional<WorkItem> JobDriver::next() {
  if (ready_.empty()) activate();
  if (ready_.empty()) return std::nullopt;
  auto item = std::move(ready_.front());
  ready_.pop_front();
  ++outstanding_;
  return item;
}

void JobDriver::complete(const WorkResult& result) {
  --outstanding_;
  auto it = active_.find(result.run);
  if (it == active_.end()) return;  // a failed run's late result
  auto before = it->second->evaluations();
  auto items = it->second->on_result(result);
  evaluations_ += it->second->evaluations() - before;
  for (auto& i : items) ready_.push_back(std::move(i));
  if (it->second->finished()) finish(result.run);
  const double elapsed = progress_.elapsed_s();
  progress_.update(static_cast<std::size_t>(done_),
                   core::cat(evaluations_, " evals (", elapsed > 0 ? static_cast<double>(evaluations_) / elapsed : 0.0,
                             "/s), ", active_.size(), " active", failed_ ? core::cat(", ", failed_, " failed") : ""));
}

void JobDriver::finish(std::int64_t run) {
  auto it = active_.find(run);
  auto record = it->second->take_record();
  active_.erase(it);
  // Drop queued items of a run that failed early.
  ready_.erase(std::remove_if(ready_.begin(), ready_.end(), [&](const WorkItem& w) { return w.run == run; }), ready_.end());
  if (tokenizer_ && record.status == "complete") {
    for (const auto& in : record.test_inputs) record.input_tokens.push_back(static_cast<std::int64_t>(tokenizer_->count_tokens(in)));
  }
  ++done_;
  const auto name = core::cat(record.task, "/", record.method, "/seed_", record.seed);
  if (record.status != "complete") {
    ++failed_;
    core::log_warn(core::cat("run ", name, " failed: ", record.failure_reason));
  } else {
    std::ostringstream line;
    line << "run " << name << " complete (" << done_ << "/" << total_ << "): accuracy " << std::fixed
         << std::setprecision(3) << record.accuracy;
    if (!record.history_loss.empty()) line << ", best loss " << std::setprecision(4) << record.best_loss << " after "
                                           << record.history_loss.size() << " evaluations";
    core::log_info(line.str());
  }
  sink_(record);
  if (done_ == total_) progress_.finish(core::cat(evaluations_, " evals, ", failed_, " failed"));
}

bool JobDriver::done() const { return waiting_.empty() && active_.empty(); }

}  // namespace lorahub::hub
