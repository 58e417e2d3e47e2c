#include "lorahub/runner/runner.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/job/library.h"
#include "lorahub/search/job_driver.h"
#include "lorahub/text/t5_tokenizer.h"
#include "record_writer.h"
#include "staging.h"

namespace lorahub::runner {
namespace fs = std::filesystem;
using core::fail;

namespace {

// Collective: every rank learns whether any failed; rank 0 throws the error, the others ReportedElsewhere.
void agree(const distributed::Comm& comm, const std::string& error) {
  if (auto err = comm.agree(error.empty(), error)) {
    if (comm.is_root()) throw core::Error(*err);
    throw ReportedElsewhere(*err);
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

// `learn` shows the search of its single run: evaluation i/budget, best loss so far, rate.
class SearchProgress : public core::Scheduler {
 public:
  SearchProgress(core::Scheduler& inner, int budget)
      : inner_(inner), progress_("evaluation", static_cast<std::size_t>(budget), "eval", 2.0) {}
  std::optional<core::WorkItem> next() override { return inner_.next(); }
  void complete(const core::WorkResult& r) override {
    if (r.kind == core::WorkKind::kFitness && r.ok) {
      for (double l : r.losses) best_ = std::min(best_, l);
      evals_ += r.losses.size();
      progress_.update(evals_, core::cat("best loss ", best_));
    } else if (r.kind == core::WorkKind::kEvaluate && !search_reported_) {
      search_reported_ = true;
      progress_.finish(core::cat("best loss ", best_));
    }
    inner_.complete(r);
  }
  bool done() const override { return inner_.done(); }

 private:
  core::Scheduler& inner_;
  core::Progress progress_;
  std::size_t evals_ = 0;
  double best_ = std::numeric_limits<double>::infinity();
  bool search_reported_ = false;
};

// Phase 1: the runs, the same on every rank; the results file and what it already holds, on rank 0.
struct Plan {
  std::vector<job::RunSpec> runs;
  std::set<std::int64_t> skip;  // rank 0: complete in the results file already
  std::unique_ptr<io::ResultStore> store;
};

Plan plan(const distributed::Comm& comm, const job::JobConfig& config) {
  Plan p;
  std::vector<std::string> names;  // the library's modules, listed by rank 0 only (not every rank on a shared FS)
  std::string error;
  if (comm.is_root()) {
    error = error_of([&] {
      config.validate();
      if (!config.output.resume && fs::exists(config.output.path)) {
        fail(config.output.path, " exists; pass --resume to continue it (or remove it)");
      }
      if (job::job_needs_library(config)) names = job::library_module_names(config.library.path);
      p.runs = job::expand_job(config, names);
      if (auto parent = fs::path(config.output.path).parent_path(); !parent.empty()) fs::create_directories(parent);
      p.store = std::make_unique<io::ResultStore>(
          config.output.path, config.output.resume ? io::ResultStore::Mode::kResume : io::ResultStore::Mode::kCreate);
      p.store->set_job_attrs({{"job_config", config.to_json().dump()}});
      for (const auto& r : p.runs) {
        if (p.store->has_complete_run(r.task, job::to_string(r.method), r.seed)) p.skip.insert(r.id);
      }
    });
  }
  agree(comm, error);
  std::string listed = comm.is_root() ? nlohmann::json(names).dump() : std::string();
  comm.broadcast(listed);
  if (!comm.is_root()) p.runs = job::expand_job(config, nlohmann::json::parse(listed).get<std::vector<std::string>>());
  return p;
}

// Phases 2 and 3: the inputs on every node, then the engine on every worker rank.
struct Loaded {
  std::unique_ptr<StagedInputs> staged;
  distributed::Handler handler;
};

Loaded load(distributed::Comm& comm, const job::JobConfig& config, const std::vector<job::RunSpec>& runs,
            const WorkerBackend& backend) {
  Loaded l;
  const bool inline_worker = comm.size() == 1;
  if (!inline_worker && config.schedule.broadcast) {
    l.staged = StagedInputs::stage(comm, config, job::job_needs_library(config));
    if (comm.is_root()) {
      core::log_info(core::cat("inputs: ", l.staged->bytes() >> 20, " MiB read once and broadcast (",
                               l.staged->transport(), ") to every node in ", l.staged->seconds(), " s"));
    }
  }
  const job::JobConfig& worker_config = l.staged ? l.staged->config() : config;
  std::string error;
  if (!comm.is_root() || inline_worker) {
    error = error_of([&] { l.handler = backend.load(worker_config, runs, comm.local_rank()); });
  }
  agree(comm, error);
  return l;
}

}  // namespace

JobOutcome run_job(job::JobConfig config, const RunnerOptions& options, const WorkerBackend& backend) {
  distributed::Comm comm;
  core::set_log_rank(comm.rank());
  JobOutcome outcome;
  outcome.threads = backend.setup_threads(options.threads, comm.local_size());

  // Hub ids name the same snapshot on every rank (one cache, read offline): each rank resolves them.
  agree(comm, error_of([&] { config.resolve_sources(); }));
  if (comm.is_root()) {
    for (const auto& [key, what] : config.resolved) core::log_info(core::cat(key, ": ", what));
  }
  auto p = plan(comm, config);
  if (comm.is_root()) {
    core::log_info(core::cat(p.runs.size(), " runs (", p.skip.size(), " already complete in ", config.output.path, "), ",
                             comm.size() == 1 ? std::string("1 process") : core::cat(comm.size() - 1, " workers"), ", ",
                             outcome.threads, " thread(s) per process, dtype ", job::to_string(config.model.dtype)));
  }

  const auto load_start = std::chrono::steady_clock::now();
  auto loaded = load(comm, config, p.runs, backend);
  outcome.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  if (comm.is_root()) {
    core::log_info(core::cat("model", job::job_needs_library(config) ? " and LoRA library" : "",
                             " loaded on every worker in ", outcome.load_seconds, " s (",
                             loaded.staged ? "broadcast" : "each rank reading the files", ")"));
  }

  // Phases 4 and 5: rank 0 schedules and records; the workers answer.
  std::unique_ptr<search::JobDriver> driver;
  std::unique_ptr<SearchProgress> search_progress;
  core::Scheduler* scheduler = nullptr;
  std::optional<text::T5Tokenizer> counter;
  std::unique_ptr<RecordWriter> writer;
  if (comm.is_root()) {
    counter = text::T5Tokenizer::load(config.tokenizer_path());
    writer = std::make_unique<RecordWriter>(*p.store);
    driver = std::make_unique<search::JobDriver>(
        p.runs, config,
        [&](const io::RunRecord& record) {
          writer->push(record);
          ++outcome.runs;
          if (record.status != "complete") ++outcome.failed;
          if (options.keep_records) outcome.records.push_back(record);
        },
        p.skip, &*counter, std::max(1, comm.size() - 1));
    scheduler = driver.get();
    if (options.show_search) {
      search_progress = std::make_unique<SearchProgress>(*driver, config.lorahub.optimizer.budget);
      scheduler = search_progress.get();
    }
  }
  distributed::CoordinatorOptions coordination;
  // The writer is checked after every result: a failed write (a full disk) stops the job within one work item.
  if (writer) coordination.on_result = [&](const core::WorkResult&, std::size_t) { writer->check(); };
  // Rank 0 has stopped the workers by the time it throws; every rank learns it here and exits non-zero, with the
  // one error printed by rank 0.
  std::string error;
  try {
    outcome.stats = distributed::run(comm, scheduler, loaded.handler, coordination);
    if (writer) writer->flush();
  } catch (const std::exception& e) {
    if (!comm.is_root()) throw;
    error = e.what();
  }
  agree(comm, error);
  outcome.skipped = static_cast<std::int64_t>(p.skip.size());
  if (comm.is_root()) core::log_info(outcome.stats.summary());
  if (driver) outcome.evaluations = driver->evaluations();
  return outcome;
}

int exit_on_error(const std::exception& e, const char* program, bool first_line_only) {
  if (dynamic_cast<const ReportedElsewhere*>(&e) != nullptr) return 1;
  std::string msg = e.what();
  const auto nl = msg.find('\n');
  if (first_line_only && nl != std::string::npos) msg.resize(nl);
  std::fprintf(stderr, "%s: error: %s\n", program, msg.c_str());
  return 1;
}

}  // namespace lorahub::runner
