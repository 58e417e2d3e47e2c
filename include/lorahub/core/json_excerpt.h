#pragma once
// Short, bounded renderings of JSON values for error messages.
#include <cstddef>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace lorahub::core {

/// The JSON text of `value`, cut to about `max_chars` characters ("..." marks a cut). Unlike
/// nlohmann::json::dump, it visits at most a few levels and elements, so a value nested 100,000 deep
/// (which dump would recurse into until the stack overflows) or a 1 GB string costs nothing.
std::string json_excerpt(const nlohmann::json& value, std::size_t max_chars = 80);

}  // namespace lorahub::core
