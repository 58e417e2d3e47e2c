#pragma once
// A job from its configuration to its results file, on every rank, in explicit phases:
//   plan     rank 0 checks the configuration, lists the library, expands the runs and opens the results file;
//            every rank then expands the same runs (the library's names are broadcast, not listed again);
//   stage    with several ranks, rank 0 reads model, tokenizer and library once and broadcasts them to a
//            node-local folder (or every rank reads the shared filesystem: schedule.broadcast = false);
//   load     every worker rank loads its engine (the WorkerBackend: the torch side, given by the worker module);
//   schedule the job driver hands out fitness, evaluation and fine-tuning items (distributed::run);
//   record   each finished run is written to the results file on a thread of its own, journaled.
// Every collective step agrees on errors first, so a problem seen on one rank stops every rank, reported once.
// Torch-free: the compute side comes in through WorkerBackend.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lorahub/distributed/run.h"
#include "lorahub/io/result_store.h"
#include "lorahub/job/config.h"
#include "lorahub/job/plan.h"

namespace lorahub::runner {

/// What a rank needs from the compute side.
struct WorkerBackend {
  /// Sizes this process's compute threads (torch and BLAS pools): `requested` (<= 0: the rank's share of the
  /// node) for `ranks_on_node` ranks. Returns the count used.
  std::function<int(int requested, int ranks_on_node)> setup_threads;
  /// Loads what `config` names (model, tokenizer, library) and returns the handler of this rank's work items.
  /// Called on worker ranks (and on the single rank of a serial job).
  std::function<distributed::Handler(const job::JobConfig& config, const std::vector<job::RunSpec>& runs,
                                     int local_rank)>
      load;
};

struct RunnerOptions {
  int threads = 0;            ///< per process; 0: the cores of a node divided among its ranks
  bool show_search = false;   ///< show the search of a single run (evaluation i/budget, best loss): `learn`
  bool keep_records = false;  ///< return the records written (rank 0): `learn`
};

/// What a job did. Counts, records, stats and evaluations are filled on rank 0.
struct JobOutcome {
  std::int64_t runs = 0, failed = 0, skipped = 0;
  std::vector<io::RunRecord> records;  ///< with RunnerOptions::keep_records
  distributed::RunStats stats;         ///< the scheduling loop (excludes loading)
  std::int64_t evaluations = 0;        ///< fitness evaluations told to the optimizers
  double load_seconds = 0;             ///< inputs reaching every worker: staging/broadcast plus loading
  int threads = 0;                     ///< compute threads per process
};

/// Runs `config` on every rank of MPI_COMM_WORLD (collective; one process without MPI). Configuration errors are
/// found on rank 0 before any work and thrown there once (core::Error); other ranks throw ReportedElsewhere.
JobOutcome run_job(job::JobConfig config, const RunnerOptions& options, const WorkerBackend& backend);

/// Thrown on ranks other than 0 for an error that rank 0 reports, so that it is printed once.
struct ReportedElsewhere : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What a program's main() returns for the exception that ends it: 1, after "<program>: error: <message>" on
/// stderr (nothing for ReportedElsewhere). With `first_line_only`, the message's first line: libtorch appends a
/// C++ backtrace to its own.
int exit_on_error(const std::exception& e, const char* program, bool first_line_only = true);

}  // namespace lorahub::runner
