#include "lorahub/core/adapter_folders.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "lorahub/core/error.h"

namespace lorahub::core {
namespace fs = std::filesystem;

std::vector<std::string> list_adapter_folders(const std::string& source) {
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

}  // namespace lorahub::core
