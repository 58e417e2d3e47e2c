#pragma once
#include <string>
#include <vector>

namespace lorahub::data {

/// Reads a task list (jobs/*.txt): one task name per line, in file order. Text from '#' to the end
/// of a line is a comment; surrounding whitespace and blank lines are ignored. Throws core::Error
/// naming the file and line for an unreadable file, invalid UTF-8, a line holding more than one
/// word, a duplicate task (with the line of its first use), or a list with no task.
std::vector<std::string> read_task_list(const std::string& path);

}  // namespace lorahub::data
