#pragma once
#include <string>
#include <vector>

namespace lorahub::core {

/// The adapter folders of a LoRA library, without loading any weights: `source` is a folder of adapter
/// folders (those holding adapter_config.json, sorted by name), a single adapter folder, or a text file
/// listing one folder per line (# comments; relative paths against the file's folder). A module's name is
/// its folder name. Throws Error naming the source (and line) when nothing usable is found.
std::vector<std::string> list_adapter_folders(const std::string& source);

}  // namespace lorahub::core
