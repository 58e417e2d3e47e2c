#include "lorahub/report/summary.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/job/config.h"
#include "lorahub/job/methods.h"
#include "lorahub/job/plan.h"

namespace lorahub::report {
namespace {

namespace fs = std::filesystem;
using core::fail;

// Column order of the paper's tables (the method table's); methods this build does not know follow by name.
std::size_t method_rank(const std::string& method) {
  const auto& all = job::methods();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (method == all[i].name) return i;
  }
  return all.size();
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

// Mean of the finite values only: a run that did not record a cost leaves it out, not as zero.
double finite_mean(const std::vector<double>& values) {
  std::vector<double> finite;
  for (double v : values) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  return mean_of(finite);
}

double number_attr(const io::RunRecord& r, const char* name) {
  auto it = r.number_attrs.find(name);
  return it == r.number_attrs.end() ? kNaN : it->second;
}

RunFacts facts_of(const io::RunRecord& r) {
  RunFacts f;
  f.task = r.task;
  f.method = r.method;
  f.seed = r.seed;
  f.status = r.status;
  f.failure_reason = r.failure_reason;
  f.accuracy = r.accuracy;
  if (!r.input_tokens.empty()) {
    double sum = 0;
    for (auto t : r.input_tokens) sum += static_cast<double>(t);
    f.tokens_per_example = sum / static_cast<double>(r.input_tokens.size());
  }
  f.learn_seconds = number_attr(r, "learn_seconds");
  f.eval_seconds = number_attr(r, "eval_seconds");
  f.evaluations = number_attr(r, "evaluations");
  if (auto it = r.text_attrs.find("best_module"); it != r.text_attrs.end()) f.best_module = it->second;
  static const std::string kPrefix = "accuracy_";
  for (const auto& [name, value] : r.number_attrs) {
    if (name.size() > kPrefix.size() && name.compare(0, kPrefix.size(), kPrefix) == 0) {
      f.module_accuracies[name.substr(kPrefix.size())] = value;
    }
  }
  return f;
}

// Says plainly when a file is not HDF5 at all; HDF5's own message is a stack of internal calls.
// HDF5 finds its signature at offset 0, or after a user block at 512, 1024, 2048, ...
void require_hdf5_signature(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;  // ResultStore says that it does not exist
  if (!fs::is_regular_file(path, ec)) fail(path, " is not a file, so not a lorahub-hpc results file");
  const std::uintmax_t size = fs::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) return;  // unreadable: ResultStore reports why
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  for (std::uintmax_t offset = 0; offset + sizeof kSignature <= size; offset = offset ? offset * 2 : 512) {
    char head[sizeof kSignature];
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(head, sizeof head);
    if (in.gcount() == static_cast<std::streamsize>(sizeof head) && std::memcmp(head, kSignature, sizeof head) == 0) return;
  }
  fail(path, " is not an HDF5 file, so not a lorahub-hpc results file");
}

}  // namespace

std::string method_label(const std::string& method) {
  const auto* m = job::find_method(method);
  return m && method == m->name ? m->label : method;
}

bool Summary::averages_differ() const {
  for (const auto& a : averages) {
    if (a.tasks_with_value != tasks.size()) return true;
  }
  return false;
}

JobPlan parse_job_plan(const std::string& job_config_json, const std::string& where) {
  nlohmann::json j = nlohmann::json::parse(job_config_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail(where, ": job_config is not a JSON object");
  // The keys a plan needs must be there: defaults would invent runs the job never meant.
  auto section = [&](const char* name) -> const nlohmann::json& {
    if (!j.contains(name) || !j[name].is_object()) fail(where, ": job_config has no object '", name, "'");
    return j[name];
  };
  const auto& data = section("data");
  const auto& run = section("run");
  if (!data.contains("tasks") || !data["tasks"].is_array()) fail(where, ": job_config key data.tasks is not an array");
  for (const auto& t : data["tasks"]) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
      fail(where, ": job_config data.tasks entry ", t.dump(), " has no string 'name'");
    }
  }
  if (!run.contains("methods") || !run["methods"].is_array()) fail(where, ": job_config key run.methods is not an array");
  if (!run.contains("seeds") || !run["seeds"].is_array()) fail(where, ": job_config key run.seeds is not an array");
  // The runs themselves come from the job's own rule (job::plan_runs), as the solver expanded them.
  const auto config = job::JobConfig::from_json(j, where + ": job_config");
  JobPlan plan;
  for (const auto& t : config.data.tasks) plan.tasks.push_back(t.name);
  for (auto m : config.run.methods) plan.methods.push_back(job::to_string(m));
  for (const auto& r : job::plan_runs(config)) {
    auto& seeds = plan.seeds[job::to_string(r.method)];
    if (std::find(seeds.begin(), seeds.end(), r.seed) == seeds.end()) seeds.push_back(r.seed);
  }
  for (auto& [method, seeds] : plan.seeds) std::sort(seeds.begin(), seeds.end());
  return plan;
}

Summary summarize(const std::vector<RunFacts>& runs, const std::optional<JobPlan>& plan, const std::string& source) {
  Summary s;
  s.source = source;
  s.has_plan = plan.has_value();

  std::set<std::string> seen;
  if (plan) {
    for (const auto& t : plan->tasks) {
      if (seen.insert(t).second) s.tasks.push_back(t);
    }
  }
  std::set<std::string> extra_tasks;
  std::set<std::string> method_set;
  if (plan) method_set.insert(plan->methods.begin(), plan->methods.end());
  for (const auto& r : runs) {
    if (!seen.count(r.task)) extra_tasks.insert(r.task);
    method_set.insert(r.method);
  }
  s.tasks.insert(s.tasks.end(), extra_tasks.begin(), extra_tasks.end());
  if (plan) s.unplanned_tasks.assign(extra_tasks.begin(), extra_tasks.end());
  s.methods.assign(method_set.begin(), method_set.end());
  std::stable_sort(s.methods.begin(), s.methods.end(),
                   [](const std::string& a, const std::string& b) { return method_rank(a) < method_rank(b); });

  std::map<std::string, std::size_t> task_index, method_index;
  for (std::size_t i = 0; i < s.tasks.size(); ++i) task_index[s.tasks[i]] = i;
  for (std::size_t i = 0; i < s.methods.size(); ++i) method_index[s.methods[i]] = i;

  // Runs of each cell by seed; list_runs gives each key once, but a caller's list might not.
  std::vector<std::map<std::int64_t, const RunFacts*>> by_cell(s.tasks.size() * s.methods.size());
  for (const auto& r : runs) {
    auto& slot = by_cell[task_index.at(r.task) * s.methods.size() + method_index.at(r.method)];
    if (!slot.emplace(r.seed, &r).second) {
      fail(source, ": run ", r.task, "/", r.method, "/seed_", r.seed, " is listed twice");
    }
  }

  std::set<std::string> planned_tasks;
  if (plan) planned_tasks.insert(plan->tasks.begin(), plan->tasks.end());
  s.cells.resize(by_cell.size());
  for (std::size_t ti = 0; ti < s.tasks.size(); ++ti) {
    for (std::size_t mi = 0; mi < s.methods.size(); ++mi) {
      Cell& c = s.cells[ti * s.methods.size() + mi];
      c.task = s.tasks[ti];
      c.method = s.methods[mi];
      const auto& found = by_cell[ti * s.methods.size() + mi];
      if (plan && planned_tasks.count(c.task)) {
        auto it = plan->seeds.find(c.method);
        if (it != plan->seeds.end()) c.expected_seeds = it->second;
      }
      for (auto seed : c.expected_seeds) {
        if (!found.count(seed)) {
          s.issues.push_back({c.task, c.method, seed, "missing", ""});
          ++c.missing;
        }
      }
      std::vector<double> tokens, learn, eval, evaluations;
      for (const auto& [seed, r] : found) {
        if (r->status == "complete" && std::isfinite(r->accuracy)) {
          c.seeds.push_back(seed);
          c.accuracies.push_back(r->accuracy);
          tokens.push_back(r->tokens_per_example);
          learn.push_back(r->learn_seconds);
          eval.push_back(r->eval_seconds);
          evaluations.push_back(r->evaluations);
          if (c.best_module.empty() && c.module_accuracies.empty()) {
            c.best_module = r->best_module;
            c.module_accuracies = r->module_accuracies;
          }
        } else if (r->status == "complete") {
          s.issues.push_back({c.task, c.method, seed, "unevaluated", ""});
          ++c.unevaluated;
        } else if (r->status == "failed") {
          s.issues.push_back({c.task, c.method, seed, "failed", r->failure_reason});
          ++c.failed;
        } else if (r->status == "incomplete") {
          s.issues.push_back({c.task, c.method, seed, "incomplete", ""});
          ++c.incomplete;
        } else if (r->status == "damaged") {
          s.issues.push_back({c.task, c.method, seed, "damaged", r->failure_reason});
          ++c.failed;
        } else {
          // A run that could not be read, or a status this build does not know.
          s.issues.push_back({c.task, c.method, seed, "failed",
                              r->failure_reason.empty() ? core::cat("status '", r->status, "'") : r->failure_reason});
          ++c.failed;
        }
      }
      if (!c.accuracies.empty()) {
        c.mean = mean_of(c.accuracies);
        c.best = *std::max_element(c.accuracies.begin(), c.accuracies.end());
        c.min = *std::min_element(c.accuracies.begin(), c.accuracies.end());
        if (c.accuracies.size() > 1) {
          double ss = 0;
          for (double a : c.accuracies) ss += (a - c.mean) * (a - c.mean);
          c.stdev = std::sqrt(ss / static_cast<double>(c.accuracies.size() - 1));
        }
      }
      c.tokens_per_example = finite_mean(tokens);
      c.learn_seconds = finite_mean(learn);
      c.eval_seconds = finite_mean(eval);
      c.evaluations = finite_mean(evaluations);
    }
  }

  for (std::size_t ti = 0; ti < s.tasks.size(); ++ti) {
    bool all = !s.methods.empty();
    for (std::size_t mi = 0; mi < s.methods.size(); ++mi) all = all && s.cell(ti, mi).has_value();
    if (all) s.common_tasks.push_back(s.tasks[ti]);
  }
  for (std::size_t mi = 0; mi < s.methods.size(); ++mi) {
    MethodAverage a;
    a.method = s.methods[mi];
    std::vector<double> means, bests, common_means, common_bests, tokens, learn, eval;
    for (std::size_t ti = 0; ti < s.tasks.size(); ++ti) {
      const Cell& c = s.cell(ti, mi);
      a.runs_expected += c.expected_seeds.size();
      a.runs_complete += c.seeds.size();
      a.runs_failed += c.failed;
      a.runs_incomplete += c.incomplete;
      a.runs_missing += c.missing;
      a.runs_unevaluated += c.unevaluated;
      if (!c.has_value()) continue;
      ++a.tasks_with_value;
      means.push_back(c.mean);
      bests.push_back(c.best);
      tokens.push_back(c.tokens_per_example);
      learn.push_back(c.learn_seconds);
      eval.push_back(c.eval_seconds);
      if (std::find(s.common_tasks.begin(), s.common_tasks.end(), c.task) != s.common_tasks.end()) {
        common_means.push_back(c.mean);
        common_bests.push_back(c.best);
      }
    }
    a.mean = mean_of(means);
    a.best = mean_of(bests);
    a.common_mean = mean_of(common_means);
    a.common_best = mean_of(common_bests);
    a.tokens_per_example = finite_mean(tokens);
    a.learn_seconds = finite_mean(learn);
    a.eval_seconds = finite_mean(eval);
    s.averages.push_back(a);
  }

  std::stable_sort(s.issues.begin(), s.issues.end(), [&](const RunIssue& x, const RunIssue& y) {
    return std::make_tuple(task_index.at(x.task), method_index.at(x.method), x.seed) <
           std::make_tuple(task_index.at(y.task), method_index.at(y.method), y.seed);
  });
  return s;
}

Summary summarize(const io::ResultStore& store) {
  std::optional<JobPlan> plan;
  std::string plan_problem;
  auto attrs = store.job_attrs();
  if (auto it = attrs.find("job_config"); it != attrs.end()) {
    try {
      plan = parse_job_plan(it->second, store.path());
    } catch (const core::Error& e) {
      plan_problem = e.what();
    }
  } else {
    plan_problem = core::cat(store.path(), " has no job_config attribute, so missing runs cannot be known");
  }
  std::vector<RunFacts> runs;
  std::vector<std::string> damaged_groups;
  for (const auto& key : store.list_runs()) {
    if (key.container) {
      damaged_groups.push_back(core::cat(key.group, ": ", key.problem));
      continue;
    }
    RunFacts f;
    f.task = key.task;
    f.method = key.method;
    f.seed = key.seed;
    f.status = key.status;
    f.failure_reason = key.problem;
    if (key.status == "complete" || key.status == "failed") {
      // Each run is read on its own: one damaged group does not hide the others.
      try {
        f = facts_of(store.read_run(key.task, key.method, key.seed));
      } catch (const core::Error& e) {
        f.status = "damaged";
        f.failure_reason = e.what();
      }
    }
    runs.push_back(f);
  }
  Summary s = summarize(runs, plan, store.path());
  s.plan_problem = plan_problem;
  s.damaged_groups = std::move(damaged_groups);
  attrs.erase("job_config");
  s.file_attrs = attrs;
  return s;
}

Summary summarize_file(const std::string& path) {
  require_hdf5_signature(path);
  io::ResultStore store(path, io::ResultStore::Mode::kReadOnly);
  return summarize(store);
}

}  // namespace lorahub::report
