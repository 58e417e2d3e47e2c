// lorahub: LoraHub (dynamic LoRA composition) for Flan-T5, from one example to thousands of runs on MPI.
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "lorahub/core/log.h"
#include "lorahub/core/version.h"
#include "lorahub/runner/runner.h"

int main(int argc, char** argv) {
  using namespace lorahub;
  CLI::App cli{
      "lorahub: compose LoRA modules for unseen tasks (LoraHub, arXiv 2307.13269) on Flan-T5.\n"
      "For each task: take K few-shot examples, choose N modules from a LoRA library, search coefficients w\n"
      "(w in [-1.5, 1.5], loss = CE + 0.05*mean|w|, gradient-free), merge the composition and evaluate."};
  cli.require_subcommand(1);
  app::Globals globals;
  cli.add_option("--threads", globals.threads, "CPU threads per process (0: cores / ranks on this node)");
  cli.add_flag("-q,--quiet", globals.quiet, "Only warnings and errors");
  cli.add_flag("-v,--verbose", globals.verbose, "Debug output");
  cli.set_version_flag("--version", core::software_version());
  app::add_engine_commands(cli, globals);
  app::add_job_commands(cli, globals);
  app::add_train_commands(cli, globals);
  app::add_report_commands(cli, globals);
  app::add_demo_commands(cli, globals);
  cli.parse_complete_callback([&] {
    core::set_log_level(globals.quiet ? core::LogLevel::kQuiet
                                      : (globals.verbose ? core::LogLevel::kDebug : core::LogLevel::kInfo));
  });
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  } catch (const std::exception& e) {
    return runner::exit_on_error(e, "lorahub");
  }
  return 0;
}
