#pragma once
// The methods of the paper's comparison, each described once. Run expansion, the run driver and the report read
// this table instead of switching on method names: adding a baseline is adding an entry.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub::job {

enum class Method { kZeroShot, kIcl, kLoraHub, kUniform, kLoraSingle, kLoraFt };

/// How many runs of a task a method makes.
enum class SeedUse {
  kPerSeed,          ///< one run per entry of run.seeds
  kOnce,             ///< one run, stored as seed 0: nothing the method does depends on the seed
  kOnceIfFixedShots  ///< once when run.shots_seed is a fixed number (the shots are its only use of the seed)
};
/// Which library modules a run uses.
enum class ModuleUse {
  kNone,
  kSampled,  ///< library.modules chosen with the run's seed (or library.names)
  kAll       ///< every module of the library (or library.names)
};
/// What a run learns before it answers the test set.
enum class Learning {
  kNone,
  kSearch,   ///< composition weights searched by the optimizer on the few-shot examples
  kFineTune  ///< a fresh LoRA trained on the few-shot examples
};
/// How a run's test prompts are built.
enum class PromptStyle {
  kTask,      ///< the task's prompt (zero-shot format, or the input as it is)
  kInContext  ///< the same prompt after run.icl_shots solved examples
};

/// The weight vectors a method without a search evaluates on the test set, for n modules. With several, each is
/// evaluated and the run keeps the best (an oracle, as the paper's best single module).
using FixedCompositions = std::vector<std::vector<double>> (*)(std::size_t n);

struct MethodInfo {
  Method method;
  const char* name;   ///< as in run.methods and in result files
  const char* alias;  ///< another accepted spelling, or ""
  const char* label;  ///< the report's column title
  const char* colour; ///< the report chart's colour (Okabe-Ito, readable with colour-vision deficiencies)
  SeedUse seeds;
  ModuleUse modules;
  Learning learning;
  PromptStyle prompt;
  FixedCompositions compositions;  ///< null: the base model, or what the search / fine-tuning learned
  const char* summary;             ///< one line for --help and docs

  bool uses_library() const { return modules != ModuleUse::kNone; }
  /// One run (seed 0) per task instead of one per seed.
  bool runs_once(bool fixed_shots_seed) const {
    return seeds == SeedUse::kOnce || (seeds == SeedUse::kOnceIfFixedShots && fixed_shots_seed);
  }
};

/// Every method, in the paper's column order.
const std::vector<MethodInfo>& methods();
const MethodInfo& info(Method method);
/// The method of a name or alias; nullptr when there is none.
const MethodInfo* find_method(std::string_view name);
/// The method of a name or alias; core::Error listing the valid names otherwise.
Method parse_method(std::string_view name);
std::string to_string(Method method);
/// "zero-shot, icl, lorahub, ..." for messages.
std::string method_names();

}  // namespace lorahub::job
