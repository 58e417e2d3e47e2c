// GoogleTest main for tests run under mpiexec: MPI is initialised once, rank 0 prints the usual
// output, other ranks print only their failures (prefixed with the rank).
#include <cstdio>
#include <memory>

#include <gtest/gtest.h>

#include "mpi_env.h"

namespace lorahub::distributed::test {
namespace {
Comm* g_comm = nullptr;

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?", r.line_number(),
                 r.summary());
  }

 private:
  int rank_;
};
}  // namespace

Comm& comm() { return *g_comm; }
}  // namespace lorahub::distributed::test

int main(int argc, char** argv) {
  lorahub::distributed::Comm comm(&argc, &argv);
  lorahub::distributed::test::g_comm = &comm;
  ::testing::InitGoogleTest(&argc, argv);
  if (comm.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new lorahub::distributed::test::RankFailurePrinter(comm.rank()));
  }
  int rc = RUN_ALL_TESTS();
  // Every rank exits with the worst status, so a failure seen on one rank fails the whole mpiexec.
  auto any = comm.agree(rc == 0, "failed");
  return any ? 1 : 0;
}
