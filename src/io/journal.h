#pragma once
// Crash atomicity for the results file. HDF5 1.10 has no transactions: adding a group rewrites
// metadata of existing groups (B-tree nodes, symbol-table nodes, local heaps, the superblock) in
// place, and a kill in the middle of that flush can leave older runs unreachable. So every write
// transaction goes through a small POSIX file driver that, before it overwrites any byte that
// existed when the transaction began, appends the old bytes to an undo journal "<file>-journal"
// (fsynced first). Bytes past the old end of file need no journal: rollback truncates them away.
// The transaction commits when the file has been closed and fsynced and the journal is deleted;
// a journal found later ("hot journal", a killed writer) is rolled back before the file is used.
#include <cstdint>
#include <string>

#include "io/h5.h"

namespace lorahub::io::detail {

/// Per-open settings of the journaling file driver (copied into the file access list).
struct DriverConfig {
  int journal_fd = -1;          ///< append undo records here before overwriting old bytes; -1: none
  std::uint64_t base_size = 0;  ///< file size when the transaction began: bytes below it are "old"
  double lock_wait_s = 30.0;    ///< how long a busy file lock (e.g. an open h5py reader) is retried
};

/// A file access list for the journaling POSIX driver with this config: earliest file format
/// (superblock v0, no "open for write" flag that a kill would leave set), H5F_CLOSE_STRONG, and a
/// metadata cache large enough that writing one run evicts (and so rewrites) nothing early.
h5::PropertyList make_fapl(const DriverConfig& config);

/// The undo journal of one write transaction on an existing file.
class Journal {
 public:
  /// "<file>-journal".
  static std::string path_for(const std::string& file);
  /// Creates, locks (flock) and fsyncs the journal holding the file's current size, then makes it
  /// visible under its name. Throws if a journal already exists (another live writer).
  static Journal begin(const std::string& file);

  Journal(Journal&& other) noexcept;
  Journal& operator=(Journal&&) = delete;
  Journal(const Journal&) = delete;
  /// Releases the lock; a journal neither committed nor rolled back stays for recover().
  ~Journal();

  int fd() const { return fd_; }
  std::uint64_t base_size() const { return base_size_; }
  /// Commit point: call after the file was closed and fsynced; deletes the journal.
  void commit();
  /// Restores every journaled byte, truncates to the old size, fsyncs, deletes the journal.
  void rollback();

 private:
  Journal(int fd, std::string file, std::uint64_t base_size);
  void drop();
  int fd_ = -1;
  std::string file_;
  std::string path_;
  std::uint64_t base_size_ = 0;
};

/// Rolls back a hot journal of `file` left by a killed writer (idempotent: a kill during the
/// rollback leaves the journal for the next call). Returns whether anything was rolled back.
/// Throws when a live writer holds the journal, or the file cannot be opened for writing.
bool recover(const std::string& file);

/// fsync of a file by path, and of the directory that holds a path (for renames and unlinks).
void sync_file(const std::string& path);
void sync_parent_dir(const std::string& path);

// ---- crash injection, for tests only --------------------------------------------------------------
// Every durable step of a transaction or a recovery (journal record, write, truncate, fsync,
// unlink, rename) is a numbered crash point.

/// From now on, the n-th crash point reached SIGKILLs this process (n <= 0: never, just count).
/// torn: at points that write bytes, the first half of them is written before the kill.
void arm_crash(long n, bool torn);
/// Crash points passed since the last arm_crash.
long crash_points_passed();

}  // namespace lorahub::io::detail
