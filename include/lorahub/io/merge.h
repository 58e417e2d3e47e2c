#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lorahub::io {

/// Writes a new results file `out` holding every complete and failed run of `inputs` (the elements of a job
/// array), with the first input's job configuration. Incomplete runs are left out. Throws core::Error when `out`
/// exists or a run is in two inputs (naming the run and both files). Returns the number of runs written.
std::size_t merge_result_files(const std::string& out, const std::vector<std::string>& inputs);

}  // namespace lorahub::io
