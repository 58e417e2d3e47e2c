#include "lorahub/worker/backend.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <thread>

#include <torch/torch.h>

#include "lorahub/core/error.h"
#include "lorahub/worker/engine.h"
#include "lorahub/worker/worker.h"

namespace lorahub::worker {

void retain_freed_memory() {
  // glibc's default moves the mmap threshold up to the size of the last freed block and trims the heap's
  // top once twice that is free: multi-MB tensors then alternate between mmap/munmap and brk growth and
  // trimming, and every first touch of a page is a fault (plus the kernel zeroing it). Fixed settings keep
  // the blocks (as the dynamic scheme would eventually, minus the trimming). Larger blocks still use mmap,
  // which every arena, not only the main one, can serve.
  constexpr int kMmapThreshold = 32 << 20;  // the largest M_MMAP_THRESHOLD glibc accepts on 64-bit
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
}

int setup_threads(int threads, int ranks_on_node) {
  static const bool retained = [] {
    if (!std::getenv("LORAHUB_GLIBC_MALLOC")) retain_freed_memory();
    return true;
  }();
  (void)retained;
  if (threads <= 0) {
    const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cpu_set_t mask;
    int allowed = hardware;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0) allowed = std::max(1, CPU_COUNT(&mask));
    if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
      threads = std::max(1, std::atoi(slurm));  // Slurm sized this rank
    } else if (allowed < hardware) {
      threads = allowed;  // the launcher bound this rank to its own cores
    } else {
      threads = std::max(1, hardware / std::max(1, ranks_on_node));
    }
  }
  torch::set_num_threads(threads);
  // torch accepts the inter-op count once per process; later jobs in the same process (bench solver) keep it.
  static const bool interop_set = [] {
    torch::set_num_interop_threads(1);
    return true;
  }();
  (void)interop_set;
  // libtorch's float32 GEMMs run in OpenBLAS, whose pool torch::set_num_threads does not size; two pools
  // fighting over the same cores run several times slower.
  using SetThreads = void (*)(int);
  if (auto* fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
  return threads;
}

runner::WorkerBackend backend() {
  runner::WorkerBackend b;
  b.setup_threads = [](int threads, int ranks_on_node) { return setup_threads(threads, ranks_on_node); };
  b.load = [](const job::JobConfig& config, const std::vector<job::RunSpec>& runs, int local_rank) {
    torch::Device device(torch::kCPU);
    if (config.model.device == job::Device::kCuda) {
      if (!torch::cuda::is_available()) core::fail("model.device = \"cuda\" but this libtorch has no CUDA device");
      device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % torch::cuda::device_count()));
    }
    // The handler owns what it answers with; the runs and configuration outlive it (the runner holds them).
    auto engine = std::make_shared<Engine>(Engine::load(config, device));
    auto handler = std::make_shared<Worker>(*engine, runs, config);
    return distributed::Handler([engine, handler](const core::WorkItem& item) { return handler->handle(item); });
  };
  return b;
}

}  // namespace lorahub::worker
