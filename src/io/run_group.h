#pragma once
// The layout of one run group (docs/results-schema.md): checks, writer and reader of a RunRecord.
#include <cstdint>
#include <string>

#include "io/h5.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io::detail {

inline constexpr const char* kComplete = "complete";
inline constexpr const char* kFailed = "failed";

/// "run (task 't', method 'm', seed 3)", for messages.
std::string run_label(const std::string& task, const std::string& method, std::int64_t seed);
/// Throws unless task and method can name HDF5 groups (and the method cannot be taken for a seed).
void check_key(const std::string& task, const std::string& method);
/// Throws when an attribute name is empty or holds a NUL.
void check_attr_name(const char* kind, const std::string& name);
/// Throws unless `run` can be stored: names, shapes, reserved or duplicate names; a "complete" run
/// also needs its arrays' lengths to agree.
void validate_run(const RunRecord& run);
/// The adapter_config attribute's JSON text; throws naming the run when a value is not UTF-8.
std::string adapter_config_json(const RunRecord& run);
/// Writes `run` into the new, empty group g; the status attribute last (it marks the group finished).
void write_run_group(const h5::Group& g, const RunRecord& run, const std::string& adapter_json);
/// Reads a run group back exactly as written; key and status are the caller's (from the group's path).
RunRecord read_run_group(const h5::Group& g, const std::string& task, const std::string& method,
                         std::int64_t seed, const std::string& status);

}  // namespace lorahub::io::detail
