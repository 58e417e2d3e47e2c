#pragma once
// The one path every job takes (`learn`, `run`, `bench solver`): expand, load, schedule, record.
#include <cstdint>
#include <vector>

#include "commands.h"
#include "lorahub/dist/run.h"
#include "lorahub/hub/job.h"
#include "lorahub/io/result_store.h"

namespace lorahub::app {

/// What a job did. Counts, records, stats and evaluations are filled on rank 0.
struct JobOutcome {
  std::int64_t runs = 0, failed = 0, skipped = 0;
  std::vector<io::RunRecord> records;  ///< learn mode only
  dist::RunStats stats;                ///< the scheduling loop (excludes loading)
  std::int64_t evaluations = 0;        ///< fitness evaluations told to the optimizers
  double load_seconds = 0;             ///< inputs reaching every worker: staging/broadcast plus loading
};

/// Runs `config` on every rank of MPI_COMM_WORLD (collective; one process without MPI). Configuration
/// errors are found on rank 0 before any work and thrown there once (other ranks throw ReportedElsewhere).
JobOutcome run_job(hub::JobConfig config, Globals& globals, bool learn_mode);

}  // namespace lorahub::app
