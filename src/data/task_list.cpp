#include "lorahub/data/task_list.h"

#include <map>
#include <string_view>

#include "data/utf8.h"
#include "lorahub/core/error.h"

namespace lorahub::data {

std::vector<std::string> read_task_list(const std::string& path) {
  const std::string raw = detail::read_file(path);
  const std::string_view text = detail::skip_bom(raw);
  detail::check_utf8(text, path);
  constexpr std::string_view kSpace = " \t\r\v\f";
  std::vector<std::string> tasks;
  std::map<std::string, std::size_t, std::less<>> first_line;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    line = line.substr(0, line.find('#'));
    const std::size_t b = line.find_first_not_of(kSpace);
    if (b == std::string_view::npos) continue;
    line = line.substr(b, line.find_last_not_of(kSpace) - b + 1);
    if (line.find_first_of(kSpace) != std::string_view::npos) {
      core::fail(path, ": line ", line_no, ": expected one task name, got \"", line, "\"");
    }
    const auto [it, inserted] = first_line.emplace(std::string(line), line_no);
    if (!inserted) {
      core::fail(path, ": line ", line_no, ": duplicate task \"", line, "\" (first on line ",
                 it->second, ")");
    }
    tasks.emplace_back(line);
  }
  if (tasks.empty()) core::fail(path, ": no task names (only blank lines and comments)");
  return tasks;
}

}  // namespace lorahub::data
