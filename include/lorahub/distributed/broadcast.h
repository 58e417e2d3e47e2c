#pragma once
// "Read once, broadcast": the root rank reads files and every rank ends with the same bytes, moved by
// MPI or, when built with NCCL and every rank on a node has its own GPU, by NCCL between devices.
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lorahub::distributed {

class Comm;

/// Shared immutable bytes of one file.
using Blob = std::shared_ptr<const std::string>;

struct FileBlobs {
  std::map<std::string, Blob> files;  ///< path as given -> bytes
  std::string transport;              ///< "local" (one rank), "mpi" or "nccl"
  /// The bytes of `path`; throws core::Error naming the path if it was not broadcast.
  const Blob& at(const std::string& path) const;
};

enum class Transport {
  kAuto,  ///< NCCL when built with it and every rank has a distinct GPU at run time, else MPI
  kMpi,
  kNccl,  ///< NCCL or a core::Error on every rank (used by device tests; works on a single rank too)
};

/// Collective: root reads every path (in order) and broadcasts sizes then contents. Every rank must
/// pass the same paths (checked). A read error on root is agreed, so every rank throws the same
/// core::Error naming the file instead of hanging.
FileBlobs broadcast_files(Comm& comm, const std::vector<std::string>& paths, int root = 0,
                          Transport transport = Transport::kAuto);

/// CUDA devices this process sees: 0 when built without NCCL or when cudaGetDeviceCount fails.
int visible_gpus();
/// True when built with LORAHUB_WITH_NCCL.
bool built_with_nccl();
/// The device this rank should use: node-local rank mod device_count, or -1 when device_count <= 0.
int local_gpu(const Comm& comm, int device_count);

}  // namespace lorahub::distributed
