// compare_results [--ignore-config] A.h5 B.h5: exits 0 when both result files hold the same runs with the same
// contents, bit for bit, apart from what legitimately differs between two executions of one job: wall-clock
// times and the output path / resume flag inside the stored configuration. --ignore-config also skips the
// stored configuration (job-array elements each store their own share of the task list).
#include <cmath>
#include <cstring>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "lorahub/io/result_store.h"

namespace {
using lorahub::io::ResultStore;
using lorahub::io::RunRecord;

int differences = 0;
bool ignore_config = false;

void report(const std::string& where, const std::string& what) {
  if (++differences <= 20) std::cerr << where << ": " << what << "\n";
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::string without_output(const std::string& config) {
  try {
    auto j = nlohmann::json::parse(config);
    if (j.contains("output")) j.erase("output");
    return j.dump();
  } catch (const std::exception&) {
    return config;
  }
}

template <class T>
void compare(const std::string& where, const char* field, const T& a, const T& b) {
  if (!(a == b)) report(where, std::string(field) + " differs");
}

void compare_doubles(const std::string& where, const char* field, const std::vector<double>& a,
                     const std::vector<double>& b) {
  if (a.size() != b.size()) return report(where, std::string(field) + " sizes differ");
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same_bits(a[i], b[i])) return report(where, std::string(field) + "[" + std::to_string(i) + "] differs");
  }
}

void compare_runs(const std::string& where, const RunRecord& a, const RunRecord& b) {
  static const std::set<std::string> kTimes = {"start_time", "end_time"};
  // Measured times, and the forward-equivalents gradient runs derive from them (1 + backward / forward seconds).
  static const std::set<std::string> kSeconds = {"learn_seconds", "eval_seconds", "worker_seconds", "forward_equivalents"};
  compare(where, "status", a.status, b.status);
  compare(where, "failure_reason", a.failure_reason, b.failure_reason);
  for (const auto* m : {&a.text_attrs, &b.text_attrs}) {
    for (const auto& [k, v] : *m) {
      if (kTimes.count(k) || (ignore_config && k == "config")) continue;
      auto ia = a.text_attrs.find(k), ib = b.text_attrs.find(k);
      if (ia == a.text_attrs.end() || ib == b.text_attrs.end()) {
        report(where, "text attribute " + k + " missing on one side");
      } else if (k == "config" ? without_output(ia->second) != without_output(ib->second) : ia->second != ib->second) {
        report(where, "text attribute " + k + " differs");
      }
    }
  }
  for (const auto* m : {&a.number_attrs, &b.number_attrs}) {
    for (const auto& [k, v] : *m) {
      if (kSeconds.count(k)) continue;
      auto ia = a.number_attrs.find(k), ib = b.number_attrs.find(k);
      if (ia == a.number_attrs.end() || ib == b.number_attrs.end() || !same_bits(ia->second, ib->second)) {
        report(where, "number attribute " + k + " differs");
      }
    }
  }
  compare(where, "module_names", a.module_names, b.module_names);
  compare_doubles(where, "best_weights", a.best_weights, b.best_weights);
  compare_doubles(where, "best_loss", {a.best_loss}, {b.best_loss});
  if (a.history_weights.size() != b.history_weights.size()) report(where, "history length differs");
  for (std::size_t i = 0; i < std::min(a.history_weights.size(), b.history_weights.size()); ++i) {
    compare_doubles(where, "history/weights", a.history_weights[i], b.history_weights[i]);
  }
  compare_doubles(where, "history/loss", a.history_loss, b.history_loss);
  if (a.history_gradient.size() != b.history_gradient.size()) report(where, "history/gradient length differs");
  for (std::size_t i = 0; i < std::min(a.history_gradient.size(), b.history_gradient.size()); ++i) {
    compare_doubles(where, "history/gradient", a.history_gradient[i], b.history_gradient[i]);
  }
  compare(where, "selection/modules", a.selection_modules, b.selection_modules);
  compare_doubles(where, "selection/losses", a.selection_losses, b.selection_losses);
  compare(where, "train_inputs", a.train_inputs, b.train_inputs);
  compare(where, "train_targets", a.train_targets, b.train_targets);
  compare(where, "test_inputs", a.test_inputs, b.test_inputs);
  compare(where, "test_targets", a.test_targets, b.test_targets);
  compare(where, "predictions", a.predictions, b.predictions);
  compare(where, "correct", a.correct, b.correct);
  compare_doubles(where, "accuracy", {a.accuracy}, {b.accuracy});
  compare(where, "input_tokens", a.input_tokens, b.input_tokens);
  compare(where, "adapter_config", a.adapter_config, b.adapter_config);
  if (a.composed.size() != b.composed.size()) return report(where, "composed count differs");
  for (std::size_t i = 0; i < a.composed.size(); ++i) {
    const auto& x = a.composed[i];
    const auto& y = b.composed[i];
    if (x.name != y.name || x.shape != y.shape || x.data.size() != y.data.size() ||
        std::memcmp(x.data.data(), y.data.data(), x.data.size() * sizeof(float)) != 0) {
      report(where, "composed " + x.name + " differs");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--ignore-config") {
    ignore_config = true;
    ++argv;
    --argc;
  }
  if (argc != 3) {
    std::cerr << "usage: compare_results [--ignore-config] A.h5 B.h5\n";
    return 2;
  }
  try {
    ResultStore a(argv[1], ResultStore::Mode::kReadOnly);
    ResultStore b(argv[2], ResultStore::Mode::kReadOnly);
    auto ka = a.list_runs();
    auto kb = b.list_runs();
    if (ka.size() != kb.size()) report("files", std::to_string(ka.size()) + " vs " + std::to_string(kb.size()) + " runs");
    for (std::size_t i = 0; i < std::min(ka.size(), kb.size()); ++i) {
      const auto& x = ka[i];
      const auto& y = kb[i];
      if (x.group != y.group || x.status != y.status) {
        report(x.group, "vs " + y.group + " (" + x.status + " / " + y.status + ")");
        continue;
      }
      if (x.status == "incomplete") {
        report(x.group, "incomplete");
        continue;
      }
      compare_runs(x.group, a.read_run(x.task, x.method, x.seed), b.read_run(y.task, y.method, y.seed));
    }
    if (differences) {
      std::cerr << differences << " difference(s) between " << argv[1] << " and " << argv[2] << "\n";
      return 1;
    }
    std::cout << "identical: " << ka.size() << " runs\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "compare_results: " << e.what() << "\n";
    return 2;
  }
}
