#pragma once
// The benchmarks of lorahub-bench, one file each; each registers its subcommand (docs/benchmarks.md).
#include <CLI/CLI.hpp>

namespace lorahub::bench {

/// engine: forward and generation throughput and efficiency of random Flan-T5-shaped models; load-time RSS.
void add_engine_benchmark(CLI::App& bench, int& threads);
/// learn: LoraHub per-evaluation, batched and whole-run times on random Flan-T5-shaped models.
void add_learn_benchmark(CLI::App& bench, int& threads);
/// solver: runs/s, evaluations/s, efficiency and coordinator cost of a job through the solver.
void add_solver_benchmark(CLI::App& bench, int& threads);
/// search: the optimizers and module selections on the demo world, loss and accuracy against compute.
void add_search_benchmark(CLI::App& bench, int& threads);

}  // namespace lorahub::bench
