// report: the comparison tables and chart of a results file (works while a job is still writing it).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/io/merge.h"
#include "lorahub/report/render.h"
#include "lorahub/report/summary.h"

namespace lorahub::app {
namespace {

// Written whole or not at all: a half-written report would look like a finished one.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) core::fail("cannot open '", tmp, "' for writing");
    out << text;
    out.close();
    if (!out) core::fail("cannot write '", tmp, "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    core::fail("cannot rename '", tmp, "' to '", path, "'");
  }
}

}  // namespace

void add_report_commands(CLI::App& app, Globals& /*globals*/) {
  auto* cmd = app.add_subcommand(
      "report",
      "Compare methods on a results file: per-task accuracy (zero-shot, ICL, LoraHub mean/best over seeds, uniform,\n"
      "best single module, LoRA FT), averages over tasks, input tokens per example, learning time; missing and\n"
      "failed runs are marked. Optionally an SVG bar chart.");
  struct Args {
    std::string results, format = "md", plot, out;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("results", a->results, "Results file (HDF5) written by `lorahub run` or `lorahub learn`")->required();
  cmd->add_option("--format", a->format, "Table format: md (Markdown), csv or json")
      ->check(CLI::IsMember({"md", "markdown", "csv", "json"}));
  cmd->add_option("--plot", a->plot, "Also write a grouped bar chart to this SVG file");
  cmd->add_option("--out", a->out, "Write the table to this file instead of standard output");
  cmd->callback([a] {
    const auto format = report::parse_format(a->format);
    const auto summary = report::summarize_file(a->results);
    const std::string text = report::render(summary, format);
    if (a->out.empty() || a->out == "-") {
      std::cout << text << std::flush;
      if (!std::cout) core::fail("cannot write the report to standard output");
    } else {
      write_file(a->out, text);
      core::log_info(core::cat("wrote ", a->out));
    }
    if (!a->plot.empty()) {
      write_file(a->plot, report::render_svg(summary));
      core::log_info(core::cat("wrote ", a->plot));
    }
    if (!summary.plan_problem.empty()) core::log_warn(summary.plan_problem);
    // Damaged groups do not stop the report (it shows every run it can read), but they are said here too.
    std::size_t damaged = summary.damaged_groups.size();
    for (const auto& issue : summary.issues) damaged += issue.kind == "damaged";
    if (damaged) {
      core::log_warn(core::cat(a->results, ": ", damaged, " damaged run group(s) cannot be read (listed in the report); ",
                               io::kDamagedRunsAdvice));
    }
  });
}

}  // namespace lorahub::app
