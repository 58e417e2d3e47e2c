#pragma once
// The table of job settings: each key of a job file once, with how it is read, written, checked and explained.
// config.cpp drives TOML files, JSON, `--set` and validation from it; `lorahub learn` builds its flags from it.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lorahub/job/config.h"

namespace lorahub::job::detail {

/// Where a value comes from: the file, flag or override (for messages) and the folder relative paths resolve
/// against ("" keeps them as given).
struct Where {
  std::string origin;
  std::string base_dir;
};

/// `p` resolved against where.base_dir when relative (and a base is known).
std::string resolve_path(const std::string& p, const Where& where);

/// One key of a job file.
struct Setting {
  std::string section;
  std::string key;
  SettingInfo info;
  /// Reads the value into the configuration; throws core::Error naming `where.origin` and the key. Null for the
  /// task-selection keys of [data], which read_task_selection() handles together.
  std::function<void(JobConfig&, const nlohmann::json&, const Where&)> read;
  /// The value in to_json(); null for keys that to_json() shows in another form (the task selection).
  std::function<nlohmann::json(const JobConfig&)> write;
  /// What is wrong with the value ("must be >= 1, got 0"), or nothing; null when any value of the type is fine.
  std::function<std::optional<std::string>(const JobConfig&)> check;

  std::string full_key() const { return section + "." + key; }
};

/// Every setting, grouped by section in the order of the TOML tables.
const std::vector<Setting>& settings_table();
/// The names of the sections, in order.
const std::vector<std::string>& section_names();
/// The setting `section.key`, or nullptr.
const Setting* find_setting(const std::string& section, const std::string& key);

/// [data]'s task selection: bbh_dir, tasks, task_list and [[data.task]] (TOML) or tasks as a list of objects
/// (JSON), given together because they define one list. `given` holds the keys present in this layer.
void read_task_selection(JobConfig& config, const std::map<std::string, nlohmann::json>& given, const Where& where);
/// True for the keys read_task_selection() reads.
bool is_task_selection_key(const std::string& section, const std::string& key);

/// A JSON value as a message shows it: "\"many\"", "3", "true", "a table".
std::string describe(const nlohmann::json& value);

}  // namespace lorahub::job::detail
