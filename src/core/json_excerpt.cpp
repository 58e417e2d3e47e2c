#include "lorahub/core/json_excerpt.h"

#include <nlohmann/json.hpp>

namespace lorahub::core {
namespace {

constexpr int kMaxDepth = 4;

// Appends the excerpt of `v` to `out`, stopping once `out` is past `limit` characters.
void append(const nlohmann::json& v, std::string& out, std::size_t limit, int depth) {
  if (out.size() > limit) return;
  if (v.is_array() || v.is_object()) {
    if (v.empty()) {
      out += v.is_array() ? "[]" : "{}";
      return;
    }
    if (depth >= kMaxDepth) {
      out += v.is_array() ? "[...]" : "{...}";
      return;
    }
    out += v.is_array() ? '[' : '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (out.size() > limit) break;
      if (!first) out += ", ";
      first = false;
      if (v.is_object()) {
        append(nlohmann::json(it.key()), out, limit, depth + 1);
        out += ": ";
      }
      append(*it, out, limit, depth + 1);
    }
    out += v.is_array() ? ']' : '}';
    return;
  }
  if (v.is_string()) {
    // Dump only a prefix of a long string; escaped to ASCII, so cutting the result never splits a character.
    const auto& s = v.get_ref<const std::string&>();
    const std::size_t room = limit + 1 > out.size() ? limit + 1 - out.size() : 1;
    if (s.size() > room) {
      out += nlohmann::json(s.substr(0, room)).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
      return;
    }
    out += v.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += v.dump();  // numbers, booleans, null: short
}

}  // namespace

std::string json_excerpt(const nlohmann::json& value, std::size_t max_chars) {
  std::string out;
  append(value, out, max_chars, 0);
  if (out.size() > max_chars) {
    out.resize(max_chars);
    out += "...";
  }
  return out;
}

}  // namespace lorahub::core
