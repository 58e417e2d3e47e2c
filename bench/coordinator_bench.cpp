// Coordinator micro-benchmark (distributed), run under mpiexec: the coordinator's cost per message and the round trip
// with a trivial handler, and scheduling efficiency with handlers that take a fixed time.
//   mpiexec -n 3 --oversubscribe coordinator_bench [--items 4000] [--work-items 300] [--work-ms 5] [--prefetch 2]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/protocol.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/distributed/run.h"

namespace {

using namespace lorahub;

/// `total` independent fitness items of one 20-dim candidate each (the size of a COBYLA ask).
class BenchScheduler : public core::Scheduler {
 public:
  explicit BenchScheduler(std::size_t total) : total_(total) {}
  std::optional<core::WorkItem> next() override {
    if (issued_ == total_) return std::nullopt;
    core::WorkItem item;
    item.run = static_cast<std::int64_t>(issued_ % 135);
    item.seq = static_cast<std::int64_t>(issued_++);
    item.weights = {std::vector<double>(20, 0.5)};
    return item;
  }
  void complete(const core::WorkResult&) override { ++completed_; }
  bool done() const override { return completed_ == total_; }

 private:
  std::size_t total_;
  std::size_t issued_ = 0;
  std::size_t completed_ = 0;
};

core::WorkResult trivial(const core::WorkItem& item) {
  core::WorkResult r;
  r.losses.assign(item.weights.size(), 1.0);
  return r;
}

core::WorkResult sleeper(const core::WorkItem& item, double ms) {
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
  auto r = trivial(item);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

core::WorkResult spinner(const core::WorkItem& item, double ms) {
  auto start = std::chrono::steady_clock::now();
  volatile double sink = 0;
  while (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() < ms) {
    for (int i = 0; i < 1000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
  }
  return trivial(item);  // seconds left 0: dist measures the handler's wall time
}

void row(const distributed::Comm& comm, const char* name, int prefetch, const distributed::RunStats& s) {
  if (comm.rank() != 0) return;
  double items_per_s = s.wall_seconds > 0 ? static_cast<double>(s.items) / s.wall_seconds : 0;
  double rtt_us = s.items ? s.round_trip_seconds / static_cast<double>(s.items) * 1e6 : 0;
  std::printf("| %5d | %7zu | %-12s | %8d | %6zu | %7.3f | %9.0f | %11.2f | %9.1f | %10.3f |\n", comm.size(),
              s.workers.size(), name, prefetch, s.items, s.wall_seconds, items_per_s,
              s.coordinator_seconds_per_message() * 1e6, rtt_us, s.efficiency);
}

distributed::CoordinatorOptions g_options;

distributed::RunStats phase(distributed::Comm& comm, std::size_t items, const distributed::Handler& handler, int prefetch) {
  comm.barrier();
  BenchScheduler scheduler(items);
  auto options = g_options;
  options.prefetch = prefetch;
  return distributed::run(comm, comm.rank() == 0 ? &scheduler : nullptr, handler, options);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    distributed::Comm comm(&argc, &argv);
    CLI::App app("dist micro-benchmark (run under mpiexec)");
    std::size_t items = 4000;
    std::size_t work_items = 300;
    double work_ms = 5;
    int prefetch = 2;
    double min_sleep_us = 50;
    double max_sleep_us = 2000;
    app.add_option("--items", items, "items for the trivial-handler phases");
    app.add_option("--work-items", work_items, "items for the fixed-time phases");
    app.add_option("--work-ms", work_ms, "handler time of the fixed-time phases (ms)");
    app.add_option("--prefetch", prefetch, "items in flight per worker");
    app.add_option("--min-sleep-us", min_sleep_us, "idle back-off start (us)");
    app.add_option("--max-sleep-us", max_sleep_us, "idle back-off cap (us)");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return comm.rank() == 0 ? app.exit(e) : e.get_exit_code();
    }

    g_options.min_sleep_s = min_sleep_us * 1e-6;
    g_options.max_sleep_s = max_sleep_us * 1e-6;
    if (comm.rank() == 0) {
      std::printf("idle back-off %g..%g us\n", min_sleep_us, max_sleep_us);
      std::printf("| ranks | workers | handler      | prefetch |  items |  wall s |   items/s | coord us/msg | rtt us    | efficiency |\n");
      std::printf("|------:|--------:|--------------|---------:|-------:|--------:|----------:|------------:|----------:|-----------:|\n");
    }
    row(comm, "trivial", prefetch, phase(comm, items, trivial, prefetch));
    row(comm, "trivial", 1, phase(comm, items / 4, trivial, 1));
    auto sleep_name = core::cat("sleep ", work_ms, "ms");
    auto sleep = [&](const core::WorkItem& i) { return sleeper(i, work_ms); };
    row(comm, sleep_name.c_str(), prefetch, phase(comm, work_items, sleep, prefetch));
    row(comm, sleep_name.c_str(), 1, phase(comm, work_items, sleep, 1));
    auto spin_name = core::cat("spin ", work_ms, "ms");
    auto spin = [&](const core::WorkItem& i) { return spinner(i, work_ms); };
    row(comm, spin_name.c_str(), prefetch, phase(comm, work_items, spin, prefetch));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_bench: %s\n", e.what());
    return 1;
  }
}
