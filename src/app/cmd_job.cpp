// learn, run, export: LoraHub runs, one or thousands, serially or under MPI.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "job_runner.h"
#include "record_writer.h"
#include "staging.h"
#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/dist/comm.h"
#include "lorahub/dist/run.h"
#include "lorahub/hub/driver.h"
#include "lorahub/hub/job.h"
#include "lorahub/hub/worker.h"
#include "lorahub/io/merge.h"
#include "lorahub/io/peft_export.h"
#include "lorahub/io/result_store.h"

namespace lorahub::app {
namespace fs = std::filesystem;
using core::fail;

namespace {

// `learn` shows the search of its single run: evaluation i/budget, best loss so far, rate.
class LearnProgress : public core::Scheduler {
 public:
  LearnProgress(core::Scheduler& inner, int budget)
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

}  // namespace

JobOutcome run_job(hub::JobConfig config, Globals& globals, bool learn_mode) {
  dist::Comm comm;
  core::set_log_rank(comm.rank());
  const int threads = setup_threads(globals.threads, comm.local_size());
  JobOutcome outcome;
  std::vector<hub::RunSpec> runs;
  std::set<std::int64_t> skip;
  std::unique_ptr<io::ResultStore> store;
  // Everything that can be wrong with the configuration is found before any work, on rank 0, and reported once.
  std::string error;
  std::vector<std::string> names;  // the library's modules, listed by rank 0 only (not every rank on the shared FS)
  if (comm.is_root()) {
    try {
      config.validate();
      if (!config.resume && fs::exists(config.output)) {
        fail(config.output, " exists; pass --resume to continue it (or remove it)");
      }
      if (!config.library.empty() && fs::exists(config.library)) names = hub::library_module_names(config.library);
      runs = hub::expand_job(config, names);
      if (auto parent = fs::path(config.output).parent_path(); !parent.empty()) fs::create_directories(parent);
      store = std::make_unique<io::ResultStore>(config.output, config.resume ? io::ResultStore::Mode::kResume
                                                                             : io::ResultStore::Mode::kCreate);
      store->set_job_attrs({{"job_config", config.to_json().dump()}});
      for (const auto& r : runs) {
        if (store->has_complete_run(r.task, hub::to_string(r.method), r.seed)) skip.insert(r.id);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (auto err = comm.agree(error.empty(), error)) {
    if (comm.is_root()) throw core::Error(*err);
    throw ReportedElsewhere(*err);
  }
  std::string listed = comm.is_root() ? nlohmann::json(names).dump() : std::string();
  comm.broadcast(listed);
  if (!comm.is_root()) runs = hub::expand_job(config, nlohmann::json::parse(listed).get<std::vector<std::string>>());
  const bool inline_worker = comm.size() == 1;
  if (comm.is_root()) {
    core::log_info(core::cat(runs.size(), " runs (", skip.size(), " already complete in ", config.output, "), ",
                             comm.size() == 1 ? std::string("1 process") : core::cat(comm.size() - 1, " workers"), ", ",
                             threads, " thread(s) per process, dtype ", config.dtype));
  }

  // Workers (or the single rank) hold the model; loading errors are agreed so no rank hangs. With several
  // ranks the inputs are read once, by rank 0, and reach every node through MPI (or NCCL).
  auto load_start = std::chrono::steady_clock::now();
  std::unique_ptr<StagedInputs> staged;
  if (!inline_worker && config.broadcast) {
    staged = StagedInputs::stage(comm, config, hub::job_needs_library(config));
    if (comm.is_root()) {
      core::log_info(core::cat("inputs: ", staged->bytes() >> 20, " MiB read once and broadcast (", staged->transport(),
                               ") to every node in ", staged->seconds(), " s"));
    }
  }
  const hub::JobConfig& worker_config = staged ? staged->config() : config;
  std::unique_ptr<hub::Engine> engine;
  std::unique_ptr<hub::Worker> worker;
  if (!comm.is_root() || inline_worker) {
    try {
      torch::Device device(torch::kCPU);
      if (config.device == "cuda") {
        if (!torch::cuda::is_available()) fail("model.device = \"cuda\" but this libtorch has no CUDA device");
        device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.local_rank() % torch::cuda::device_count()));
      }
      engine = std::make_unique<hub::Engine>(hub::Engine::load(worker_config, device));
      worker = std::make_unique<hub::Worker>(*engine, runs, worker_config);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (auto err = comm.agree(error.empty(), error)) {
    if (comm.is_root()) throw core::Error(*err);
    throw ReportedElsewhere(*err);
  }

  outcome.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  if (comm.is_root()) {
    core::log_info(core::cat("model", hub::job_needs_library(config) ? " and LoRA library" : "", " loaded on every worker in ",
                             outcome.load_seconds, " s (",
                             staged ? "broadcast" : "each rank reading the files", ")"));
  }

  std::unique_ptr<hub::JobDriver> driver;
  std::unique_ptr<LearnProgress> learn_progress;
  core::Scheduler* scheduler = nullptr;
  std::optional<text::T5Tokenizer> counter;
  std::unique_ptr<RecordWriter> writer;
  if (comm.is_root()) {
    counter = text::T5Tokenizer::load(config.tokenizer_path());
    writer = std::make_unique<RecordWriter>(*store);
    driver = std::make_unique<hub::JobDriver>(
        runs, config,
        [&](const io::RunRecord& record) {
          writer->push(record);
          ++outcome.runs;
          if (record.status != "complete") ++outcome.failed;
          if (learn_mode) outcome.records.push_back(record);
        },
        skip, &*counter, std::max(1, comm.size() - 1));
    scheduler = driver.get();
    if (learn_mode) {
      learn_progress = std::make_unique<LearnProgress>(*driver, config.optimizer.budget);
      scheduler = learn_progress.get();
    }
  }
  dist::Handler handler = [&](const core::WorkItem& item) { return worker->handle(item); };
  dist::CoordinatorOptions options;
  if (writer) options.on_result = [&](const core::WorkResult&, std::size_t) { writer->check(); };
  // A failed write (a full disk) ends the job on rank 0, which has stopped the workers by then; every
  // rank learns it here and exits non-zero, with the one error printed by rank 0.
  dist::RunStats stats;
  try {
    stats = dist::run(comm, scheduler, handler, options);
    if (writer) writer->flush();
  } catch (const std::exception& e) {
    if (!comm.is_root()) throw;
    error = e.what();
  }
  if (auto err = comm.agree(error.empty(), error)) {
    if (comm.is_root()) throw core::Error(*err);
    throw ReportedElsewhere(*err);
  }
  outcome.skipped = static_cast<std::int64_t>(skip.size());
  if (comm.is_root()) core::log_info(stats.summary());
  outcome.stats = stats;
  if (driver) outcome.evaluations = driver->evaluations();
  return outcome;
}

namespace {

void add_learn_options(CLI::App* cmd, hub::JobConfig& c, std::shared_ptr<std::map<std::string, std::string>> extra) {
  cmd->add_option("--model", c.model_dir, "HF model folder (config.json + weights + spiece.model)")->required();
  cmd->add_option("--tokenizer", c.tokenizer, "spiece.model (default: <model>/spiece.model)");
  cmd->add_option("--library", c.library, "LoRA library: folder of PEFT adapter folders, or a list file")->required();
  cmd->add_option("--train", (*extra)["train"], "Few-shot pool: JSONL {input,target}/{context,completion} or BBH JSON");
  cmd->add_option("--test", (*extra)["test"], "Test examples (same formats)");
  cmd->add_option("--bbh-dir", (*extra)["bbh_dir"], "BBH folder (instead of --train/--test): <dir>/<task>.json + .txt");
  cmd->add_option("--task", (*extra)["task"], "Task name (BBH task with --bbh-dir; a label otherwise)");
  cmd->add_option("--description", (*extra)["description"], "Task description for --train/--test prompts");
  cmd->add_option("--seed", (*extra)["seed"], "Run seed: module sampling (and CMA-ES)");
  cmd->add_option("--modules", (*extra)["modules"],
                  "N modules sampled per run (default 20), or explicit modules: a,b,c or a file of names");
  cmd->add_option("--sampler", c.sampler, "cpython: replay the reference's random.sample; native")
      ->check(CLI::IsMember({"cpython", "native"}));
  cmd->add_option("--shots", c.shots, "K few-shot examples")->check(CLI::PositiveNumber);
  cmd->add_option("--shots-seed", (*extra)["shots_seed"], "Seed of the few-shot pick (reference: 42; 'run': the run seed)");
  cmd->add_option("--optimizer", c.optimizer.name, "cobyla (reference), cmaes, bobyqa, neldermead");
  cmd->add_option("--budget", c.optimizer.budget, "Objective evaluations")->check(CLI::PositiveNumber);
  cmd->add_option("--bounds", (*extra)["bounds"], "lower,upper bounds of every w (default -1.5,1.5)");
  cmd->add_option("--init", (*extra)["init"], "Start point w1,...,wN (default 0)");
  cmd->add_option("--population", c.optimizer.population, "CMA-ES population (0: 4 + 3 ln N)");
  cmd->add_option("--l1", c.l1, "L1 weight lambda of the objective");
  cmd->add_option("--batch-size", c.batch_size, "Few-shot examples per forward (0: all, as the reference)");
  cmd->add_option("--max-new-tokens", c.max_new_tokens, "Generation length for the test set");
  cmd->add_option("--eval-batch-size", c.eval_batch_size, "Test prompts per generation batch");
  cmd->add_option("--max-test", c.max_test, "Use at most this many test examples (0: all)");
  cmd->add_option("--dtype", c.dtype, "f32 (exact) or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--device", c.device, "cpu or cuda");
  cmd->add_option("--candidates-per-request", c.candidates_per_request, "Candidates per batched forward");
  cmd->add_option("--out", c.output, "Results file (HDF5)");
  cmd->add_flag("--resume", c.resume, "Append to --out, skipping runs already complete");
}

void finish_learn_config(hub::JobConfig& c, const std::map<std::string, std::string>& x) {
  auto get = [&](const char* k) {
    auto it = x.find(k);
    return it == x.end() ? std::string() : it->second;
  };
  hub::TaskSource t;
  t.name = get("task");
  if (!get("bbh_dir").empty()) {
    if (!get("train").empty() || !get("test").empty()) fail("learn: give --bbh-dir or --train/--test, not both");
    if (t.name.empty()) fail("learn: --bbh-dir needs --task NAME");
    t.bbh_dir = get("bbh_dir");
  } else {
    if (get("train").empty() || get("test").empty()) fail("learn: give --train FILE and --test FILE (or --bbh-dir and --task)");
    t.train_file = get("train");
    t.test_file = get("test");
    t.description = get("description");
    if (t.name.empty()) t.name = fs::path(t.test_file).stem().string();
  }
  c.tasks = {t};
  c.methods = {"lorahub"};
  c.seeds = {get("seed").empty() ? 1 : std::stoll(get("seed"))};
  if (!get("modules").empty()) {
    const auto names = get("modules");
    if (names.find_first_not_of("0123456789") == std::string::npos) {
      c.num_modules = std::stoll(names);
      if (c.num_modules < 1) fail("--modules must be at least 1");
    } else if (fs::is_regular_file(names)) {
      // A file of module names, one per line.
      std::ifstream in(names);
      for (std::string line; std::getline(in, line);) {
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (!line.empty() && line[0] != '#') c.modules.push_back(line);
      }
      if (c.modules.empty()) fail(names, ": no module names");
    } else {
      c.modules = split_list(names);
    }
  }
  if (!get("shots_seed").empty()) {
    if (get("shots_seed") == "run") {
      c.shots_seed.reset();
    } else {
      c.shots_seed = std::stoll(get("shots_seed"));
    }
  }
  if (!get("bounds").empty()) {
    auto b = parse_doubles(get("bounds"), "--bounds");
    if (b.size() != 2) fail("--bounds needs two numbers lower,upper");
    c.optimizer.lower = b[0];
    c.optimizer.upper = b[1];
  }
  if (!get("init").empty()) c.optimizer.init = parse_doubles(get("init"), "--init");
  c.source = "command line";
}

void select_task_shard(hub::JobConfig& config, const std::string& shard) {
  auto slash = shard.find('/');
  std::int64_t index = -1, count = 0;
  try {
    if (slash != std::string::npos) {
      index = std::stoll(shard.substr(0, slash));
      count = std::stoll(shard.substr(slash + 1));
    }
  } catch (const std::exception&) {
  }
  if (count < 1 || index < 0 || index >= count) fail("--task-shard must be I/N with 0 <= I < N, got '", shard, "'");
  std::vector<hub::TaskSource> mine;
  for (std::size_t i = 0; i < config.tasks.size(); ++i) {
    if (static_cast<std::int64_t>(i) % count == index) mine.push_back(config.tasks[i]);
  }
  if (mine.empty()) fail("--task-shard ", shard, ": the job has only ", config.tasks.size(), " tasks");
  config.tasks = std::move(mine);
}

// Damaged runs of an input are skipped, each with a warning: the merged file then lacks them, as a job
// that has yet to run them, and `lorahub run --resume` on it completes the job.
void merge_results(const std::string& out, const std::vector<std::string>& inputs) {
  io::MergeOutcome outcome = io::merge_results(out, inputs);
  for (const auto& skipped : outcome.skipped) core::log_warn(core::cat("merge: skipped ", skipped));
  core::log_info(core::cat("merged ", outcome.written, " runs from ", inputs.size(), " files into ", out,
                           outcome.skipped.empty() ? std::string()
                                                   : core::cat("; ", outcome.skipped.size(),
                                                               " damaged runs or groups skipped (rerun them with "
                                                               "`lorahub run --resume` on ", out, ")")));
}

void export_run(const std::string& results, const std::string& run, const std::string& method, const std::string& out) {
  auto slash = run.rfind('/');
  if (slash == std::string::npos) fail("--run must be TASK/SEED (e.g. boolean_expressions/1), got '", run, "'");
  std::string task = run.substr(0, slash);
  std::string seed_text = run.substr(slash + 1);
  if (seed_text.rfind("seed_", 0) == 0) seed_text = seed_text.substr(5);
  std::int64_t seed = 0;
  try {
    seed = std::stoll(seed_text);
  } catch (const std::exception&) {
    fail("--run ", run, ": '", seed_text, "' is not a seed number");
  }
  io::ResultStore store(results, io::ResultStore::Mode::kReadOnly);
  auto record = store.read_run(task, method, seed);
  io::export_peft_adapter(record, out);
  core::log_info(core::cat("exported the composed LoRA of ", task, "/", method, "/seed_", seed, " (",
                           record.composed.size() / 2, " target modules) to ", out));
}

}  // namespace

void add_job_commands(CLI::App& app, Globals& globals) {
  {
    auto* cmd = app.add_subcommand("learn", "LoraHub for one task: search coefficients on K examples, evaluate, store");
    auto config = std::make_shared<hub::JobConfig>();
    config->output = "results.h5";
    auto extra = std::make_shared<std::map<std::string, std::string>>();
    add_learn_options(cmd, *config, extra);
    cmd->callback([=, &globals] {
      finish_learn_config(*config, *extra);
      {
        auto outcome = run_job(*config, globals, /*learn_mode=*/true);
        for (const auto& r : outcome.records) {
          if (r.status != "complete") fail("task ", r.task, " seed ", r.seed, " failed: ", r.failure_reason);
          std::size_t right = 0;
          for (auto c : r.correct) right += c;
          std::cout << std::fixed << std::setprecision(4) << "task " << r.task << " seed " << r.seed << ": best loss "
                    << r.best_loss << " after " << r.history_loss.size() << " evaluations, accuracy "
                    << std::setprecision(3) << r.accuracy << " (" << right << "/" << r.correct.size() << "), learn "
                    << std::setprecision(1) << r.number_attrs.at("learn_seconds") << " s, eval "
                    << r.number_attrs.at("eval_seconds") << " s -> " << config->output << "\n";
        }
      }
    });
  }
  {
    auto* cmd = app.add_subcommand("run", "The batch solver: every run of a job (tasks x methods x seeds), 1 or N ranks");
    auto paths = std::make_shared<std::vector<std::string>>();
    auto overrides = std::make_shared<std::vector<std::string>>();
    auto output = std::make_shared<std::string>();
    auto resume = std::make_shared<bool>(false);
    auto max_test = std::make_shared<std::int64_t>(-1);
    auto shard = std::make_shared<std::string>();
    cmd->add_option("--config", *paths, "Job file(s) (TOML), layered in order: e.g. configs/flan-t5-large.toml jobs/bbh-all.toml")
        ->required();
    cmd->add_option("--set", *overrides, "Override a setting: section.key=value (repeatable)");
    cmd->add_option("--out", *output, "Results file (overrides output.path)");
    cmd->add_flag("--resume", *resume, "Continue the results file, skipping runs already complete");
    cmd->add_option("--max-test", *max_test, "At most this many test examples per task (overrides data.max_test)");
    cmd->add_option("--task-shard", *shard, "I/N: only tasks I, I+N, I+2N, ... of the job (job arrays)");
    cmd->callback([=, &globals] {
      auto config = hub::JobConfig::from_toml_files(*paths);
      config.apply_overrides(*overrides);
      if (!output->empty()) config.output = *output;
      if (*resume) config.resume = true;
      if (*max_test >= 0) config.max_test = *max_test;
      if (!shard->empty()) select_task_shard(config, *shard);
      core::log_debug("job configuration: " + config.to_json().dump());
      auto outcome = run_job(config, globals, false);
      if (core::log_rank() == 0) {
        std::cout << outcome.runs << " runs written to " << config.output << " (" << outcome.failed << " failed, "
                  << outcome.skipped << " already complete)\n";
      }
    });
  }
  {
    auto* cmd = app.add_subcommand("merge", "Combine result files (e.g. the elements of a job array) into one");
    auto out = std::make_shared<std::string>();
    auto inputs = std::make_shared<std::vector<std::string>>();
    cmd->add_option("out", *out, "New results file")->required();
    cmd->add_option("inputs", *inputs, "Result files to merge")->required();
    cmd->callback([=] { merge_results(*out, *inputs); });
  }
  {
    auto* cmd = app.add_subcommand("export", "Write a run's composed LoRA as a PEFT adapter folder");
    auto results = std::make_shared<std::string>();
    auto run = std::make_shared<std::string>();
    auto method = std::make_shared<std::string>("lorahub");
    auto out = std::make_shared<std::string>();
    cmd->add_option("results", *results, "results.h5")->required();
    cmd->add_option("--run", *run, "TASK/SEED")->required();
    cmd->add_option("--method", *method, "Method of the run (lorahub, uniform, lora-ft)");
    cmd->add_option("--out", *out, "Adapter folder to write")->required();
    cmd->callback([=] { export_run(*results, *run, *method, *out); });
  }
}

}  // namespace lorahub::app
