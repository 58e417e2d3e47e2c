#include "io/posix_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "lorahub/core/error.h"

namespace lorahub::io::detail {
namespace {

std::atomic<long> g_crash_target{0};
std::atomic<long> g_crash_passed{0};
std::atomic<bool> g_crash_torn{false};

constexpr long long kUnlimited = -1;
constexpr long long kUnset = -2;
std::atomic<long long> g_space_left{kUnset};

long long space_from_env() {
  const char* text = std::getenv(kDiskFullEnv);
  if (text == nullptr || *text == '\0') return kUnlimited;
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || n < 0) core::fail(kDiskFullEnv, " must be a byte count, got '", text, "'");
  return n;
}

// How many of n bytes fit on the (pretended) disk; takes them.
std::size_t take_space(std::size_t n) {
  long long left = g_space_left.load();
  if (left == kUnset) {
    long long from_env = space_from_env();
    if (g_space_left.compare_exchange_strong(left, from_env)) left = from_env;
  }
  for (;;) {
    if (left < 0) return n;
    long long take = std::min<long long>(left, static_cast<long long>(n));
    if (g_space_left.compare_exchange_weak(left, left - take)) return static_cast<std::size_t>(take);
  }
}

std::size_t fitting(std::size_t n, Space space) { return space == Space::kReuses ? n : take_space(n); }

}  // namespace

void die() {
  std::raise(SIGKILL);
  _exit(137);
}

bool crash_point(bool can_tear) {
  long n = ++g_crash_passed;
  if (n != g_crash_target.load()) return false;
  if (can_tear && g_crash_torn.load()) return true;
  die();
}

// ---- POSIX helpers --------------------------------------------------------------------------------

std::string sys_error(const std::string& what, int err) {
  return core::cat(what, ": ", std::strerror(err), " (errno ", err, ")");
}

void fail_errno(const std::string& what) { throw core::Error(sys_error(what, errno)); }

FdGuard::~FdGuard() {
  if (fd_ >= 0) ::close(fd_);
}

void pwrite_all(int fd, const void* buf, std::size_t n, std::uint64_t off, const std::string& what, Space space) {
  const char* p = static_cast<const char*>(buf);
  const std::size_t fits = fitting(n, space);
  if (fits < n) {
    pwrite_all(fd, buf, fits, off, what, Space::kReuses);
    errno = ENOSPC;
    fail_errno(what);
  }
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno(what);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
}

void write_all(int fd, const void* buf, std::size_t n, const std::string& what, Space space) {
  const char* p = static_cast<const char*>(buf);
  const std::size_t fits = fitting(n, space);
  if (fits < n) {
    write_all(fd, buf, fits, what, Space::kReuses);
    errno = ENOSPC;
    fail_errno(what);
  }
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno(what);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void pread_zero(int fd, void* buf, std::size_t n, std::uint64_t off, const std::string& what) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_errno(what);
    }
    if (r == 0) {
      std::memset(p, 0, n);
      return;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    off += static_cast<std::uint64_t>(r);
  }
}

void sync_fd(int fd, const std::string& what) {
  if (::fsync(fd) != 0) fail_errno(what);
}

// File systems without flock (some Lustre/NFS mounts) count as locked: there is nothing better to do there.
bool try_flock(int fd, int op, const std::string& what) {
  for (;;) {
    if (::flock(fd, op | LOCK_NB) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    if (errno == ENOSYS || errno == ENOLCK || errno == EOPNOTSUPP) return true;
    fail_errno(what);
  }
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void sync_file(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) fail_errno("opening " + path + " to fsync it");
  FdGuard fd(raw);
  sync_fd(fd.get(), "fsync of " + path);
}

void sync_parent_dir(const std::string& path) {
  std::string dir = parent_dir(path);
  int raw = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) fail_errno("opening directory " + dir + " to fsync it");
  FdGuard fd(raw);
  // Some network file systems cannot fsync a directory; their metadata is synchronous anyway.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != EROFS) fail_errno("fsync of directory " + dir);
}

void arm_crash(long n, bool torn) {
  g_crash_torn.store(torn);
  g_crash_passed.store(0);
  g_crash_target.store(n);
}

long crash_points_passed() { return g_crash_passed.load(); }

void run_write_begins() {
  static std::atomic<long> runs{0};
  const long run = ++runs;
  const char* text = std::getenv(kCrashEnv);
  if (text == nullptr || *text == '\0') return;
  char* end = nullptr;
  const long r = std::strtol(text, &end, 10);
  const long k = *end == ':' ? std::strtol(end + 1, &end, 10) : 0;
  const bool torn = std::strcmp(end, ":torn") == 0;
  if (r < 1 || k < 1 || (*end != '\0' && !torn)) {
    core::fail(kCrashEnv, " must be RUN:POINT or RUN:POINT:torn (1-based), got '", text, "'");
  }
  if (run == r) arm_crash(k, torn);
}

void limit_disk_space(long long n) { g_space_left.store(n < 0 ? kUnlimited : n); }

long long disk_space_left() {
  long long left = g_space_left.load();
  return left == kUnset ? space_from_env() : left;
}

}  // namespace lorahub::io::detail
