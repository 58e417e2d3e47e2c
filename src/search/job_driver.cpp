#include "lorahub/search/job_driver.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "lorahub/core/error.h"
#include "lorahub/job/library.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::search {
using core::WorkItem;
using core::WorkResult;

JobDriver::JobDriver(const std::vector<job::RunSpec>& runs, const job::JobConfig& config, RecordSink sink,
                     const std::set<std::int64_t>& skip, const text::T5Tokenizer* tokenizer, std::int64_t workers)
    : runs_(runs),
      config_(config),
      sink_(std::move(sink)),
      tokenizer_(tokenizer),
      max_active_(config.schedule.max_active_runs > 0 ? config.schedule.max_active_runs
                                                      : std::max<std::int64_t>(4, 4 * workers)),
      progress_("runs", 0, "run") {
  if (job::job_needs_library(config)) adapter_config_ = job::library_adapter_config(config.library.path);
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

}  // namespace lorahub::search
