#pragma once
// UTF-8 decoding and encoding (RFC 3629), shared by the task readers, the metric, the tokenizer and reports.
#include <cstddef>
#include <string>
#include <string_view>

namespace lorahub::core {

/// Length of the well-formed UTF-8 sequence (no overlongs, surrogates or code points above U+10FFFF)
/// starting at s[i], storing its code point in `cp`; 0 when malformed or truncated. Requires i < s.size().
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp);

/// Appends the UTF-8 encoding of a valid code point.
void append_utf8(std::string& out, char32_t cp);

}  // namespace lorahub::core
