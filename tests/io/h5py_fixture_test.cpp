// Writes the file that tests/io/read_results.py checks with h5py, plus a JSON sidecar of what every
// run holds (written through nlohmann::json, a path independent of HDF5). Runs only when ctest sets
// LORAHUB_H5PY_FIXTURE (test io.h5py_fixture_writer); skipped otherwise.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/run_fixtures.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io {
namespace {

// JSON has no NaN or infinities: those become strings Python's float() reads.
nlohmann::json number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (double x : v) out.push_back(number(x));
  return out;
}

nlohmann::json describe(const RunRecord& r) {
  nlohmann::json j;
  j["group"] = ResultStore::group_path(r.task, r.method, r.seed);
  j["task"] = r.task;
  j["method"] = r.method;
  j["seed"] = r.seed;
  j["status"] = r.status;
  j["failure_reason"] = r.failure_reason;
  j["text_attrs"] = r.text_attrs;
  j["number_attrs"] = nlohmann::json::object();
  for (const auto& [k, v] : r.number_attrs) j["number_attrs"][k] = number(v);
  j["module_names"] = r.module_names;
  j["best_weights"] = numbers(r.best_weights);
  j["best_loss"] = number(r.best_loss);
  j["history_weights"] = nlohmann::json::array();
  for (const auto& row : r.history_weights) j["history_weights"].push_back(numbers(row));
  j["history_width"] = r.history_weights.empty() ? r.module_names.size() : r.history_weights[0].size();
  j["history_loss"] = numbers(r.history_loss);
  j["history_gradient"] = nlohmann::json::array();
  for (const auto& row : r.history_gradient) j["history_gradient"].push_back(numbers(row));
  j["selection_modules"] = r.selection_modules;
  j["selection_losses"] = numbers(r.selection_losses);
  j["train_inputs"] = r.train_inputs;
  j["train_targets"] = r.train_targets;
  j["test_inputs"] = r.test_inputs;
  j["test_targets"] = r.test_targets;
  j["predictions"] = r.predictions;
  j["correct"] = r.correct;
  j["accuracy"] = number(r.accuracy);
  j["input_tokens"] = r.input_tokens;
  j["composed"] = nlohmann::json::array();
  for (const lorahub::core::NamedArray& m : r.composed) {
    nlohmann::json data = nlohmann::json::array();
    for (float v : m.data) data.push_back(number(v));
    j["composed"].push_back({{"name", m.name}, {"shape", m.shape}, {"data", data}});
  }
  nlohmann::json adapter = nlohmann::json::object();
  for (const auto& [k, v] : r.adapter_config) {
    nlohmann::json parsed = nlohmann::json::parse(v, nullptr, false);
    adapter[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
  }
  j["adapter_config"] = adapter;
  return j;
}

TEST(H5pyFixture, Write) {
  const char* path = std::getenv("LORAHUB_H5PY_FIXTURE");
  if (path == nullptr) GTEST_SKIP() << "LORAHUB_H5PY_FIXTURE is not set (ctest sets it for io.h5py_fixture_writer)";
  RunRecord empty;  // a complete run with every array empty
  empty.task = "snarks";
  empty.method = "icl";
  empty.seed = 0;
  empty.status = "complete";
  std::vector<RunRecord> runs = {test::make_run("navigate", "lorahub", 0), test::make_run("navigate", "lorahub", 3),
                                 test::make_run("navigate", "zero-shot", 1, {0, 0, 0, 0, 4}),
                                 test::make_failed_run("snarks", "lorahub", 2), empty};
  const std::string job_config = "{\"tasks\": [\"navigate\", \"snarks\"], \"seeds\": [0, 1, 2]}";
  {
    ResultStore store(path, ResultStore::Mode::kCreate);
    store.set_job_attrs({{"job_config", job_config}});
    for (const RunRecord& r : runs) store.write_run(r);
  }
  // Read back here too, so a failure points at the writer rather than at h5py.
  ResultStore store(path, ResultStore::Mode::kReadOnly);
  nlohmann::json expected;
  expected["job_config"] = job_config;
  expected["software_version"] = store.job_attrs().at("software_version");
  expected["runs"] = nlohmann::json::array();
  for (const RunRecord& r : runs) {
    EXPECT_EQ(test::run_difference(store.read_run(r.task, r.method, r.seed), r), "") << r.task;
    expected["runs"].push_back(describe(r));
  }
  std::ofstream(std::string(path) + ".expected.json") << expected.dump(1);
}

}  // namespace
}  // namespace lorahub::io
