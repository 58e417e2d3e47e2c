#include "lorahub/core/checkpoint_files.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"

namespace lorahub::core {
namespace fs = std::filesystem;

namespace {
const std::vector<std::string>& names_of(CheckpointKind kind) {
  static const std::vector<std::string> kModel = {"model.safetensors", "model.safetensors.index.json",
                                                  "pytorch_model.bin", "pytorch_model.bin.index.json"};
  static const std::vector<std::string> kAdapter = {"adapter_model.safetensors", "adapter_model.bin"};
  return kind == CheckpointKind::kModel ? kModel : kAdapter;
}

bool is_index(const std::string& path) {
  static const std::string kSuffix = ".index.json";
  return path.size() >= kSuffix.size() && path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}
}  // namespace

std::string checkpoint_entry(const std::string& dir, CheckpointKind kind) {
  std::error_code ec;
  for (const auto& name : names_of(kind)) {
    const fs::path candidate = fs::path(dir) / name;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  std::string wanted;
  const auto& names = names_of(kind);
  for (std::size_t i = 0; i < names.size(); ++i) wanted += (i ? (i + 1 == names.size() ? " or " : ", ") : "") + names[i];
  fail(dir, ": no ", wanted, " in this folder");
}

std::vector<std::string> checkpoint_files(const std::string& dir, CheckpointKind kind) {
  const std::string entry = checkpoint_entry(dir, kind);
  std::vector<std::string> files = {entry};
  if (!is_index(entry)) return files;
  std::ifstream in(entry, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const auto index = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded()) fail(entry, ": invalid JSON");
  std::set<std::string> shards;
  if (index.is_object() && index.contains("weight_map") && index["weight_map"].is_object()) {
    for (const auto& [key, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) continue;  // the loader names the key
      const auto& name = shard.get_ref<const std::string&>();
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        fail(entry, ": key '", key, "' maps to '", name, "', which is not a file name in the same folder");
      }
      shards.insert(name);
    }
  }
  for (const auto& s : shards) files.push_back((fs::path(entry).parent_path() / s).string());
  return files;
}

}  // namespace lorahub::core
