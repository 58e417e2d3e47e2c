#pragma once
// The HDF5 file driver of the results file: POSIX I/O that, inside a write transaction, journals the old
// contents of every byte it is about to overwrite (journal.h) and takes the file's flock.
#include "io/h5.h"

#include <cstdint>

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

}  // namespace lorahub::io::detail
