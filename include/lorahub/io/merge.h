#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lorahub::io {

/// What to do about damaged run groups, for the commands that meet them.
inline constexpr const char* kDamagedRunsAdvice =
    "`lorahub merge NEW.h5 FILE` copies the readable runs into a new file, where `lorahub run --resume` redoes the rest";

/// What merge_results did.
struct MergeOutcome {
  std::size_t written = 0;            ///< runs copied into the new file
  std::vector<std::string> skipped;   ///< "<file>: group <group> is damaged: <reason>", one per damaged run or group
};

/// Copies every complete or failed run of `inputs` into the new results file `out`, with the first
/// input's job_config; incomplete runs are left out. A damaged run or group of an input is skipped and
/// listed in the outcome (a later `lorahub run --resume` on `out` redoes those runs). Throws core::Error
/// naming the file when `out` exists, an input cannot be read at all, or a run is in two inputs.
MergeOutcome merge_results(const std::string& out, const std::vector<std::string>& inputs);

}  // namespace lorahub::io
