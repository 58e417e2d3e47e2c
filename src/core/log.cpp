#include "lorahub/core/log.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <mutex>

namespace lorahub::core {
namespace {
int g_rank = 0;
LogLevel g_level = LogLevel::kInfo;
std::mutex g_mutex;
bool g_live_line = false;  // a Progress line is on the terminal, without a newline

void emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_live_line) {
    std::fputs("\r\033[K", stderr);  // the next progress update redraws it below this line
    g_live_line = false;
  }
  if (g_rank != 0) {
    std::fprintf(stderr, "[w%d] %s\n", g_rank, line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  char buf[32];
  auto t = static_cast<long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  } else if (t >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  }
  return buf;
}
}  // namespace

void set_log_rank(int rank) { g_rank = rank; }
int log_rank() { return g_rank; }
void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_info(const std::string& line) {
  if (g_level >= LogLevel::kInfo) emit(line);
}
void log_debug(const std::string& line) {
  if (g_level >= LogLevel::kDebug) emit(line);
}
void log_warn(const std::string& line) { emit("warning: " + line); }

Progress::Progress(std::string label, std::size_t total, std::string unit, double interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      interval_s_(interval_s),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(std::size_t done, const std::string& detail) {
  if (g_level < LogLevel::kInfo || finished_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_ ? since < 0.1 : since < interval_s_) return;
  last_print_ = now;
  print(done, detail, false);
}

void Progress::finish(const std::string& detail) {
  if (finished_) return;
  finished_ = true;
  if (g_level < LogLevel::kInfo) return;
  print(total_, detail, true);
}

void Progress::print(std::size_t done, const std::string& detail, bool final_line) {
  double elapsed = elapsed_s();
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  double eta = rate > 0 && total_ >= done ? static_cast<double>(total_ - done) / rate : -1.0;
  char head[256];
  std::snprintf(head, sizeof head, "%s %zu/%zu %s | %.2f %s/s | %s %s", label_.c_str(), done, total_,
                unit_.c_str(), rate, unit_.c_str(), final_line ? "took" : "ETA",
                format_duration(final_line ? elapsed : eta).c_str());
  std::string line = head;
  if (!detail.empty()) line += " | " + detail;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string prefix = g_rank != 0 ? "[w" + std::to_string(g_rank) + "] " : "";
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s%s", prefix.c_str(), line.c_str(), final_line ? "\n" : "");
    g_live_line = !final_line;
  } else {
    std::fprintf(stderr, "%s%s\n", prefix.c_str(), line.c_str());
  }
  std::fflush(stderr);
}

std::string utc_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace lorahub::core
