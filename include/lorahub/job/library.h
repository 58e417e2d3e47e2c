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

/// The adapter folders of a library: `source` is a folder of adapter folders (those holding adapter_config.json,
/// sorted by name), a single adapter folder, or a text file listing one folder per line (# comments; relative paths
/// against the file's folder). Throws core::Error naming the source (and line) when nothing usable is found.
std::vector<std::string> library_module_folders(const std::string& source);
/// The module names of library_module_folders(source), in the same order: each folder's name.
std::vector<std::string> library_module_names(const std::string& source);

/// The fields of the library's adapter_config.json (its first module's), key -> JSON text; empty for no library.
std::map<std::string, std::string> library_adapter_config(const std::string& source);

/// Module indices for one run: random.sample(range(n), k) with CPython's generator (kCpython, the reference) or
/// a partial Fisher-Yates shuffle on the native generator (kNative), seeded with `seed`.
std::vector<std::size_t> choose_modules(std::size_t n, std::size_t k, std::int64_t seed, data::Sampler sampler);

}  // namespace lorahub::job
