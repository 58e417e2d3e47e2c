#pragma once
// The `lorahub` subcommands, grouped by what they work on; main.cpp wires them into one CLI11 app.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lorahub::app {

/// Options every subcommand shares.
struct Globals {
  int threads = 0;  ///< 0: cores of this node divided among its ranks
  bool quiet = false;
  bool verbose = false;
};

/// generate, score, forward, inspect
void add_engine_commands(CLI::App& app, Globals& globals);
/// learn, run, export
void add_job_commands(CLI::App& app, Globals& globals);
/// train-lora
void add_train_commands(CLI::App& app, Globals& globals);
/// report
void add_report_commands(CLI::App& app, Globals& globals);
/// pretrain, demo-world
void add_demo_commands(CLI::App& app, Globals& globals);
/// bench engine | learn | solver (docs/benchmarks.md)
void add_bench_commands(CLI::App& app, Globals& globals);

/// Thrown on ranks other than 0 for an error that rank 0 reports, so it is printed once.
struct ReportedElsewhere : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Applies the thread count to libtorch (intra-op) and OpenBLAS, whose own pool torch does not control.
/// threads <= 0: hardware threads / ranks_on_node, at least 1. Returns the count used.
int setup_threads(int threads, int ranks_on_node = 1);

/// Splits "a,b,c" (empty items dropped).
std::vector<std::string> split_list(const std::string& text);
/// The numbers of a comma list; core::Error "<what>: '<item>' is not a number / an integer" otherwise.
std::vector<double> parse_doubles(const std::string& text, const std::string& what);
std::vector<std::int64_t> parse_ints(const std::string& text, const std::string& what);

}  // namespace lorahub::app
