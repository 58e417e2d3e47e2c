// Damaged results files: a results file written by ResultStore is mutated in 1,200 seeded ways (single
// bit flips, overwritten byte runs, truncations, zeroed blocks) and every reading path of the commands
// runs on each mutant in this process: the ResultStore listing and reading (`inspect`), the report
// (`report`, Markdown/CSV/JSON/SVG), `merge` and `export`'s reading. None may crash or hang (either ends
// this binary, which is the point); each must succeed or throw core::Error naming the file. And since
// every byte of the file is checksummed (metadata by HDF5's 1.10 format, small data inside the
// checksummed object headers, big data in Fletcher-32 chunks), a run that reads back must equal what was
// written: damage is reported, never returned as data.
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "io/run_fixtures.h"
#include "lorahub/core/error.h"
#include "lorahub/core/random.h"
#include "lorahub/io/merge.h"
#include "lorahub/io/peft_export.h"
#include "lorahub/io/result_store.h"
#include "lorahub/report/render.h"
#include "lorahub/report/summary.h"
#include "support/temp_dir.h"

namespace lorahub::io {
namespace {

namespace fs = std::filesystem;
using namespace test;  // the run fixtures and Mode (io/run_fixtures.h)

std::string key_text(const std::string& task, const std::string& method, std::int64_t seed) {
  return task + "/" + method + "/" + std::to_string(seed);
}

struct Tally {
  int cases = 0;
  int read_fine = 0;      // every path succeeded and returned the original data
  int rejected = 0;       // the file as a whole gave a clear error
  int runs_damaged = 0;   // cases where the file opened but some runs were reported damaged
  int runs_read = 0;      // runs that read back (all equal to the original)
  std::map<std::string, int> kinds;  // mutation kind -> cases
};

class Mutants : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = dir_.file("base.h5");
    ResultStore store(base_, Mode::kCreate);
    store.set_job_attrs({{"job_config",
                          R"({"data":{"tasks":[{"name":"boolean_expressions"},{"name":"navigate"}]},)"
                          R"("run":{"methods":["lorahub","zero-shot"],"seeds":[1,2],"shots_seed":42}})"}});
    // 64 KiB factors (chunked datasets); 24 composed factors (a group of more than 8 links, which HDF5
    // would keep in a fractal heap unless told otherwise).
    runs_ = {make_run("boolean_expressions", "lorahub", 1, RunShape{5, 2, 16, 1024, 7}),
             make_run("boolean_expressions", "lorahub", 2, RunShape{5, 24, 4, 32, 7}),
             make_run("boolean_expressions", "zero-shot", 0, {0, 0, 0, 0, 9}),
             make_run("navigate", "lorahub", 1), make_run("navigate", "zero-shot", 0, {0, 0, 0, 0, 5})};
    store.write_run(make_failed_run("navigate", "lorahub", 2));
    for (const RunRecord& r : runs_) store.write_run(r);
    runs_.push_back(make_failed_run("navigate", "lorahub", 2));
    for (const RunRecord& r : runs_) expected_[key_text(r.task, r.method, r.seed)] = &r;
    bytes_ = read_bytes(base_);
  }

  // Runs every reading path on `path`; returns "" or what went wrong (a failure of the test).
  std::string read_everything(const std::string& path, Tally& tally) {
    auto names_file = [&](const core::Error& e) { return std::string(e.what()).find(path) != std::string::npos; };
    std::string problem;
    bool whole_file_error = false;
    int damaged = 0;
    auto step = [&](const char* what, auto&& fn) {
      try {
        fn();
      } catch (const core::Error& e) {
        whole_file_error = true;
        if (!names_file(e)) problem += std::string(what) + ": error does not name the file: " + e.what() + "\n";
      } catch (const std::exception& e) {
        problem += std::string(what) + ": not a core::Error: " + e.what() + "\n";
      }
    };
    // inspect: the listing, then each run on its own.
    step("inspect", [&] {
      ResultStore store(path, Mode::kReadOnly);
      store.job_attrs();
      for (const RunKey& k : store.list_runs()) {
        if (k.status == "damaged") {
          ++damaged;
          if (k.problem.empty()) problem += "damaged group " + k.group + " without a reason\n";
          continue;
        }
        auto it = expected_.find(key_text(k.task, k.method, k.seed));
        if (it == expected_.end()) {
          problem += "listed a run that was never written: " + k.group + "\n";
          continue;
        }
        if (k.status != it->second->status) problem += "status of " + k.group + " is " + k.status + "\n";
        try {
          std::string diff = run_difference(store.read_run(k.task, k.method, k.seed), *it->second);
          if (!diff.empty()) problem += "run " + k.group + " read back different data: " + diff + "\n";
          ++tally.runs_read;
        } catch (const core::Error& e) {
          ++damaged;
          if (!names_file(e)) problem += "read_run error does not name the file: " + std::string(e.what()) + "\n";
        }
      }
    });
    // report: the summary and every rendering of it.
    step("report", [&] {
      report::Summary s = report::summarize_file(path);
      for (auto format : {report::Format::kMarkdown, report::Format::kCsv, report::Format::kJson}) report::render(s, format);
      report::render_svg(s);
    });
    // merge into a new file, and export's reading of every complete LoraHub run.
    const std::string merged = dir_.file("merged.h5");
    std::remove(merged.c_str());
    step("merge", [&] { merge_results(merged, {path}); });
    step("export", [&] {
      ResultStore store(path, Mode::kReadOnly);
      for (const RunKey& k : store.list_runs()) {
        if (k.status != "complete" || k.method != "lorahub") continue;
        try {
          export_peft_adapter(store.read_run(k.task, k.method, k.seed), dir_.file("export"));
        } catch (const core::Error& e) {
          if (!names_file(e)) problem += "export error does not name the file: " + std::string(e.what()) + "\n";
        }
      }
    });
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) problem += "HDF5 objects left open\n";
    if (whole_file_error) {
      ++tally.rejected;
    } else if (damaged > 0) {
      ++tally.runs_damaged;
    } else {
      ++tally.read_fine;
    }
    return problem;
  }

  lorahub::test::TempDir dir_{/*in_memory=*/true};
  std::string base_;
  std::string bytes_;
  std::vector<RunRecord> runs_;
  std::map<std::string, const RunRecord*> expected_;
};

TEST_F(Mutants, UnharmedFileReadsBackWhole) {
  Tally tally;
  EXPECT_EQ(read_everything(base_, tally), "");
  EXPECT_EQ(tally.read_fine, 1);
  EXPECT_EQ(tally.runs_read, static_cast<int>(runs_.size()));
}

TEST_F(Mutants, DamagedFilesGiveClearErrorsNeverCrashesOrWrongData) {
  // A hang inside HDF5 (the old format's global heap loops on zeroed sizes) must fail the test rather
  // than stall it: SIGALRM ends the binary after ten times what the whole test takes here (~30 s).
  ::alarm(300);
  constexpr int kCases = 1200;
  core::Rng rng(20250601);
  Tally tally;
  const std::string path = dir_.file("mutant.h5");
  const char* kKinds[] = {"bit flip", "overwritten bytes", "truncation", "zeroed block"};
  int failures = 0;
  for (int i = 0; i < kCases; ++i) {
    std::string m = bytes_;
    const int kind = i % 4;
    const std::size_t off = static_cast<std::size_t>(rng.below(m.size()));
    std::string what;
    switch (kind) {
      case 0: {
        int bit = static_cast<int>(rng.below(8));
        m[off] = static_cast<char>(m[off] ^ (1 << bit));
        what = core::cat("bit ", bit, " of byte ", off);
        break;
      }
      case 1: {
        std::size_t n = 1 + static_cast<std::size_t>(rng.below(64));
        for (std::size_t j = off; j < std::min(m.size(), off + n); ++j) m[j] = static_cast<char>(rng.below(256));
        what = core::cat(n, " random bytes at ", off);
        break;
      }
      case 2:
        m.resize(off);
        what = core::cat("truncated to ", off, " bytes");
        break;
      default: {
        std::size_t n = std::size_t{1} << (4 + rng.below(9));  // 16 B .. 4 KiB
        for (std::size_t j = off; j < std::min(m.size(), off + n); ++j) m[j] = '\0';
        what = core::cat(n, " zero bytes at ", off);
        break;
      }
    }
    if (m == bytes_) continue;  // a random overwrite that changed nothing
    write_bytes(path, m);
    ++tally.cases;
    ++tally.kinds[kKinds[kind]];
    std::string problem = read_everything(path, tally);
    if (!problem.empty() && ++failures <= 20) ADD_FAILURE() << "case " << i << " (" << what << "):\n" << problem;
  }
  std::cout << "[mutation] " << tally.cases << " damaged files (";
  const char* sep = "";
  for (const auto& [kind, n] : tally.kinds) std::cout << std::exchange(sep, ", ") << n << " " << kind;
  std::cout << "): " << tally.rejected << " rejected as a whole with an error naming the file, " << tally.runs_damaged
            << " opened with some runs reported damaged, " << tally.read_fine << " read fine (damage in unused bytes); "
            << tally.runs_read << " runs read back, all equal to what was written\n";
  EXPECT_EQ(failures, 0);
  EXPECT_GE(tally.cases, 1000);
  // The mix must exercise all three outcomes, or the test would not show what it claims.
  EXPECT_GT(tally.rejected, 0);
  EXPECT_GT(tally.runs_damaged, 0);
  EXPECT_GT(tally.read_fine, 0);
  ::alarm(0);
}

}  // namespace
}  // namespace lorahub::io
