#pragma once
#include <string>
#include <vector>

namespace lorahub::data {

/// One task example: the model input and the expected output text.
struct Example {
  std::string input;
  std::string target;
};

bool operator==(const Example& a, const Example& b);
bool operator!=(const Example& a, const Example& b);

/// Reads a file of examples, its format detected from the content:
///  - JSON Lines, one object per line with string fields {"input","target"} or, as in the LoraHub
///    reference's data_bbh, {"context","completion"} (read as input/target); blank lines are
///    skipped, other keys ignored, and every line must use the same pair;
///  - BIG-Bench-Hard JSON, one object {"examples":[{"input","target"},...]} (other top-level keys,
///    e.g. "canary", ignored); the whole file may span any number of lines.
/// The text must be UTF-8 (a leading byte-order mark is skipped). Examples keep file order.
/// Throws core::Error naming the file and the line (JSON Lines) or examples[index] (BBH JSON) for:
/// a missing or unreadable file, no examples, invalid UTF-8, invalid JSON, a record that is not an
/// object, a missing or non-string field, or mixed field pairs.
std::vector<Example> load_examples(const std::string& path);

/// load_examples on text already in memory; `origin` names it in error messages.
std::vector<Example> parse_examples(const std::string& text, const std::string& origin);

}  // namespace lorahub::data
