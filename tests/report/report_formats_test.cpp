// report: every output format of the summary (Markdown, CSV, JSON, SVG) read back by small parsers, text
// sanitising, and files that are not (complete) results files.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/io/result_store.h"
#include "lorahub/report/render.h"
#include "lorahub/report/summary.h"
#include "report/text.h"
#include "support/errors.h"
#include "support/temp_dir.h"

#include "report/report_support.h"

namespace lorahub::report {
namespace {
using namespace report_test;
TEST_F(ReportTest, MarkdownTableShowsEveryCellAndConsistentAverages) {
  const std::string md = render_markdown(summary_);
  auto table = first_md_table(md);
  // header + 5 tasks + average + average over the common tasks
  ASSERT_EQ(table.size(), 1u + 5u + 2u) << md;
  const std::vector<std::string> header = {"Task", "Zero-shot", "ICL", "LoraHub avg", "LoraHub best", "Uniform",
                                           "Best single", "LoRA FT"};
  EXPECT_EQ(table[0], header);
  // The weird task name survives, escaped: '|' does not split the row.
  EXPECT_EQ(table[3][0], "ünï\\|cödé, 任务 \\<\\&\\> \"q\"");
  EXPECT_EQ(table[5][0], kExtraTask);
  for (std::size_t col = 1; col < header.size(); ++col) {
    const std::string method = kColumnOrder[col <= 3 ? col - 1 : col - 2];
    const bool best = header[col] == "LoraHub best";
    SCOPED_TRACE(header[col]);
    double sum = 0;
    int n = 0;
    for (std::size_t t = 0; t < 5; ++t) {
      const double shown = md_number(table[1 + t][col]);
      const double want = best ? expected_.best(t, method) : expected_.mean(t, method);
      if (std::isnan(want)) {
        EXPECT_EQ(table[1 + t][col], "–");
        continue;
      }
      EXPECT_NEAR(shown, 100 * want, 0.05 + 1e-9);
      sum += shown;
      ++n;
    }
    // The average row agrees with the rows shown above it (each rounded to 0.1).
    const double avg = md_number(table[6][col]);
    EXPECT_NEAR(avg, sum / n, 0.1 + 1e-9);
    EXPECT_NEAR(avg, 100 * expected_.average(method, best, {0, 1, 2, 3, 4}), 0.05 + 1e-9);
    EXPECT_NE(table[6][col].find("‡"), std::string::npos);  // no method has all five tasks
    EXPECT_NEAR(md_number(table[7][col]), 100 * expected_.average(method, best, {0, 1}), 0.05 + 1e-9);
  }
  // Partial cells are marked; complete ones are not.
  EXPECT_NE(table[2][3].find("†"), std::string::npos);   // date_understanding LoraHub avg
  EXPECT_EQ(table[1][3].find("†"), std::string::npos);   // boolean_expressions LoraHub avg
  EXPECT_EQ(table[7][0], "Average over the 2 tasks every method has");
}

TEST_F(ReportTest, MarkdownNotesListMissingAndFailedRunsAndCosts) {
  const std::string md = render_markdown(summary_);
  EXPECT_NE(md.find("**Missing runs** (16)"), std::string::npos) << md;
  EXPECT_NE(md.find("  - navigate / LoraHub: seeds 1, 2, 3\n"), std::string::npos) << md;
  EXPECT_EQ(md.find("date\\_understanding"), std::string::npos);  // underscores inside words stay plain
  EXPECT_NE(md.find("  - date_understanding / LoraHub: seed 2 — " + kOom), std::string::npos) << md;
  EXPECT_NE(md.find("**Incomplete runs"), std::string::npos);
  EXPECT_NE(md.find("**Complete runs without an accuracy** (1)"), std::string::npos);
  EXPECT_NE(md.find("LoRA FT 2 of 5; the row below it compares"), std::string::npos);
  EXPECT_NE(md.find("nothing is expected of them): word_sorting.\n"), std::string::npos);
  std::size_t with_accuracy = 0;
  for (const auto& [key, seeds] : expected_.seeds) with_accuracy += seeds.size();
  EXPECT_NE(md.find(", " + std::to_string(with_accuracy) + " runs with an accuracy of 48 expected."), std::string::npos)
      << md;
  // Cost table: ICL's tokens per example and LoraHub's runs.
  const auto& icl = summary_.averages[method_col("icl")];
  EXPECT_NE(md.find("| ICL | " + detail::fixed(icl.tokens_per_example, 1) + " | "), std::string::npos) << md;
  EXPECT_NE(md.find(" | 8 / 12 |"), std::string::npos) << md;
}

TEST_F(ReportTest, MarkdownListsLoraHubPerSeedAgainstZeroShot) {
  const std::string md = render_markdown(summary_);
  ASSERT_NE(md.find("## LoraHub per seed"), std::string::npos) << md;
  const auto hub = method_col("lorahub"), zero = method_col("zero-shot");
  std::size_t beats_total = 0, runs_total = 0;
  for (std::size_t t = 0; t < summary_.tasks.size(); ++t) {
    const Cell& c = summary_.cell(t, hub);
    const Cell& z = summary_.cell(t, zero);
    if (!c.has_value() || !z.has_value()) continue;
    std::size_t beats = 0;
    for (double a : c.accuracies) beats += a > z.mean ? 1 : 0;
    beats_total += beats;
    runs_total += c.accuracies.size();
    // The row shows the first seed's accuracy and ends with the count of seeds above zero-shot.
    const std::string row_start = "| " + detail::md_escape(summary_.tasks[t]) + " | ";
    auto at = md.find(row_start, md.find("## LoraHub per seed"));
    ASSERT_NE(at, std::string::npos) << summary_.tasks[t];
    const std::string row = md.substr(at, md.find('\n', at) - at);
    EXPECT_NE(row.find(" " + std::to_string(beats) + " of " + std::to_string(c.accuracies.size()) + " |"),
              std::string::npos)
        << row;
  }
  ASSERT_GT(runs_total, 0u);
  EXPECT_NE(md.find("LoraHub beats zero-shot in " + std::to_string(beats_total) + " of " + std::to_string(runs_total) +
                    " runs."),
            std::string::npos)
      << md;
}

// ---------------------------------------------------------------------------------------------
// CSV and JSON.

TEST_F(ReportTest, CsvParsesAndRoundTripsTheNumbers) {
  const std::string csv = render_csv(summary_);
  auto rows = parse_csv(csv);
  ASSERT_GE(rows.size(), 1u);
  const auto& header = rows[0];
  ASSERT_EQ(header.size(), 19u);
  auto col = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  // task rows, average rows, average_common rows
  ASSERT_EQ(rows.size(), 1u + 5u * 6u + 6u + 6u);
  std::size_t weird_rows = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << "row " << i;
    if (rows[i][0] != "task") continue;
    const std::size_t t = task_row(rows[i][col("task")]);
    ASSERT_LT(t, 5u) << rows[i][col("task")];
    weird_rows += rows[i][col("task")] == kWeird;
    const std::string& m = rows[i][col("method")];
    const double want = expected_.mean(t, m);
    if (std::isnan(want)) {
      EXPECT_EQ(rows[i][col("accuracy_mean")], "");
    } else {
      EXPECT_EQ(std::stod(rows[i][col("accuracy_mean")]), summary_.cell(t, method_col(m)).mean);  // exact round trip
      EXPECT_NEAR(std::stod(rows[i][col("accuracy_mean")]), want, 1e-12);
    }
  }
  EXPECT_EQ(weird_rows, 6u);
  std::size_t averages = 0;
  for (const auto& r : rows) {
    if (r[0] != "average") continue;
    ++averages;
    EXPECT_EQ(std::stod(r[col("accuracy_mean")]), summary_.averages[method_col(r[col("method")])].mean);
    EXPECT_EQ(r[col("task")], "");
  }
  EXPECT_EQ(averages, 6u);
  EXPECT_NE(csv.find("\"ünï|cödé, 任务 <&> \"\"q\"\"\""), std::string::npos);
}

TEST_F(ReportTest, JsonIsValidWithNullsForMissingValues) {
  const auto j = nlohmann::json::parse(render_json(summary_));
  EXPECT_EQ(j["format"], "lorahub-report");
  EXPECT_EQ(j["tasks"].size(), 5u);
  EXPECT_EQ(j["tasks"][2], kWeird);
  EXPECT_EQ(j["methods"][2]["label"], "LoraHub");
  ASSERT_EQ(j["cells"].size(), 30u);
  for (const auto& c : j["cells"]) {
    const std::size_t t = task_row(c["task"].get<std::string>());
    const std::string m = c["method"];
    const double want = expected_.mean(t, m);
    if (std::isnan(want)) {
      EXPECT_TRUE(c["mean"].is_null());
      EXPECT_TRUE(c["accuracies"].empty());
    } else {
      EXPECT_NEAR(c["mean"].get<double>(), want, 1e-12);
      EXPECT_EQ(c["accuracies"].size(), expected_.seeds_of(t, m).size());
    }
  }
  EXPECT_EQ(j["issues"].size(), summary_.issues.size());
  EXPECT_EQ(j["common_tasks"].size(), 2u);
  EXPECT_EQ(j["file_attrs"]["cluster"], "test");
  EXPECT_EQ(j["cells"][4]["best_module"], "module_b");  // first task, lora-single
}

TEST(ReportText, InvalidUtf8AndControlCharactersCannotBreakTheOutputs) {
  EXPECT_EQ(detail::clean_utf8("a\xff" "b\x01" "c\xe4\xbd"), "a\xEF\xBF\xBD" "bc\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(detail::clean_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(detail::clean_utf8("任务 ✓"), "任务 ✓");
  EXPECT_EQ(detail::xml_escape("<a & 'b'>\"\x02"), "&lt;a &amp; &apos;b&apos;&gt;&quot;");
  EXPECT_EQ(detail::csv_field("plain"), "plain");
  EXPECT_EQ(detail::csv_field("a,\"b\"\nc"), "\"a,\"\"b\"\"\nc\"");
  EXPECT_EQ(detail::md_escape("_x_ a_b |*"), "\\_x\\_ a_b \\|\\*");
  EXPECT_EQ(detail::fixed(-0.01, 1), "0.0");
  EXPECT_EQ(detail::shortest(0.1), "0.1");
  EXPECT_EQ(detail::shortest(kNaN), "");
  EXPECT_EQ(detail::truncate("abcdef", 4), "abc…");
  EXPECT_GT(detail::text_width("任务", 10), detail::text_width("ab", 10));

  RunFacts bad;
  bad.task = "t\xff<x>";
  bad.method = "lorahub";
  bad.status = "complete";
  bad.accuracy = 0.5;
  Summary s = summarize({bad}, std::nullopt, "mem");
  EXPECT_NO_THROW(nlohmann::json::parse(render_json(s)));
  EXPECT_NE(render_svg(s).find("t\xEF\xBF\xBD&lt;x&gt;"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// SVG (well-formedness is checked by xml.etree in report.python_reader).

TEST_F(ReportTest, SvgIsAStandaloneDocumentWithOneBarPerValue) {
  const std::string svg = render_svg(summary_);
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"", 0),
            0u);
  EXPECT_NE(svg.find(" viewBox=\"0 0 "), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  std::size_t values = 0;
  for (const auto& c : summary_.cells) values += c.has_value();
  for (const auto& a : summary_.averages) values += a.tasks_with_value > 0;
  // One bar (rect with a hover title) per value: cells and averages.
  EXPECT_EQ(count(svg, "\"><title>"), values) << svg.substr(0, 400);
  EXPECT_EQ(count(svg, "–<title>"), summary_.cells.size() + summary_.averages.size() - values);
  EXPECT_EQ(count(svg, "<rect x=\"") - 1 - kColumnOrder.size(), values);  // minus background and legend swatches
  EXPECT_NE(svg.find("ünï|cödé, 任务 &lt;&amp;&gt; &quot;q&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<&>"), std::string::npos);
  EXPECT_NE(svg.find(">Average<"), std::string::npos);
  // Range lines for cells of several seeds (boolean_expressions lorahub, uniform, lora-ft, ...).
  EXPECT_GT(count(svg, "<path d=\"M"), 5u);
}

// ---------------------------------------------------------------------------------------------
// Files that are not results, and results files with nothing in them.

TEST(ReportFiles, NonResultsFilesGiveAClearError) {
  TempDir dir;
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "hello\n";
  std::string e = error_text([&] { summarize_file(text); });
  EXPECT_EQ(e, text + " is not an HDF5 file, so not a lorahub-hpc results file");
  e = error_text([&] { summarize_file(dir.file("")); });
  EXPECT_NE(e.find(" is not a file, so not a lorahub-hpc results file"), std::string::npos) << e;
  const std::string empty = dir.file("empty.h5");
  std::ofstream(empty).close();
  EXPECT_EQ(error_text([&] { summarize_file(empty); }), empty + " is not an HDF5 file, so not a lorahub-hpc results file");

  const std::string other = dir.file("other.h5");
  hid_t f = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Fclose(f);
  e = error_text([&] { summarize_file(other); });
  EXPECT_NE(e.find(other + " is not a lorahub-hpc results file"), std::string::npos) << e;

  e = error_text([&] { summarize_file(dir.file("absent.h5")); });
  EXPECT_NE(e.find("absent.h5' does not exist"), std::string::npos) << e;
}

TEST(ReportFiles, AnEmptyResultsFileStillRendersEveryFormat) {
  TempDir dir;
  const std::string path = dir.file("empty.h5");
  { ResultStore store(path, ResultStore::Mode::kCreate); }
  Summary s = summarize_file(path);
  EXPECT_TRUE(s.tasks.empty());
  EXPECT_FALSE(s.has_plan);
  EXPECT_NE(s.plan_problem.find("no job_config"), std::string::npos);
  EXPECT_NE(render_markdown(s).find("No runs are stored yet."), std::string::npos);
  EXPECT_EQ(parse_csv(render_csv(s)).size(), 1u);
  EXPECT_TRUE(nlohmann::json::parse(render_json(s))["cells"].empty());
  EXPECT_NE(render_svg(s).find("No runs are stored yet."), std::string::npos);
}

TEST(ReportFiles, AJobWithNoRunsYetListsEveryRunAsMissing) {
  TempDir dir;
  const std::string path = dir.file("fresh.h5");
  {
    ResultStore store(path, ResultStore::Mode::kCreate);
    store.set_job_attrs({{"job_config", job_config_json()}});
  }
  Summary s = summarize_file(path);
  EXPECT_EQ(s.tasks, kTasks);
  EXPECT_EQ(s.issues.size(), 4u * 3u + 4u * 3u * 3u);
  const std::string md = render_markdown(s);
  EXPECT_NE(md.find("0 runs with an accuracy of 48 expected"), std::string::npos) << md;
  auto table = first_md_table(md);
  ASSERT_EQ(table.size(), 1u + 4u + 1u);  // no "common" row: no task has every method
  for (std::size_t c = 1; c < table.back().size(); ++c) EXPECT_EQ(table.back()[c], "–");
}

TEST(ReportFiles, AnUnreadableJobConfigIsNotedAndRunsAreStillReported) {
  TempDir dir;
  const std::string path = dir.file("odd.h5");
  {
    ResultStore store(path, ResultStore::Mode::kCreate);
    store.set_job_attrs({{"job_config", "{\"data\": 3}"}});
    store.write_run(make_run(0, "boolean_expressions", "lorahub", 1));
  }
  Summary s = summarize_file(path);
  EXPECT_FALSE(s.has_plan);
  EXPECT_NE(s.plan_problem.find("job_config has no object 'data'"), std::string::npos) << s.plan_problem;
  ASSERT_EQ(s.tasks.size(), 1u);
  EXPECT_DOUBLE_EQ(s.cell(0, 0).mean, accuracy_of(0, "lorahub", 1));
  EXPECT_NE(render_markdown(s).find("job_config has no object 'data'"), std::string::npos);
}

// Writes the fixture and its reports for the Python reader and the CLI test (ctest runs it with
// LORAHUB_REPORT_FIXTURE set; otherwise it is skipped).
TEST(ReportFixture, Write) {
  const char* dir = std::getenv("LORAHUB_REPORT_FIXTURE");
  if (!dir) GTEST_SKIP() << "LORAHUB_REPORT_FIXTURE is not set";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string results = (fs::path(dir) / "results.h5").string();
  write_fixture(results);
  Summary s = summarize_file(results);
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream out(fs::path(dir) / name, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good()) << name;
  };
  write("report.md", render_markdown(s));
  write("report.csv", render_csv(s));
  write("report.json", render_json(s));
  write("chart.svg", render_svg(s));
  write("not_results.txt", "not an HDF5 file\n");
  { ResultStore empty((fs::path(dir) / "empty.h5").string(), ResultStore::Mode::kCreate); }
  write("empty.svg", render_svg(summarize_file((fs::path(dir) / "empty.h5").string())));
}

}  // namespace
}  // namespace lorahub::report
