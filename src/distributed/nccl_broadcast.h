#pragma once
// Internal: the NCCL half of broadcast_files (compiled only with LORAHUB_WITH_NCCL).
#include <optional>
#include <string>
#include <vector>

#include "lorahub/distributed/comm.h"

namespace lorahub::distributed::detail {

#ifdef LORAHUB_DISTRIBUTED_NCCL
/// cudaGetDeviceCount, or 0 when it fails (no driver, no device).
int cuda_device_count();
/// Collective: nullopt when every rank has a CUDA device of its own on its node, else (on every rank)
/// the first rank's reason why not.
std::optional<std::string> nccl_unusable(const Comm& comm);
/// Collective: broadcasts each string of `data` (already sized on every rank) from root through a GPU.
/// Returns false on every rank if the NCCL communicator could not be set up (callers fall back to
/// MPI), unless `required`, when that is an agreed core::Error. Later CUDA/NCCL failures are agreed
/// and thrown on every rank.
bool nccl_broadcast(const Comm& comm, std::vector<std::string>& data, int root, bool required);
#endif

}  // namespace lorahub::distributed::detail
