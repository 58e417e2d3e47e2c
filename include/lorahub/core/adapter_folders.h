#pragma once
#include <string>
#include <vector>

namespace lorahub::core {

/// One module of a LoRA library.
struct AdapterEntry {
  std::string name;    ///< module name: the folder's name, or for a hub id org/name the repo name `name`
  std::string folder;  ///< the adapter folder (for a hub id: its snapshot folder in the hub cache)
  std::string id;      ///< the hub id as written (org/name[@revision]); empty for a path
  std::string origin;  ///< where it was listed: "<list file>:<line>", or the source itself
};

/// The adapter folders of a LoRA library, without loading any weights: `source` is a folder of adapter
/// folders (those holding adapter_config.json, sorted by name), a single adapter folder, a Hugging Face id
/// (org/name[@revision], resolved offline through the hub cache: a single adapter, or a repository of adapter
/// folders), or a text file listing one adapter per line (# comments): a folder (relative paths against the
/// file's folder) or, when the line is not an existing path, a hub id. An existing path always wins over an
/// id-shaped text. Module names are folder names, or the repo name of a hub id, so a library downloaded with
/// `--local-dir <dir>/name` and one read from the cache give the same names. Throws Error naming the source
/// (and line) when an entry is unusable or nothing is found, and naming both lines when two give one name.
std::vector<AdapterEntry> list_adapter_entries(const std::string& source);

/// The folders of list_adapter_entries(source), in order (the original interface: the caller derives module
/// names from folder names, and duplicate names are not checked).
std::vector<std::string> list_adapter_folders(const std::string& source);

}  // namespace lorahub::core
