#include "lorahub/data/bbh.h"

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <set>
#include <string_view>
#include <system_error>

#include "data/utf8.h"
#include "lorahub/core/error.h"

namespace lorahub::data {

namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Line `index` (0-based) of `text` without its "\r\n" or "\n"; false when there are fewer lines.
bool nth_line(std::string_view text, std::size_t index, std::string_view& line) {
  std::size_t pos = 0;
  for (std::size_t i = 0; i < index; ++i) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    pos = nl + 1;
  }
  if (pos >= text.size() && index > 0) return false;
  std::size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  line = text.substr(pos, end - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return true;
}

std::string read_description(const std::string& task, const fs::path& prompt_path) {
  const std::string path = prompt_path.string();
  if (!is_file(prompt_path)) {
    core::fail("BBH task '", task, "': missing prompt file ", path,
               " (its line 3 is the task description)");
  }
  const std::string raw = detail::read_file(path);
  const std::string_view text = detail::skip_bom(raw);
  detail::check_utf8(text, path);
  std::string_view separator, description;
  if (!nth_line(text, 1, separator) || separator != "-----") {
    core::fail("BBH task '", task, "': ", path,
               ": line 2 must be \"-----\" (line 1 canary, line 3 description)");
  }
  if (!nth_line(text, 2, description) ||
      description.find_first_not_of(" \t") == std::string_view::npos) {
    core::fail("BBH task '", task, "': ", path,
               ": line 3 (the task description) is missing or empty");
  }
  return std::string(description);
}

std::vector<Example> load_task_file(const std::string& task, const fs::path& path) {
  if (!is_file(path)) core::fail("BBH task '", task, "': missing file ", path.string());
  try {
    return load_examples(path.string());
  } catch (const core::Error& e) {
    core::fail("BBH task '", task, "': ", e.what());
  }
}

BbhTask load_original(const fs::path& root, const std::string& name) {
  BbhTask task;
  task.name = name;
  task.layout = BbhLayout::kOriginal;
  task.examples = load_task_file(name, root / (name + ".json"));
  task.description = read_description(name, root / (name + ".txt"));
  task.pool_size = kBbhPoolSize;
  return task;
}

BbhTask load_reference(const fs::path& task_dir, const std::string& name) {
  BbhTask task;
  task.name = name;
  task.layout = BbhLayout::kReference;
  std::vector<Example> pool = load_task_file(name, task_dir / "example.jsonl");
  std::vector<Example> test = load_task_file(name, task_dir / "zero_shot.jsonl");
  const fs::path few_path = task_dir / "few_shot.jsonl";
  if (is_file(few_path)) {
    task.reference_few_shot = load_task_file(name, few_path);
    if (task.reference_few_shot.size() != test.size()) {
      core::fail("BBH task '", name, "': ", few_path.string(), " has ",
                 task.reference_few_shot.size(), " examples but zero_shot.jsonl has ", test.size());
    }
    for (std::size_t i = 0; i < test.size(); ++i) {
      if (task.reference_few_shot[i].target != test[i].target) {
        core::fail("BBH task '", name, "': ", few_path.string(), " line ", i + 1, " has target \"",
                   task.reference_few_shot[i].target, "\" but zero_shot.jsonl has \"",
                   test[i].target, "\"");
      }
    }
  }
  task.pool_size = pool.size();
  task.examples = std::move(pool);
  task.examples.insert(task.examples.end(), std::make_move_iterator(test.begin()),
                       std::make_move_iterator(test.end()));
  return task;
}

}  // namespace

std::vector<std::string> list_bbh_tasks(const std::string& dir) {
  if (!is_dir(dir)) core::fail("BBH directory ", dir, " does not exist or is not a directory");
  std::set<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (is_file(p) && p.extension() == ".json") {
      names.insert(p.stem().string());
    } else if (is_dir(p) && is_file(p / "zero_shot.jsonl")) {
      names.insert(p.filename().string());
    }
  }
  if (ec) core::fail("cannot list BBH directory ", dir, ": ", ec.message());
  if (names.empty()) {
    core::fail("BBH directory ", dir,
               " holds no task (expected <task>.json files or <task>/zero_shot.jsonl)");
  }
  return {names.begin(), names.end()};
}

BbhTask load_bbh_task(const std::string& dir, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos) {
    core::fail("invalid BBH task name '", name, "' (a file name without directories expected)");
  }
  const fs::path root(dir);
  if (is_file(root / (name + ".json"))) return load_original(root, name);
  if (is_dir(root / name)) return load_reference(root / name, name);
  core::fail("BBH task '", name, "' not found: neither ", (root / (name + ".json")).string(),
             " nor the directory ", (root / name).string(), " exists");
}

BbhSplit split_bbh(const BbhTask& task, std::optional<std::size_t> max_test) {
  if (max_test && *max_test == 0) {
    core::fail("BBH task '", task.name, "': max_test must be at least 1");
  }
  if (task.examples.size() <= task.pool_size) {
    core::fail("BBH task '", task.name, "' has ", task.examples.size(),
               " examples, no more than its pool of ", task.pool_size, ", so no test set is left");
  }
  const auto pool_end = task.examples.begin() + static_cast<std::ptrdiff_t>(task.pool_size);
  std::size_t n_test = task.examples.size() - task.pool_size;
  if (max_test) n_test = std::min(n_test, *max_test);
  BbhSplit split;
  split.pool.assign(task.examples.begin(), pool_end);
  split.test.assign(pool_end, pool_end + static_cast<std::ptrdiff_t>(n_test));
  return split;
}

}  // namespace lorahub::data
