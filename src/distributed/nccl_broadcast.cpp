#include "nccl_broadcast.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/distributed/broadcast.h"

namespace lorahub::distributed::detail {
namespace {

// Device staging buffer: files larger than this go through it in pieces.
constexpr std::size_t kDeviceChunkBytes = std::size_t{256} << 20;

std::string cuda_text(const char* what, cudaError_t e) {
  return core::cat(what, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

std::string nccl_text(const char* what, ncclResult_t r) { return core::cat(what, ": ", ncclGetErrorString(r)); }

struct Resources {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  void* buffer = nullptr;
  ~Resources() {
    if (buffer) cudaFree(buffer);
    if (stream) cudaStreamDestroy(stream);
    if (comm) ncclCommDestroy(comm);
  }
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later CUDA users start clean
    return 0;
  }
  return n;
}

std::optional<std::string> nccl_unusable(const Comm& comm) {
  int n = 0;
  std::string why;
  auto e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    why = core::cat("rank ", comm.rank(), " has no usable CUDA device (", cuda_text("cudaGetDeviceCount", e), ")");
  } else if (n == 0) {
    why = core::cat("rank ", comm.rank(), " sees no CUDA device");
  } else if (comm.local_size() > n) {
    why = core::cat(comm.local_size(), " ranks share a node with ", n, " CUDA device(s); NCCL needs one device per rank");
  }
  auto first = comm.agree(why.empty(), why);
  if (first) return "dist: NCCL broadcast unavailable: " + *first;
  return std::nullopt;
}

bool nccl_broadcast(const Comm& comm, std::vector<std::string>& data, int root, bool required) {
  auto give_up = [&](const std::string& why) {
    if (required) throw core::Error("dist: NCCL broadcast failed: " + why);
    core::log_debug("dist: NCCL set-up failed, broadcasting with MPI: " + why);
    return false;
  };

  Resources res;
  std::string error;
  int device = local_gpu(comm, cuda_device_count());
  if (auto e = cudaSetDevice(device); e != cudaSuccess) error = cuda_text(core::cat("cudaSetDevice(", device, ")").c_str(), e);
  ncclUniqueId id{};
  if (error.empty() && comm.rank() == root) {
    if (auto r = ncclGetUniqueId(&id); r != ncclSuccess) error = nccl_text("ncclGetUniqueId", r);
  }
  if (auto first = comm.agree(error.empty(), error)) return give_up(*first);
  comm.broadcast_raw(&id, sizeof id, root);

  if (auto r = ncclCommInitRank(&res.comm, comm.size(), id, comm.rank()); r != ncclSuccess) {
    res.comm = nullptr;
    error = nccl_text("ncclCommInitRank", r);
  }
  std::size_t largest = 0;
  for (const auto& d : data) largest = std::max(largest, d.size());
  const std::size_t chunk = std::max<std::size_t>(1, std::min(largest, kDeviceChunkBytes));
  if (error.empty()) {
    if (auto e = cudaStreamCreate(&res.stream); e != cudaSuccess) error = cuda_text("cudaStreamCreate", e);
  }
  if (error.empty()) {
    if (auto e = cudaMalloc(&res.buffer, chunk); e != cudaSuccess) error = cuda_text("cudaMalloc", e);
  }
  if (auto first = comm.agree(error.empty(), error)) return give_up(*first);

  const bool is_root = comm.rank() == root;
  auto* buffer = static_cast<char*>(res.buffer);
  for (auto& d : data) {
    for (std::size_t off = 0; off < d.size(); off += chunk) {
      const std::size_t n = std::min(chunk, d.size() - off);
      if (is_root) {
        if (auto e = cudaMemcpyAsync(buffer, d.data() + off, n, cudaMemcpyHostToDevice, res.stream); e != cudaSuccess) {
          error = cuda_text("cudaMemcpyAsync(host to device)", e);
        }
      }
      if (error.empty()) {
        if (auto r = ncclBroadcast(buffer, buffer, n, ncclUint8, root, res.comm, res.stream); r != ncclSuccess) {
          error = nccl_text("ncclBroadcast", r);
        }
      }
      if (error.empty() && !is_root) {
        if (auto e = cudaMemcpyAsync(d.data() + off, buffer, n, cudaMemcpyDeviceToHost, res.stream); e != cudaSuccess) {
          error = cuda_text("cudaMemcpyAsync(device to host)", e);
        }
      }
      if (error.empty()) {
        if (auto e = cudaStreamSynchronize(res.stream); e != cudaSuccess) error = cuda_text("cudaStreamSynchronize", e);
      }
      // Agreed per piece: a rank that stopped early would leave the others waiting in the next ncclBroadcast.
      if (auto first = comm.agree(error.empty(), error)) throw core::Error("dist: NCCL broadcast failed: " + *first);
    }
  }
  return true;
}

}  // namespace lorahub::distributed::detail
