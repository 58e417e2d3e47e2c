#pragma once
// A LoRA library as a job sees it, without loading any weights: which module folders it has, under which names,
// their shared adapter_config.json, and the modules each run uses.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lorahub/data/shots.h"

namespace lorahub::job {

/// One module of a LoRA library.
struct LibraryModule {
  std::string name;    ///< module name: the folder's name, or for a hub id org/name the repo name `name`
  std::string folder;  ///< the adapter folder (for a hub id: its snapshot folder in the hub cache)
  std::string id;      ///< the hub id as written (org/name[@revision]); empty for a path
  std::string origin;  ///< where it was listed: "<list file>:<line>", or the source itself
};

/// The modules of a LoRA library, without loading any weights: `source` is a folder of adapter folders (those
/// holding adapter_config.json, sorted by name), a single adapter folder, a Hugging Face id (org/name[@revision],
/// resolved offline through the hub cache: one adapter, or a repository of adapter folders), or a text file
/// listing one adapter per line (# comments): a folder (relative paths against the file's folder) or, when the
/// line is not an existing path, a hub id. An existing path always wins over an id-shaped text. Module names are
/// folder names, or the repo name of a hub id, so a library downloaded with `--local-dir <dir>/name` and one read
/// from the cache give the same names and results. Throws core::Error naming the source (and line) when an entry
/// is unusable or nothing is found, and naming both lines when two give one name.
std::vector<LibraryModule> library_modules(const std::string& source);
/// The folders / names of library_modules(source), in the same order.
std::vector<std::string> library_module_folders(const std::string& source);
std::vector<std::string> library_module_names(const std::string& source);

/// The fields of the library's adapter_config.json (its first module's), key -> JSON text; empty for no library.
std::map<std::string, std::string> library_adapter_config(const std::string& source);

/// Module indices for one run: random.sample(range(n), k) with CPython's generator (kCpython, the reference) or
/// a partial Fisher-Yates shuffle on the native generator (kNative), seeded with `seed`.
std::vector<std::size_t> choose_modules(std::size_t n, std::size_t k, std::int64_t seed, data::Sampler sampler);

}  // namespace lorahub::job
