// learn, run, merge, export: LoraHub runs, one or thousands, serially or under MPI (the runner does the work).
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/io/merge.h"
#include "lorahub/io/peft_export.h"
#include "lorahub/io/result_store.h"
#include "lorahub/job/config.h"
#include "lorahub/runner/runner.h"
#include "lorahub/worker/backend.h"

namespace lorahub::app {
namespace fs = std::filesystem;
using core::fail;

namespace {

// `learn`'s own flags: the task and the module selection, which are not single settings.
struct LearnFlags {
  std::string train, test, bbh_dir, task, description, seed, modules, bounds;
  std::map<std::string, std::string> settings;  // setting key -> flag text, for the flags the settings table names
  std::map<std::string, bool> switches;         // the same for true/false settings
};

void add_learn_options(CLI::App* cmd, LearnFlags& f) {
  cmd->add_option("--train", f.train, "Few-shot pool: JSONL {input,target}/{context,completion} or BBH JSON");
  cmd->add_option("--test", f.test, "Test examples (same formats)");
  cmd->add_option("--bbh-dir", f.bbh_dir, "BBH folder (instead of --train/--test): <dir>/<task>.json + .txt");
  cmd->add_option("--task", f.task, "Task name (BBH task with --bbh-dir; a label otherwise)");
  cmd->add_option("--description", f.description, "Task description for --train/--test prompts");
  cmd->add_option("--seed", f.seed, "Run seed: module sampling (and CMA-ES)");
  cmd->add_option("--modules", f.modules,
                  "N modules sampled per run (default 20), or explicit modules: a,b,c or a file of names");
  cmd->add_option("--bounds", f.bounds, "lower,upper bounds of every w (default -1.5,1.5)");
  // Every other flag is a setting of the job table, checked and reported as the setting it sets.
  for (const auto& s : job::settings()) {
    if (s.flag.empty()) continue;
    if (s.type == "true/false") {
      cmd->add_flag(s.flag, f.switches[s.key], s.help + " (" + s.key + ")");
    } else {
      cmd->add_option(s.flag, f.settings[s.key], s.help + " (" + s.key + ")");
    }
  }
}

job::JobConfig learn_config(const LearnFlags& f, const CLI::App& cmd) {
  job::JobConfig c;
  c.source = "command line";
  c.output.path = "results.h5";
  for (const auto& s : job::settings()) {
    if (s.flag.empty() || cmd.count(s.flag) == 0) continue;
    if (s.type == "true/false") {
      c.set(s.key, f.switches.at(s.key) ? "true" : "false", s.flag);
    } else {
      c.set(s.key, job::flag_to_toml(s, f.settings.at(s.key)), s.flag);
    }
  }
  job::TaskSource t;
  t.name = f.task;
  if (!f.bbh_dir.empty()) {
    if (!f.train.empty() || !f.test.empty()) fail("learn: give --bbh-dir or --train/--test, not both");
    if (t.name.empty()) fail("learn: --bbh-dir needs --task NAME");
    t.bbh_dir = f.bbh_dir;
  } else {
    if (f.train.empty() || f.test.empty()) fail("learn: give --train FILE and --test FILE (or --bbh-dir and --task)");
    t.train_file = f.train;
    t.test_file = f.test;
    t.description = f.description;
    if (t.name.empty()) t.name = fs::path(t.test_file).stem().string();
  }
  c.data.tasks = {t};
  c.run.methods = {job::Method::kLoraHub};
  c.set("run.seeds", "[" + (f.seed.empty() ? std::string("1") : f.seed) + "]", "--seed");
  if (!f.modules.empty()) {
    if (f.modules.find_first_not_of("0123456789") == std::string::npos) {
      c.set("library.modules", f.modules, "--modules");
    } else if (fs::is_regular_file(f.modules)) {
      // A file of module names, one per line.
      std::ifstream in(f.modules);
      for (std::string line; std::getline(in, line);) {
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (!line.empty() && line[0] != '#') c.library.names.push_back(line);
      }
      if (c.library.names.empty()) fail(f.modules, ": no module names");
      c.origin["library.names"] = "--modules " + f.modules;
    } else {
      c.library.names = split_list(f.modules);
      c.origin["library.names"] = "--modules";
    }
  }
  if (!f.bounds.empty()) {
    auto b = parse_doubles(f.bounds, "--bounds");
    if (b.size() != 2) fail("--bounds needs two numbers lower,upper");
    c.lorahub.optimizer.lower = b[0];
    c.lorahub.optimizer.upper = b[1];
    c.origin["lorahub.lower"] = c.origin["lorahub.upper"] = "--bounds";
  }
  return c;
}

void select_task_shard(job::JobConfig& config, const std::string& shard) {
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
  std::vector<job::TaskSource> mine;
  for (std::size_t i = 0; i < config.data.tasks.size(); ++i) {
    if (static_cast<std::int64_t>(i) % count == index) mine.push_back(config.data.tasks[i]);
  }
  if (mine.empty()) fail("--task-shard ", shard, ": the job has only ", config.data.tasks.size(), " tasks");
  config.data.tasks = std::move(mine);
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

void export_run(const std::string& results, const std::string& run, const std::string& method, const std::string& out,
                const io::PeftExportOptions& options) {
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
  auto report = io::export_peft_adapter(record, out, options);
  for (const auto& w : report.warnings) core::log_warn(w);
  core::log_info(core::cat("exported the composed LoRA of ", task, "/", method, "/seed_", seed, " (",
                           record.composed.size() / 2, " target modules) to ", out, "; adapter_config.json loads in PEFT >= ",
                           report.min_peft_version));
}

}  // namespace

void add_job_commands(CLI::App& app, Globals& globals) {
  {
    auto* cmd = app.add_subcommand("learn", "LoraHub for one task: search coefficients on K examples, evaluate, store");
    auto flags = std::make_shared<LearnFlags>();
    add_learn_options(cmd, *flags);
    cmd->callback([=, &globals] {
      auto config = learn_config(*flags, *cmd);
      runner::RunnerOptions options;
      options.threads = globals.threads;
      options.show_search = options.keep_records = true;
      auto outcome = runner::run_job(config, options, worker::backend());
      for (const auto& r : outcome.records) {
        if (r.status != "complete") fail("task ", r.task, " seed ", r.seed, " failed: ", r.failure_reason);
        std::size_t right = 0;
        for (auto c : r.correct) right += c;
        std::cout << std::fixed << std::setprecision(4) << "task " << r.task << " seed " << r.seed << ": best loss "
                  << r.best_loss << " after " << r.history_loss.size() << " evaluations, accuracy "
                  << std::setprecision(3) << r.accuracy << " (" << right << "/" << r.correct.size() << "), learn "
                  << std::setprecision(1) << r.number_attrs.at("learn_seconds") << " s, eval "
                  << r.number_attrs.at("eval_seconds") << " s -> " << config.output.path << "\n";
      }
    });
  }
  {
    auto* cmd = app.add_subcommand("run", "The batch solver: every run of a job (tasks x methods x seeds), 1 or N ranks");
    auto paths = std::make_shared<std::vector<std::string>>();
    auto overrides = std::make_shared<std::vector<std::string>>();
    auto output = std::make_shared<std::string>();
    auto resume = std::make_shared<bool>(false);
    auto max_test = std::make_shared<std::string>();
    auto shard = std::make_shared<std::string>();
    cmd->add_option("--config", *paths, "Job file(s) (TOML), layered in order: e.g. configs/flan-t5-large.toml jobs/bbh-all.toml")
        ->required();
    cmd->add_option("--set", *overrides, "Override a setting: section.key=value (repeatable)");
    cmd->add_option("--out", *output, "Results file (overrides output.path)");
    cmd->add_flag("--resume", *resume, "Continue the results file, skipping runs already complete");
    cmd->add_option("--max-test", *max_test, "At most this many test examples per task (overrides data.max_test)");
    cmd->add_option("--task-shard", *shard, "I/N: only tasks I, I+N, I+2N, ... of the job (job arrays)");
    cmd->callback([=, &globals] {
      auto config = job::JobConfig::from_toml_files(*paths);
      config.apply_overrides(*overrides);
      if (!output->empty()) config.set("output.path", nlohmann::json(*output).dump(), "--out");
      if (*resume) config.set("output.resume", "true", "--resume");
      if (!max_test->empty()) config.set("data.max_test", *max_test, "--max-test");
      if (!shard->empty()) select_task_shard(config, *shard);
      core::log_debug("job configuration: " + config.to_json().dump());
      runner::RunnerOptions options;
      options.threads = globals.threads;
      auto outcome = runner::run_job(config, options, worker::backend());
      if (core::log_rank() == 0) {
        std::cout << outcome.runs << " runs written to " << config.output.path << " (" << outcome.failed << " failed, "
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
    auto options = std::make_shared<io::PeftExportOptions>();
    cmd->add_option("results", *results, "results.h5")->required();
    cmd->add_option("--run", *run, "TASK/SEED")->required();
    cmd->add_option("--method", *method, "Method of the run (lorahub, uniform, lora-ft)");
    cmd->add_option("--out", *out, "Adapter folder to write")->required();
    cmd->add_option("--peft-version", options->peft_version,
                    "Write the adapter_config.json fields of this PEFT release (default: those every PEFT >= 0.5 reads)");
    cmd->add_option("--base-model", options->base_model,
                    "base_model_name_or_path to record (default: the run's model, as a hub id when it came from the cache)");
    cmd->callback([=] { export_run(*results, *run, *method, *out, *options); });
  }
}

}  // namespace lorahub::app
