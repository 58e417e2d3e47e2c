#pragma once
// Internal UTF-8 and file helpers shared by the data module's readers.
#include <cstddef>
#include <string>
#include <string_view>

#include "lorahub/core/utf8.h"

namespace lorahub::data::detail {

using core::append_utf8;
using core::decode_utf8;

/// Throws core::Error "<origin>: line L, column C (byte B): invalid UTF-8 ..." at the first
/// malformed sequence of `text`; columns count bytes from 1.
void check_utf8(std::string_view text, const std::string& origin);

/// The whole file as bytes. Throws core::Error naming `path` when it cannot be opened or read.
std::string read_file(const std::string& path);

/// `text` without a leading UTF-8 byte-order mark.
std::string_view skip_bom(std::string_view text);

}  // namespace lorahub::data::detail
