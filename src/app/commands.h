#pragma once
// The `lorahub` subcommands, grouped by what they work on; main.cpp wires them into one CLI11 app.
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lorahub/core/lists.h"

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

using core::parse_doubles;
using core::parse_ints;
using core::split_list;

}  // namespace lorahub::app
