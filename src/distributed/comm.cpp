#include "lorahub/distributed/comm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "lorahub/core/error.h"
#include "mpi_comm.h"

namespace lorahub::distributed {

#ifdef LORAHUB_DISTRIBUTED_MPI
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  core::fail("MPI ", what, " failed: ", len > 0 ? std::string(text, static_cast<std::size_t>(len))
                                                 : core::cat("error code ", rc));
}

namespace {
void free_comms(Comm::Impl& impl) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (impl.node != MPI_COMM_NULL) MPI_Comm_free(&impl.node);
  if (impl.world != MPI_COMM_NULL) MPI_Comm_free(&impl.world);
}
}  // namespace
#endif

Comm::Comm() : Comm(nullptr, nullptr) {}

Comm::Comm(int* argc, char*** argv) : impl_(std::make_unique<Impl>()) {
#ifdef LORAHUB_DISTRIBUTED_MPI
  auto& m = *impl_;
  int initialized = 0;
  int finalized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  check_mpi(MPI_Finalized(&finalized), "MPI_Finalized");
  if (finalized) core::fail("distributed::Comm: MPI has already been finalised");
  if (!initialized) {
    int provided = 0;
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    m.initialised_here = true;
  }
  try {
    check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler(world)");
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &m.world), "MPI_Comm_dup");
    check_mpi(MPI_Comm_set_errhandler(m.world, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(m.world, &m.rank), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(m.world, &m.size), "MPI_Comm_size");
    check_mpi(MPI_Comm_split_type(m.world, MPI_COMM_TYPE_SHARED, m.rank, MPI_INFO_NULL, &m.node),
              "MPI_Comm_split_type(shared)");
    check_mpi(MPI_Comm_set_errhandler(m.node, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler(node)");
    check_mpi(MPI_Comm_rank(m.node, &m.local_rank), "MPI_Comm_rank(node)");
    check_mpi(MPI_Comm_size(m.node, &m.local_size), "MPI_Comm_size(node)");
  } catch (...) {
    free_comms(m);
    if (m.initialised_here) MPI_Finalize();
    throw;
  }
#else
  (void)argc;
  (void)argv;
#endif
}

Comm::~Comm() {
#ifdef LORAHUB_DISTRIBUTED_MPI
  free_comms(*impl_);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (impl_->initialised_here && !finalized) MPI_Finalize();
#endif
}

int Comm::rank() const { return impl_->rank; }
int Comm::size() const { return impl_->size; }
int Comm::local_rank() const { return impl_->local_rank; }
int Comm::local_size() const { return impl_->local_size; }

bool Comm::with_mpi() {
#ifdef LORAHUB_DISTRIBUTED_MPI
  return true;
#else
  return false;
#endif
}

void Comm::barrier() const {
#ifdef LORAHUB_DISTRIBUTED_MPI
  check_mpi(MPI_Barrier(impl_->world), "MPI_Barrier");
#endif
}

void Comm::set_chunk_bytes(std::size_t n) {
  if (n == 0 || n > kMaxChunkBytes) core::fail("distributed::Comm: chunk size ", n, " is outside 1..", kMaxChunkBytes);
  impl_->chunk_bytes = n;
}

std::size_t Comm::chunk_bytes() const { return impl_->chunk_bytes; }

void Comm::broadcast_raw(void* data, std::size_t n, int root) const {
  if (root < 0 || root >= size()) core::fail("distributed::Comm: broadcast root ", root, " is not a rank of ", size());
#ifdef LORAHUB_DISTRIBUTED_MPI
  if (size() == 1) return;
  auto* p = static_cast<char*>(data);
  for (std::size_t off = 0; off < n; off += impl_->chunk_bytes) {
    auto count = static_cast<int>(std::min(impl_->chunk_bytes, n - off));
    check_mpi(MPI_Bcast(p + off, count, MPI_BYTE, root, impl_->world), "MPI_Bcast");
  }
#else
  (void)data;
  (void)n;
#endif
}

void Comm::broadcast(std::string& bytes, int root) const {
  if (root < 0 || root >= size()) core::fail("distributed::Comm: broadcast root ", root, " is not a rank of ", size());
  if (size() == 1) return;
  std::uint64_t n = bytes.size();
  broadcast_raw(&n, sizeof n, root);
  if (rank() != root) bytes.assign(static_cast<std::size_t>(n), '\0');
  broadcast_raw(bytes.data(), bytes.size(), root);
}

std::optional<std::string> Comm::agree(bool ok, const std::string& error) const {
  auto text_of = [&](int r) {
    return error.empty() ? core::cat("rank ", r, " reported a failure without a message") : error;
  };
#ifdef LORAHUB_DISTRIBUTED_MPI
  if (size() > 1) {
    int mine = ok ? size() : rank();
    int first = size();
    check_mpi(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, impl_->world), "MPI_Allreduce(agree)");
    if (first == size()) return std::nullopt;
    std::string text = rank() == first ? text_of(first) : std::string();
    broadcast(text, first);
    return text;
  }
#endif
  if (ok) return std::nullopt;
  return text_of(rank());
}

void Comm::agree_or_throw(bool ok, const std::string& error) const {
  if (auto first = agree(ok, error)) throw core::Error(*first);
}

void Comm::abort(int code) const {
#ifdef LORAHUB_DISTRIBUTED_MPI
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

}  // namespace lorahub::distributed
