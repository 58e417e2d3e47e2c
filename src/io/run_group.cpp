#include "io/run_group.h"

#include <cmath>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"

namespace lorahub::io::detail {
namespace {

constexpr const char* kSeedPrefix = "seed_";

const std::set<std::string>& reserved_run_attrs() {
  static const std::set<std::string> names = {"task",     "method",   "seed",          "status",
                                              "failure_reason", "accuracy", "adapter_config"};
  return names;
}

void check_link_name(const char* kind, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    core::fail(kind, " '", name, "' cannot name an HDF5 group or dataset (empty, '.', '..', or contains '/' or NUL)");
  }
}

}  // namespace

void check_key(const std::string& task, const std::string& method) {
  check_link_name("task", task);
  check_link_name("method", method);
  if (method.rfind(kSeedPrefix, 0) == 0) {
    core::fail("method '", method, "' may not start with 'seed_' (it would clash with lorahub run groups)");
  }
}

void check_attr_name(const char* kind, const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) core::fail(kind, " name '", name, "' is empty or has NUL");
}

std::string run_label(const std::string& task, const std::string& method, std::int64_t seed) {
  return core::cat("run (task '", task, "', method '", method, "', seed ", seed, ")");
}

std::string adapter_config_json(const RunRecord& run) {
  nlohmann::json obj = nlohmann::json::object();
  for (const auto& [key, value] : run.adapter_config) {
    nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    obj[key] = parsed.is_discarded() ? nlohmann::json(value) : std::move(parsed);
  }
  try {
    return obj.dump();
  } catch (const nlohmann::json::exception& e) {
    core::fail("adapter_config of ", run_label(run.task, run.method, run.seed), " is not valid UTF-8: ", e.what());
  }
}

namespace {

std::map<std::string, std::string> parse_adapter_config(const std::string& text, const std::string& where) {
  nlohmann::json obj = nlohmann::json::parse(text, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) core::fail(where, " is not a JSON object: ", text);
  std::map<std::string, std::string> out;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    out[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  return out;
}

}  // namespace

void validate_run(const RunRecord& r) {
  check_key(r.task, r.method);
  const std::string label = run_label(r.task, r.method, r.seed);
  if (r.status != kComplete && r.status != kFailed) {
    core::fail(label, ": status must be 'complete' or 'failed', got '", r.status, "'");
  }
  for (const auto& [name, value] : r.text_attrs) {
    check_attr_name("text attribute", name);
    if (reserved_run_attrs().count(name)) core::fail(label, ": text attribute '", name, "' is a reserved name");
    if (r.number_attrs.count(name)) core::fail(label, ": '", name, "' is both a text and a number attribute");
  }
  for (const auto& [name, value] : r.number_attrs) {
    check_attr_name("number attribute", name);
    if (reserved_run_attrs().count(name)) core::fail(label, ": number attribute '", name, "' is a reserved name");
  }
  for (std::size_t i = 1; i < r.history_weights.size(); ++i) {
    if (r.history_weights[i].size() != r.history_weights[0].size()) {
      core::fail(label, ": history_weights row ", i, " has ", r.history_weights[i].size(),
                 " values, row 0 has ", r.history_weights[0].size());
    }
  }
  std::set<std::string> keys;
  for (const core::NamedArray& m : r.composed) {
    check_link_name("composed key", m.name);
    if (!keys.insert(m.name).second) core::fail(label, ": composed key '", m.name, "' appears twice");
    std::uint64_t n = 1;
    for (std::int64_t d : m.shape) {
      if (d < 0) core::fail(label, ": composed '", m.name, "' has a negative extent ", d);
      if (d != 0 && n > UINT64_MAX / static_cast<std::uint64_t>(d)) core::fail(label, ": composed '", m.name, "' is too large");
      n *= static_cast<std::uint64_t>(d);
    }
    if (n != m.data.size()) {
      core::fail(label, ": composed '", m.name, "' has shape of ", n, " values but ", m.data.size(), " data");
    }
  }
  if (r.status != kComplete) return;
  // A complete run's arrays describe the same modules, evaluations and examples.
  const std::size_t n_modules = r.module_names.size();
  auto expect = [&](const char* what, std::size_t got, std::size_t want, const char* of) {
    if (got != want) core::fail(label, ": ", what, " has ", got, " entries, expected ", want, " (", of, ")");
  };
  if (!r.best_weights.empty()) expect("best_weights", r.best_weights.size(), n_modules, "one per module");
  if (!r.history_weights.empty()) expect("history_weights rows", r.history_weights[0].size(), n_modules, "one per module");
  expect("history_loss", r.history_loss.size(), r.history_weights.size(), "one per history_weights row");
  if (!r.history_gradient.empty()) {
    expect("history_gradient", r.history_gradient.size(), r.history_weights.size(), "one per history_weights row");
    for (const auto& g : r.history_gradient) expect("history_gradient row", g.size(), n_modules, "one per module");
  }
  expect("selection_losses", r.selection_losses.size(), r.selection_modules.size(), "one per selection module");
  expect("train_targets", r.train_targets.size(), r.train_inputs.size(), "one per train input");
  expect("test_targets", r.test_targets.size(), r.test_inputs.size(), "one per test input");
  expect("predictions", r.predictions.size(), r.test_inputs.size(), "one per test input");
  expect("correct", r.correct.size(), r.test_inputs.size(), "one per test input");
  if (!r.input_tokens.empty()) expect("input_tokens", r.input_tokens.size(), r.test_inputs.size(), "one per test input");
}

void write_run_group(const h5::Group& g, const RunRecord& run, const std::string& adapter_json) {
  h5::write_attr(g, "task", run.task);
  h5::write_attr(g, "method", run.method);
  h5::write_attr(g, "seed", static_cast<std::int64_t>(run.seed));
  if (!run.failure_reason.empty()) h5::write_attr(g, "failure_reason", run.failure_reason);
  for (const auto& [name, value] : run.text_attrs) h5::write_attr(g, name, value);
  for (const auto& [name, value] : run.number_attrs) h5::write_attr(g, name, value);
  h5::write_attr(g, "accuracy", run.accuracy);
  h5::write_attr(g, "adapter_config", adapter_json);

  h5::write_strings(g, "module_names", run.module_names);
  h5::write_dataset(g, "best_weights", run.best_weights);
  h5::write_scalar(g, "best_loss", run.best_loss);
  h5::write_scalar(g, "accuracy", run.accuracy);
  {
    h5::Group history = g.create_group("history");
    hsize_t evals = run.history_weights.size();
    hsize_t width = evals > 0 ? run.history_weights[0].size() : run.module_names.size();
    std::vector<double> flat;
    flat.reserve(static_cast<std::size_t>(evals * width));
    for (const auto& row : run.history_weights) flat.insert(flat.end(), row.begin(), row.end());
    h5::write_dataset(history, "weights", flat, {evals, width});
    h5::write_dataset(history, "loss", run.history_loss);
    if (!run.history_gradient.empty()) {
      // Gradient methods: the gradient told with each evaluation, and its Euclidean norm.
      std::vector<double> grads, norms;
      for (const auto& row : run.history_gradient) {
        double n2 = 0;
        for (double x : row) n2 += x * x;
        norms.push_back(std::sqrt(n2));
        grads.insert(grads.end(), row.begin(), row.end());
      }
      h5::write_dataset(history, "gradient", grads, {evals, width});
      h5::write_dataset(history, "grad_norm", norms);
    }
  }
  if (!run.selection_modules.empty()) {
    // library.select = "loss": every module of the pool scored alone, in pool order.
    h5::Group selection = g.create_group("selection");
    h5::write_strings(selection, "modules", run.selection_modules);
    h5::write_dataset(selection, "losses", run.selection_losses);
  }
  {
    h5::Group train = g.create_group("train");
    h5::write_strings(train, "inputs", run.train_inputs);
    h5::write_strings(train, "targets", run.train_targets);
  }
  {
    h5::Group test = g.create_group("test");
    h5::write_strings(test, "inputs", run.test_inputs);
    h5::write_strings(test, "targets", run.test_targets);
    h5::write_strings(test, "predictions", run.predictions);
    h5::write_dataset(test, "correct", run.correct);
    h5::write_dataset(test, "input_tokens", run.input_tokens);
  }
  {
    h5::Group composed = g.create_group("composed");
    for (std::size_t i = 0; i < run.composed.size(); ++i) {
      const core::NamedArray& m = run.composed[i];
      std::vector<hsize_t> dims(m.shape.begin(), m.shape.end());
      h5::Dataset ds = h5::write_dataset(composed, m.name, m.data, dims);
      h5::write_attr(ds, "shape", m.shape);
      h5::write_attr(ds, "index", static_cast<std::int64_t>(i));
    }
  }
  // Last: a group with a status is a finished one.
  h5::write_attr(g, "status", run.status);
}

namespace {

template <class T>
std::vector<T> read_1d(const h5::Group& g, const std::string& name) {
  std::vector<hsize_t> dims;
  std::vector<T> v = h5::read_dataset<T>(g, name, &dims);
  if (dims.size() != 1) {
    core::fail("dataset '", g.child_path(name), "' in ", g.file(), " has rank ", dims.size(), ", expected 1");
  }
  return v;
}

}  // namespace

RunRecord read_run_group(const h5::Group& g, const std::string& task, const std::string& method,
                         std::int64_t seed, const std::string& status) {
  RunRecord r;
  r.task = task;
  r.method = method;
  r.seed = seed;
  r.status = status;
  if (h5::has_attr(g, "failure_reason")) r.failure_reason = h5::read_attr_string(g, "failure_reason");
  for (const std::string& name : h5::attr_names(g)) {
    if (reserved_run_attrs().count(name)) continue;
    H5T_class_t cls = h5::attr_class(g, name);
    if (cls == H5T_STRING) {
      r.text_attrs[name] = h5::read_attr_string(g, name);
    } else if (cls == H5T_FLOAT) {
      r.number_attrs[name] = h5::read_attr_double(g, name);
    }
  }
  if (h5::has_attr(g, "adapter_config")) {
    r.adapter_config = parse_adapter_config(h5::read_attr_string(g, "adapter_config"),
                                            "attribute 'adapter_config' of " + g.where());
  }
  r.module_names = h5::read_strings(g, "module_names");
  r.best_weights = read_1d<double>(g, "best_weights");
  r.best_loss = h5::read_scalar(g, "best_loss");
  r.accuracy = h5::read_scalar(g, "accuracy");
  {
    h5::Group history = g.open_group("history");
    std::vector<hsize_t> dims;
    std::vector<double> flat = h5::read_dataset<double>(history, "weights", &dims);
    if (dims.size() != 2) core::fail("dataset '", history.child_path("weights"), "' in ", g.file(), " has rank ", dims.size(), ", expected 2");
    r.history_weights.resize(static_cast<std::size_t>(dims[0]));
    for (std::size_t i = 0; i < r.history_weights.size(); ++i) {
      auto begin = flat.begin() + static_cast<std::ptrdiff_t>(i * dims[1]);
      r.history_weights[i].assign(begin, begin + static_cast<std::ptrdiff_t>(dims[1]));
    }
    r.history_loss = read_1d<double>(history, "loss");
    if (history.has("gradient")) {
      std::vector<hsize_t> gdims;
      std::vector<double> grads = h5::read_dataset<double>(history, "gradient", &gdims);
      if (gdims.size() != 2 || gdims[0] != dims[0] || gdims[1] != dims[1]) {
        core::fail("dataset '", history.child_path("gradient"), "' in ", g.file(), " does not match history/weights");
      }
      r.history_gradient.resize(static_cast<std::size_t>(gdims[0]));
      for (std::size_t i = 0; i < r.history_gradient.size(); ++i) {
        auto begin = grads.begin() + static_cast<std::ptrdiff_t>(i * gdims[1]);
        r.history_gradient[i].assign(begin, begin + static_cast<std::ptrdiff_t>(gdims[1]));
      }
    }
  }
  if (g.has_group("selection")) {
    h5::Group selection = g.open_group("selection");
    r.selection_modules = h5::read_strings(selection, "modules");
    r.selection_losses = read_1d<double>(selection, "losses");
    if (r.selection_losses.size() != r.selection_modules.size()) {
      core::fail("group '", selection.where(), "': ", r.selection_losses.size(), " losses for ", r.selection_modules.size(),
                 " modules");
    }
  }
  {
    h5::Group train = g.open_group("train");
    r.train_inputs = h5::read_strings(train, "inputs");
    r.train_targets = h5::read_strings(train, "targets");
  }
  {
    h5::Group test = g.open_group("test");
    r.test_inputs = h5::read_strings(test, "inputs");
    r.test_targets = h5::read_strings(test, "targets");
    r.predictions = h5::read_strings(test, "predictions");
    r.correct = read_1d<std::uint8_t>(test, "correct");
    r.input_tokens = read_1d<std::int64_t>(test, "input_tokens");
  }
  {
    h5::Group composed = g.open_group("composed");
    std::vector<std::pair<std::int64_t, core::NamedArray>> items;
    for (const std::string& name : composed.children()) {
      core::NamedArray m;
      m.name = name;
      std::vector<hsize_t> dims;
      m.data = h5::read_dataset<float>(composed, name, &dims);
      h5::Dataset ds = composed.open_dataset(name);
      m.shape = h5::has_attr(ds, "shape") ? h5::read_attr_int64s(ds, "shape")
                                          : std::vector<std::int64_t>(dims.begin(), dims.end());
      if (m.shape != std::vector<std::int64_t>(dims.begin(), dims.end())) {
        core::fail("attribute 'shape' of ", ds.where(), " disagrees with the dataset's extents");
      }
      std::int64_t index = h5::has_attr(ds, "index") ? h5::read_attr_int64(ds, "index")
                                                     : static_cast<std::int64_t>(items.size());
      items.emplace_back(index, std::move(m));
    }
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& item : items) r.composed.push_back(std::move(item.second));
  }
  return r;
}

}  // namespace lorahub::io::detail
