#pragma once
// The Comm of the MPI test binary: initialised once in main (mpi_main.cpp), shared by every test.
#include "lorahub/dist/comm.h"

namespace lorahub::dist::test {
/// The process's Comm; valid for the whole test run.
Comm& comm();
}  // namespace lorahub::dist::test
