#pragma once
// Comma lists on command lines: "--seeds 1,2,3", "--sizes small,base".
#include <cstdint>
#include <string>
#include <vector>

namespace lorahub::core {

/// Splits "a, b,c" at commas, items trimmed of spaces and tabs, empty items dropped.
std::vector<std::string> split_list(const std::string& text);
/// The numbers of a comma list; core::Error "<what>: '<item>' is not a number / an integer" otherwise.
std::vector<double> parse_doubles(const std::string& text, const std::string& what);
std::vector<std::int64_t> parse_ints(const std::string& text, const std::string& what);

}  // namespace lorahub::core
