#include "lorahub/core/adapter_folders.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"

namespace lorahub::core {
namespace fs = std::filesystem;

namespace {

constexpr const char* kConfig = "adapter_config.json";

std::string folder_name(const fs::path& p) {
  return p.filename().empty() ? p.parent_path().filename().string() : p.filename().string();
}

std::string repo_name(const HubId& id) {
  auto slash = id.repo_id.find('/');
  return slash == std::string::npos ? id.repo_id : id.repo_id.substr(slash + 1);
}

// A folder that is one adapter, or holds adapter folders (sorted by name so the order is the same everywhere).
void add_folder(const fs::path& root, const std::optional<HubId>& hub, const std::string& origin,
                std::vector<AdapterEntry>& out) {
  const std::string id = hub ? to_string(*hub) : std::string();
  if (fs::exists(root / kConfig)) {
    out.push_back({hub ? repo_name(*hub) : folder_name(root), root.string(), id, origin});
    return;
  }
  std::vector<AdapterEntry> found;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && fs::exists(e.path() / kConfig)) {
      found.push_back({e.path().filename().string(), e.path().string(), id, origin});
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.folder < b.folder; });
  out.insert(out.end(), found.begin(), found.end());
}

void read_list_file(const fs::path& list, std::vector<AdapterEntry>& out) {
  const std::string source = list.string();
  std::ifstream in(list);
  if (!in) fail(source, ": cannot read the LoRA library list");
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos) line = line.substr(0, hash);
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    const std::string origin = cat(source, ":", lineno);
    fs::path p(line);
    if (p.is_relative()) p = list.parent_path() / p;
    if (fs::exists(p) || !parse_hub_id(line)) {
      if (!fs::exists(p / kConfig)) fail(origin, ": '", line, "' is not an adapter folder");
      out.push_back({folder_name(p), p.string(), "", origin});
      continue;
    }
    auto resolved = resolve_source(line, origin, list.parent_path().string());
    if (!fs::exists(fs::path(resolved.path) / kConfig)) {
      fail(origin, ": ", describe_source(resolved), " has no ", kConfig, " (not a PEFT adapter)");
    }
    out.push_back({repo_name(*resolved.hub), resolved.path, to_string(*resolved.hub), origin});
  }
}

std::vector<AdapterEntry> collect(const std::string& source) {
  std::vector<AdapterEntry> entries;
  fs::path root(source);
  if (fs::is_directory(root)) {
    add_folder(root, std::nullopt, source, entries);
  } else if (fs::is_regular_file(root)) {
    read_list_file(root, entries);
  } else if (!fs::exists(root) && parse_hub_id(source)) {
    auto resolved = resolve_source(source, "LoRA library");
    add_folder(resolved.path, resolved.hub, source, entries);
    if (entries.empty()) {
      fail("LoRA library ", describe_source(resolved), ": no ", kConfig, " in the snapshot or its subfolders");
    }
  } else {
    fail(source, ": LoRA library not found (expected a folder of adapter folders, a list file or a Hugging Face id)");
  }
  if (entries.empty()) fail(source, ": no adapter folders (with adapter_config.json) found");
  return entries;
}

}  // namespace

std::vector<AdapterEntry> list_adapter_entries(const std::string& source) {
  auto entries = collect(source);
  std::map<std::string, const AdapterEntry*> by_name;
  for (const auto& e : entries) {
    auto [it, fresh] = by_name.emplace(e.name, &e);
    if (!fresh) {
      const AdapterEntry& first = *it->second;
      auto show = [](const AdapterEntry& x) { return cat(x.origin, " ('", x.id.empty() ? x.folder : x.id, "')"); };
      fail("LoRA library ", source, ": module name '", e.name, "' is given twice, by ", show(first), " and ", show(e));
    }
  }
  return entries;
}

std::vector<std::string> list_adapter_folders(const std::string& source) {
  std::vector<std::string> folders;
  for (const auto& e : collect(source)) folders.push_back(e.folder);
  return folders;
}

}  // namespace lorahub::core
