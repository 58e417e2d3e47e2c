#include "lorahub/distributed/broadcast.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/distributed/comm.h"
#include "nccl_broadcast.h"

namespace lorahub::distributed {
namespace {

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) core::fail("cannot open ", path, ": ", std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    auto n = std::fread(buf, 1, sizeof buf, f);
    bytes.append(buf, n);
    if (n < sizeof buf) break;
  }
  bool bad = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (bad) core::fail("cannot read ", path, ": ", std::strerror(err));
  return bytes;
}

/// The path list as one string, so ranks can compare theirs with root's.
std::string join_paths(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += core::cat(p.size(), ':', p, '\n');
  return out;
}

}  // namespace

const Blob& FileBlobs::at(const std::string& path) const {
  auto it = files.find(path);
  if (it == files.end()) core::fail("dist: ", path, " was not among the broadcast files");
  return it->second;
}

bool built_with_nccl() {
#ifdef LORAHUB_DISTRIBUTED_NCCL
  return true;
#else
  return false;
#endif
}

int visible_gpus() {
#ifdef LORAHUB_DISTRIBUTED_NCCL
  return detail::cuda_device_count();
#else
  return 0;
#endif
}

int local_gpu(const Comm& comm, int device_count) {
  return device_count > 0 ? comm.local_rank() % device_count : -1;
}

FileBlobs broadcast_files(Comm& comm, const std::vector<std::string>& paths, int root, Transport transport) {
  if (root < 0 || root >= comm.size()) core::fail("dist: broadcast root ", root, " is not a rank of ", comm.size());

  // Every rank must ask for the same files, else the size and content broadcasts would pair wrongly.
  auto mine = join_paths(paths);
  auto roots = mine;
  comm.broadcast(roots, root);
  comm.agree_or_throw(roots == mine, core::cat("dist: rank ", comm.rank(), " asked to broadcast ", paths.size(),
                                               " file(s) that differ from root rank ", root, "'s list"));

  std::vector<std::string> data(paths.size());
  if (comm.rank() == root) {
    std::string error;
    try {
      for (std::size_t i = 0; i < paths.size(); ++i) data[i] = read_file(paths[i]);
    } catch (const core::Error& e) {
      error = e.what();
    }
    comm.agree_or_throw(error.empty(), error);
  } else {
    comm.agree_or_throw(true, "");
  }

  FileBlobs out;
  if (comm.size() == 1 && transport != Transport::kNccl) {
    out.transport = "local";
  } else {
    std::vector<std::uint64_t> sizes(paths.size());
    if (comm.rank() == root) {
      for (std::size_t i = 0; i < paths.size(); ++i) sizes[i] = data[i].size();
    }
    comm.broadcast_raw(sizes.data(), sizes.size() * sizeof(std::uint64_t), root);
    if (comm.rank() != root) {
      for (std::size_t i = 0; i < paths.size(); ++i) data[i].assign(static_cast<std::size_t>(sizes[i]), '\0');
    }

    bool use_nccl = false;
    if (transport != Transport::kMpi) {
#ifdef LORAHUB_DISTRIBUTED_NCCL
      auto why_not = detail::nccl_unusable(comm);
      if (transport == Transport::kNccl && why_not) throw core::Error(*why_not);
      if (why_not) core::log_debug("dist: broadcasting with MPI: " + *why_not);
      use_nccl = !why_not;
#else
      if (transport == Transport::kNccl) {
        core::fail("dist: NCCL broadcast requested, but lorahub was built with LORAHUB_WITH_NCCL=OFF");
      }
#endif
    }
#ifdef LORAHUB_DISTRIBUTED_NCCL
    if (use_nccl) use_nccl = detail::nccl_broadcast(comm, data, root, transport == Transport::kNccl);
#endif
    if (use_nccl) {
      out.transport = "nccl";
    } else {
      for (auto& d : data) comm.broadcast_raw(d.data(), d.size(), root);
      out.transport = "mpi";
    }
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    out.files[paths[i]] = std::make_shared<const std::string>(std::move(data[i]));
  }
  return out;
}

}  // namespace lorahub::distributed
