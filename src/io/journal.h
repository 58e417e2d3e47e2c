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

namespace lorahub::io::detail {

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

/// Appends undo records holding the `len` bytes at `addr` of `file` (read through file_fd, as they are
/// before they are overwritten) to the journal and fsyncs it; each record is a crash point (torn: half of it).
void append_undo_records(int journal_fd, int file_fd, std::uint64_t addr, std::uint64_t len, const std::string& file);

}  // namespace lorahub::io::detail
