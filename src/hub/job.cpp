#include "lorahub/hub/job.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "lorahub/core/adapter_folders.h"
#include "lorahub/core/error.h"
#include "lorahub/core/random.h"
#include "lorahub/data/bbh.h"
#include "lorahub/data/prompt.h"
#include "lorahub/data/shots.h"
#include "lorahub/data/task_list.h"

namespace lorahub::hub {
namespace fs = std::filesystem;
using core::fail;

Method parse_method(const std::string& name) {
  if (name == "lorahub") return Method::kLoraHub;
  if (name == "zero-shot" || name == "zero_shot") return Method::kZeroShot;
  if (name == "icl") return Method::kIcl;
  if (name == "uniform") return Method::kUniform;
  if (name == "lora-single" || name == "lora_single") return Method::kLoraSingle;
  if (name == "lora-ft" || name == "lora_ft") return Method::kLoraFt;
  fail("unknown method '", name, "' (expected lorahub, zero-shot, icl, uniform, lora-single or lora-ft)");
}

std::string to_string(Method m) {
  switch (m) {
    case Method::kLoraHub: return "lorahub";
    case Method::kZeroShot: return "zero-shot";
    case Method::kIcl: return "icl";
    case Method::kUniform: return "uniform";
    case Method::kLoraSingle: return "lora-single";
    case Method::kLoraFt: return "lora-ft";
  }
  return "?";
}

namespace {

// Reads one TOML table, remembering which keys were used so unknown ones are reported.
class Section {
 public:
  Section(const toml::table* table, std::string name, std::string source)
      : table_(table), name_(std::move(name)), source_(std::move(source)) {}

  bool has(const char* key) const { return table_ && table_->contains(key); }
  /// Marks a key read elsewhere as known.
  void mark(const char* key) { used_.insert(key); }

  template <class T>
  void get(const char* key, T& out) {
    used_.insert(key);
    if (!table_) return;
    const toml::node* node = table_->get(key);
    if (!node) return;
    if constexpr (std::is_same_v<T, std::string>) {
      auto v = node->value<std::string>();
      if (!v) bad(key, "a string", *node);
      out = *v;
    } else if constexpr (std::is_same_v<T, bool>) {
      auto v = node->value<bool>();
      if (!v) bad(key, "true or false", *node);
      out = *v;
    } else if constexpr (std::is_same_v<T, double>) {
      if (!node->is_number()) bad(key, "a number", *node);
      out = *node->value<double>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!node->is_integer()) bad(key, "an integer", *node);
      out = static_cast<T>(*node->value<std::int64_t>());
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      out.clear();
      if (auto s = node->value<std::string>()) {
        out.push_back(*s);
        return;
      }
      auto* arr = node->as_array();
      if (!arr) bad(key, "a list of strings", *node);
      for (const auto& e : *arr) {
        auto v = e.value<std::string>();
        if (!v) bad(key, "a list of strings", *node);
        out.push_back(*v);
      }
    } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
      out.clear();
      auto* arr = node->as_array();
      if (!arr) bad(key, "a list of integers", *node);
      for (const auto& e : *arr) {
        if (!e.is_integer()) bad(key, "a list of integers", *node);
        out.push_back(*e.value<std::int64_t>());
      }
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      out.clear();
      auto* arr = node->as_array();
      if (!arr) bad(key, "a list of numbers", *node);
      for (const auto& e : *arr) {
        if (!e.is_number()) bad(key, "a list of numbers", *node);
        out.push_back(*e.value<double>());
      }
    }
  }

  void path(const char* key, std::string& out, const std::string& base_dir) {
    get(key, out);
    if (!out.empty() && has(key) && fs::path(out).is_relative()) out = (fs::path(base_dir) / out).lexically_normal().string();
  }

  void check_unknown() const {
    if (!table_) return;
    for (const auto& [k, v] : *table_) {
      std::string key(k.str());
      if (!used_.count(key)) {
        std::string known;
        for (const auto& u : used_) known += (known.empty() ? "" : ", ") + u;
        fail(source_, ": unknown key '", name_.empty() ? "" : name_ + ".", key, "' (known: ", known, ")");
      }
    }
  }

 private:
  [[noreturn]] void bad(const char* key, const char* what, const toml::node& node) const {
    std::ostringstream os;
    if (auto v = node.value<std::string>()) {
      os << '"' << *v << '"';
    } else if (node.is_integer() || node.is_floating_point()) {
      os << *node.value<double>();
    } else if (auto b = node.value<bool>()) {
      os << (*b ? "true" : "false");
    } else {
      os << "a " << node.type();
    }
    fail(source_, ": key '", name_.empty() ? "" : name_ + ".", key, "' must be ", what, ", got ", os.str());
  }
  const toml::table* table_;
  std::string name_;
  std::string source_;
  std::set<std::string> used_;
};

const toml::table* subtable(const toml::table& root, const char* name, const std::string& source) {
  const toml::node* n = root.get(name);
  if (!n) return nullptr;
  if (!n->is_table()) fail(source, ": '", name, "' must be a table ([", name, "])");
  return n->as_table();
}

void parse_into(JobConfig& c, const toml::table& root, const std::string& source, const std::string& base) {
  static const std::set<std::string> kSections = {"model", "library", "data", "run", "lorahub", "lora_ft",
                                                  "eval", "schedule", "output"};
  for (const auto& [k, v] : root) {
    if (!kSections.count(std::string(k.str()))) {
      fail(source, ": unknown section '", k.str(), "' (expected model, library, data, run, lorahub, lora_ft, eval, ",
           "schedule, output)");
    }
  }
  if (root.contains("model")) {
    Section s(subtable(root, "model", source), "model", source);
    s.path("path", c.model_dir, base);
    s.path("tokenizer", c.tokenizer, base);
    s.get("dtype", c.dtype);
    s.get("device", c.device);
    s.check_unknown();
  }
  if (root.contains("library")) {
    Section s(subtable(root, "library", source), "library", source);
    s.path("path", c.library, base);
    s.get("modules", c.num_modules);
    s.get("sampler", c.sampler);
    s.get("names", c.modules);
    s.check_unknown();
  }
  if (root.contains("data")) {
    const toml::table* t = subtable(root, "data", source);
    Section s(t, "data", source);
    std::string task_list;
    std::vector<std::string> task_names;
    s.path("bbh_dir", c.bbh_dir, base);
    const std::string& bbh_dir = c.bbh_dir;
    s.get("tasks", task_names);
    s.path("task_list", task_list, base);
    s.get("prompt", c.prompt);
    s.get("max_test", c.max_test);
    // [[data.task]] entries: explicit files.
    std::vector<TaskSource> explicit_tasks;
    if (t && t->contains("task")) {
      const auto* arr = t->get("task")->as_array();
      if (!arr) fail(source, ": 'data.task' must be an array of tables ([[data.task]])");
      for (const auto& e : *arr) {
        if (!e.is_table()) fail(source, ": 'data.task' entries must be tables");
        Section ts(e.as_table(), "data.task", source);
        TaskSource src;
        ts.get("name", src.name);
        ts.path("train", src.train_file, base);
        ts.path("test", src.test_file, base);
        ts.get("description", src.description);
        ts.path("bbh_dir", src.bbh_dir, base);
        ts.check_unknown();
        if (src.name.empty()) fail(source, ": a [[data.task]] entry has no name");
        explicit_tasks.push_back(src);
      }
    }
    s.mark("task");  // [[data.task]], read above
    s.check_unknown();
    if (!task_list.empty()) {
      for (auto& name : data::read_task_list(task_list)) task_names.push_back(std::move(name));
    }
    if (!task_names.empty() && bbh_dir.empty()) fail(source, ": data.tasks needs data.bbh_dir");
    if (s.has("bbh_dir") && task_names.empty() && task_list.empty()) {
      task_names = data::list_bbh_tasks(bbh_dir);  // every task in the folder
    }
    // An override of another data key (e.g. data.max_test) keeps the task list.
    if (s.has("bbh_dir") || s.has("tasks") || s.has("task_list") || s.has("task")) {
      c.tasks.clear();
      for (const auto& n : task_names) c.tasks.push_back(TaskSource{n, bbh_dir, "", "", ""});
      for (auto& e : explicit_tasks) c.tasks.push_back(e);
    }
  }
  if (root.contains("run")) {
    Section s(subtable(root, "run", source), "run", source);
    s.get("methods", c.methods);
    s.get("seeds", c.seeds);
    s.get("shots", c.shots);
    if (s.has("shots_seed")) {
      std::string mode;
      const auto* t = subtable(root, "run", source);
      if (t->get("shots_seed")->is_string()) {
        s.get("shots_seed", mode);
        if (mode != "run") fail(source, ": run.shots_seed must be an integer or \"run\", got \"", mode, "\"");
        c.shots_seed.reset();
      } else {
        std::int64_t v = 0;
        s.get("shots_seed", v);
        c.shots_seed = v;
      }
    } else {
      std::int64_t ignored = 0;
      s.get("shots_seed", ignored);
    }
    s.get("icl_shots", c.icl_shots);
    s.get("max_seeds", c.max_seeds);
    s.check_unknown();
  }
  if (root.contains("lorahub")) {
    Section s(subtable(root, "lorahub", source), "lorahub", source);
    s.get("optimizer", c.optimizer.name);
    s.get("budget", c.optimizer.budget);
    s.get("lower", c.optimizer.lower);
    s.get("upper", c.optimizer.upper);
    s.get("init", c.optimizer.init);
    s.get("population", c.optimizer.population);
    s.get("sigma", c.optimizer.sigma);
    s.get("l1", c.l1);
    s.get("batch_size", c.batch_size);
    s.check_unknown();
  }
  if (root.contains("lora_ft")) {
    Section s(subtable(root, "lora_ft", source), "lora_ft", source);
    s.get("r", c.lora_ft.r);
    s.get("alpha", c.lora_ft.alpha);
    s.get("targets", c.lora_ft.targets);
    s.get("lr", c.lora_ft.lr);
    s.get("epochs", c.lora_ft.epochs);
    s.get("batch_size", c.lora_ft.batch_size);
    s.get("dropout", c.lora_ft.dropout);
    s.get("weight_decay", c.lora_ft.weight_decay);
    s.get("max_grad_norm", c.lora_ft.max_grad_norm);
    s.check_unknown();
  }
  if (root.contains("eval")) {
    Section s(subtable(root, "eval", source), "eval", source);
    s.get("max_new_tokens", c.max_new_tokens);
    s.get("batch_size", c.eval_batch_size);
    s.check_unknown();
  }
  if (root.contains("schedule")) {
    Section s(subtable(root, "schedule", source), "schedule", source);
    s.get("candidates_per_request", c.candidates_per_request);
    s.get("eval_shard", c.eval_shard);
    s.get("max_active_runs", c.max_active_runs);
    s.get("broadcast", c.broadcast);
    s.check_unknown();
  }
  if (root.contains("output")) {
    Section s(subtable(root, "output", source), "output", source);
    s.path("path", c.output, base);
    s.get("resume", c.resume);
    s.check_unknown();
  }
}

toml::table parse_toml(const std::string& text, const std::string& source) {
  try {
    return toml::parse(std::string_view(text), std::string_view(source));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    fail(source, ":", b.line, ":", b.column, ": invalid TOML: ", e.description());
  }
}

}  // namespace

JobConfig JobConfig::from_toml_string(const std::string& text, const std::string& source, const std::string& base_dir) {
  JobConfig c;
  c.source = source;
  auto root = parse_toml(text, source);
  parse_into(c, root, source, base_dir);
  return c;
}

JobConfig JobConfig::from_toml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read the job configuration");
  std::ostringstream os;
  os << in.rdbuf();
  auto base = fs::absolute(fs::path(path)).parent_path().string();
  return from_toml_string(os.str(), path, base);
}

JobConfig JobConfig::from_toml_files(const std::vector<std::string>& paths) {
  if (paths.empty()) fail("no job configuration given");
  JobConfig c = from_toml_file(paths.front());
  for (std::size_t i = 1; i < paths.size(); ++i) {
    std::ifstream in(paths[i], std::ios::binary);
    if (!in) fail(paths[i], ": cannot read the job configuration");
    std::ostringstream os;
    os << in.rdbuf();
    parse_into(c, parse_toml(os.str(), paths[i]), paths[i], fs::absolute(fs::path(paths[i])).parent_path().string());
  }
  std::string all;
  for (const auto& p : paths) all += (all.empty() ? "" : " + ") + p;
  c.source = all;
  return c;
}

void JobConfig::apply_overrides(const std::vector<std::string>& overrides) {
  // Each "section.key=value" becomes a one-key TOML document applied over a copy of this config.
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      fail("override '", o, "' must look like section.key=value (e.g. lorahub.budget=20)");
    }
    std::string section = o.substr(0, dot);
    std::string key = o.substr(dot + 1, eq - dot - 1);
    std::string value = o.substr(eq + 1);
    // Bare words become strings so paths and names need no quotes on the command line.
    auto doc_for = [&](const std::string& v) { return "[" + section + "]\n" + key + " = " + v + "\n"; };
    toml::table root;
    try {
      root = toml::parse(std::string_view(doc_for(value)), std::string_view("override"));
    } catch (const toml::parse_error&) {
      root = parse_toml(doc_for(nlohmann::json(value).dump()), "override '" + o + "'");
    }
    parse_into(*this, root, "override '" + o + "'", fs::current_path().string());
  }
}

std::string JobConfig::tokenizer_path() const {
  return tokenizer.empty() ? (fs::path(model_dir) / "spiece.model").string() : tokenizer;
}

nlohmann::json JobConfig::to_json() const {
  nlohmann::json tasks_json = nlohmann::json::array();
  for (const auto& t : tasks) {
    tasks_json.push_back({{"name", t.name}, {"bbh_dir", t.bbh_dir}, {"train", t.train_file}, {"test", t.test_file},
                          {"description", t.description}});
  }
  nlohmann::json j;
  j["model"] = {{"path", model_dir}, {"tokenizer", tokenizer_path()}, {"dtype", dtype}, {"device", device}};
  j["library"] = {{"path", library}, {"modules", num_modules}, {"sampler", sampler}, {"names", modules}};
  j["data"] = {{"tasks", tasks_json}, {"prompt", prompt}, {"max_test", max_test}};
  j["run"] = {{"methods", methods}, {"seeds", seeds}, {"shots", shots},
              {"shots_seed", shots_seed ? nlohmann::json(*shots_seed) : nlohmann::json("run")},
              {"icl_shots", icl_shots}, {"max_seeds", max_seeds}};
  j["lorahub"] = {{"optimizer", optimizer.name}, {"budget", optimizer.budget}, {"lower", optimizer.lower},
                  {"upper", optimizer.upper}, {"init", optimizer.init}, {"population", optimizer.population},
                  {"sigma", optimizer.sigma}, {"l1", l1}, {"batch_size", batch_size}};
  j["lora_ft"] = {{"r", lora_ft.r}, {"alpha", lora_ft.alpha}, {"targets", lora_ft.targets}, {"lr", lora_ft.lr},
                  {"epochs", lora_ft.epochs}, {"batch_size", lora_ft.batch_size}, {"dropout", lora_ft.dropout},
                  {"weight_decay", lora_ft.weight_decay}, {"max_grad_norm", lora_ft.max_grad_norm}};
  j["eval"] = {{"max_new_tokens", max_new_tokens}, {"batch_size", eval_batch_size}};
  j["schedule"] = {{"candidates_per_request", candidates_per_request}, {"eval_shard", eval_shard},
                   {"max_active_runs", max_active_runs}, {"broadcast", broadcast}};
  j["output"] = {{"path", output}, {"resume", resume}};
  return j;
}

void JobConfig::validate() const {
  const std::string& src = source.empty() ? std::string("configuration") : source;
  if (model_dir.empty()) fail(src, ": model.path is not set");
  if (!fs::is_directory(model_dir)) fail(src, ": model.path '", model_dir, "' is not a folder");
  if (!fs::exists(fs::path(model_dir) / "config.json")) fail(src, ": model.path '", model_dir, "' has no config.json");
  if (!fs::exists(tokenizer_path())) fail(src, ": tokenizer '", tokenizer_path(), "' does not exist (model.tokenizer)");
  if (dtype != "f32" && dtype != "bf16") fail(src, ": model.dtype must be \"f32\" or \"bf16\", got \"", dtype, "\"");
  if (device != "cpu" && device != "cuda") fail(src, ": model.device must be \"cpu\" or \"cuda\", got \"", device, "\"");
  if (methods.empty()) fail(src, ": run.methods is empty");
  std::set<std::string> seen_methods;
  for (const auto& m : methods) {
    auto method = parse_method(m);
    if (!seen_methods.insert(to_string(method)).second) fail(src, ": run.methods lists '", m, "' twice");
  }
  if (job_needs_library(*this)) {
    if (library.empty()) fail(src, ": library.path is not set (needed by ", "the lorahub/uniform/lora-single methods)");
    if (!fs::exists(library)) fail(src, ": library.path '", library, "' does not exist");
  }
  if (sampler != "cpython" && sampler != "native") fail(src, ": library.sampler must be \"cpython\" or \"native\"");
  if (num_modules < 1) fail(src, ": library.modules must be >= 1");
  if (tasks.empty()) fail(src, ": no tasks (set data.bbh_dir with data.tasks / data.task_list, or [[data.task]])");
  std::set<std::string> names;
  for (const auto& t : tasks) {
    if (!names.insert(t.name).second) fail(src, ": task '", t.name, "' is listed twice");
    if (!t.train_file.empty() || !t.test_file.empty()) {
      if (t.train_file.empty() || t.test_file.empty()) fail(src, ": task '", t.name, "' needs both train and test files");
      for (const auto* f : {&t.train_file, &t.test_file}) {
        if (!fs::exists(*f)) fail(src, ": task '", t.name, "': file '", *f, "' does not exist");
      }
    } else {
      if (t.bbh_dir.empty() || !fs::is_directory(t.bbh_dir)) {
        fail(src, ": task '", t.name, "': BBH folder '", t.bbh_dir, "' does not exist (data.bbh_dir)");
      }
      if (!fs::exists(fs::path(t.bbh_dir) / (t.name + ".json")) && !fs::is_directory(fs::path(t.bbh_dir) / t.name)) {
        fail(src, ": task '", t.name, "' has no data in '", t.bbh_dir, "' (expected ", t.name, ".json)");
      }
    }
  }
  if (seeds.empty()) fail(src, ": run.seeds is empty");
  if (static_cast<std::int64_t>(seeds.size()) > max_seeds) {
    fail(src, ": run.seeds has ", seeds.size(), " seeds, more than run.max_seeds = ", max_seeds);
  }
  std::set<std::int64_t> s(seeds.begin(), seeds.end());
  if (s.size() != seeds.size()) fail(src, ": run.seeds has duplicates");
  for (auto x : seeds) {
    if (x < 0) fail(src, ": run.seeds must be non-negative, got ", x);
  }
  if (shots < 1) fail(src, ": run.shots must be >= 1");
  if (icl_shots < 0) fail(src, ": run.icl_shots must be >= 0");
  if (prompt != "auto" && prompt != "zero-shot" && prompt != "input") {
    fail(src, ": data.prompt must be \"auto\", \"zero-shot\" or \"input\"");
  }
  auto names_opt = opt::optimizer_names();
  if (std::find(names_opt.begin(), names_opt.end(), optimizer.name) == names_opt.end()) {
    std::string all;
    for (const auto& n : names_opt) all += (all.empty() ? "" : ", ") + n;
    fail(src, ": lorahub.optimizer '", optimizer.name, "' is unknown (", all, ")");
  }
  if (optimizer.budget < 1) fail(src, ": lorahub.budget must be >= 1");
  if (!(optimizer.lower < optimizer.upper)) fail(src, ": lorahub.lower must be below lorahub.upper");
  if (l1 < 0) fail(src, ": lorahub.l1 must be >= 0");
  if (batch_size < 0) fail(src, ": lorahub.batch_size must be >= 0");
  if (max_new_tokens < 1) fail(src, ": eval.max_new_tokens must be >= 1");
  if (eval_batch_size < 1) fail(src, ": eval.batch_size must be >= 1");
  if (candidates_per_request < 1) fail(src, ": schedule.candidates_per_request must be >= 1");
  if (eval_shard < 1) fail(src, ": schedule.eval_shard must be >= 1");
  if (max_test < 0) fail(src, ": data.max_test must be >= 0");
  if (output.empty()) fail(src, ": output.path is empty");
}

bool job_needs_library(const JobConfig& config) {
  for (const auto& m : config.methods) {
    auto method = parse_method(m);
    if (method == Method::kLoraHub || method == Method::kUniform || method == Method::kLoraSingle) return true;
  }
  return false;
}

std::vector<std::string> library_module_folders(const std::string& source) {
  return core::list_adapter_folders(source);
}

std::vector<std::string> library_module_names(const std::string& source) {
  std::vector<std::string> names;
  for (const auto& f : library_module_folders(source)) names.push_back(fs::path(f).filename().string());
  return names;
}

std::vector<std::size_t> choose_modules(std::size_t n, std::size_t k, std::int64_t seed, const std::string& sampler) {
  if (k > n) fail("cannot choose ", k, " modules from a library of ", n);
  if (sampler == "cpython") return core::PyRandom(seed).sample(n, k);
  // Native: partial Fisher-Yates on the project's generator.
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  core::Rng rng(static_cast<std::uint64_t>(seed));
  for (std::size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + rng.below(n - i)]);
  idx.resize(k);
  return idx;
}

namespace {

bool seed_independent(Method m, const JobConfig& c) {
  switch (m) {
    case Method::kZeroShot:
    case Method::kLoraSingle:
      return true;
    case Method::kIcl:
      return c.shots_seed.has_value();
    default:
      return false;
  }
}

struct LoadedTask {
  std::string description;
  std::vector<data::Example> pool, test;
  bool bbh = false;
  std::string error;
};

LoadedTask load_task(const TaskSource& t, std::int64_t max_test) {
  LoadedTask out;
  try {
    if (!t.train_file.empty()) {
      out.pool = data::load_examples(t.train_file);
      out.test = data::load_examples(t.test_file);
      out.description = t.description;
      if (max_test > 0 && static_cast<std::int64_t>(out.test.size()) > max_test) out.test.resize(static_cast<std::size_t>(max_test));
    } else {
      auto task = data::load_bbh_task(t.bbh_dir, t.name);
      auto split = data::split_bbh(task, max_test > 0 ? std::optional<std::size_t>(static_cast<std::size_t>(max_test))
                                                      : std::nullopt);
      out.description = task.description;
      out.pool = std::move(split.pool);
      out.test = std::move(split.test);
      out.bbh = task.layout == data::BbhLayout::kOriginal;
    }
    if (out.test.empty()) core::fail("task '", t.name, "' has no test examples");
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace

std::vector<RunSpec> expand_job(const JobConfig& c, const std::vector<std::string>& library_names) {
  // Configuration errors stop the job before any work; data errors only fail their task's runs.
  bool sampled = false;
  for (const auto& m : c.methods) {
    auto method = parse_method(m);
    sampled = sampled || method == Method::kLoraHub || method == Method::kUniform;
  }
  if (sampled && c.modules.empty() && static_cast<std::size_t>(c.num_modules) > library_names.size()) {
    fail(c.source.empty() ? "configuration" : c.source, ": library.modules = ", c.num_modules, " but the library '",
         c.library, "' has only ", library_names.size(), " modules");
  }
  for (const auto& name : c.modules) {
    if (std::find(library_names.begin(), library_names.end(), name) == library_names.end()) {
      fail(c.source.empty() ? "configuration" : c.source, ": library.names lists '", name, "', which is not in '",
           c.library, "'");
    }
  }
  std::vector<RunSpec> runs;
  for (const auto& source : c.tasks) {
    LoadedTask task = load_task(source, c.max_test);
    bool zero_shot_format = c.prompt == "zero-shot" || (c.prompt == "auto" && task.bbh);
    auto mode = zero_shot_format ? data::PromptMode::kZeroShot : data::PromptMode::kInputOnly;
    for (const auto& mname : c.methods) {
      Method method = parse_method(mname);
      std::vector<std::int64_t> seeds = seed_independent(method, c) ? std::vector<std::int64_t>{0} : c.seeds;
      for (auto seed : seeds) {
        RunSpec r;
        r.id = static_cast<std::int64_t>(runs.size());
        r.task = source.name;
        r.method = method;
        r.seed = seed;
        r.description = task.description;
        r.error = task.error;
        if (r.error.empty()) {
          try {
            auto sampler = c.sampler == "cpython" ? data::Sampler::kCpython : data::Sampler::kNative;
            std::int64_t shots_seed = c.shots_seed ? *c.shots_seed : seed;
            auto shots = data::pick_shots(task.pool, static_cast<int>(std::min<std::int64_t>(c.shots, task.pool.size())),
                                          shots_seed, sampler);
            if (static_cast<std::int64_t>(task.pool.size()) < c.shots) {
              core::fail("task '", source.name, "' has ", task.pool.size(), " pool examples, fewer than run.shots = ", c.shots);
            }
            r.train = data::make_prompts(mode, task.description, {}, shots);
            if (method == Method::kIcl) {
              auto icl = data::pick_shots(task.pool, static_cast<int>(std::min<std::int64_t>(c.icl_shots, task.pool.size())),
                                          shots_seed, sampler);
              // The demonstrations use the task's own answer format; the question is asked as in zero-shot.
              r.test = data::make_prompts(mode == data::PromptMode::kZeroShot ? data::PromptMode::kFewShot : mode,
                                          task.description, icl, task.test);
              if (mode == data::PromptMode::kInputOnly) {
                // Plain inputs: the demonstrations as "input target" blocks before the question.
                std::string prefix;
                for (const auto& s : icl) prefix += s.input + " " + s.target + "\n\n";
                for (auto& ex : r.test) ex.input = prefix + ex.input;
              }
            } else {
              r.test = data::make_prompts(mode, task.description, {}, task.test);
            }
            if (method == Method::kLoraHub || method == Method::kUniform) {
              if (!c.modules.empty()) {
                r.modules = c.modules;
              } else {
                auto k = static_cast<std::size_t>(c.num_modules);
                for (auto i : choose_modules(library_names.size(), k, seed, c.sampler)) r.modules.push_back(library_names[i]);
              }
            } else if (method == Method::kLoraSingle) {
              r.modules = c.modules.empty() ? library_names : c.modules;
            }
          } catch (const std::exception& e) {
            r.error = e.what();
          }
        }
        runs.push_back(std::move(r));
      }
    }
  }
  return runs;
}

}  // namespace lorahub::hub
