#include "lorahub/lora/adapter.h"

#include <re2/re2.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/json_excerpt.h"
#include "lorahub/core/log.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"

namespace lorahub::lora {
namespace fs = std::filesystem;
using core::fail;
using core::json_excerpt;

namespace {
const std::string kPrefix = "base_model.model.";
const std::string kSuffixA = ".lora_A.weight";
const std::string kSuffixB = ".lora_B.weight";
// PEFT's COMMON_LAYERS_PATTERN, in its order, so "block" wins over the "layer" of T5's "block.1.layer.0".
const std::vector<std::string> kCommonLayerPatterns = {"layers", "h", "block", "blocks", "layer"};
// Bounds the memory RE2 may spend compiling one pattern (its default, made explicit): a pattern whose program
// would be larger is rejected instead of growing without limit.
constexpr std::int64_t kRegexMaxMem = 8 << 20;
// adapter_config.json is a few hundred bytes; anything this large is not one (and would be read into memory).
constexpr std::uintmax_t kMaxConfigBytes = 16 << 20;
// T5 module names are under 60 characters; a longer key cannot name a module, and is not worth matching.
constexpr std::size_t kMaxKeyLength = 1024;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_text(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (!ec && size > kMaxConfigBytes) {
    fail(p.string(), ": is ", size, " bytes; an adapter config is at most ", kMaxConfigBytes, " bytes");
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(p.string(), ": cannot open");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// A pattern for an error message: its start, and its length when cut.
std::string pattern_excerpt(const std::string& pattern) { return json_excerpt(nlohmann::json(pattern), 60); }

std::unique_ptr<re2::RE2> compile_re2(const std::string& pattern, const std::string& source, const char* key,
                                      const std::string& shown) {
  if (shown.size() > AdapterConfig::kMaxPatternLength) {
    fail(source, ": ", key, " pattern ", pattern_excerpt(shown), " is ", shown.size(),
         " characters long; the limit is ", AdapterConfig::kMaxPatternLength);
  }
  re2::RE2::Options options;
  options.set_log_errors(false);  // the error is reported in the exception, not on stderr
  options.set_max_mem(kRegexMaxMem);
  auto re = std::make_unique<re2::RE2>(pattern, options);
  if (!re->ok()) {
    const bool too_large = re->error_code() == re2::RE2::ErrorPatternTooLarge;
    fail(source, ": ", key, " pattern ", pattern_excerpt(shown), " is not supported: ", re->error(),
         too_large ? core::cat(" (its compiled form exceeds the ", kRegexMaxMem >> 20, " MiB limit)") : std::string(),
         "; patterns are matched with RE2 (linear time, Python re syntax otherwise), which has no backreferences "
         "(\\1) and no lookaround ((?=...), (?!...), (?<=...), (?<!...))");
  }
  return re;
}

}  // namespace

// The compiled forms of a config's patterns, with the strings they were compiled from (to detect a config
// changed in code after compile()).
struct AdapterConfig::Patterns {
  std::optional<std::string> target_source;
  std::vector<std::string> layer_sources;
  bool has_layers = false;
  std::unique_ptr<re2::RE2> target;
  std::vector<std::unique_ptr<re2::RE2>> layers;  // PEFT's `.*\.{pattern}\.(\d+)\.` with re.match, in order

  bool built_for(const AdapterConfig& c) const {
    return target_source == c.target_regex && layer_sources == c.layers_pattern &&
           (has_layers || c.layers_to_transform.empty());
  }

  static std::shared_ptr<const Patterns> build(const AdapterConfig& c, const std::string& source) {
    auto p = std::make_shared<Patterns>();
    p->target_source = c.target_regex;
    p->layer_sources = c.layers_pattern;
    if (c.target_regex) p->target = compile_re2(*c.target_regex, source, "target_modules", *c.target_regex);
    // Each alone, even when unused, so that an invalid one is reported; and before wrapping, so that an unbalanced
    // pattern ("a)|(b") is an error instead of rewiring the wrapper.
    for (const auto& lp : c.layers_pattern) compile_re2(lp, source, "layers_pattern", lp);
    // Only the list form filters by layer (PEFT ignores layers_to_transform for a regex).
    if (!c.layers_to_transform.empty() && !c.target_regex) {
      p->has_layers = true;
      for (const auto& lp : c.layers_pattern.empty() ? kCommonLayerPatterns : c.layers_pattern) {
        p->layers.push_back(compile_re2("^.*\\.(?:" + lp + ")\\.(\\d+)\\.", source, "layers_pattern", lp));
      }
    }
    return p;
  }

  // The layer index PEFT reads from the name: the last group of the first pattern that matches (a pattern's own
  // groups come first; PEFT's group(1) would be one of them, which int() then fails on); nullopt when none matches
  // or the index does not fit in 64 bits.
  std::optional<std::int64_t> layer_index(const std::string& name) const {
    for (const auto& re : layers) {
      const int groups = re->NumberOfCapturingGroups();
      std::vector<re2::StringPiece> sub(static_cast<std::size_t>(groups) + 1);
      if (!re->Match(name, 0, name.size(), re2::RE2::ANCHOR_START, sub.data(), groups + 1)) continue;
      const auto& digits = sub.back();
      if (digits.data() == nullptr) return std::nullopt;  // matched through a branch of the pattern without it
      std::int64_t index = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
      if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
      return index;
    }
    return std::nullopt;
  }
};

std::string peft_key(const std::string& module, bool is_a) {
  return kPrefix + module + (is_a ? kSuffixA : kSuffixB);
}

double AdapterConfig::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

void AdapterConfig::compile(const std::string& source) { patterns_ = Patterns::build(*this, source); }

bool AdapterConfig::targets(const std::string& module_name) const {
  std::shared_ptr<const Patterns> own;
  const Patterns* p = patterns_.get();
  const bool needs_patterns = target_regex || !layers_to_transform.empty();
  if (needs_patterns && (p == nullptr || !p->built_for(*this))) {
    own = Patterns::build(*this, "adapter config");
    p = own.get();
  }
  if (target_regex) return re2::RE2::FullMatch(module_name, *p->target);
  bool match = false;
  for (const auto& t : target_modules) {
    if (module_name == t || (module_name.size() > t.size() && ends_with(module_name, t) &&
                             module_name[module_name.size() - t.size() - 1] == '.')) {
      match = true;
      break;
    }
  }
  if (!match || layers_to_transform.empty()) return match;
  const auto index = p->layer_index(module_name);
  if (!index) return false;
  for (auto l : layers_to_transform) {
    if (l == *index) return true;
  }
  return false;
}

AdapterConfig AdapterConfig::parse(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(source, ": expected a JSON object, got ", json_excerpt(j));
  AdapterConfig c;
  c.json_text = json_text;
  // PEFT writes null for an unset option; null and absent mean the same here.
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  auto boolean = [&](const char* key, bool fallback) {
    if (!present(key)) return fallback;
    if (!j[key].is_boolean()) fail(source, ": key '", key, "' must be true or false, got ", json_excerpt(j[key]));
    return j[key].get<bool>();
  };
  if (present("peft_type") && j["peft_type"] != "LORA") {
    fail(source, ": peft_type is ", json_excerpt(j["peft_type"]), "; only LORA adapters are supported");
  }

  // Pointers, not copies: copying a JSON value recurses into it, and a hostile one may be nested 100,000 deep.
  static const nlohmann::json kNothing;
  const nlohmann::json& r = j.contains("r") ? j["r"] : kNothing;
  // An unsigned JSON integer above INT64_MAX would wrap if read as int64_t.
  if (!r.is_number_integer() ||
      (r.is_number_unsigned() && r.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxRank)) ||
      r.get<std::int64_t>() < 1 || r.get<std::int64_t>() > kMaxRank) {
    fail(source, ": key 'r' must be an integer in [1, ", kMaxRank, "], got ",
         j.contains("r") ? json_excerpt(r) : "nothing");
  }
  c.r = r.get<std::int64_t>();

  if (!present("lora_alpha") || !j["lora_alpha"].is_number()) {
    fail(source, ": key 'lora_alpha' is missing or not a number, got ",
         j.contains("lora_alpha") ? json_excerpt(j["lora_alpha"]) : "nothing");
  }
  c.lora_alpha = j["lora_alpha"].get<double>();
  // scaling = lora_alpha / r multiplies every ΔW: zero, negative, NaN or huge values (1e308 overflows float32
  // products to Inf) are never a trained adapter.
  if (!(c.lora_alpha > 0 && c.lora_alpha <= kMaxAlpha)) {
    fail(source, ": key 'lora_alpha' must be in (0, ", kMaxAlpha, "], got ", json_excerpt(j["lora_alpha"]));
  }
  if (present("lora_dropout")) {
    const auto& d = j["lora_dropout"];
    if (!d.is_number() || !(d.get<double>() >= 0 && d.get<double>() <= 1)) {
      fail(source, ": key 'lora_dropout' must be a number in [0, 1], got ", json_excerpt(d));
    }
    c.lora_dropout = d.get<double>();
  }

  if (!present("target_modules")) {
    fail(source, ": key 'target_modules' is missing (this engine needs the explicit list, e.g. [\"q\", \"v\"])");
  }
  const auto& tm = j["target_modules"];
  if (tm.is_string()) {
    c.target_regex = tm.get<std::string>();
  } else if (tm.is_array()) {
    for (const auto& t : tm) {
      if (!t.is_string()) fail(source, ": target_modules entries must be strings, got ", json_excerpt(t));
      c.target_modules.push_back(t.get<std::string>());
    }
    if (c.target_modules.empty()) fail(source, ": target_modules is empty");
  } else {
    fail(source, ": target_modules must be a list or a regex string, got ", json_excerpt(tm));
  }

  if (present("layers_to_transform")) {
    const auto& l = j["layers_to_transform"];
    auto layer = [&](const nlohmann::json& x) {
      if (!x.is_number_integer() ||
          (x.is_number_unsigned() &&
           x.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) ||
          x.get<std::int64_t>() < 0) {
        fail(source, ": layers_to_transform entries must be non-negative integers, got ", json_excerpt(x));
      }
      c.layers_to_transform.push_back(x.get<std::int64_t>());
    };
    if (l.is_number()) {
      layer(l);
    } else if (l.is_array()) {
      for (const auto& x : l) layer(x);
    } else {
      fail(source, ": layers_to_transform must be an integer or a list of integers, got ", json_excerpt(l));
    }
  }
  if (present("layers_pattern")) {
    const auto& lp = j["layers_pattern"];
    auto pattern = [&](const nlohmann::json& x) {
      if (!x.is_string() || x.get_ref<const std::string&>().empty()) {
        fail(source, ": layers_pattern must be a non-empty string or a list of them, got ", json_excerpt(x));
      }
      c.layers_pattern.push_back(x.get<std::string>());
    };
    if (lp.is_array()) {
      for (const auto& x : lp) pattern(x);
    } else {
      pattern(lp);
    }
  }
  c.fan_in_fan_out = boolean("fan_in_fan_out", false);
  c.use_rslora = boolean("use_rslora", false);
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
    c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();  // informational only
  }
  if (present("modules_to_save") && !(j["modules_to_save"].is_array() && j["modules_to_save"].empty())) {
    fail(source, ": modules_to_save ", json_excerpt(j["modules_to_save"]),
         " is not supported (the adapter would replace whole modules, not add LoRA factors)");
  }
  if (boolean("use_dora", false)) fail(source, ": DoRA adapters (use_dora: true) are not supported");
  // Newer PEFT options that change which modules are adapted or their rank and alpha: refuse rather than ignore.
  for (const char* key : {"rank_pattern", "alpha_pattern", "exclude_modules"}) {
    if (present(key) && !((j[key].is_object() || j[key].is_array()) && j[key].empty())) {
      fail(source, ": ", key, " ", json_excerpt(j[key]), " is not supported");
    }
  }
  c.compile(source);
  return c;
}

std::string AdapterConfig::to_json(const std::string& base_model) const {
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "SEQ_2_SEQ_LM"},
                      {"r", r},
                      {"lora_alpha", lora_alpha},
                      {"lora_dropout", lora_dropout},
                      {"bias", "none"},
                      {"fan_in_fan_out", false},
                      {"inference_mode", true},
                      {"init_lora_weights", true},
                      {"modules_to_save", nullptr},
                      {"layers_to_transform", nullptr},
                      {"layers_pattern", nullptr},
                      {"revision", nullptr},
                      {"auto_mapping", nullptr},
                      {"use_rslora", use_rslora},
                      {"base_model_name_or_path", base_model.empty() ? base_model_name_or_path : base_model}};
  if (target_regex) {
    j["target_modules"] = *target_regex;
  } else {
    j["target_modules"] = target_modules;
  }
  if (!layers_to_transform.empty()) j["layers_to_transform"] = layers_to_transform;
  if (layers_pattern.size() == 1) j["layers_pattern"] = layers_pattern.front();
  if (layers_pattern.size() > 1) j["layers_pattern"] = layers_pattern;
  if (std::floor(lora_alpha) == lora_alpha && std::abs(lora_alpha) < 1e15) {
    j["lora_alpha"] = static_cast<std::int64_t>(lora_alpha);
  }
  return j.dump(2);
}

LoraAdapter load_adapter(const std::string& dir, const model::T5ModelImpl* model) {
  fs::path root(dir);
  if (!fs::is_directory(root)) fail(dir, ": not an adapter folder (expected adapter_config.json + adapter_model.*)");
  LoraAdapter adapter;
  adapter.path = dir;
  adapter.name = root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  auto config_path = root / "adapter_config.json";
  if (!fs::exists(config_path)) fail(dir, ": adapter_config.json is missing");
  adapter.config = AdapterConfig::parse(read_text(config_path), config_path.string());
  const auto& cfg = adapter.config;
  if (cfg.fan_in_fan_out) {
    // PEFT does the same for nn.Linear targets: the flag only applies to GPT-2's Conv1D.
    core::log_warn(dir + ": fan_in_fan_out is true but T5 projections are nn.Linear; ignoring it as PEFT does");
  }
  if (cfg.target_regex && !cfg.layers_to_transform.empty()) {
    core::log_warn(dir + ": layers_to_transform is ignored with a regex target_modules, as PEFT does");
  }

  std::string file;
  model::StateDict weights = model::load_adapter_weights(dir, &file);
  std::map<std::string, torch::Tensor> a_by_module, b_by_module;
  for (const auto& [key, tensor] : weights) {
    if (key.size() > kMaxKeyLength) {
      fail(file, ": key ", json_excerpt(nlohmann::json(key), 80), " is ", key.size(),
           " characters long; no module name is longer than ", kMaxKeyLength);
    }
    const bool is_a = ends_with(key, kSuffixA);
    const bool is_b = ends_with(key, kSuffixB);
    // The prefix and the suffix must not overlap ("base_model.model.lora_A.weight" names no module).
    if (key.rfind(kPrefix, 0) != 0 || (!is_a && !is_b) || key.size() <= kPrefix.size() + kSuffixA.size()) {
      fail(file, ": unexpected key ", json_excerpt(nlohmann::json(key), 120),
           " (expected base_model.model.<module>.lora_A.weight / lora_B.weight)");
    }
    std::string module = key.substr(kPrefix.size(), key.size() - kPrefix.size() - kSuffixA.size());
    if (!tensor.is_floating_point() || tensor.dim() != 2) {
      fail(file, ": key '", key, "' must be a 2-D float tensor, got ", tensor.scalar_type(), " ", tensor.sizes());
    }
    auto t = tensor.to(torch::kCPU, torch::kFloat32).contiguous().clone();
    // After the conversion, so that float64 values beyond float32's range (which become ±Inf) are caught too.
    model::check_finite(t, file, key);
    (is_a ? a_by_module : b_by_module)[module] = t;
  }
  if (a_by_module.empty()) fail(file, ": the adapter holds no LoRA weights");
  for (const auto& [module, a] : a_by_module) {
    auto it = b_by_module.find(module);
    if (it == b_by_module.end()) fail(file, ": key '", peft_key(module, false), "' is missing (lora_A has no lora_B)");
    const auto& b = it->second;
    if (a.size(0) != cfg.r) {
      fail(file, ": key '", peft_key(module, true), "' has shape ", a.sizes(), " but r = ", cfg.r, " in ",
           config_path.string());
    }
    if (b.size(1) != cfg.r) {
      fail(file, ": key '", peft_key(module, false), "' has shape ", b.sizes(), " but r = ", cfg.r, " in ",
           config_path.string());
    }
    if (!cfg.targets(module)) {
      fail(dir, ": module '", module, "' has LoRA weights but is not matched by target_modules");
    }
    if (model) {
      model::Projection proj{nullptr};
      try {
        proj = model->projection(module);
      } catch (const core::Error& e) {
        fail(file, ": module '", module, "': ", e.what());  // the model's message does not name the adapter
      }
      if (a.size(1) != proj->in_features() || b.size(0) != proj->out_features()) {
        fail(file, ": module '", module, "' has A ", a.sizes(), " and B ", b.sizes(), ", the model needs A [", cfg.r,
             ", ", proj->in_features(), "] and B [", proj->out_features(), ", ", cfg.r, "]");
      }
    }
    adapter.modules[module] = {a, b};
  }
  for (const auto& [module, b] : b_by_module) {
    if (!a_by_module.count(module)) {
      fail(file, ": key '", peft_key(module, true), "' is missing (lora_B has no lora_A)");
    }
  }
  if (model) {
    for (const auto& name : model->projection_names()) {
      if (cfg.targets(name) && !adapter.modules.count(name)) {
        fail(dir, ": module '", name, "' matches target_modules but the adapter has no weights for it");
      }
    }
  }
  return adapter;
}

void save_adapter(const LoraAdapter& adapter, const std::string& dir) {
  fs::create_directories(dir);
  {
    std::ofstream out(fs::path(dir) / "adapter_config.json");
    out << adapter.config.to_json() << "\n";
    if (!out) fail(dir, ": cannot write adapter_config.json");
  }
  model::StateDict dict;
  for (const auto& [module, ab] : adapter.modules) {
    dict[peft_key(module, true)] = ab.first.to(torch::kCPU, torch::kFloat32).contiguous();
    dict[peft_key(module, false)] = ab.second.to(torch::kCPU, torch::kFloat32).contiguous();
  }
  model::save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), dict, {{"format", "pt"}});
}

}  // namespace lorahub::lora
