#include "lorahub/core/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "lorahub/core/error.h"

extern char** environ;

namespace lorahub::core {

bool ChildExit::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string ChildExit::describe() const {
  if (WIFEXITED(status)) return cat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return cat("killed by signal ", WTERMSIG(status));
  return cat("wait status ", status);
}

ChildExit spawn_and_wait(const std::vector<std::string>& args, const std::string& log) {
  if (args.empty()) fail("spawn_and_wait: no program given");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("cannot start '", args[0], "': ", std::strerror(rc));
  ChildExit out;
  struct rusage usage {};
  while (::wait4(pid, &out.status, 0, &usage) < 0) {
    if (errno != EINTR) fail("waiting for '", args[0], "' failed: ", std::strerror(errno));
  }
  out.max_rss_kb = usage.ru_maxrss;
  return out;
}

}  // namespace lorahub::core
