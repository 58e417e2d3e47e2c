#include "lorahub/data/metric.h"

#include "data/utf8.h"
#include "lorahub/core/error.h"

namespace lorahub::data {

namespace {

// Python's lower() of a code point below U+0180 that maps to one code point (all but U+0130).
char32_t lower_latin(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;
  const bool even = cp % 2 == 0;
  if (cp >= 0x100 && cp <= 0x12F && even) return cp + 1;
  if (cp >= 0x132 && cp <= 0x137 && even) return cp + 1;
  if (cp >= 0x139 && cp <= 0x148 && !even) return cp + 1;
  if (cp >= 0x14A && cp <= 0x177 && even) return cp + 1;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x179 && cp <= 0x17E && !even) return cp + 1;
  return cp;
}

}  // namespace

bool is_python_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string python_strip(std::string_view s) {
  std::size_t begin = 0;
  std::size_t end = 0;  // one past the last non-space byte seen so far
  bool seen = false;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp;
    std::size_t len = detail::decode_utf8(s, i, cp);
    const bool space = len != 0 && is_python_space(cp);
    if (len == 0) len = 1;  // an invalid byte is kept as a non-space unit
    if (!space) {
      if (!seen) begin = i;
      seen = true;
      end = i + len;
    }
    i += len;
  }
  return seen ? std::string(s.substr(begin, end - begin)) : std::string();
}

std::string python_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp;
    const std::size_t len = detail::decode_utf8(s, i, cp);
    if (len == 0) {
      out += s[i++];
      continue;
    }
    if (cp == 0x130) {
      out += 'i';
      detail::append_utf8(out, 0x307);
    } else if (cp < 0x180) {
      detail::append_utf8(out, lower_latin(cp));
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string normalize_answer(std::string_view s) {
  const std::string lowered = python_lower(python_strip(s));
  std::string out;
  out.reserve(lowered.size());
  // '.' (0x2E) never occurs inside a multi-byte UTF-8 sequence, so removing bytes is exact.
  for (const char c : lowered) {
    if (c != '.') out += c;
  }
  return out;
}

bool exact_match(std::string_view prediction, std::string_view target) {
  return normalize_answer(prediction) == normalize_answer(target);
}

std::size_t count_exact_matches(const std::vector<std::string>& predictions,
                                const std::vector<std::string>& targets) {
  if (predictions.size() != targets.size()) {
    core::fail("exact match: ", predictions.size(), " predictions but ", targets.size(),
               " targets");
  }
  std::size_t correct = 0;
  for (std::size_t i = 0; i < predictions.size(); ++i) {
    if (exact_match(predictions[i], targets[i])) ++correct;
  }
  return correct;
}

double accuracy(const std::vector<std::string>& predictions,
                const std::vector<std::string>& targets) {
  const std::size_t correct = count_exact_matches(predictions, targets);
  if (targets.empty()) core::fail("accuracy: no predictions and no targets");
  return static_cast<double>(correct) / static_cast<double>(targets.size());
}

}  // namespace lorahub::data
