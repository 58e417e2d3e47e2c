#pragma once
// A job's configuration: TOML files layered in order, `--set section.key=value` overrides and `lorahub learn`'s
// flags all go through one table of settings (src/job/settings.cpp) that names each key once, with its type,
// default, check and help. Torch-free: rank 0 and the report read it without a model.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lorahub/data/shots.h"
#include "lorahub/job/methods.h"
#include "lorahub/opt/optimizer.h"

namespace lorahub::job {

enum class DType { kF32, kBF16 };               ///< "f32" (exact) | "bf16"
enum class Device { kCpu, kCuda };              ///< "cpu" | "cuda" (each rank takes the GPU of its node-local rank)
enum class PromptFormat { kAuto, kZeroShot, kInput };  ///< "auto" (BBH: zero-shot; files: input as is) | ...
/// How a run that composes N library modules picks them: "random" (the reference: CPython's random.sample with
/// the run's seed) or "loss" (every module of the library scored alone on the run's few-shot examples, the N with
/// the lowest loss kept).
enum class ModuleSelect { kRandom, kLoss };
/// Where the search starts: "init" (lorahub.init; zeros by default, the reference; the gradient methods: 1/N) or
/// "best-module" (the module a loss-ranked selection put first, alone at weight 1).
enum class SearchStart { kInit, kBestModule };
std::string to_string(DType v);
std::string to_string(Device v);
std::string to_string(PromptFormat v);
std::string to_string(data::Sampler v);
std::string to_string(ModuleSelect v);
std::string to_string(SearchStart v);

/// One task's data source: a BBH-layout task in a directory, or explicit train/test files.
struct TaskSource {
  std::string name;
  std::string bbh_dir;      ///< BBH layout: <bbh_dir>/<name>.json + .txt (or the reference's data_bbh)
  std::string train_file;   ///< files: the pool of few-shot examples (JSONL / BBH JSON)
  std::string test_file;    ///< files: the test examples
  std::string description;  ///< files: optional task description for the prompt
};

struct ModelSettings {
  std::string path;
  std::string tokenizer;  ///< empty: <path>/spiece.model
  DType dtype = DType::kF32;
  Device device = Device::kCpu;
  bool check_finite = true;  ///< reject NaN/Inf weights at load (model::RuntimeOptions::check_finite)
};

struct LibrarySettings {
  std::string path;                                ///< folder of adapter folders, or a list file
  std::int64_t modules = 20;                       ///< N modules per run
  data::Sampler sampler = data::Sampler::kCpython;  ///< kCpython replays the reference's random.sample
  ModuleSelect select = ModuleSelect::kRandom;
  std::vector<std::string> names;                  ///< explicit selection (with select = "loss": the pool)
};

struct DataSettings {
  std::string bbh_dir;  ///< where data.tasks / data.task_list names are found
  std::vector<TaskSource> tasks;
  PromptFormat prompt = PromptFormat::kAuto;
  std::int64_t max_test = 0;  ///< cap on test examples per task (0 = all)
};

struct RunSettings {
  std::vector<Method> methods = {Method::kLoraHub};
  std::vector<std::int64_t> seeds = {1, 2, 3, 4, 5};
  std::int64_t shots = 5;
  std::optional<std::int64_t> shots_seed = 42;  ///< reference: random.seed(42) shuffle; nullopt = the run's seed
  std::int64_t icl_shots = 5;
  std::int64_t max_seeds = 100;
};

struct LorahubSettings {
  opt::OptimizerOptions optimizer;  ///< name, budget, bounds, init, population, sigma (seed = the run's seed)
  SearchStart start = SearchStart::kInit;
  double l1 = 0.05;
  std::int64_t batch_size = 0;  ///< few-shot examples per forward; 0 = all at once (the reference)
};

/// The largest rank and lora_alpha an adapter may have (lora::AdapterConfig::kMaxRank / kMaxAlpha, which the
/// train module checks equal these): a fine-tuned adapter must load back.
inline constexpr std::int64_t kMaxLoraRank = 65536;
inline constexpr double kMaxLoraAlpha = 1e6;

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

struct EvalSettings {
  std::int64_t max_new_tokens = 256;
  std::int64_t batch_size = 16;
};

struct ScheduleSettings {
  std::int64_t candidates_per_request = 8;  ///< fixed chunking of a population: results never depend on rank count
  std::int64_t eval_shard = 32;             ///< test examples per evaluation request
  std::int64_t max_active_runs = 0;         ///< 0: 4 per worker
  bool broadcast = true;                    ///< with > 1 rank: rank 0 reads the inputs once and broadcasts them
};

struct OutputSettings {
  std::string path = "results.h5";
  bool resume = false;
};

/// Everything a job needs. Sections mirror the TOML tables ([model], [library], ...).
struct JobConfig {
  ModelSettings model;
  LibrarySettings library;
  DataSettings data;
  RunSettings run;
  LorahubSettings lorahub;
  FineTuneConfig lora_ft;
  EvalSettings eval;
  ScheduleSettings schedule;
  OutputSettings output;

  std::string source;  ///< the configuration's files, for messages
  /// Where each key given explicitly came from ("lorahub.budget" -> "job.toml", "--budget", "override '...'"),
  /// so that a bad value is reported against the file or flag that set it.
  std::map<std::string, std::string> origin;
  /// Hub ids resolve_sources() replaced: key -> "org/name@revision -> snapshot folder".
  std::map<std::string, std::string> resolved;
  /// Keys holding a hub id (id-shaped text that is no path relative to its file) -> that file's folder.
  std::map<std::string, std::string> hub_ids;

  /// Parses a TOML job file; unknown keys, wrong types and unreadable files are errors naming file and key.
  /// Relative paths are resolved against the file's folder.
  static JobConfig from_toml_file(const std::string& path);
  /// Layers several files: each later file sets only the keys it names (e.g. a model config, then a job).
  static JobConfig from_toml_files(const std::vector<std::string>& paths);
  static JobConfig from_toml_string(const std::string& text, const std::string& source, const std::string& base_dir);
  /// The inverse of to_json (a configuration stored in a results file). Keys it does not know are ignored, so
  /// files of other versions still read; a known key of the wrong type is an error naming `where` and the key.
  static JobConfig from_json(const nlohmann::json& j, const std::string& where);
  /// Applies "section.key=value" overrides (TOML value syntax; bare words are strings).
  void apply_overrides(const std::vector<std::string>& overrides);
  /// Sets one key ("lorahub.budget") from TOML value text ("9", "[1, 2]", "\"x\"" or a bare word); `origin`
  /// names where it came from in errors.
  void set(const std::string& key, const std::string& value, const std::string& origin);
  /// The whole configuration as JSON (stored with every run and in the results file).
  nlohmann::json to_json() const;
  /// Looks up model.path in the Hugging Face hub cache when it is a hub id (org/name[@revision]) and no existing
  /// path, offline, and replaces it by the snapshot folder; records what it did in `resolved`. Throws one line
  /// naming the key, the id, the cache folder and the download command when the id is not there. (library.path
  /// and the lines of a library list file are resolved where the library is listed: job::library_modules.)
  void resolve_sources();
  /// Checks every value and that every file exists; throws naming the key and where it was set.
  void validate() const;
  std::string tokenizer_path() const;
  /// Where `key` was set, or the configuration's source when it keeps its default.
  std::string origin_of(const std::string& key) const;
};

/// Whether any of the job's methods composes modules of the LoRA library.
bool job_needs_library(const JobConfig& config);

/// A setting of the table, for help texts and `lorahub learn`'s flags.
struct SettingInfo {
  std::string key;   ///< "lorahub.budget"
  std::string type;  ///< "integer", "number", "string", "path", "true/false", "list of ...", or "a | b | c"
  std::string help;
  std::string flag;  ///< `lorahub learn` flag ("--budget"), or "" when learn has none
  bool is_list = false;
};
/// Every key a job file may hold, in table order.
std::vector<SettingInfo> settings();

/// Turns a command-line flag's text into the TOML value text of `setting` ("0.1,0.2" -> "[0.1, 0.2]" for a
/// list, quoted for a string), for JobConfig::set.
std::string flag_to_toml(const SettingInfo& setting, const std::string& text);

}  // namespace lorahub::job
