#include "lorahub/job/methods.h"

#include "lorahub/core/error.h"

namespace lorahub::job {
namespace {

std::vector<std::vector<double>> uniform(std::size_t n) { return {std::vector<double>(n, 1.0 / static_cast<double>(n))}; }

std::vector<std::vector<double>> each_alone(std::size_t n) {
  std::vector<std::vector<double>> out(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) out[i][i] = 1.0;
  return out;
}

}  // namespace

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> kMethods = {
      {Method::kZeroShot, "zero-shot", "zero_shot", "Zero-shot", "#999999", SeedUse::kOnce, ModuleUse::kNone,
       Learning::kNone, PromptStyle::kTask, nullptr, "the base model on the task's prompt"},
      {Method::kIcl, "icl", "", "ICL", "#E69F00", SeedUse::kOnceIfFixedShots, ModuleUse::kNone, Learning::kNone,
       PromptStyle::kInContext, nullptr, "the base model with run.icl_shots solved examples before the question"},
      {Method::kLoraHub, "lorahub", "", "LoraHub", "#0072B2", SeedUse::kPerSeed, ModuleUse::kSampled,
       Learning::kSearch, PromptStyle::kTask, nullptr,
       "N modules chosen with the seed, their weights searched on the few-shot examples, the best merged"},
      {Method::kUniform, "uniform", "", "Uniform", "#56B4E9", SeedUse::kPerSeed, ModuleUse::kSampled, Learning::kNone,
       PromptStyle::kTask, uniform, "the same N modules at weight 1/N, no search"},
      {Method::kLoraSingle, "lora-single", "lora_single", "Best single", "#009E73", SeedUse::kOnce, ModuleUse::kAll,
       Learning::kNone, PromptStyle::kTask, each_alone,
       "every library module alone at weight 1; the run reports the best (an oracle)"},
      {Method::kLoraFt, "lora-ft", "lora_ft", "LoRA FT", "#D55E00", SeedUse::kPerSeed, ModuleUse::kNone,
       Learning::kFineTune, PromptStyle::kTask, nullptr, "a fresh LoRA fine-tuned on the same few-shot examples"},
  };
  return kMethods;
}

const MethodInfo& info(Method method) {
  for (const auto& m : methods()) {
    if (m.method == method) return m;
  }
  core::fail("unknown method id ", static_cast<int>(method));
}

const MethodInfo* find_method(std::string_view name) {
  for (const auto& m : methods()) {
    if (name == m.name || (*m.alias && name == m.alias)) return &m;
  }
  return nullptr;
}

std::string method_names() {
  std::string all;
  for (const auto& m : methods()) all += (all.empty() ? "" : ", ") + std::string(m.name);
  return all;
}

Method parse_method(std::string_view name) {
  if (const auto* m = find_method(name)) return m->method;
  core::fail("unknown method '", name, "' (expected one of ", method_names(), ")");
}

std::string to_string(Method method) { return info(method).name; }

}  // namespace lorahub::job
