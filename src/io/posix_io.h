#pragma once
// Checked POSIX file calls of the io layer, and the test hooks that act on them: every durable step of a
// write or a rollback (journal record, write, truncate, fsync, unlink, rename) is a numbered crash point,
// and writes can be made to fail with ENOSPC after a number of bytes (a disk that fills up).
#include <cstdint>
#include <string>
#include <utility>

namespace lorahub::io::detail {

/// "<what>: <strerror> (errno N)".
std::string sys_error(const std::string& what, int err);
/// Throws core::Error(sys_error(what, errno)).
[[noreturn]] void fail_errno(const std::string& what);

/// Closes a file descriptor when it goes out of scope.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard();
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

/// Whether a write may need new disk space (and so counts against limit_disk_space) or rewrites bytes in
/// place (a rollback restoring old bytes).
enum class Space { kAllocates, kReuses };

/// Writes all n bytes at off (pwrite) or at the end (write, for O_APPEND); throws naming `what`.
void pwrite_all(int fd, const void* buf, std::size_t n, std::uint64_t off, const std::string& what, Space space);
void write_all(int fd, const void* buf, std::size_t n, const std::string& what, Space space);
/// Reads n bytes at off; bytes past the end of the file read as zeros (as HDF5 expects of a driver).
void pread_zero(int fd, void* buf, std::size_t n, std::uint64_t off, const std::string& what);
/// fsync; throws naming `what`.
void sync_fd(int fd, const std::string& what);
/// Non-blocking flock(op); false when another open file description holds a conflicting lock. File
/// systems without flock count as locked by us.
bool try_flock(int fd, int op, const std::string& what);
/// "a/b/c" -> "a/b" ("." without a slash) and -> "c".
std::string parent_dir(const std::string& path);
std::string base_name(const std::string& path);
/// fsync of a file by path, and of the directory that holds a path (for renames and unlinks).
void sync_file(const std::string& path);
void sync_parent_dir(const std::string& path);

// ---- crash injection, for tests only --------------------------------------------------------------

/// Counts a crash point; kills the process (SIGKILL) when it is the armed one. Returns true instead
/// when the point can tear (it writes bytes) and a torn crash is armed: the caller then writes the
/// first half of its bytes and calls die().
bool crash_point(bool can_tear);
/// SIGKILLs this process.
[[noreturn]] void die();
/// From now on, the n-th crash point reached SIGKILLs this process (n <= 0: never, just count).
/// torn: at points that write bytes, the first half of them is written before the kill.
void arm_crash(long n, bool torn);
/// Crash points passed since the last arm_crash.
long crash_points_passed();

/// Environment variable "R:K" (or "R:K:torn"): the process is SIGKILLed at crash point K of the R-th run
/// it writes (ResultStore::write_run; both 1-based), so an end-to-end test kills `lorahub run` at an
/// exact step of an exact write instead of after a guessed delay. A malformed value fails the write.
inline constexpr const char* kCrashEnv = "LORAHUB_TEST_CRASH_AT";
/// Called as each run's write begins: arms the crash point of kCrashEnv when this is run R.
void run_write_begins();

// ---- a disk that fills up, for tests only ----------------------------------------------------------

/// Environment variable: a byte count N makes the process behave as if its disk had N bytes free when
/// the io layer first wrote: writes that allocate space (results file, journal; not a rollback's
/// in-place restore) get ENOSPC once N bytes have been written, the one crossing N after writing its
/// share, as a filling disk does. Read once; a value that is not a byte count is an error at the first write.
inline constexpr const char* kDiskFullEnv = "LORAHUB_TEST_DISK_FULL_AFTER";
/// The same from code: n >= 0 bytes left from now on; n < 0: unlimited (the default without the variable).
void limit_disk_space(long long n);
/// Bytes left under the limit (< 0: unlimited).
long long disk_space_left();

}  // namespace lorahub::io::detail
