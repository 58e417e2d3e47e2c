#pragma once
// Escaping and number formatting shared by the report renderers.
#include <string>

namespace lorahub::report::detail {

/// `text` as valid UTF-8 without the control characters XML 1.0 forbids: invalid byte sequences
/// become U+FFFD, C0 controls other than tab / newline / carriage return are dropped.
std::string clean_utf8(const std::string& text);

/// clean_utf8, then & < > " ' as entities.
std::string xml_escape(const std::string& text);

/// clean_utf8 on one line (newlines become spaces), with Markdown's inline syntax escaped so a
/// task name stays literal inside a table cell.
std::string md_escape(const std::string& text);

/// clean_utf8, quoted as an RFC 4180 field when it holds a comma, quote, CR or LF.
std::string csv_field(const std::string& text);

/// `value` with `decimals` digits after the point; "-0.0" prints as "0.0".
std::string fixed(double value, int decimals);

/// The shortest text that reads back as `value`; "" for NaN or infinities.
std::string shortest(double value);

/// Seconds for a table: 3 significant digits below 100 s, whole seconds above.
std::string seconds(double value);

/// Estimated width in pixels of `text` set in a sans-serif font of `font_px` (wide East Asian
/// characters count a full em, others about 0.6 em).
double text_width(const std::string& text, double font_px);

/// At most `max_chars` code points of `text`, with "…" when cut.
std::string truncate(const std::string& text, std::size_t max_chars);

}  // namespace lorahub::report::detail
