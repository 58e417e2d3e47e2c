#pragma once
// Internal: the MPI handles behind distributed::Comm and the return-code check. Only dist's .cpp files
// include this (and with it mpi.h).
#include <cstddef>

#include "lorahub/distributed/comm.h"

#ifdef LORAHUB_DISTRIBUTED_MPI
#include <mpi.h>
#endif

namespace lorahub::distributed {

struct Comm::Impl {
  bool initialised_here = false;
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::size_t chunk_bytes = Comm::kMaxChunkBytes;
#ifdef LORAHUB_DISTRIBUTED_MPI
  MPI_Comm world = MPI_COMM_NULL;  ///< our duplicate of MPI_COMM_WORLD: dist's tags never meet anyone else's
  MPI_Comm node = MPI_COMM_NULL;
#endif
};

#ifdef LORAHUB_DISTRIBUTED_MPI
/// Throws core::Error("MPI <what> failed: <MPI error string>") unless rc is MPI_SUCCESS.
void check_mpi(int rc, const char* what);
#endif

}  // namespace lorahub::distributed
