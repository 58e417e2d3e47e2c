#include "lorahub/job/plan.h"

#include <algorithm>
#include <optional>

#include "lorahub/core/error.h"
#include "lorahub/data/bbh.h"
#include "lorahub/data/prompt.h"
#include "lorahub/job/library.h"

namespace lorahub::job {
using core::fail;

std::vector<PlannedRun> plan_runs(const JobConfig& c) {
  std::vector<PlannedRun> out;
  for (const auto& task : c.data.tasks) {
    for (auto method : c.run.methods) {
      if (info(method).runs_once(c.run.shots_seed.has_value())) {
        out.push_back({task.name, method, 0});
        continue;
      }
      for (auto seed : c.run.seeds) out.push_back({task.name, method, seed});
    }
  }
  return out;
}

namespace {

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

std::vector<data::Example> pick(const LoadedTask& task, std::int64_t k, std::int64_t seed, data::Sampler sampler) {
  return data::pick_shots(task.pool, static_cast<int>(std::min<std::int64_t>(k, static_cast<std::int64_t>(task.pool.size()))),
                          seed, sampler);
}

// The test prompts of a run: the task's prompt, or (in-context) the same after solved examples.
std::vector<data::Example> test_prompts(const MethodInfo& m, const JobConfig& c, const LoadedTask& task,
                                        data::PromptMode mode, std::int64_t shots_seed) {
  if (m.prompt == PromptStyle::kTask) return data::make_prompts(mode, task.description, {}, task.test);
  auto icl = pick(task, c.run.icl_shots, shots_seed, c.library.sampler);
  // The demonstrations use the task's own answer format; the question is asked as in zero-shot.
  auto test = data::make_prompts(mode == data::PromptMode::kZeroShot ? data::PromptMode::kFewShot : mode,
                                 task.description, icl, task.test);
  if (mode == data::PromptMode::kInputOnly) {
    // Plain inputs: the demonstrations as "input target" blocks before the question.
    std::string prefix;
    for (const auto& s : icl) prefix += s.input + " " + s.target + "\n\n";
    for (auto& ex : test) ex.input = prefix + ex.input;
  }
  return test;
}

}  // namespace

std::vector<RunSpec> expand_job(const JobConfig& c, const std::vector<std::string>& library_names) {
  // Configuration errors stop the job before any work; data errors only fail their task's runs.
  const bool sampled = std::any_of(c.run.methods.begin(), c.run.methods.end(),
                                   [](Method m) { return info(m).modules == ModuleUse::kSampled; });
  const std::string& src = c.source.empty() ? std::string("configuration") : c.source;
  if (sampled && c.library.names.empty() && static_cast<std::size_t>(c.library.modules) > library_names.size()) {
    fail(c.origin_of("library.modules"), ": library.modules = ", c.library.modules, " but the library '", c.library.path,
         "' has only ", library_names.size(), " modules");
  }
  if (sampled && c.library.select == ModuleSelect::kLoss && !c.library.names.empty() &&
      static_cast<std::size_t>(c.library.modules) > c.library.names.size()) {
    fail(c.origin_of("library.modules"), ": library.modules = ", c.library.modules, " but library.select = \"loss\" ",
         "chooses from the ", c.library.names.size(), " modules of library.names");
  }
  for (const auto& name : c.library.names) {
    if (std::find(library_names.begin(), library_names.end(), name) == library_names.end()) {
      fail(c.origin.count("library.names") ? c.origin_of("library.names") : src, ": library.names lists '", name,
           "', which is not in '", c.library.path, "'");
    }
  }
  std::vector<RunSpec> runs;
  std::string loaded_name;
  LoadedTask task;
  for (const auto& planned : plan_runs(c)) {
    const auto& source = *std::find_if(c.data.tasks.begin(), c.data.tasks.end(),
                                       [&](const TaskSource& t) { return t.name == planned.task; });
    if (planned.task != loaded_name) {
      task = load_task(source, c.data.max_test);
      loaded_name = planned.task;
    }
    const bool zero_shot_format =
        c.data.prompt == PromptFormat::kZeroShot || (c.data.prompt == PromptFormat::kAuto && task.bbh);
    const auto mode = zero_shot_format ? data::PromptMode::kZeroShot : data::PromptMode::kInputOnly;
    const auto& m = info(planned.method);
    RunSpec r;
    r.id = static_cast<std::int64_t>(runs.size());
    r.task = planned.task;
    r.method = planned.method;
    r.seed = planned.seed;
    r.description = task.description;
    r.error = task.error;
    if (r.error.empty()) {
      try {
        const std::int64_t shots_seed = c.run.shots_seed ? *c.run.shots_seed : planned.seed;
        if (static_cast<std::int64_t>(task.pool.size()) < c.run.shots) {
          core::fail("task '", planned.task, "' has ", task.pool.size(), " pool examples, fewer than run.shots = ",
                     c.run.shots);
        }
        r.train = data::make_prompts(mode, task.description, {}, pick(task, c.run.shots, shots_seed, c.library.sampler));
        r.test = test_prompts(m, c, task, mode, shots_seed);
        if (m.modules == ModuleUse::kSampled && c.library.select == ModuleSelect::kLoss) {
          // The run scores this pool and keeps the best library.modules of it (search::RunDriver).
          r.modules = c.library.names.empty() ? library_names : c.library.names;
        } else if (m.modules == ModuleUse::kSampled) {
          if (!c.library.names.empty()) {
            r.modules = c.library.names;
          } else {
            auto k = static_cast<std::size_t>(c.library.modules);
            for (auto i : choose_modules(library_names.size(), k, planned.seed, c.library.sampler)) {
              r.modules.push_back(library_names[i]);
            }
          }
        } else if (m.modules == ModuleUse::kAll) {
          r.modules = c.library.names.empty() ? library_names : c.library.names;
        }
      } catch (const std::exception& e) {
        r.error = e.what();
      }
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

}  // namespace lorahub::job
