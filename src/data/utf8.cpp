#include "data/utf8.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "lorahub/core/error.h"
#include "lorahub/core/utf8.h"

namespace lorahub::data::detail {

void check_utf8(std::string_view text, const std::string& origin) {
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp;
    const std::size_t len = decode_utf8(text, i, cp);
    if (len == 0) {
      std::ostringstream hex;
      hex << std::hex;
      for (std::size_t k = i; k < text.size() && k < i + 4; ++k) {
        hex << (k > i ? " " : "") << static_cast<int>(static_cast<unsigned char>(text[k]));
      }
      core::fail(origin, ": line ", line, ", column ", i - line_start + 1, " (byte ", i,
                 "): invalid UTF-8 (bytes ", hex.str(), "); the text must be UTF-8");
    }
    if (cp == '\n') {
      ++line;
      line_start = i + 1;
    }
    i += len;
  }
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    core::fail("cannot read ", path, ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) core::fail("cannot open ", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) core::fail("cannot read ", path);
  return text;
}

std::string_view skip_bom(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

}  // namespace lorahub::data::detail
