#pragma once
// The MPI environment behind a small RAII handle. mpi.h stays out of this header: the communicators
// live in Comm::Impl (src/dist/mpi_comm.h). Built without MPI (LORAHUB_WITH_MPI=OFF) a Comm is
// rank 0 of 1 and every collective is a no-op.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace lorahub::distributed {

class Comm {
 public:
  /// Largest piece moved by one MPI_Bcast (MPI counts are int).
  static constexpr std::size_t kMaxChunkBytes = std::size_t{64} << 20;

  /// Joins MPI with MPI_Init_thread(MPI_THREAD_FUNNELED: only the main thread calls dist) unless it is
  /// already initialised (then the Comm that did must outlive this one), duplicates
  /// MPI_COMM_WORLD (errors returned, not fatal) and splits it per node. argc/argv may be null.
  /// Throws core::Error with the MPI error string on failure.
  Comm(int* argc, char*** argv);
  Comm();
  /// Frees the communicators; calls MPI_Finalize only if this Comm initialised MPI.
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  /// Rank and size in the world communicator.
  int rank() const;
  int size() const;
  /// Rank and size among the ranks sharing this node's memory (MPI_COMM_TYPE_SHARED).
  int local_rank() const;
  int local_size() const;
  bool is_root() const { return rank() == 0; }
  /// True when built with MPI (even for a single rank).
  static bool with_mpi();

  /// Blocks until every rank has called it.
  void barrier() const;
  /// Collective: on return every rank holds root's `bytes` (non-root contents are replaced). Moves at
  /// most chunk_bytes() per MPI_Bcast, so strings over 2 GiB are fine.
  void broadcast(std::string& bytes, int root = 0) const;
  /// Collective: broadcasts `n` raw bytes at `data` from root, chunked like broadcast().
  void broadcast_raw(void* data, std::size_t n, int root = 0) const;
  /// Sets the broadcast piece size, 1..kMaxChunkBytes; every rank must set the same value.
  void set_chunk_bytes(std::size_t n);
  std::size_t chunk_bytes() const;

  /// Collective: nullopt when every rank passed ok, else the error text of the lowest failing rank, on
  /// every rank (so a config error seen on rank 0 is reported once and all ranks exit cleanly).
  std::optional<std::string> agree(bool ok, const std::string& error) const;
  /// Collective: like agree(), but throws core::Error(first error) on every rank when any rank failed.
  void agree_or_throw(bool ok, const std::string& error) const;

  /// Terminates every rank (MPI_Abort; std::_Exit without MPI). For errors that cannot be agreed on.
  [[noreturn]] void abort(int code = 1) const;

  struct Impl;
  /// The MPI handles, for dist's own .cpp files.
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorahub::distributed
