// bench search: how low each search drives the few-shot loss, and what accuracy that buys, per unit of compute,
// on the demo world (docs/search.md). Every variant is a real job through the solver (runner::run_job), so the
// figures are what `lorahub run` gives with those settings.
//   mpirun -n 3 lorahub-bench --threads 1 search --plot docs/search.svg > docs/search.md
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

#include "benchmarks.h"
#include "common.h"
#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/io/result_store.h"
#include "lorahub/job/config.h"
#include "lorahub/job/library.h"
#include "lorahub/runner/runner.h"
#include "lorahub/worker/backend.h"
#include "search_plot.h"

namespace lorahub::bench {
using core::cat;
using core::fail;

namespace {

struct SearchArgs {
  std::vector<std::string> config = {"configs/demo.toml"};  // the demo world: N = 16 of 16 modules
  std::vector<std::string> select_config = {"configs/demo.toml", "configs/demo-select.toml"};  // N = 6 of 16
  std::string methods = "cobyla,cmaes,adam,lbfgsb";
  std::string costs = "40,120";
  std::vector<std::string> overrides;  // applied to every variant (e.g. fewer seeds for a quick look)
  std::string plot;
  std::string work;
  std::string from;  // read the variants' results files from a previous --work folder instead of running them
};

// One setting of the study.
struct Variant {
  std::string part;     // "A" all modules, "B" 6 of 16 random / loss-ranked, "C" recommended
  std::string label;    // e.g. "adam, 40 fe"
  std::string method;   // optimizer
  double cost = 0;      // forward-equivalents the variant may spend, selection included
  bool select = false;  // loss-ranked selection
  std::vector<std::string> settings;  // --set overrides
  std::vector<std::string> config;
};

// What the records of one variant say.
struct Outcome {
  Variant v;
  std::size_t runs = 0, failed = 0;
  double mean_loss = 0, mean_accuracy = 0, mean_fe = 0, mean_worker_seconds = 0;
  std::map<std::string, double> task_accuracy;  // mean over seeds
  Curve median;                                 // median over runs of the best loss so far against fe
};

bool gradient_method(const std::string& m) { return m == "adam" || m == "lbfgsb"; }

// The cost of each evaluation of a run in forward-equivalents, in order: the selection's single-module scores
// (one forward each), then the search's evaluations (one forward, or the run's measured forward + backward).
Curve run_curve(const io::RunRecord& r) {
  Curve c;
  double fe = 0, best = std::numeric_limits<double>::infinity();
  for (double l : r.selection_losses) {
    fe += 1;
    best = std::min(best, l);
    c.push_back({fe, best});
  }
  const auto evals = r.history_loss.size();
  double per_eval = 1;
  if (auto it = r.number_attrs.find("forward_equivalents"); it != r.number_attrs.end() && evals > 0) {
    per_eval = it->second / static_cast<double>(evals);
  }
  for (double l : r.history_loss) {
    fe += per_eval;
    if (std::isfinite(l)) best = std::min(best, l);
    c.push_back({fe, best});
  }
  return c;
}

// The median over runs of the best loss so far, on a grid of forward-equivalents (runs that have spent less
// than x count with their last value: their search is over).
Curve median_curve(const std::vector<Curve>& runs, double max_fe) {
  Curve out;
  for (double x = 1; x <= max_fe + 1e-9; x += 1) {
    std::vector<double> at;
    for (const auto& c : runs) {
      double v = std::numeric_limits<double>::quiet_NaN();
      for (const auto& [fe, loss] : c) {
        if (fe > x + 1e-9) break;
        v = loss;
      }
      if (std::isfinite(v)) at.push_back(v);
    }
    if (at.size() * 2 > runs.size()) out.push_back({x, median(at)});
  }
  return out;
}

Outcome summarise(const Variant& v, const std::vector<io::RunRecord>& records, double max_fe) {
  Outcome o;
  o.v = v;
  std::vector<Curve> curves;
  std::map<std::string, std::vector<double>> by_task;
  double loss = 0, acc = 0, fe = 0, seconds = 0;
  for (const auto& r : records) {
    ++o.runs;
    if (r.status != "complete") {
      ++o.failed;
      continue;
    }
    loss += r.best_loss;
    acc += r.accuracy;
    auto c = run_curve(r);
    fe += c.empty() ? 0 : c.back().first;
    if (auto it = r.number_attrs.find("worker_seconds"); it != r.number_attrs.end()) seconds += it->second;
    by_task[r.task].push_back(r.accuracy);
    curves.push_back(std::move(c));
  }
  const double n = static_cast<double>(o.runs - o.failed);
  if (n > 0) {
    o.mean_loss = loss / n;
    o.mean_accuracy = acc / n;
    o.mean_fe = fe / n;
    o.mean_worker_seconds = seconds / n;
  }
  for (const auto& [task, accs] : by_task) {
    double s = 0;
    for (double a : accs) s += a;
    o.task_accuracy[task] = s / static_cast<double>(accs.size());
  }
  o.median = median_curve(curves, max_fe);
  return o;
}

// The first forward-equivalent at which a median curve is at or below `target`.
std::string fe_to_reach(const Curve& c, double target) {
  for (const auto& [fe, loss] : c) {
    if (loss <= target) return fixed(fe, 0);
  }
  return "not reached";
}

std::string file_name(const Variant& v) {
  std::string name = v.label;
  for (auto& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return v.part + "_" + name + ".h5";
}

std::vector<io::RunRecord> read_variant(const Variant& v, const std::string& from) {
  const auto path = (fs::path(from) / file_name(v)).string();
  io::ResultStore store(path, io::ResultStore::Mode::kReadOnly);
  std::vector<io::RunRecord> out;
  for (const auto& key : store.list_runs()) out.push_back(store.read_run(key.task, key.method, key.seed));
  return out;
}

std::vector<io::RunRecord> run_variant(const Variant& v, const std::vector<std::string>& overrides, int threads,
                                       const std::string& work, const distributed::Comm& comm,
                                       const std::string& from = "") {
  if (!from.empty()) return comm.is_root() ? read_variant(v, from) : std::vector<io::RunRecord>{};
  auto config = job::JobConfig::from_toml_files(v.config);
  config.apply_overrides({"run.methods=[\"lorahub\"]"});
  config.apply_overrides(v.settings);
  config.apply_overrides(overrides);
  config.output.path = (fs::path(work) / file_name(v)).string();
  if (comm.is_root()) fs::remove(config.output.path);
  comm.barrier();
  runner::RunnerOptions options;
  options.threads = threads;
  options.keep_records = true;
  core::log_info(cat("bench search: ", v.part, " ", v.label));
  return runner::run_job(config, options, worker::backend()).records;
}

// Forward-equivalents of one gradient evaluation on this model and machine (1 + backward / forward seconds),
// measured by a short job, so that the gradient methods get the same compute as the others.
double measure_gradient_cost(const SearchArgs& a, int threads, const std::string& work, const distributed::Comm& comm) {
  Variant probe;
  probe.part = "calibration";
  probe.label = "adam";
  probe.config = a.config;
  probe.settings = {"lorahub.optimizer=adam", "lorahub.budget=6", "run.seeds=[1]", "data.max_test=1"};
  double fe = 0, evals = 0;
  for (const auto& r : run_variant(probe, a.overrides, threads, work, comm, a.from)) {
    fe += r.number_attrs.at("forward_equivalents");
    evals += static_cast<double>(r.history_loss.size());
  }
  double cost = 0;
  if (comm.is_root()) cost = evals > 0 ? fe / evals : 1.0;
  std::string text = comm.is_root() ? cat(std::setprecision(17), cost) : std::string();
  comm.broadcast(text);
  return std::stod(text);
}

// The optimizer settings that spend `cost` forward-equivalents, `selection` of them on scoring the library.
std::vector<std::string> budget_settings(const std::string& method, double cost, double selection, double gradient_fe) {
  const double left = cost - selection;
  const int budget = gradient_method(method) ? std::max(1, static_cast<int>(std::lround(left / gradient_fe)))
                                             : std::max(1, static_cast<int>(std::lround(left)));
  return {"lorahub.optimizer=" + method, cat("lorahub.budget=", budget)};
}

std::vector<Variant> plan(const SearchArgs& a, double gradient_fe, std::size_t library_size) {
  std::vector<Variant> out;
  const auto methods = split_list(a.methods);
  const auto costs = parse_doubles(a.costs, "--costs");
  for (double cost : costs) {
    for (const auto& m : methods) {
      Variant v{"A", cat(m, ", ", cost, " fe"), m, cost, false, budget_settings(m, cost, 0, gradient_fe), a.config};
      out.push_back(v);
    }
  }
  for (double cost : costs) {
    for (const auto& m : methods) {
      for (bool select : {false, true}) {
        Variant v{"B", cat(m, select ? ", loss-ranked" : ", random", ", ", cost, " fe"), m, cost, select,
                  budget_settings(m, cost, select ? static_cast<double>(library_size) : 0, gradient_fe), a.select_config};
        if (select) v.settings.push_back("library.select=loss");
        out.push_back(v);
      }
    }
  }
  // The recommended setting: 8 of the 16 modules by loss, COBYLA from the best of them.
  for (double cost : costs) {
    Variant v{"C", cat("cobyla, 8 loss-ranked, best-module start, ", cost, " fe"), "cobyla", cost, true,
              budget_settings("cobyla", cost, static_cast<double>(library_size), gradient_fe), a.config};
    v.settings.insert(v.settings.end(), {"library.select=loss", "library.modules=8", "lorahub.start=best-module"});
    out.push_back(v);
  }
  return out;
}

void print_tables(const std::vector<Outcome>& all, double gradient_fe) {
  const Outcome* reference = nullptr;
  for (const auto& o : all) {
    if (o.v.part == "A" && o.v.method == "cobyla" && o.v.cost == 40) reference = &o;
  }
  const double target = reference && !reference->median.empty() ? reference->median.back().second : 0;
  std::cout << "One gradient evaluation (one forward and one backward) costs " << sig(gradient_fe)
            << " forward-equivalents here (1 + backward / forward seconds, measured by a calibration job); the "
               "gradient methods get as many evaluations as fit in each variant's cost. fe to reach: the first "
               "forward-equivalent at which the median over runs of the best loss so far is at or below "
               "COBYLA-40's final median ("
            << sig(target) << ").\n";
  for (const std::string part : {"A", "B", "C"}) {
    static const std::map<std::string, std::string> kTitles = {
        {"A", "All 16 modules (configs/demo.toml, the reference's random choice is the whole library)"},
        {"B", "6 of the 16 modules (configs/demo-select.toml): random (the reference) against loss-ranked"},
        {"C", "Recommended: 8 of the 16 loss-ranked, COBYLA from the best module (configs/demo.toml)"}};
    std::cout << "\n#### " << part << ". " << kTitles.at(part) << "\n\n"
              << "| search | cost fe | fe spent (mean) | mean best loss | mean accuracy | worker s / run | fe to reach "
                 "COBYLA-40's loss | runs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& o : all) {
      if (o.v.part != part) continue;
      std::cout << "| " << o.v.label << " | " << fixed(o.v.cost, 0) << " | " << fixed(o.mean_fe, 1) << " | "
                << fixed(o.mean_loss, 4) << " | " << fixed(100 * o.mean_accuracy, 1) << " % | "
                << sig(o.mean_worker_seconds) << " | " << fe_to_reach(o.median, target) << " | " << o.runs - o.failed
                << (o.failed ? cat(" (", o.failed, " failed)") : "") << " |\n";
    }
  }
  // Accuracy per task for the variants of parts A and C.
  std::vector<const Outcome*> shown;
  for (const auto& o : all) {
    if (o.v.part != "B") shown.push_back(&o);
  }
  if (shown.empty()) return;
  std::cout << "\n#### Accuracy per task (%, mean over seeds), parts A and C\n\n| task |";
  for (const auto* o : shown) std::cout << " " << o->v.part << ": " << o->v.label << " |";
  std::cout << "\n|---|";
  for (std::size_t i = 0; i < shown.size(); ++i) std::cout << "---:|";
  std::cout << "\n";
  for (const auto& entry : shown.front()->task_accuracy) {
    const auto& task = entry.first;
    std::cout << "| " << task << " |";
    for (const auto* o : shown) {
      auto it = o->task_accuracy.find(task);
      std::cout << " " << (it == o->task_accuracy.end() ? std::string("–") : fixed(100 * it->second, 1)) << " |";
    }
    std::cout << "\n";
  }
}

void run_search_bench(const SearchArgs& a, int threads_arg) {
  distributed::Comm comm;  // MPI once, for every job below
  const int threads = threads_arg > 0 ? threads_arg : 1;
  std::string work = a.work;
  if (comm.is_root() && work.empty() && a.from.empty()) work = fresh_temp_dir("search").string();
  comm.broadcast(work);
  const std::string started = started_line();
  const double gradient_fe = measure_gradient_cost(a, threads, work, comm);
  const auto base = job::JobConfig::from_toml_files(a.config);
  const auto library_size = job::library_module_names(base.library.path).size();
  const auto variants = plan(a, gradient_fe, library_size);
  double max_fe = 0;
  for (const auto& v : variants) max_fe = std::max(max_fe, v.cost);
  std::vector<Outcome> outcomes;
  for (const auto& v : variants) {
    auto records = run_variant(v, a.overrides, threads, work, comm, a.from);
    if (comm.is_root()) outcomes.push_back(summarise(v, records, max_fe * 1.1));
  }
  if (!comm.is_root()) return;
  std::string overrides;
  for (const auto& o : a.overrides) overrides += " --set " + o;
  auto shown = base;
  shown.apply_overrides(a.overrides);
  print_header("LoraHub search on the demo world: best few-shot loss and accuracy against compute",
               cat("- every variant is a job of LoraHub runs (", shown.data.tasks.size(), " held-out tasks x ",
                   shown.run.seeds.size(), " seeds of the demo world", overrides.empty() ? "" : cat(", with", overrides),
                   ") through the solver, ", comm.size() == 1 ? std::string("serially") : cat(comm.size() - 1, " workers"),
                   "; cost in forward-equivalents (fe): one few-shot forward = 1, a gradient = its measured forward + "
                   "backward, the loss-ranked selection = one fe per library module scored\n",
                   "- mean best loss: the objective (CE + l1 mean|w|) at the best weights, mean over runs; accuracy: "
                   "exact match on each task's test examples with the best composition merged\n"),
               started);
  print_tables(outcomes, gradient_fe);
  if (!a.plot.empty()) {
    std::vector<std::pair<std::string, Curve>> series;
    for (const auto& o : outcomes) {
      const bool top = o.v.cost == max_fe;
      if ((o.v.part == "A" && top) || o.v.part == "C" ||
          (o.v.part == "B" && top && (o.v.method == "cobyla" || o.v.method == "adam"))) {
        series.emplace_back(o.v.part + ": " + o.v.label, o.median);
      }
    }
    write_curve_plot(a.plot, "Median best few-shot loss against forward-equivalents (demo world)", series, max_fe * 1.05);
    std::cout << "\nPlot: " << a.plot << " (median over runs of the best loss so far).\n";
  }
  if (a.work.empty() && a.from.empty()) fs::remove_all(work);
  print_footer();
}

}  // namespace

void add_search_benchmark(CLI::App& bench, int& threads) {
  auto* cmd = bench.add_subcommand(
      "search", "The optimizers and module selections on the demo world: best loss and accuracy against compute");
  auto a = std::make_shared<SearchArgs>();
  cmd->add_option("--config", a->config, "Job files of parts A and C (default configs/demo.toml)");
  cmd->add_option("--select-config", a->select_config,
                  "Job files of part B (default configs/demo.toml configs/demo-select.toml)");
  cmd->add_option("--methods", a->methods, "Optimizers (default cobyla,cmaes,adam,lbfgsb)");
  cmd->add_option("--costs", a->costs, "Compute per run in forward-equivalents (default 40,120)");
  cmd->add_option("--set", a->overrides, "Override a job setting in every variant: section.key=value (repeatable)");
  cmd->add_option("--plot", a->plot, "Write the SVG plot of median best loss against forward-equivalents here");
  cmd->add_option("--work", a->work, "Keep the variants' results files in this folder (default: a temporary one)");
  cmd->add_option("--from", a->from, "Tables and plot from the results files a previous --work run kept there");
  cmd->callback([a, &threads] { run_search_bench(*a, threads); });
}

}  // namespace lorahub::bench
