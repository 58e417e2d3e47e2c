#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace lorahub::core {

enum class LogLevel { kQuiet = 0, kInfo = 1, kDebug = 2 };

/// Sets this process's rank: rank 0 prints bare lines, other ranks prefix "[wN] ".
void set_log_rank(int rank);
int log_rank();
void set_log_level(LogLevel level);
LogLevel log_level();

/// Writes one line to stderr (info/debug respect the level; warnings always print).
void log_info(const std::string& line);
void log_debug(const std::string& line);
void log_warn(const std::string& line);

/// Progress of long work: done/total, rate and ETA. On a terminal it redraws one live line;
/// otherwise (Slurm logs, pipes) it prints a plain line at most every `interval` seconds.
class Progress {
 public:
  Progress(std::string label, std::size_t total, std::string unit = "it", double interval_s = 5.0);
  /// Reports `done` units finished so far; `detail` is appended (e.g. "best 0.4213").
  void update(std::size_t done, const std::string& detail = "");
  /// Prints the final line (always, once).
  void finish(const std::string& detail = "");
  double elapsed_s() const;

 private:
  void print(std::size_t done, const std::string& detail, bool final_line);
  std::string label_;
  std::string unit_;
  std::size_t total_;
  double interval_s_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

/// Seconds since the epoch, as text in ISO 8601 UTC ("2026-11-29T03:12:40Z").
std::string utc_timestamp();

}  // namespace lorahub::core
