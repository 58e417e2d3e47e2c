#pragma once
// Internal UTF-8 and file helpers shared by the data module's readers.
#include <cstddef>
#include <string>
#include <string_view>

namespace lorahub::data::detail {

/// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, surrogates or code points
/// above U+10FFFF) starting at s[i], storing its code point in `cp`; 0 when malformed or truncated.
/// Requires i < s.size().
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp);

/// Appends the UTF-8 encoding of a valid code point.
void append_utf8(std::string& out, char32_t cp);

/// Throws core::Error "<origin>: line L, column C (byte B): invalid UTF-8 ..." at the first
/// malformed sequence of `text`; columns count bytes from 1.
void check_utf8(std::string_view text, const std::string& origin);

/// The whole file as bytes. Throws core::Error naming `path` when it cannot be opened or read.
std::string read_file(const std::string& path);

/// `text` without a leading UTF-8 byte-order mark.
std::string_view skip_bom(std::string_view text);

}  // namespace lorahub::data::detail
