#pragma once
// The Comm of the MPI test binary: initialised once in main (mpi_main.cpp), shared by every test.
#include "lorahub/distributed/comm.h"

namespace lorahub::distributed::test {
/// The process's Comm; valid for the whole test run.
Comm& comm();
}  // namespace lorahub::distributed::test
