#include "lorahub/data/example.h"

#include <nlohmann/json.hpp>
#include <string_view>

#include "data/utf8.h"
#include "lorahub/core/error.h"

namespace lorahub::data {

bool operator==(const Example& a, const Example& b) {
  return a.input == b.input && a.target == b.target;
}
bool operator!=(const Example& a, const Example& b) { return !(a == b); }

namespace {

using nlohmann::json;

// The two field pairs a record may use; the first one seen fixes the pair for the whole file.
enum class Schema { kUnknown, kInputTarget, kContextCompletion };

const char* schema_name(Schema s) {
  return s == Schema::kInputTarget ? "input/target" : "context/completion";
}

std::string string_field(const json& record, const char* key, const std::string& where) {
  const auto it = record.find(key);
  if (it == record.end()) core::fail(where, ": missing field \"", key, "\"");
  if (!it->is_string()) {
    core::fail(where, ": field \"", key, "\" must be a string, got ", it->type_name());
  }
  return it->get<std::string>();
}

std::string key_list(const json& record) {
  std::string keys;
  for (const auto& item : record.items()) {
    keys += (keys.empty() ? "" : ", ") + ("\"" + item.key() + "\"");
  }
  return keys.empty() ? "none" : keys;
}

// `where` names the record ("file: line 3") and `first_where` the record that fixed the schema.
Example parse_record(const json& record, Schema& schema, const std::string& where,
                     std::string& first_where) {
  if (!record.is_object()) {
    core::fail(where, ": expected a JSON object, got ", record.type_name());
  }
  const bool has_it = record.contains("input") || record.contains("target");
  const bool has_cc = record.contains("context") || record.contains("completion");
  if (has_it && has_cc) {
    core::fail(where, ": record mixes input/target and context/completion fields (keys: ",
               key_list(record), ")");
  }
  if (!has_it && !has_cc) {
    core::fail(where, ": expected fields \"input\" and \"target\" (or \"context\" and ",
               "\"completion\"), got keys: ", key_list(record));
  }
  const Schema mine = has_it ? Schema::kInputTarget : Schema::kContextCompletion;
  if (schema == Schema::kUnknown) {
    schema = mine;
    first_where = where;
  } else if (schema != mine) {
    core::fail(where, ": record uses ", schema_name(mine), " fields but ", first_where, " uses ",
               schema_name(schema), "; a file must use one pair");
  }
  if (mine == Schema::kInputTarget) {
    return {string_field(record, "input", where), string_field(record, "target", where)};
  }
  return {string_field(record, "context", where), string_field(record, "completion", where)};
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::vector<Example> parse_bbh_object(const json& doc, const std::string& origin) {
  const json& list = doc.at("examples");
  if (!list.is_array()) {
    core::fail(origin, ": \"examples\" must be an array, got ", list.type_name());
  }
  if (list.empty()) core::fail(origin, ": \"examples\" is empty");
  std::vector<Example> out;
  out.reserve(list.size());
  Schema schema = Schema::kUnknown;
  std::string first_where;
  for (std::size_t i = 0; i < list.size(); ++i) {
    out.push_back(
        parse_record(list[i], schema, core::cat(origin, ": examples[", i, "]"), first_where));
  }
  return out;
}

std::vector<Example> parse_json_lines(std::string_view text, const std::string& origin,
                                      const std::string& whole_error) {
  std::vector<Example> out;
  Schema schema = Schema::kUnknown;
  std::string first_where;
  std::size_t line_no = 0;
  bool first_record = true;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (is_blank(line)) continue;
    const std::string where = core::cat(origin, ": line ", line_no);
    json record;
    try {
      record = json::parse(line);
    } catch (const json::parse_error& e) {
      // A first line that is not JSON on its own is more likely a multi-line JSON document with a
      // syntax error, whose parser message locates the error better.
      if (first_record) core::fail(origin, ": invalid JSON: ", whole_error);
      core::fail(where, ": invalid JSON: ", e.what());
    }
    first_record = false;
    out.push_back(parse_record(record, schema, where, first_where));
  }
  return out;
}

}  // namespace

std::vector<Example> parse_examples(const std::string& raw, const std::string& origin) {
  const std::string_view text = detail::skip_bom(raw);
  detail::check_utf8(text, origin);
  if (is_blank(text)) core::fail(origin, ": no examples (the file is empty)");

  json doc;
  std::string whole_error;
  bool whole_ok = true;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    whole_ok = false;
    whole_error = e.what();
  }
  if (whole_ok) {
    if (doc.is_object() && doc.contains("examples")) return parse_bbh_object(doc, origin);
    if (!doc.is_object()) {
      core::fail(origin, ": expected JSON Lines of objects or an object with \"examples\", got a ",
                 doc.type_name());
    }
    // A single record, possibly spread over several lines.
    Schema schema = Schema::kUnknown;
    std::string first_where;
    return {parse_record(doc, schema, core::cat(origin, ": record 1"), first_where)};
  }
  return parse_json_lines(text, origin, whole_error);
}

std::vector<Example> load_examples(const std::string& path) {
  return parse_examples(detail::read_file(path), path);
}

}  // namespace lorahub::data
