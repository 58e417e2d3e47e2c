#pragma once
// The compute side of a job for the runner: thread pools and the engine + handler of a worker rank.
#include "lorahub/runner/runner.h"

namespace lorahub::worker {

/// Applies the thread count to libtorch (intra-op) and OpenBLAS, whose own pool torch does not control.
/// threads <= 0: $SLURM_CPUS_PER_TASK, else the cores this rank is bound to, else the node's cores divided
/// among its ranks_on_node ranks, at least 1. Returns the count used. Also calls retain_freed_memory().
int setup_threads(int threads, int ranks_on_node = 1);

/// Makes glibc keep freed memory for reuse instead of handing it back to the kernel after every operation:
/// blocks up to glibc's largest mmap threshold (32 MiB) come from the heap and the heap's free top is kept.
/// Without it an evaluation's multi-MB temporaries are page-faulted in and zeroed again at each operation
/// (LORAHUB_GLIBC_MALLOC=1 skips it; `lorahub-bench learn` measures both). Memory freed stays with the process until it exits.
void retain_freed_memory();

/// setup_threads, and a loader that builds an Engine and a Worker for the job (on the GPU of the rank's
/// node-local index with model.device = "cuda").
runner::WorkerBackend backend();

}  // namespace lorahub::worker
