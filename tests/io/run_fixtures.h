#pragma once
// Deterministic RunRecords for the io tests, and exact (bitwise, NaN-aware) comparison.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lorahub/core/error.h"
#include "lorahub/core/random.h"
#include "lorahub/io/result_store.h"
#include "support/temp_dir.h"

namespace lorahub::io::test {
using lorahub::test::TempDir;
using Mode = ResultStore::Mode;

/// Sizes of a generated run.
struct RunShape {
  int modules = 5;
  int composed = 4;   ///< number of composed matrices (alternating lora_A / lora_B)
  int rank = 4;
  int width = 64;     ///< in / out features of each target projection
  int test_examples = 7;
};

inline std::uint64_t key_hash(const std::string& task, const std::string& method, std::int64_t seed) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : task + "\x1f" + method) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h ^ static_cast<std::uint64_t>(seed) * 0x9E3779B97F4A7C15ULL;
}

/// Every field depends on (task, method, seed); strings include non-ASCII text, newlines, quotes
/// and empty strings; numbers include NaN and infinities.
inline RunRecord make_run(const std::string& task, const std::string& method, std::int64_t seed,
                          const RunShape& shape = {}) {
  core::Rng rng(key_hash(task, method, seed));
  RunRecord r;
  r.task = task;
  r.method = method;
  r.seed = seed;
  r.status = "complete";
  r.text_attrs = {{"optimizer", "cobyla"},
                  {"model_path", "/models/flan-t5-large"},
                  {"config", "{\"budget\": 40, \"note\": \"tâche ✓ 模型\", \"seed\": " + std::to_string(seed) + "}"},
                  {"start_time", "2026-01-02T03:04:05Z"},
                  {"empty_text", ""}};
  r.number_attrs = {{"budget", 40.0}, {"shots", 5.0}, {"l1", 0.05}, {"learn_seconds", rng.uniform() * 100},
                    {"not_measured", std::nan("")}, {"upper", INFINITY}};
  for (int i = 0; i < shape.modules; ++i) {
    r.module_names.push_back("module_" + std::to_string(i) + (i % 2 ? "_ünï" : "/not-a-path"));
    r.best_weights.push_back(rng.uniform() * 3 - 1.5);
  }
  r.best_loss = rng.uniform();
  int evals = 3 + static_cast<int>(static_cast<std::uint64_t>(seed) % 4);
  for (int e = 0; e < evals; ++e) {
    std::vector<double> row;
    for (int i = 0; i < shape.modules; ++i) row.push_back(rng.uniform() * 3 - 1.5);
    r.history_weights.push_back(row);
    r.history_loss.push_back(e == 1 ? std::nan("") : rng.uniform() * 4);
    // Seeds 3, 7, 11, ... stand for gradient runs with a module selection.
    if (seed % 4 == 3) {
      std::vector<double> g;
      for (int i = 0; i < shape.modules; ++i) g.push_back(rng.uniform() * 2 - 1);
      r.history_gradient.push_back(g);
    }
  }
  if (seed % 4 == 3) {
    for (int i = 0; i < shape.modules + 2; ++i) {
      r.selection_modules.push_back("pool_" + std::to_string(i));
      r.selection_losses.push_back(rng.uniform() * 3);
    }
  }
  r.train_inputs = {"Q: 2 + 2?\nA:", "Übersetze: «bonjour»", ""};
  r.train_targets = {"4", "hallo", "\"quoted\" 🙂"};
  int correct = 0;
  for (int t = 0; t < shape.test_examples; ++t) {
    r.test_inputs.push_back("test input " + std::to_string(t) + " of " + task + " — 例子");
    r.test_targets.push_back(t % 3 == 0 ? "yes" : "no");
    bool ok = rng.uniform() < 0.6;
    r.predictions.push_back(ok ? r.test_targets.back() : "maybe ☂");
    r.correct.push_back(ok ? 1 : 0);
    r.input_tokens.push_back(10 + static_cast<std::int64_t>(rng.below(200)));
    correct += ok;
  }
  r.accuracy = shape.test_examples > 0 ? static_cast<double>(correct) / shape.test_examples : std::nan("");
  for (int m = 0; m < shape.composed; ++m) {
    lorahub::core::NamedArray mat;
    bool is_a = m % 2 == 0;
    mat.name = "base_model.model.encoder.block." + std::to_string(m / 2) + ".layer.0.SelfAttention.q." +
               (is_a ? "lora_A" : "lora_B") + ".weight";
    mat.shape = is_a ? std::vector<std::int64_t>{shape.rank, shape.width}
                     : std::vector<std::int64_t>{shape.width, shape.rank};
    mat.data.resize(static_cast<std::size_t>(shape.rank * shape.width));
    for (float& v : mat.data) v = static_cast<float>(rng.normal() * 0.02);
    r.composed.push_back(std::move(mat));
  }
  r.adapter_config = {{"r", std::to_string(shape.rank)},
                      {"lora_alpha", "32"},
                      {"lora_dropout", "0.1"},
                      {"target_modules", "[\"q\",\"v\"]"},
                      {"bias", "none"},
                      {"inference_mode", "true"},
                      {"peft_type", "LORA"}};
  return r;
}

/// A failed run: most arrays empty, a reason with non-ASCII text.
inline RunRecord make_failed_run(const std::string& task, const std::string& method, std::int64_t seed) {
  RunRecord r;
  r.task = task;
  r.method = method;
  r.seed = seed;
  r.status = "failed";
  r.failure_reason = "worker 3: CUDA out of memory — réessayer";
  r.text_attrs = {{"optimizer", "cobyla"}};
  r.number_attrs = {{"budget", 40.0}};
  r.module_names = {"a", "b"};
  r.history_weights = {{0.5, -0.5}};  // one candidate asked, never scored
  return r;
}

inline bool same_double(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

inline bool same_doubles(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

/// Returns "" when equal, else the first field that differs.
inline std::string run_difference(const RunRecord& a, const RunRecord& b) {
  if (a.task != b.task || a.method != b.method || a.seed != b.seed) return "key";
  if (a.status != b.status) return "status '" + a.status + "' vs '" + b.status + "'";
  if (a.failure_reason != b.failure_reason) return "failure_reason";
  if (a.text_attrs != b.text_attrs) return "text_attrs";
  if (a.number_attrs.size() != b.number_attrs.size()) return "number_attrs size";
  for (const auto& [k, v] : a.number_attrs) {
    auto it = b.number_attrs.find(k);
    if (it == b.number_attrs.end() || !same_double(v, it->second)) return "number_attrs[" + k + "]";
  }
  if (a.module_names != b.module_names) return "module_names";
  if (!same_doubles(a.best_weights, b.best_weights)) return "best_weights";
  if (!same_double(a.best_loss, b.best_loss)) return "best_loss";
  if (a.history_weights.size() != b.history_weights.size()) return "history_weights rows";
  for (std::size_t i = 0; i < a.history_weights.size(); ++i) {
    if (!same_doubles(a.history_weights[i], b.history_weights[i])) return "history_weights row " + std::to_string(i);
  }
  if (!same_doubles(a.history_loss, b.history_loss)) return "history_loss";
  if (a.history_gradient.size() != b.history_gradient.size()) return "history_gradient rows";
  for (std::size_t i = 0; i < a.history_gradient.size(); ++i) {
    if (!same_doubles(a.history_gradient[i], b.history_gradient[i])) return "history_gradient row " + std::to_string(i);
  }
  if (a.selection_modules != b.selection_modules) return "selection_modules";
  if (!same_doubles(a.selection_losses, b.selection_losses)) return "selection_losses";
  if (a.train_inputs != b.train_inputs || a.train_targets != b.train_targets) return "train examples";
  if (a.test_inputs != b.test_inputs || a.test_targets != b.test_targets) return "test examples";
  if (a.predictions != b.predictions) return "predictions";
  if (a.correct != b.correct) return "correct";
  if (!same_double(a.accuracy, b.accuracy)) return "accuracy";
  if (a.input_tokens != b.input_tokens) return "input_tokens";
  if (a.composed.size() != b.composed.size()) return "composed count";
  for (std::size_t i = 0; i < a.composed.size(); ++i) {
    const lorahub::core::NamedArray& x = a.composed[i];
    const lorahub::core::NamedArray& y = b.composed[i];
    if (x.name != y.name || x.shape != y.shape || x.data.size() != y.data.size() ||
        (!x.data.empty() && std::memcmp(x.data.data(), y.data.data(), x.data.size() * sizeof(float)) != 0)) {
      return "composed[" + std::to_string(i) + "] " + x.name;
    }
  }
  if (a.adapter_config != b.adapter_config) return "adapter_config";
  return "";
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace lorahub::io::test
