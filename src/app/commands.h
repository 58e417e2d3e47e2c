#pragma once
// The `lorahub` subcommands, grouped by what they work on; main.cpp wires them into one CLI11 app.
#include <cstdint>
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

/// Splits "a,b,c" (empty items dropped).
std::vector<std::string> split_list(const std::string& text);
/// The numbers of a comma list; core::Error "<what>: '<item>' is not a number / an integer" otherwise.
std::vector<double> parse_doubles(const std::string& text, const std::string& what);
std::vector<std::int64_t> parse_ints(const std::string& text, const std::string& what);

}  // namespace lorahub::app
