#pragma once
// Runs a core::Scheduler's work through a handler: inline on one rank, or manager–worker over MPI
// (rank 0 coordinates, ranks 1.. run the handler). Results reach the scheduler in any order.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "lorahub/core/protocol.h"

namespace lorahub::distributed {

class Comm;

/// Computes one item's result. May throw: the exception becomes a failed result (ok=false, error
/// "run R (item S): what"), never crossing a rank. run/seq/kind of the result are set from the item;
/// when seconds is left 0 it is set to the handler's wall time.
using Handler = std::function<core::WorkResult(const core::WorkItem&)>;
/// Called on rank 0 after each Scheduler::complete(), with the result and the count completed so far.
using ResultCallback = std::function<void(const core::WorkResult&, std::size_t completed)>;

struct CoordinatorOptions {
  int prefetch = 2;                ///< items in flight per worker (>= 1), so a worker never idles a round trip
  double min_sleep_s = 50e-6;      ///< idle polls of coordinator and workers sleep a quarter of the
  double max_sleep_s = 2e-3;       ///< time idle so far, within [min_sleep_s, max_sleep_s]
  ResultCallback on_result;        ///< optional progress hook
};

struct WorkerStats {
  int rank = 0;
  std::size_t items = 0;
  std::size_t failed = 0;
  double busy_seconds = 0;  ///< sum of WorkResult::seconds
};

struct RunStats {
  double wall_seconds = 0;
  std::vector<WorkerStats> workers;  ///< one per rank that ran the handler (rank 0 alone when inline)
  std::size_t items = 0;
  std::size_t failed = 0;
  std::size_t messages_sent = 0;      ///< coordinator: work + stop messages
  std::size_t messages_received = 0;  ///< coordinator: results + stop acknowledgements
  std::size_t bytes_sent = 0;
  std::size_t bytes_received = 0;
  double scheduler_seconds = 0;       ///< coordinator time inside next()/complete()/done()
  double mpi_seconds = 0;             ///< coordinator time inside MPI calls that moved a message
  double idle_probe_seconds = 0;      ///< coordinator time in probes that found no message (waiting)
  double round_trip_seconds = 0;      ///< sum over items of send -> result received (includes queueing)
  double efficiency = 0;              ///< sum busy / (wall * workers)

  /// (scheduler + MPI seconds) / messages, the coordinator's cost of one message; 0 without messages.
  double coordinator_seconds_per_message() const;
  /// One line for the log: items, failures, wall, efficiency, per-message cost.
  std::string summary() const;
};

/// Runs every item inline until scheduler.done(). Throws core::Error if next() has nothing while the
/// scheduler is not done (nothing can be pending on one rank: a scheduler bug). Exceptions from the
/// scheduler propagate; handler exceptions become failed results.
RunStats run_serial(core::Scheduler& scheduler, const Handler& handler, const ResultCallback& on_result = {});

/// Rank 0 of >= 2 ranks: hands items to ranks 1..size-1 (up to options.prefetch each, least loaded
/// first) until scheduler.done(). Every exit, normal or by exception (from the scheduler, a corrupt
/// message, MPI), first stops all workers and waits for their acknowledgement, so no rank hangs.
RunStats run_coordinator(Comm& comm, core::Scheduler& scheduler, const CoordinatorOptions& options = {});

/// Ranks 1..size-1: runs received items in arrival order until the coordinator says stop. Throws
/// core::Error only when MPI itself fails (then the caller should comm.abort()).
void run_worker(Comm& comm, const Handler& handler, const CoordinatorOptions& options = {});

/// The one call for the app: run_serial on a single rank, else run_coordinator on rank 0 (scheduler
/// must be non-null there; other ranks may pass null) and run_worker elsewhere. Workers get empty
/// stats; a worker whose MPI fails aborts the job (MPI_Abort) rather than leave rank 0 waiting.
RunStats run(Comm& comm, core::Scheduler* scheduler, const Handler& handler, const CoordinatorOptions& options = {});

}  // namespace lorahub::distributed
