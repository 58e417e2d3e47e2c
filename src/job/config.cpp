#include "lorahub/job/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"
#include "lorahub/data/bbh.h"
#include "lorahub/data/task_list.h"
#include "settings.h"

namespace lorahub::job {
namespace fs = std::filesystem;
using core::fail;
using detail::Where;
using nlohmann::json;

namespace {

// TOML values become JSON values so that files, overrides and stored configurations share one reader.
json to_json_value(const toml::node& node) {
  if (auto* t = node.as_table()) {
    json out = json::object();
    for (const auto& [k, v] : *t) out[std::string(k.str())] = to_json_value(v);
    return out;
  }
  if (auto* a = node.as_array()) {
    json out = json::array();
    for (const auto& e : *a) out.push_back(to_json_value(e));
    return out;
  }
  if (auto v = node.value_exact<std::string>()) return *v;
  if (auto v = node.value_exact<std::int64_t>()) return *v;
  if (auto v = node.value_exact<double>()) return *v;
  if (auto v = node.value_exact<bool>()) return *v;
  return core::cat("a ", node.type());  // dates and times: no setting takes them
}

json parse_toml(const std::string& text, const std::string& source) {
  try {
    return to_json_value(toml::parse(std::string_view(text), std::string_view(source)));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    fail(source, ":", b.line, ":", b.column, ": invalid TOML: ", e.description());
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read the job configuration");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string folder_of(const std::string& path) { return fs::absolute(fs::path(path)).parent_path().string(); }

std::string known_keys(const std::string& section) {
  std::vector<std::string> keys;
  for (const auto& s : detail::settings_table()) {
    if (s.section == section) keys.push_back(s.key);
  }
  std::sort(keys.begin(), keys.end());
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

std::string section_list() {
  std::string out;
  const auto& names = detail::section_names();
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? (i + 1 == names.size() ? " or " : ", ") : "") + names[i];
  return out;
}

// One layer (a file, an override, a stored configuration): every key it names, through the table.
// `strict`: unknown sections and keys are errors (files and overrides); stored configurations skip them.
void read_layer(JobConfig& c, const json& root, const Where& where, bool strict) {
  for (const auto& [section, body] : root.items()) {
    const auto& names = detail::section_names();
    if (std::find(names.begin(), names.end(), section) == names.end()) {
      if (!strict) continue;
      fail(where.origin, ": unknown section '", section, "' (expected ", section_list(), ")");
    }
    if (!body.is_object()) fail(where.origin, ": '", section, "' must be a table ([", section, "])");
    std::map<std::string, json> selection;
    for (const auto& [key, value] : body.items()) {
      const auto* s = detail::find_setting(section, key);
      if (!s) {
        if (!strict) continue;
        fail(where.origin, ": unknown key '", section, ".", key, "' (known: ", known_keys(section), ")");
      }
      c.origin[s->full_key()] = where.origin;
      if (detail::is_task_selection_key(section, key)) {
        selection[key] = value;
      } else {
        s->read(c, value, where);
      }
    }
    if (!selection.empty()) detail::read_task_selection(c, selection, where);
  }
}

}  // namespace

namespace detail {

void read_task_selection(JobConfig& c, const std::map<std::string, json>& given, const Where& where) {
  auto has = [&](const char* k) { return given.count(k) > 0; };
  auto& d = c.data;
  // A stored configuration holds the resolved list itself.
  if (has("tasks") && given.at("tasks").is_array() && !given.at("tasks").empty() && given.at("tasks").front().is_object()) {
    d.tasks.clear();
    for (const auto& t : given.at("tasks")) {
      TaskSource s;
      auto text = [&](const char* k) { return t.contains(k) && t[k].is_string() ? t[k].get<std::string>() : std::string(); };
      s.name = text("name");
      s.bbh_dir = text("bbh_dir");
      s.train_file = text("train");
      s.test_file = text("test");
      s.description = text("description");
      d.tasks.push_back(s);
    }
    return;
  }
  auto read_path = [&](const char* key) {
    const auto& v = given.at(key);
    if (!v.is_string()) core::fail(where.origin, ": key 'data.", key, "' must be a string, got ", describe(v));
    return resolve_path(v.get<std::string>(), where);
  };
  if (has("bbh_dir")) d.bbh_dir = read_path("bbh_dir");
  // A layer that names tasks (by name, list file or [[data.task]]) replaces the selection; one that only moves
  // data.bbh_dir keeps the names and finds them in the new folder.
  std::vector<std::string> names;
  std::vector<TaskSource> files;
  const bool selects = has("tasks") || has("task_list") || has("task");
  if (selects) {
    if (has("tasks")) {
      const auto& v = given.at("tasks");
      if (v.is_string()) {
        names.push_back(v.get<std::string>());
      } else {
        if (!v.is_array()) core::fail(where.origin, ": key 'data.tasks' must be a list of strings, got ", describe(v));
        for (const auto& e : v) {
          if (!e.is_string()) core::fail(where.origin, ": key 'data.tasks' must be a list of strings, got ", describe(v));
          names.push_back(e.get<std::string>());
        }
      }
    }
    if (has("task_list")) {
      for (auto& n : data::read_task_list(read_path("task_list"))) names.push_back(std::move(n));
    }
    if (has("task")) {
      const auto& arr = given.at("task");
      if (!arr.is_array()) fail(where.origin, ": 'data.task' must be an array of tables ([[data.task]])");
      for (const auto& e : arr) {
        if (!e.is_object()) fail(where.origin, ": 'data.task' entries must be tables");
        TaskSource src;
        for (const auto& [k, v] : e.items()) {
          static const std::set<std::string> kKeys = {"name", "train", "test", "description", "bbh_dir"};
          if (!kKeys.count(k)) fail(where.origin, ": unknown key 'data.task.", k, "' (known: bbh_dir, description, name, test, train)");
          if (!v.is_string()) fail(where.origin, ": key 'data.task.", k, "' must be a string, got ", describe(v));
        }
        auto text = [&](const char* k) { return e.contains(k) ? e[k].get<std::string>() : std::string(); };
        auto resolved = [&](const char* k) { return resolve_path(text(k), where); };
        src.name = text("name");
        src.train_file = resolved("train");
        src.test_file = resolved("test");
        src.description = text("description");
        src.bbh_dir = resolved("bbh_dir");
        if (src.name.empty()) fail(where.origin, ": a [[data.task]] entry has no name");
        files.push_back(src);
      }
    }
  } else {
    for (const auto& t : d.tasks) {
      if (t.train_file.empty() && t.test_file.empty()) names.push_back(t.name);
      else files.push_back(t);
    }
  }
  if (!names.empty() && d.bbh_dir.empty()) fail(where.origin, ": data.tasks needs data.bbh_dir");
  if (has("bbh_dir") && names.empty() && files.empty()) names = data::list_bbh_tasks(d.bbh_dir);  // every task there
  d.tasks.clear();
  for (const auto& n : names) d.tasks.push_back(TaskSource{n, d.bbh_dir, "", "", ""});
  for (auto& f : files) d.tasks.push_back(f);
}

}  // namespace detail

JobConfig JobConfig::from_toml_string(const std::string& text, const std::string& source, const std::string& base_dir) {
  JobConfig c;
  c.source = source;
  read_layer(c, parse_toml(text, source), Where{source, base_dir}, true);
  return c;
}

JobConfig JobConfig::from_toml_file(const std::string& path) {
  return from_toml_string(read_file(path), path, folder_of(path));
}

JobConfig JobConfig::from_toml_files(const std::vector<std::string>& paths) {
  if (paths.empty()) fail("no job configuration given");
  JobConfig c = from_toml_file(paths.front());
  for (std::size_t i = 1; i < paths.size(); ++i) {
    read_layer(c, parse_toml(read_file(paths[i]), paths[i]), Where{paths[i], folder_of(paths[i])}, true);
  }
  std::string all;
  for (const auto& p : paths) all += (all.empty() ? "" : " + ") + p;
  c.source = all;
  return c;
}

JobConfig JobConfig::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": the stored job configuration is not a JSON object");
  JobConfig c;
  c.source = where;
  read_layer(c, j, Where{where, ""}, false);
  return c;
}

void JobConfig::set(const std::string& key, const std::string& value, const std::string& where) {
  auto dot = key.find('.');
  if (dot == std::string::npos) fail(where, ": '", key, "' must be section.key (e.g. lorahub.budget)");
  const std::string section = key.substr(0, dot);
  const std::string name = key.substr(dot + 1);
  // TOML value syntax; anything that is not a TOML value is taken as a string, so paths and names need no quotes.
  json doc;
  try {
    doc = to_json_value(toml::parse(std::string_view("v = " + value + "\n"), std::string_view(where)));
  } catch (const toml::parse_error&) {
    doc = json{{"v", value}};
  }
  read_layer(*this, json{{section, json{{name, doc["v"]}}}}, Where{where, ""}, true);
}

void JobConfig::apply_overrides(const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      fail("override '", o, "' must look like section.key=value (e.g. lorahub.budget=20)");
    }
    set(o.substr(0, eq), o.substr(eq + 1), "override '" + o + "'");
  }
}

std::string JobConfig::tokenizer_path() const {
  return model.tokenizer.empty() ? (fs::path(model.path) / "spiece.model").string() : model.tokenizer;
}

std::string JobConfig::origin_of(const std::string& key) const {
  auto it = origin.find(key);
  if (it != origin.end()) return it->second;
  return source.empty() ? std::string("configuration") : source;
}

json JobConfig::to_json() const {
  json j = json::object();
  for (const auto& s : detail::settings_table()) {
    if (s.write) j[s.section][s.key] = s.write(*this);
  }
  j["model"]["tokenizer"] = tokenizer_path();
  return j;
}

void JobConfig::resolve_sources() {
  auto it = hub_ids.find("model.path");
  if (it == hub_ids.end()) return;
  auto r = core::resolve_source(model.path, origin_of("model.path") + ": model.path", it->second);
  resolved["model.path"] = core::describe_source(r);
  model.path = r.path;
  hub_ids.erase(it);
}

bool job_needs_library(const JobConfig& config) {
  return std::any_of(config.run.methods.begin(), config.run.methods.end(),
                     [](Method m) { return info(m).uses_library(); });
}

void JobConfig::validate() const {
  // Every value against its own rule, reported where it was set.
  for (const auto& s : detail::settings_table()) {
    if (!s.check) continue;
    if (auto problem = s.check(*this)) fail(origin_of(s.full_key()), ": ", s.full_key(), " ", *problem);
  }
  auto where = [&](const char* key) { return origin_of(key); };
  if (model.path.empty()) fail(where("model.path"), ": model.path is not set");
  if (!fs::is_directory(model.path)) fail(where("model.path"), ": model.path '", model.path, "' is not a folder");
  if (!fs::exists(fs::path(model.path) / "config.json")) {
    fail(where("model.path"), ": model.path '", model.path, "' has no config.json");
  }
  if (!fs::exists(tokenizer_path())) {
    fail(where(model.tokenizer.empty() ? "model.path" : "model.tokenizer"), ": tokenizer '", tokenizer_path(),
         "' does not exist (model.tokenizer)");
  }
  if (run.methods.empty()) fail(where("run.methods"), ": run.methods is empty");
  std::set<Method> seen;
  for (auto m : run.methods) {
    if (!seen.insert(m).second) fail(where("run.methods"), ": run.methods lists '", to_string(m), "' twice");
  }
  if (job_needs_library(*this)) {
    if (library.path.empty()) {
      fail(where("library.path"), ": library.path is not set (needed by the lorahub/uniform/lora-single methods)");
    }
    if (!fs::exists(library.path)) fail(where("library.path"), ": library.path '", library.path, "' does not exist");
  }
  if (data.tasks.empty()) {
    fail(where("data.tasks"), ": no tasks (set data.bbh_dir with data.tasks / data.task_list, or [[data.task]])");
  }
  std::set<std::string> names;
  for (const auto& t : data.tasks) {
    if (!names.insert(t.name).second) fail(where("data.tasks"), ": task '", t.name, "' is listed twice");
    if (!t.train_file.empty() || !t.test_file.empty()) {
      if (t.train_file.empty() || t.test_file.empty()) {
        fail(where("data.task"), ": task '", t.name, "' needs both train and test files");
      }
      for (const auto* f : {&t.train_file, &t.test_file}) {
        if (!fs::exists(*f)) fail(where("data.task"), ": task '", t.name, "': file '", *f, "' does not exist");
      }
    } else {
      if (t.bbh_dir.empty() || !fs::is_directory(t.bbh_dir)) {
        fail(where("data.bbh_dir"), ": task '", t.name, "': BBH folder '", t.bbh_dir, "' does not exist (data.bbh_dir)");
      }
      if (!fs::exists(fs::path(t.bbh_dir) / (t.name + ".json")) && !fs::is_directory(fs::path(t.bbh_dir) / t.name)) {
        fail(where("data.tasks"), ": task '", t.name, "' has no data in '", t.bbh_dir, "' (expected ", t.name, ".json)");
      }
    }
  }
  if (run.seeds.empty()) fail(where("run.seeds"), ": run.seeds is empty");
  if (static_cast<std::int64_t>(run.seeds.size()) > run.max_seeds) {
    fail(where("run.seeds"), ": run.seeds has ", run.seeds.size(), " seeds, more than run.max_seeds = ", run.max_seeds);
  }
  if (std::set<std::int64_t>(run.seeds.begin(), run.seeds.end()).size() != run.seeds.size()) {
    fail(where("run.seeds"), ": run.seeds has duplicates");
  }
  for (auto x : run.seeds) {
    if (x < 0) fail(where("run.seeds"), ": run.seeds must be non-negative, got ", x);
  }
  if (!(lorahub.optimizer.lower < lorahub.optimizer.upper)) {
    fail(where("lorahub.lower"), ": lorahub.lower must be below lorahub.upper (", lorahub.optimizer.lower, " >= ",
         lorahub.optimizer.upper, ")");
  }
  for (double w : lorahub.optimizer.init) {
    if (w < lorahub.optimizer.lower || w > lorahub.optimizer.upper) {
      fail(where("lorahub.init"), ": lorahub.init value ", w, " is outside [lorahub.lower, lorahub.upper]");
    }
  }
}

}  // namespace lorahub::job
