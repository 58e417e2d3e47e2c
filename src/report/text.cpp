#include "report/text.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "lorahub/core/utf8.h"

namespace lorahub::report::detail {
namespace {

// The code points of `text`, U+FFFD for each byte that does not start a well-formed sequence.
std::vector<std::int32_t> code_points(const std::string& text) {
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const std::size_t len = core::decode_utf8(text, i, cp);
    out.push_back(len ? static_cast<std::int32_t>(cp) : 0xFFFD);
    i += len ? len : 1;
  }
  return out;
}

bool is_wide(std::int32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
         (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1FAFF) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

bool is_word_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::string clean_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (auto cp : code_points(text)) {
    if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') continue;
    if (cp == 0xFFFE || cp == 0xFFFF) cp = 0xFFFD;  // not XML characters either
    core::append_utf8(out, static_cast<char32_t>(cp));
  }
  return out;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : clean_utf8(text)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string md_escape(const std::string& text) {
  const std::string s = clean_utf8(text);
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else if (c == '_') {
      // Inside a word an underscore is literal (GFM), so snake_case task names stay readable.
      const bool inside = i > 0 && i + 1 < s.size() && is_word_char(s[i - 1]) && is_word_char(s[i + 1]);
      out += inside ? "_" : "\\_";
    } else if (c == '\\' || c == '|' || c == '*' || c == '`' || c == '<' || c == '>' || c == '[' || c == ']' ||
               c == '#' || c == '~' || c == '&') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

std::string csv_field(const std::string& text) {
  std::string s = clean_utf8(text);
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string fixed(double value, int decimals) {
  if (std::isnan(value)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string out = buf;
  if (out[0] == '-' && out.find_first_not_of("-0.") == std::string::npos) out.erase(0, 1);
  return out;
}

std::string shortest(double value) {
  if (!std::isfinite(value)) return "";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, res.ptr);
}

std::string seconds(double value) {
  if (!std::isfinite(value)) return "";
  const double a = std::fabs(value);
  return fixed(value, a < 10 ? 2 : (a < 100 ? 1 : 0));
}

double text_width(const std::string& text, double font_px) {
  double em = 0;
  for (auto cp : code_points(text)) em += is_wide(cp) ? 1.0 : 0.6;
  return em * font_px;
}

std::string truncate(const std::string& text, std::size_t max_chars) {
  auto cps = code_points(clean_utf8(text));
  if (cps.size() <= max_chars) return clean_utf8(text);
  std::string out;
  for (std::size_t i = 0; i + 1 < max_chars; ++i) core::append_utf8(out, static_cast<char32_t>(cps[i]));
  return out + "…";
}

}  // namespace lorahub::report::detail
