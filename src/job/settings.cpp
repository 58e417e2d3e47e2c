#include "settings.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <type_traits>

#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"

namespace lorahub::job::detail {
namespace fs = std::filesystem;
using nlohmann::json;

std::string describe(const json& v) {
  if (v.is_string()) return json(v.get<std::string>()).dump();
  if (v.is_number() || v.is_boolean()) return v.dump();
  if (v.is_object()) return "a table";
  if (v.is_array()) return "an array";
  return "nothing";
}

std::string resolve_path(const std::string& p, const Where& w) {
  if (p.empty() || w.base_dir.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(w.base_dir) / p).lexically_normal().string();
}

namespace {

[[noreturn]] void bad(const Where& w, const std::string& key, const std::string& expected, const json& v) {
  core::fail(w.origin, ": key '", key, "' must be ", expected, ", got ", describe(v));
}

// ---- how each value type is read from JSON (TOML tables are converted to JSON first) and written back ----
template <class T>
struct Codec;

template <>
struct Codec<std::int64_t> {
  static constexpr const char* kType = "integer";
  static std::int64_t read(const json& v, const Where& w, const std::string& key) {
    if (!v.is_number_integer()) bad(w, key, "an integer", v);
    return v.get<std::int64_t>();
  }
  static json write(std::int64_t v) { return v; }
};

template <>
struct Codec<int> {
  static constexpr const char* kType = "integer";
  static int read(const json& v, const Where& w, const std::string& key) {
    auto x = Codec<std::int64_t>::read(v, w, key);
    if (x < INT32_MIN || x > INT32_MAX) bad(w, key, "a 32-bit integer", v);
    return static_cast<int>(x);
  }
  static json write(int v) { return v; }
};

template <>
struct Codec<double> {
  static constexpr const char* kType = "number";
  static double read(const json& v, const Where& w, const std::string& key) {
    if (!v.is_number()) bad(w, key, "a number", v);
    return v.get<double>();
  }
  static json write(double v) { return v; }
};

template <>
struct Codec<bool> {
  static constexpr const char* kType = "true/false";
  static bool read(const json& v, const Where& w, const std::string& key) {
    if (!v.is_boolean()) bad(w, key, "true or false", v);
    return v.get<bool>();
  }
  static json write(bool v) { return v; }
};

template <>
struct Codec<std::string> {
  static constexpr const char* kType = "string";
  static std::string read(const json& v, const Where& w, const std::string& key) {
    if (!v.is_string()) bad(w, key, "a string", v);
    return v.get<std::string>();
  }
  static json write(const std::string& v) { return v; }
};

// A list of strings also accepts one string (a list of one).
template <>
struct Codec<std::vector<std::string>> {
  static constexpr const char* kType = "list of strings";
  static std::vector<std::string> read(const json& v, const Where& w, const std::string& key) {
    if (v.is_string()) return {v.get<std::string>()};
    if (!v.is_array()) bad(w, key, "a list of strings", v);
    std::vector<std::string> out;
    for (const auto& e : v) {
      if (!e.is_string()) bad(w, key, "a list of strings", v);
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  static json write(const std::vector<std::string>& v) { return v; }
};

template <class T, const char* kName, const char* kWhat>
struct NumberListCodec {
  static constexpr const char* kType = kName;
  static std::vector<T> read(const json& v, const Where& w, const std::string& key) {
    if (!v.is_array()) bad(w, key, kWhat, v);
    std::vector<T> out;
    for (const auto& e : v) {
      if (std::is_integral_v<T> ? !e.is_number_integer() : !e.is_number()) bad(w, key, kWhat, v);
      out.push_back(e.get<T>());
    }
    return out;
  }
  static json write(const std::vector<T>& v) { return v; }
};
constexpr char kIntListType[] = "list of integers";
constexpr char kIntListWhat[] = "a list of integers";
constexpr char kNumberListType[] = "list of numbers";
constexpr char kNumberListWhat[] = "a list of numbers";
template <>
struct Codec<std::vector<std::int64_t>> : NumberListCodec<std::int64_t, kIntListType, kIntListWhat> {};
template <>
struct Codec<std::vector<double>> : NumberListCodec<double, kNumberListType, kNumberListWhat> {};

// Enumerations: their names, and the extra spellings accepted when reading.
template <class E>
struct EnumNames;
template <>
struct EnumNames<DType> {
  static inline const std::vector<std::pair<DType, std::vector<std::string>>> kNames = {
      {DType::kF32, {"f32", "float32", "fp32"}}, {DType::kBF16, {"bf16", "bfloat16"}}};
};
template <>
struct EnumNames<Device> {
  static inline const std::vector<std::pair<Device, std::vector<std::string>>> kNames = {{Device::kCpu, {"cpu"}},
                                                                                         {Device::kCuda, {"cuda"}}};
};
template <>
struct EnumNames<PromptFormat> {
  static inline const std::vector<std::pair<PromptFormat, std::vector<std::string>>> kNames = {
      {PromptFormat::kAuto, {"auto"}}, {PromptFormat::kZeroShot, {"zero-shot"}}, {PromptFormat::kInput, {"input"}}};
};
template <>
struct EnumNames<ModuleSelect> {
  static inline const std::vector<std::pair<ModuleSelect, std::vector<std::string>>> kNames = {
      {ModuleSelect::kRandom, {"random"}}, {ModuleSelect::kLoss, {"loss"}}};
};
template <>
struct EnumNames<SearchStart> {
  static inline const std::vector<std::pair<SearchStart, std::vector<std::string>>> kNames = {
      {SearchStart::kInit, {"init"}}, {SearchStart::kBestModule, {"best-module"}}};
};
template <>
struct EnumNames<data::Sampler> {
  static inline const std::vector<std::pair<data::Sampler, std::vector<std::string>>> kNames = {
      {data::Sampler::kCpython, {"cpython"}}, {data::Sampler::kNative, {"native"}}};
};

template <class E>
std::string enum_choices() {
  std::string out;
  for (const auto& [value, names] : EnumNames<E>::kNames) out += (out.empty() ? "" : " | ") + names.front();
  return out;
}

template <class E>
std::string enum_name(E value) {
  for (const auto& [v, names] : EnumNames<E>::kNames) {
    if (v == value) return names.front();
  }
  return "?";
}

template <class E>
struct EnumCodec {
  static std::string type() { return enum_choices<E>(); }
  static E read(const json& v, const Where& w, const std::string& key) {
    if (v.is_string()) {
      for (const auto& [value, names] : EnumNames<E>::kNames) {
        if (std::find(names.begin(), names.end(), v.get<std::string>()) != names.end()) return value;
      }
    }
    std::string quoted;
    for (const auto& [value, names] : EnumNames<E>::kNames) quoted += (quoted.empty() ? "" : " or ") + json(names.front()).dump();
    bad(w, key, quoted, v);
  }
  static json write(E v) { return enum_name(v); }
};
template <>
struct Codec<DType> : EnumCodec<DType> {};
template <>
struct Codec<Device> : EnumCodec<Device> {};
template <>
struct Codec<PromptFormat> : EnumCodec<PromptFormat> {};
template <>
struct Codec<data::Sampler> : EnumCodec<data::Sampler> {};
template <>
struct Codec<ModuleSelect> : EnumCodec<ModuleSelect> {};
template <>
struct Codec<SearchStart> : EnumCodec<SearchStart> {};

template <>
struct Codec<std::vector<Method>> {
  static constexpr const char* kType = "list of methods";
  static std::vector<Method> read(const json& v, const Where& w, const std::string& key) {
    std::vector<Method> out;
    for (const auto& name : Codec<std::vector<std::string>>::read(v, w, key)) {
      const auto* m = find_method(name);
      if (!m) core::fail(w.origin, ": key '", key, "' lists unknown method '", name, "' (expected one of ", method_names(), ")");
      out.push_back(m->method);
    }
    return out;
  }
  static json write(const std::vector<Method>& v) {
    json out = json::array();
    for (auto m : v) out.push_back(to_string(m));
    return out;
  }
};

template <class C>
std::string type_of() {
  if constexpr (std::is_base_of_v<EnumCodec<DType>, C> || std::is_base_of_v<EnumCodec<Device>, C> ||
                std::is_base_of_v<EnumCodec<PromptFormat>, C> || std::is_base_of_v<EnumCodec<data::Sampler>, C> ||
                std::is_base_of_v<EnumCodec<ModuleSelect>, C> || std::is_base_of_v<EnumCodec<SearchStart>, C>) {
    return C::type();
  } else {
    return C::kType;
  }
}

// ---- value checks: what is wrong, or nothing ----
template <class T>
using Check = std::function<std::optional<std::string>(const T&)>;

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Check<std::int64_t> at_least(std::int64_t lo) {
  return [lo](const std::int64_t& v) -> std::optional<std::string> {
    if (v >= lo) return std::nullopt;
    return core::cat("must be >= ", lo, ", got ", v);
  };
}
Check<int> at_least_int(int lo) {
  return [lo](const int& v) -> std::optional<std::string> {
    if (v >= lo) return std::nullopt;
    return core::cat("must be >= ", lo, ", got ", v);
  };
}
Check<double> finite() {
  return [](const double& v) -> std::optional<std::string> {
    if (std::isfinite(v)) return std::nullopt;
    return "must be a finite number, got " + number_text(v);
  };
}
// Finite and >= lo (> lo when `strict`).
Check<double> finite_from(double lo, bool strict) {
  return [lo, strict](const double& v) -> std::optional<std::string> {
    if (std::isfinite(v) && (strict ? v > lo : v >= lo)) return std::nullopt;
    return core::cat("must be a finite number ", strict ? "> " : ">= ", lo, ", got ", number_text(v));
  };
}
Check<std::int64_t> in_range(std::int64_t lo, std::int64_t hi) {
  return [lo, hi](const std::int64_t& v) -> std::optional<std::string> {
    if (v >= lo && v <= hi) return std::nullopt;
    return core::cat("must be in [", lo, ", ", hi, "], got ", v);
  };
}
// In (lo, hi].
Check<double> finite_in(double lo, double hi) {
  return [lo, hi](const double& v) -> std::optional<std::string> {
    if (std::isfinite(v) && v > lo && v <= hi) return std::nullopt;
    return core::cat("must be in (", lo, ", ", hi, "], got ", number_text(v));
  };
}
Check<double> fraction() {
  return [](const double& v) -> std::optional<std::string> {
    if (v >= 0 && v < 1) return std::nullopt;
    return "must be in [0, 1), got " + number_text(v);
  };
}
Check<std::vector<double>> all_finite() {
  return [](const std::vector<double>& v) -> std::optional<std::string> {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) return core::cat("must hold finite numbers, got ", number_text(v[i]), " at position ", i + 1);
    }
    return std::nullopt;
  };
}
Check<std::string> non_empty() {
  return [](const std::string& v) -> std::optional<std::string> {
    if (!v.empty()) return std::nullopt;
    return std::string("must not be empty");
  };
}
Check<std::string> optimizer_name() {
  return [](const std::string& v) -> std::optional<std::string> {
    auto names = opt::optimizer_names();
    if (std::find(names.begin(), names.end(), v) != names.end()) return std::nullopt;
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    return "'" + v + "' is unknown (" + all + ")";
  };
}

// ---- building table entries from an accessor: a generic lambda `[](auto& c) -> auto& { return c.x.y; }` ----
template <class T, class Get>
Setting make(const char* section, const char* key, Get get, const char* help, Check<T> check = {}, const char* flag = "") {
  using C = Codec<T>;
  Setting s;
  s.section = section;
  s.key = key;
  s.info = SettingInfo{s.full_key(), type_of<C>(), help, flag ? flag : "", std::is_same_v<T, std::vector<std::string>> ||
                                                                             std::is_same_v<T, std::vector<double>> ||
                                                                             std::is_same_v<T, std::vector<std::int64_t>> ||
                                                                             std::is_same_v<T, std::vector<Method>>};
  const std::string full = s.full_key();
  s.read = [get, full](JobConfig& c, const json& v, const Where& w) { get(c) = C::read(v, w, full); };
  s.write = [get](const JobConfig& c) { return C::write(get(c)); };
  if (check) s.check = [get, check](const JobConfig& c) { return check(get(c)); };
  return s;
}

// A path: a string resolved against the folder of the file that names it. With `hub_ids`, a text that has the
// shape of a Hugging Face id and is no existing path stays as written (JobConfig::resolve_sources looks it up).
template <class Get>
Setting path(const char* section, const char* key, Get get, const char* help, const char* flag = "", bool hub_ids = false) {
  Setting s = make<std::string>(section, key, get, help, {}, flag);
  s.info.type = hub_ids ? "path or hub id" : "path";
  const std::string full = s.full_key();
  s.read = [get, full, hub_ids](JobConfig& c, const json& v, const Where& w) {
    const std::string text = Codec<std::string>::read(v, w, full);
    const std::string resolved = resolve_path(text, w);
    c.hub_ids.erase(full);
    if (hub_ids && !fs::exists(resolved) && core::parse_hub_id(text)) {
      get(c) = text;
      c.hub_ids[full] = w.base_dir;  // looked up in the hub cache by resolve_sources (never as a path of the cwd)
    } else {
      get(c) = resolved;
    }
  };
  return s;
}

// A key of [data]'s task selection (read_task_selection reads these together; to_json shows the resolved list).
Setting task_selection(const char* key, const char* type, const char* help, const char* flag = "") {
  Setting s;
  s.section = "data";
  s.key = key;
  s.info = SettingInfo{s.full_key(), type, help, flag, std::string(key) == "tasks"};
  return s;
}

std::vector<Setting> build_table() {
  using L = std::vector<std::string>;
  std::vector<Setting> t;
  // [model]
  t.push_back(path("model", "path", [](auto& c) -> auto& { return c.model.path; },
                   "HF model folder (config.json + model.safetensors / sharded / pytorch_model.bin), or a hub id "
                   "(org/name[@revision]) resolved offline from the Hugging Face cache",
                   "--model", true));
  t.push_back(path("model", "tokenizer", [](auto& c) -> auto& { return c.model.tokenizer; },
                   "spiece.model (default: <model.path>/spiece.model)", "--tokenizer"));
  t.push_back(make<DType>("model", "dtype", [](auto& c) -> auto& { return c.model.dtype; },
                          "f32 (exact, the reference) or bf16 (weights and matmuls in bfloat16)", {}, "--dtype"));
  t.push_back(make<Device>("model", "device", [](auto& c) -> auto& { return c.model.device; },
                           "cpu, or cuda (each rank takes the GPU of its node-local rank)", {}, "--device"));
  t.push_back(make<bool>("model", "check_finite", [](auto& c) -> auto& { return c.model.check_finite; },
                         "reject NaN/Inf weights when loading (costs ~0.4 s per GB of weights)"));
  // [library]
  t.push_back(path("library", "path", [](auto& c) -> auto& { return c.library.path; },
                   "LoRA library: a folder of PEFT adapter folders, a list file of folders or hub ids (order matters "
                   "for the sampler), or a hub id",
                   "--library", true));
  t.push_back(make<std::int64_t>("library", "modules", [](auto& c) -> auto& { return c.library.modules; },
                                 "N modules per run", at_least(1)));
  t.push_back(make<data::Sampler>("library", "sampler", [](auto& c) -> auto& { return c.library.sampler; },
                                  "cpython: replay the reference's random.sample; native", {}, "--sampler"));
  t.push_back(make<ModuleSelect>("library", "select", [](auto& c) -> auto& { return c.library.select; },
                                 "random (the reference: sampled with the run's seed) or loss (every module scored "
                                 "alone on the few-shot examples, the N best kept)",
                                 {}, "--select"));
  t.push_back(make<L>("library", "names", [](auto& c) -> auto& { return c.library.names; },
                      "explicit modules (instead of sampling N; with select = loss, the pool to choose from)"));
  // [data]
  t.push_back(task_selection("bbh_dir", "path", "BBH folder where data.tasks / data.task_list are found"));
  t.push_back(task_selection("tasks", "list of strings", "BBH task names (default: every task in data.bbh_dir)"));
  t.push_back(task_selection("task_list", "path", "file of BBH task names, one per line"));
  t.push_back(task_selection("task", "array of tables",
                             "[[data.task]] entries with name, train, test (files) and description"));
  t.push_back(make<PromptFormat>("data", "prompt", [](auto& c) -> auto& { return c.data.prompt; },
                                 "auto (BBH: zero-shot format; files: input as is), zero-shot or input"));
  t.push_back(make<std::int64_t>("data", "max_test", [](auto& c) -> auto& { return c.data.max_test; },
                                 "at most this many test examples per task (0: all)", at_least(0), "--max-test"));
  // [run]
  t.push_back(make<std::vector<Method>>("run", "methods", [](auto& c) -> auto& { return c.run.methods; },
                                        "methods to run (zero-shot, icl, lorahub, uniform, lora-single, lora-ft)"));
  t.push_back(make<std::vector<std::int64_t>>("run", "seeds", [](auto& c) -> auto& { return c.run.seeds; },
                                              "run seeds: module sampling (and CMA-ES)"));
  t.push_back(make<std::int64_t>("run", "shots", [](auto& c) -> auto& { return c.run.shots; },
                                 "K few-shot examples", at_least(1), "--shots"));
  {
    Setting s;
    s.section = "run";
    s.key = "shots_seed";
    s.info = SettingInfo{"run.shots_seed", "integer or \"run\"",
                         "seed of the few-shot pick (the reference: 42; \"run\": the run's seed)", "--shots-seed"};
    s.read = [](JobConfig& c, const json& v, const Where& w) {
      if (v.is_string()) {
        if (v.get<std::string>() != "run") core::fail(w.origin, ": run.shots_seed must be an integer or \"run\", got ", describe(v));
        c.run.shots_seed.reset();
      } else {
        c.run.shots_seed = Codec<std::int64_t>::read(v, w, "run.shots_seed");
      }
    };
    s.write = [](const JobConfig& c) { return c.run.shots_seed ? json(*c.run.shots_seed) : json("run"); };
    t.push_back(s);
  }
  t.push_back(make<std::int64_t>("run", "icl_shots", [](auto& c) -> auto& { return c.run.icl_shots; },
                                 "solved examples before the question (icl)", at_least(0)));
  t.push_back(make<std::int64_t>("run", "max_seeds", [](auto& c) -> auto& { return c.run.max_seeds; },
                                 "guard against an accidental huge seed list", at_least(1)));
  // [lorahub]
  t.push_back(make<std::string>("lorahub", "optimizer", [](auto& c) -> auto& { return c.lorahub.optimizer.name; },
                                "cobyla (the reference), cmaes, bobyqa, neldermead; with gradients: adam, lbfgsb",
                                optimizer_name(), "--optimizer"));
  t.push_back(make<int>("lorahub", "budget", [](auto& c) -> auto& { return c.lorahub.optimizer.budget; },
                        "objective evaluations per run (adam, lbfgsb: evaluations with a gradient, each one forward "
                        "and one backward)",
                        at_least_int(1), "--budget"));
  t.push_back(make<double>("lorahub", "lower", [](auto& c) -> auto& { return c.lorahub.optimizer.lower; },
                           "lower bound of every weight", finite()));
  t.push_back(make<double>("lorahub", "upper", [](auto& c) -> auto& { return c.lorahub.optimizer.upper; },
                           "upper bound of every weight", finite()));
  t.push_back(make<std::vector<double>>("lorahub", "init", [](auto& c) -> auto& { return c.lorahub.optimizer.init; },
                                        "start point w1,...,wN (default 0)", all_finite(), "--init"));
  t.push_back(make<SearchStart>("lorahub", "start", [](auto& c) -> auto& { return c.lorahub.start; },
                                "init (lorahub.init, zeros by default: the reference) or best-module (the best module "
                                "of a loss-ranked selection alone at weight 1)",
                                {}, "--start"));
  t.push_back(make<int>("lorahub", "population", [](auto& c) -> auto& { return c.lorahub.optimizer.population; },
                        "CMA-ES population (0: 4 + 3 ln N)", at_least_int(0), "--population"));
  t.push_back(make<double>("lorahub", "sigma", [](auto& c) -> auto& { return c.lorahub.optimizer.sigma; },
                           "initial step in weight units (CMA-ES; COBYLA's x scale)", finite_from(0, true)));
  t.push_back(make<double>("lorahub", "rho_begin", [](auto& c) -> auto& { return c.lorahub.optimizer.rho_begin; },
                           "COBYLA's initial trust radius in weight units (0: sigma, the reference's 0.5)",
                           finite_from(0, false), "--rho-begin"));
  t.push_back(make<double>("lorahub", "rho_end", [](auto& c) -> auto& { return c.lorahub.optimizer.rho_end; },
                           "COBYLA stops once its trust radius is below this (0: only the budget stops it)",
                           finite_from(0, false)));
  t.push_back(make<int>("lorahub", "restarts", [](auto& c) -> auto& { return c.lorahub.optimizer.restarts; },
                        "CMA-ES: IPOP restarts with a doubled population when a run stagnates", at_least_int(0)));
  t.push_back(make<double>("lorahub", "lr", [](auto& c) -> auto& { return c.lorahub.optimizer.lr; },
                           "adam: step size in weight units", finite_from(0, true), "--lr"));
  t.push_back(make<int>("lorahub", "memory", [](auto& c) -> auto& { return c.lorahub.optimizer.memory; },
                        "lbfgsb: correction pairs of the Hessian approximation", at_least_int(1)));
  t.push_back(make<double>("lorahub", "l1", [](auto& c) -> auto& { return c.lorahub.l1; },
                           "L1 weight of the objective: loss = CE + l1 * mean|w|", finite_from(0, false), "--l1"));
  t.push_back(make<std::int64_t>("lorahub", "batch_size", [](auto& c) -> auto& { return c.lorahub.batch_size; },
                                 "few-shot examples per forward (0: all at once, the reference)", at_least(0),
                                 "--batch-size"));
  // [lora_ft]
  t.push_back(make<std::int64_t>("lora_ft", "r", [](auto& c) -> auto& { return c.lora_ft.r; }, "LoRA rank",
                                 in_range(1, kMaxLoraRank)));
  t.push_back(make<double>("lora_ft", "alpha", [](auto& c) -> auto& { return c.lora_ft.alpha; }, "lora_alpha",
                           finite_in(0, kMaxLoraAlpha)));
  t.push_back(make<L>("lora_ft", "targets", [](auto& c) -> auto& { return c.lora_ft.targets; },
                      "target modules (e.g. q, v)"));
  t.push_back(make<double>("lora_ft", "lr", [](auto& c) -> auto& { return c.lora_ft.lr; }, "AdamW learning rate",
                           finite_from(0, true)));
  t.push_back(make<std::int64_t>("lora_ft", "epochs", [](auto& c) -> auto& { return c.lora_ft.epochs; },
                                 "passes over the few-shot examples", at_least(1)));
  t.push_back(make<std::int64_t>("lora_ft", "batch_size", [](auto& c) -> auto& { return c.lora_ft.batch_size; },
                                 "examples per step", at_least(1)));
  t.push_back(make<double>("lora_ft", "dropout", [](auto& c) -> auto& { return c.lora_ft.dropout; }, "LoRA dropout",
                           fraction()));
  t.push_back(make<double>("lora_ft", "weight_decay", [](auto& c) -> auto& { return c.lora_ft.weight_decay; },
                           "AdamW weight decay", finite_from(0, false)));
  t.push_back(make<double>("lora_ft", "max_grad_norm", [](auto& c) -> auto& { return c.lora_ft.max_grad_norm; },
                           "gradient-norm clipping (0: off)", finite_from(0, false)));
  // [eval]
  t.push_back(make<std::int64_t>("eval", "max_new_tokens", [](auto& c) -> auto& { return c.eval.max_new_tokens; },
                                 "generation length for the test set", at_least(1), "--max-new-tokens"));
  t.push_back(make<std::int64_t>("eval", "batch_size", [](auto& c) -> auto& { return c.eval.batch_size; },
                                 "test prompts per generation batch", at_least(1), "--eval-batch-size"));
  // [schedule]
  t.push_back(make<std::int64_t>("schedule", "candidates_per_request",
                                 [](auto& c) -> auto& { return c.schedule.candidates_per_request; },
                                 "candidates per batched forward (fixed chunks: results never depend on the ranks)",
                                 at_least(1), "--candidates-per-request"));
  t.push_back(make<std::int64_t>("schedule", "eval_shard", [](auto& c) -> auto& { return c.schedule.eval_shard; },
                                 "test examples per evaluation request", at_least(1)));
  t.push_back(make<std::int64_t>("schedule", "max_active_runs",
                                 [](auto& c) -> auto& { return c.schedule.max_active_runs; },
                                 "runs in progress at once (0: 4 per worker)", at_least(0)));
  t.push_back(make<bool>("schedule", "broadcast", [](auto& c) -> auto& { return c.schedule.broadcast; },
                         "rank 0 reads model and library once and broadcasts them"));
  // [output]
  t.push_back(path("output", "path", [](auto& c) -> auto& { return c.output.path; }, "results file (HDF5)", "--out"));
  t.back().check = [](const JobConfig& c) { return non_empty()(c.output.path); };
  t.push_back(make<bool>("output", "resume", [](auto& c) -> auto& { return c.output.resume; },
                         "continue the results file, skipping runs already complete", {}, "--resume"));
  // to_json shows the task selection as the resolved list.
  for (auto& s : t) {
    if (s.section == "data" && s.key == "tasks") {
      s.write = [](const JobConfig& c) {
        json tasks = json::array();
        for (const auto& task : c.data.tasks) {
          tasks.push_back({{"name", task.name}, {"bbh_dir", task.bbh_dir}, {"train", task.train_file},
                           {"test", task.test_file}, {"description", task.description}});
        }
        return tasks;
      };
    }
  }
  return t;
}

}  // namespace

const std::vector<Setting>& settings_table() {
  static const std::vector<Setting> kTable = build_table();
  return kTable;
}

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& s : settings_table()) {
      if (names.empty() || names.back() != s.section) names.push_back(s.section);
    }
    return names;
  }();
  return kNames;
}

const Setting* find_setting(const std::string& section, const std::string& key) {
  for (const auto& s : settings_table()) {
    if (s.section == section && s.key == key) return &s;
  }
  return nullptr;
}

bool is_task_selection_key(const std::string& section, const std::string& key) {
  return section == "data" && (key == "bbh_dir" || key == "tasks" || key == "task_list" || key == "task");
}

}  // namespace lorahub::job::detail

namespace lorahub::job {

std::string to_string(DType v) { return detail::enum_name(v); }
std::string to_string(Device v) { return detail::enum_name(v); }
std::string to_string(PromptFormat v) { return detail::enum_name(v); }
std::string to_string(data::Sampler v) { return detail::enum_name(v); }
std::string to_string(ModuleSelect v) { return detail::enum_name(v); }
std::string to_string(SearchStart v) { return detail::enum_name(v); }

std::vector<SettingInfo> settings() {
  std::vector<SettingInfo> out;
  for (const auto& s : detail::settings_table()) out.push_back(s.info);
  return out;
}

std::string flag_to_toml(const SettingInfo& setting, const std::string& text) {
  auto quote_if_word = [&](const std::string& item) {
    const bool text_type = setting.type == "string" || setting.type.rfind("path", 0) == 0 || setting.type == "list of strings" ||
                           setting.type == "list of methods" || setting.type.find('|') != std::string::npos;
    return text_type ? nlohmann::json(item).dump() : item;
  };
  if (!setting.is_list) return quote_if_word(text);
  std::string out = "[";
  std::stringstream ss(text);
  std::string item;
  bool first = true;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    out += (first ? "" : ", ") + quote_if_word(item);
    first = false;
  }
  return out + "]";
}

}  // namespace lorahub::job
