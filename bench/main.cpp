// lorahub-bench: the benchmarks behind docs/benchmarks.md and docs/search.md, apart from the production binary.
// Each prints Markdown on stdout (a header naming the command, machine, load average and thread settings, then
// tables) and its progress on stderr. Every ratio is against a baseline measured in the same run; figures of the
// Python reference are quoted constants, labelled as such.
#include <exception>

#include <CLI/CLI.hpp>

#include "benchmarks.h"
#include "lorahub/core/log.h"
#include "lorahub/core/version.h"
#include "lorahub/runner/runner.h"

int main(int argc, char** argv) {
  using namespace lorahub;
  CLI::App cli{"lorahub-bench: the committed benchmarks of lorahub-hpc (docs/benchmarks.md, docs/search.md)"};
  cli.require_subcommand(1);
  int threads = 0;
  bool quiet = false;
  cli.add_option("--threads", threads, "CPU threads per process (0: the benchmark's default)");
  cli.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
  cli.set_version_flag("--version", core::software_version());
  bench::add_engine_benchmark(cli, threads);
  bench::add_learn_benchmark(cli, threads);
  bench::add_solver_benchmark(cli, threads);
  bench::add_search_benchmark(cli, threads);
  cli.parse_complete_callback([&] { core::set_log_level(quiet ? core::LogLevel::kQuiet : core::LogLevel::kInfo); });
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  } catch (const std::exception& e) {
    return runner::exit_on_error(e, "lorahub-bench", /*first_line_only=*/false);  // logs' tails
  }
  return 0;
}
