#include "lorahub/job/library.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"
#include "lorahub/core/random.h"

namespace lorahub::job {
namespace fs = std::filesystem;
using core::fail;

namespace {

constexpr const char* kConfig = "adapter_config.json";

std::string folder_name(const fs::path& p) {
  return p.filename().empty() ? p.parent_path().filename().string() : p.filename().string();
}

std::string repo_name(const core::HubId& id) {
  auto slash = id.repo_id.find('/');
  return slash == std::string::npos ? id.repo_id : id.repo_id.substr(slash + 1);
}

// A folder that is one adapter, or holds adapter folders (sorted by name so the order is the same everywhere).
void add_folder(const fs::path& root, const std::optional<core::HubId>& hub, const std::string& origin,
                std::vector<LibraryModule>& out) {
  const std::string id = hub ? core::to_string(*hub) : std::string();
  if (fs::exists(root / kConfig)) {
    out.push_back({hub ? repo_name(*hub) : folder_name(root), root.string(), id, origin});
    return;
  }
  std::vector<LibraryModule> found;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && fs::exists(e.path() / kConfig)) {
      found.push_back({e.path().filename().string(), e.path().string(), id, origin});
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.folder < b.folder; });
  out.insert(out.end(), found.begin(), found.end());
}

void read_list_file(const fs::path& list, std::vector<LibraryModule>& out) {
  const std::string source = list.string();
  std::ifstream in(list);
  if (!in) core::fail(source, ": cannot read the LoRA library list");
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos) line = line.substr(0, hash);
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    const std::string origin = core::cat(source, ":", lineno);
    fs::path p(line);
    if (p.is_relative()) p = list.parent_path() / p;
    if (fs::exists(p) || !core::parse_hub_id(line)) {
      if (!fs::exists(p / kConfig)) core::fail(origin, ": '", line, "' is not an adapter folder");
      out.push_back({folder_name(p), p.string(), "", origin});
      continue;
    }
    auto resolved = core::resolve_source(line, origin, list.parent_path().string());
    if (!fs::exists(fs::path(resolved.path) / kConfig)) {
      core::fail(origin, ": ", core::describe_source(resolved), " has no ", kConfig, " (not a PEFT adapter)");
    }
    out.push_back({repo_name(*resolved.hub), resolved.path, core::to_string(*resolved.hub), origin});
  }
}

std::vector<LibraryModule> collect(const std::string& source) {
  std::vector<LibraryModule> entries;
  fs::path root(source);
  if (fs::is_directory(root)) {
    add_folder(root, std::nullopt, source, entries);
  } else if (fs::is_regular_file(root)) {
    read_list_file(root, entries);
  } else if (!fs::exists(root) && core::parse_hub_id(source)) {
    auto resolved = core::resolve_source(source, "LoRA library");
    add_folder(resolved.path, resolved.hub, source, entries);
    if (entries.empty()) {
      core::fail("LoRA library ", core::describe_source(resolved), ": no ", kConfig, " in the snapshot or its subfolders");
    }
  } else {
    core::fail(source, ": LoRA library not found (expected a folder of adapter folders, a list file or a Hugging Face id)");
  }
  if (entries.empty()) core::fail(source, ": no adapter folders (with adapter_config.json) found");
  return entries;
}

}  // namespace

std::vector<LibraryModule> library_modules(const std::string& source) {
  auto entries = collect(source);
  std::map<std::string, const LibraryModule*> by_name;
  for (const auto& e : entries) {
    auto [it, fresh] = by_name.emplace(e.name, &e);
    if (!fresh) {
      const LibraryModule& first = *it->second;
      auto show = [](const LibraryModule& x) { return core::cat(x.origin, " ('", x.id.empty() ? x.folder : x.id, "')"); };
      core::fail("LoRA library ", source, ": module name '", e.name, "' is given twice, by ", show(first), " and ", show(e));
    }
  }
  return entries;
}

std::vector<std::string> library_module_folders(const std::string& source) {
  std::vector<std::string> folders;
  for (const auto& m : library_modules(source)) folders.push_back(m.folder);
  return folders;
}

std::vector<std::string> library_module_names(const std::string& source) {
  std::vector<std::string> names;
  for (const auto& m : library_modules(source)) names.push_back(m.name);
  return names;
}

std::map<std::string, std::string> library_adapter_config(const std::string& source) {
  std::map<std::string, std::string> out;
  if (source.empty()) return out;
  auto path = library_modules(source).front().folder + "/adapter_config.json";
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
