#pragma once
// Running a helper program (spm_train, a benchmark's child process) without a shell: arguments are passed as they
// are, so paths with spaces or quotes need no escaping.
#include <string>
#include <vector>

namespace lorahub::core {

struct ChildExit {
  int status = 0;        ///< the wait status (WIFEXITED / WEXITSTATUS)
  long max_rss_kb = 0;   ///< the child's peak resident set
  bool ok() const;       ///< exited with status 0
  std::string describe() const;  ///< "exit 3", "killed by signal 9"
};

/// Runs `args` (args[0] a path or a name on PATH) with stdout and stderr appended to `log` and waits for it.
/// A program that cannot be started is a core::Error naming it.
ChildExit spawn_and_wait(const std::vector<std::string>& args, const std::string& log);

}  // namespace lorahub::core
