#pragma once
// The job-wide scheduler: activates runs up to a limit, hands out their work items in order and passes each
// finished run's record to a sink (the results file writer). Torch-free.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lorahub/core/log.h"
#include "lorahub/core/protocol.h"
#include "lorahub/io/result_store.h"
#include "lorahub/job/config.h"
#include "lorahub/job/plan.h"
#include "lorahub/search/run_driver.h"

namespace lorahub::text {
class T5Tokenizer;
}

namespace lorahub::search {

class JobDriver : public core::Scheduler {
 public:
  using RecordSink = std::function<void(const io::RunRecord&)>;
  /// `skip`: run ids already complete in the output (resume). `tokenizer` (optional) counts prompt tokens.
  /// `workers` sizes the number of runs in progress (schedule.max_active_runs, default 4 per worker).
  JobDriver(const std::vector<job::RunSpec>& runs, const job::JobConfig& config, RecordSink sink,
            const std::set<std::int64_t>& skip = {}, const text::T5Tokenizer* tokenizer = nullptr,
            std::int64_t workers = 1);
  ~JobDriver() override;

  std::optional<core::WorkItem> next() override;
  void complete(const core::WorkResult& result) override;
  bool done() const override;

  std::int64_t runs_total() const { return total_; }
  std::int64_t runs_done() const { return done_; }
  std::int64_t runs_failed() const { return failed_; }
  std::int64_t evaluations() const { return evaluations_; }

 private:
  void activate();
  void finish(std::int64_t run);

  const std::vector<job::RunSpec>& runs_;
  const job::JobConfig& config_;
  RecordSink sink_;
  const text::T5Tokenizer* tokenizer_;
  std::map<std::string, std::string> adapter_config_;
  std::deque<std::int64_t> waiting_;
  std::map<std::int64_t, std::unique_ptr<RunDriver>> active_;
  std::deque<core::WorkItem> ready_;
  std::int64_t max_active_;
  std::int64_t total_ = 0, done_ = 0, failed_ = 0, evaluations_ = 0;
  std::int64_t outstanding_ = 0;
  core::Progress progress_;
};

}  // namespace lorahub::search
