#pragma once
// The demo world's task family: small synthetic text-to-text tasks (string edits, counting, sorting,
// comparisons, boolean logic, arithmetic, category lookups) over a fixed vocabulary of 48 words, each with
// natural-language instructions. Upstream tasks train one LoRA module each; held-out tasks reuse their
// skills under new wording or in combination. Everything is generated from core::Rng, so the same seed gives
// the same examples on every platform.
#include <cstdint>
#include <string>
#include <vector>

#include "lorahub/core/random.h"
#include "lorahub/data/example.h"

namespace lorahub::demo {

/// The category of a vocabulary word (what the `first_cat` task names and the filter tasks keep).
enum class Category { kAnimal, kColor, kFruit, kThing };
/// "animal", "color", "fruit", "thing".
std::string to_string(Category category);

/// One vocabulary word.
struct Item {
  std::string word;
  Category category;
};
/// The 48 words: 14 animals, 10 colors, 12 fruits, 12 things, all lower-case and distinct.
const std::vector<Item>& items();
/// The category of `word`; core::Error naming the word when it is not in items().
Category category_of(const std::string& word);

/// Whether a task trains a module of the library or is held out for LoraHub.
enum class TaskRole { kUpstream, kHeldOut };

/// A task of the family.
struct TaskSpec {
  std::string name;
  TaskRole role = TaskRole::kUpstream;
  /// Upstream: the wordings its module is trained on, [0] the canonical one the base model is pretrained on.
  /// Held-out: its one instruction (line 3 of its BBH prompt file).
  std::vector<std::string> instructions;
  std::string skill;       ///< what the answer is, in a few words (docs)
  std::string relation;    ///< held-out: how it relates to the upstream skills; upstream: empty
  bool in_demo_job = false;  ///< held-out: one of the tasks of configs/demo.toml
};

/// Every task, upstream first, in a fixed order.
const std::vector<TaskSpec>& task_family();
/// The task called `name`; core::Error listing the known names otherwise.
const TaskSpec& task_spec(const std::string& name);
/// Names of the tasks with that role, in task_family() order.
std::vector<std::string> task_names(TaskRole role);

/// One bare example of `task` (input without instruction, answer) drawn from `rng`.
data::Example draw_example(const std::string& task, core::Rng& rng);

/// `n` bare examples of `task` from the stream (seed, task name): the same arguments give the same examples on
/// every platform, and adding tasks does not change the others' streams. unique: no input occurs twice
/// (core::Error when the task cannot supply that many distinct inputs).
std::vector<data::Example> generate_examples(const std::string& task, std::size_t n, std::uint64_t seed,
                                             bool unique = false);

/// Which instruction a prompted example uses.
enum class Wording {
  kTaskCode,      ///< the upstream task's opaque code, task_code() (how the shipped base model is pretrained)
  kCanonical,     ///< instructions[0] (the English-base variant of docs/demo-world.md)
  kAllTemplates,  ///< one of the task's instructions, drawn uniformly per example (how modules are trained)
};

/// "Task <k>." for the k-th upstream task (1-based, task_family() order): an instruction that names the skill
/// without saying it in English. core::Error for a held-out or unknown task.
std::string task_code(const std::string& task);

/// `n` examples of `task` as model inputs, "<instruction>\n\nQ: <input>\nA:" (data::zero_shot_prompt, the
/// format the solver builds from BBH files), with bare targets. Deterministic in (task, n, seed, wording).
std::vector<data::Example> prompted_examples(const std::string& task, std::size_t n, std::uint64_t seed,
                                             Wording wording);

/// `n` prompted examples, each from a task drawn uniformly from `tasks` (a multi-task mixture, in the order
/// drawn). Deterministic in its arguments; core::Error when `tasks` is empty or names an unknown task.
std::vector<data::Example> mixture_examples(const std::vector<std::string>& tasks, std::size_t n,
                                            std::uint64_t seed, Wording wording);

/// FNV-1a 64 of `text`: the stream id of a task's generator (stable across platforms and releases).
std::uint64_t stream_id(const std::string& text);

}  // namespace lorahub::demo
