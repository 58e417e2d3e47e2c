#pragma once
// A job: the runs (task × method × seed) one `lorahub run` or `lorahub learn` performs, expanded
// identically on every rank from one configuration, so messages carry run indices, not data.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lorahub/data/example.h"
#include "lorahub/opt/optimizer.h"

namespace lorahub::hub {

/// The methods of the paper's comparison; each run is one of them.
enum class Method { kLoraHub, kZeroShot, kIcl, kUniform, kLoraSingle, kLoraFt };
Method parse_method(const std::string& name);  ///< "lorahub", "zero-shot", "icl", "uniform", "lora-single", "lora-ft"
std::string to_string(Method m);

/// One task's data source: a BBH-layout task in a directory, or explicit train/test files.
struct TaskSource {
  std::string name;
  std::string bbh_dir;      ///< BBH layout: <bbh_dir>/<name>.json + .txt (or the reference's data_bbh)
  std::string train_file;   ///< files: the pool of few-shot examples (JSONL / BBH JSON)
  std::string test_file;    ///< files: the test examples
  std::string description;  ///< files: optional task description for the prompt
};

/// Fine-tuning settings of the `lora-ft` baseline (PEFT/HF-style LoRA training on the few-shot examples).
struct FineTuneConfig {
  std::int64_t r = 16;
  double alpha = 32;
  std::vector<std::string> targets = {"q", "v"};
  double lr = 2e-4;
  std::int64_t epochs = 40;
  std::int64_t batch_size = 5;
  double dropout = 0.05;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
};

/// Everything a job needs, from a TOML file (`lorahub run --config`) or from `lorahub learn`'s flags.
struct JobConfig {
  // [model]
  std::string model_dir;
  std::string tokenizer;  ///< default: <model_dir>/spiece.model
  std::string dtype = "f32";
  std::string device = "cpu";  ///< "cpu" or "cuda" (each rank takes the GPU of its node-local rank)
  // [library]
  std::string library;                 ///< folder of adapter folders, or a list file
  std::int64_t num_modules = 20;       ///< N modules per run
  std::string sampler = "cpython";     ///< "cpython" (the reference's random.sample) or "native"
  std::vector<std::string> modules;    ///< explicit selection (overrides sampling)
  // [data]
  std::string bbh_dir;  ///< data.bbh_dir: where data.tasks / data.task_list names are found
  std::vector<TaskSource> tasks;
  std::string prompt = "auto";         ///< "auto" (BBH: zero-shot format; files: input as is), "zero-shot", "input"
  std::int64_t max_test = 0;           ///< cap on test examples per task (0 = all)
  // [run]
  std::vector<std::string> methods = {"lorahub"};
  std::vector<std::int64_t> seeds = {1, 2, 3, 4, 5};
  std::int64_t shots = 5;
  std::optional<std::int64_t> shots_seed = 42;  ///< reference: random.seed(42) shuffle; nullopt = the run's seed
  std::int64_t icl_shots = 5;
  std::int64_t max_seeds = 100;
  // [lorahub]
  opt::OptimizerOptions optimizer;     ///< name, budget, bounds, init, population, sigma (seed = run seed)
  double l1 = 0.05;
  std::int64_t batch_size = 0;         ///< few-shot examples per forward; 0 = all at once (reference)
  // [lora_ft]
  FineTuneConfig lora_ft;
  // [eval]
  std::int64_t max_new_tokens = 256;
  std::int64_t eval_batch_size = 16;
  // [schedule]
  std::int64_t candidates_per_request = 8;  ///< fixed chunking of a population: results never depend on rank count
  std::int64_t eval_shard = 32;             ///< test examples per evaluation request
  std::int64_t max_active_runs = 0;         ///< 0: 4 per worker
  bool broadcast = true;                    ///< with >1 rank: rank 0 reads the inputs once and broadcasts them
  // [output]
  std::string output = "results.h5";
  bool resume = false;

  std::string source;  ///< the config file (for messages)

  /// Parses a TOML job file; unknown keys, wrong types and bad values are errors naming file and key.
  /// Relative paths are resolved against the file's folder.
  static JobConfig from_toml_file(const std::string& path);
  /// Layers several files: each later file sets only the keys it names (e.g. a model config, then a job).
  static JobConfig from_toml_files(const std::vector<std::string>& paths);
  static JobConfig from_toml_string(const std::string& text, const std::string& source, const std::string& base_dir);
  /// Applies "section.key=value" overrides (TOML value syntax) on top of this configuration.
  void apply_overrides(const std::vector<std::string>& overrides);
  /// The whole configuration as JSON (stored with every run).
  nlohmann::json to_json() const;
  /// Checks values and that every file exists; throws naming the key or file.
  void validate() const;
  std::string tokenizer_path() const;
};

/// Whether any of the job's methods composes modules of the LoRA library (lorahub, uniform, lora-single).
bool job_needs_library(const JobConfig& config);

/// One run: everything a worker needs to prepare it, derived deterministically from the job.
struct RunSpec {
  std::int64_t id = 0;  ///< index in the job
  std::string task;
  Method method = Method::kLoraHub;
  std::int64_t seed = 0;
  std::string description;
  std::vector<data::Example> train;  ///< few-shot examples, prompts formatted
  std::vector<data::Example> test;   ///< test prompts and targets
  std::vector<std::string> modules;  ///< selected module names (lorahub, uniform, lora-single)
  std::string error;                 ///< non-empty: the run cannot be prepared (bad task data...)
};

/// Expands tasks × methods × seeds into runs, loading every task's data and choosing modules and shots.
/// `library_names` is the library's module names in order. A task whose data cannot be loaded yields runs
/// with `error` set (they are recorded as failed), so other tasks go on.
std::vector<RunSpec> expand_job(const JobConfig& config, const std::vector<std::string>& library_names);

/// Module folders of a library (a folder of adapter folders sorted by name, or a list file whose relative
/// lines are resolved against its folder), without loading any weights. A module's name is its folder name.
std::vector<std::string> library_module_folders(const std::string& source);
std::vector<std::string> library_module_names(const std::string& source);

/// Module indices chosen for a run: random.sample(range(n), k) with CPython's generator ("cpython") or the
/// native generator, seeded with `seed`.
std::vector<std::size_t> choose_modules(std::size_t n, std::size_t k, std::int64_t seed, const std::string& sampler);

}  // namespace lorahub::hub
