#pragma once
// The HDF5 file driver of the results file: POSIX I/O that, inside a write transaction, journals the old
// contents of every byte it is about to overwrite (journal.h) and takes the file's flock.
#include "io/h5.h"

#include <cstdint>
#include <string>

namespace lorahub::io::detail {

/// Where the driver records the first write error of a file it has open for writing.
///
/// HDF5 1.10 cannot survive a failed close: when the flush inside H5Fclose (or the driver's close) fails,
/// the library frees the file but leaves its identifier registered, and its exit handler closes it again
/// and crashes (HDFFV-11052, fixed in 1.14). A full disk met while the metadata cache is flushed on close
/// did exactly that. So with a WriteFailure the driver never reports a write error to HDF5: it records
/// the first one here and keeps the rest of the transaction in memory (later reads see it, the disk does
/// not), every later call succeeds, and the caller, after H5Fclose, finds `failed` and rolls back.
struct WriteFailure {
  bool failed = false;
  std::string message;  ///< the first error, naming the file and the OS reason
};

/// Per-open settings of the journaling file driver (copied into the file access list).
struct DriverConfig {
  int journal_fd = -1;          ///< append undo records here before overwriting old bytes; -1: none
  std::uint64_t base_size = 0;  ///< file size when the transaction began: bytes below it are "old"
  double lock_wait_s = 30.0;    ///< how long a busy file lock (e.g. an open h5py reader) is retried
  WriteFailure* failure = nullptr;  ///< record write errors here (outlives the open file); null: report them to HDF5
};

/// A file access list for the journaling POSIX driver with this config: earliest file format
/// (superblock v0, no "open for write" flag that a kill would leave set), H5F_CLOSE_STRONG, and a
/// metadata cache large enough that writing one run evicts (and so rewrites) nothing early.
h5::PropertyList make_fapl(const DriverConfig& config);

}  // namespace lorahub::io::detail
