#include "lorahub/core/lists.h"

#include <sstream>
#include <stdexcept>

#include "lorahub/core/error.h"

namespace lorahub::core {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

namespace {

// Every item of a comma list through `parse` (std::stod / std::stoll), which must consume it whole.
template <class T, class Parse>
std::vector<T> parse_list(const std::string& text, const std::string& what, const char* kind, Parse parse) {
  std::vector<T> out;
  for (const auto& item : split_list(text)) {
    try {
      std::size_t used = 0;
      out.push_back(parse(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail(what, ": '", item, "' is not ", kind);
    }
  }
  return out;
}

}  // namespace

std::vector<double> parse_doubles(const std::string& text, const std::string& what) {
  return parse_list<double>(text, what, "a number", [](const std::string& s, std::size_t* used) { return std::stod(s, used); });
}

std::vector<std::int64_t> parse_ints(const std::string& text, const std::string& what) {
  return parse_list<std::int64_t>(text, what, "an integer",
                                  [](const std::string& s, std::size_t* used) { return std::stoll(s, used); });
}

}  // namespace lorahub::core
