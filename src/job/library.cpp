#include "lorahub/job/library.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/random.h"

namespace lorahub::job {
namespace fs = std::filesystem;
using core::fail;

std::vector<std::string> library_module_folders(const std::string& source) {
  std::vector<std::string> folders;
  fs::path root(source);
  if (fs::is_directory(root)) {
    if (fs::exists(root / "adapter_config.json")) return {root.string()};
    for (const auto& e : fs::directory_iterator(root)) {
      if (e.is_directory() && fs::exists(e.path() / "adapter_config.json")) folders.push_back(e.path().string());
    }
    std::sort(folders.begin(), folders.end());
  } else if (fs::is_regular_file(root)) {
    std::ifstream in(root);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      auto hash = line.find('#');
      if (hash != std::string::npos) line = line.substr(0, hash);
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (line.empty()) continue;
      fs::path p(line);
      if (p.is_relative()) p = root.parent_path() / p;
      if (!fs::exists(p / "adapter_config.json")) fail(source, ":", lineno, ": '", line, "' is not an adapter folder");
      folders.push_back(p.string());
    }
  } else {
    fail(source, ": LoRA library not found (expected a folder of adapter folders or a list file)");
  }
  if (folders.empty()) fail(source, ": no adapter folders (with adapter_config.json) found");
  return folders;
}

std::vector<std::string> library_module_names(const std::string& source) {
  std::vector<std::string> names;
  for (const auto& f : library_module_folders(source)) names.push_back(fs::path(f).filename().string());
  return names;
}

std::map<std::string, std::string> library_adapter_config(const std::string& source) {
  std::map<std::string, std::string> out;
  if (source.empty()) return out;
  auto path = library_module_folders(source).front() + "/adapter_config.json";
  std::ifstream in(path);
  if (!in) fail(path, ": cannot read");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  for (const auto& [k, v] : j.items()) out[k] = v.dump();
  return out;
}

std::vector<std::size_t> choose_modules(std::size_t n, std::size_t k, std::int64_t seed, data::Sampler sampler) {
  if (k > n) fail("cannot choose ", k, " modules from a library of ", n);
  if (sampler == data::Sampler::kCpython) return core::PyRandom(seed).sample(n, k);
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  core::Rng rng(static_cast<std::uint64_t>(seed));
  for (std::size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + rng.below(n - i)]);
  idx.resize(k);
  return idx;
}

}  // namespace lorahub::job
