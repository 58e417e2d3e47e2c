// Kill tests of the results file: a forked writer is SIGKILLed (1) at every durable step of a write
// and of a rollback, whole or with the write in flight torn in half, and (2) at seeded crash points while
// it writes runs in a loop; after each kill the file must reopen with every earlier run intact.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "io/journal.h"
#include "io/posix_io.h"
#include "io/run_fixtures.h"
#include "lorahub/core/random.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io {
namespace {

using namespace test;  // the run fixtures and Mode (run_fixtures.h)

pid_t spawn(const std::function<void()>& fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) throw core::Error("fork failed");
  if (pid == 0) {
    int code = 0;
    try {
      fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 3;
    }
    _exit(code);  // never back into gtest
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw core::Error("waitpid failed");
  }
  return status;
}

bool killed(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string key_text(const RunRecord& r) { return r.task + "/" + r.method + "/" + std::to_string(r.seed); }
std::string key_text(const RunKey& k) { return k.task + "/" + k.method + "/" + std::to_string(k.seed); }

/// What a file may hold after a kill during the write of `next`: the runs in `before` exactly, plus
/// at the key of `next` either what `before` had there or `next` itself.
struct Outcome {
  std::string problem;        // "" when the file is sound
  bool has_next = false;      // `next` is there, complete
  bool next_incomplete = false;
};

Outcome inspect(const std::string& path, const std::vector<RunRecord>& before, const RunRecord& next,
                const ResultStoreOptions& options) {
  Outcome out;
  try {
    ResultStore store(path, Mode::kReadOnly, options);
    if (exists(detail::Journal::path_for(path))) {
      out.problem = "journal still there after recovery";
      return out;
    }
    std::map<std::string, RunKey> listed;
    for (const RunKey& k : store.list_runs()) listed[key_text(k)] = k;
    for (const RunRecord& r : before) {
      auto it = listed.find(key_text(r));
      if (key_text(r) == key_text(next) && it != listed.end() && it->second.status == "complete") continue;
      if (it == listed.end()) {
        out.problem = "earlier run " + key_text(r) + " is gone";
        return out;
      }
      if (it->second.status != r.status) {
        out.problem = "earlier run " + key_text(r) + " has status " + it->second.status;
        return out;
      }
      std::string diff = run_difference(store.read_run(r.task, r.method, r.seed), r);
      if (!diff.empty()) {
        out.problem = "earlier run " + key_text(r) + " differs in " + diff;
        return out;
      }
    }
    auto it = listed.find(key_text(next));
    if (it != listed.end()) {
      if (it->second.status == "complete") {
        std::string diff = run_difference(store.read_run(next.task, next.method, next.seed), next);
        if (!diff.empty()) {
          out.problem = "new run " + key_text(next) + " is marked complete but differs in " + diff;
          return out;
        }
        out.has_next = true;
      } else if (it->second.status == "incomplete") {
        out.next_incomplete = true;
      }
    }
    std::size_t allowed = before.size();
    for (const RunRecord& r : before) allowed -= key_text(r) == key_text(next);
    if (listed.size() != allowed + (it != listed.end())) out.problem = "unexpected runs in the file";
  } catch (const std::exception& e) {
    out.problem = std::string("cannot read the file: ") + e.what();
  }
  return out;
}

struct SweepStats {
  long crash_points = 0;
  int kills = 0;
  int rolled_back = 0;          // byte-identical to the file before the write
  int committed = 0;            // the new run is there, complete and exact
  int hot_journals = 0;         // kills that left a journal with undo records
  int next_incomplete = 0;      // the new run's group is there without status
  std::vector<std::string> damage;
};

/// Kills a writer of `next` at every crash point (whole and torn), inspects each result.
SweepStats sweep_write(const TempDir& dir, const std::string& baseline, const std::vector<RunRecord>& before,
                       const RunRecord& next, const ResultStoreOptions& options) {
  SweepStats stats;
  const std::string work = dir.file("work.h5");
  const std::string journal = detail::Journal::path_for(work);
  const std::string base_bytes = read_bytes(baseline);
  auto reset = [&] {
    write_bytes(work, base_bytes);
    std::remove(journal.c_str());
  };
  reset();
  detail::arm_crash(0, false);
  ResultStore(work, Mode::kResume, options).write_run(next);
  stats.crash_points = detail::crash_points_passed();
  for (bool torn : {false, true}) {
    for (long k = 1; k <= stats.crash_points + 1; ++k) {
      reset();
      int status = wait_for(spawn([&] {
        detail::arm_crash(k, torn);
        ResultStore(work, Mode::kResume, options).write_run(next);
      }));
      bool expect_kill = k <= stats.crash_points;
      if (expect_kill ? !killed(status) : !exited_ok(status)) {
        stats.damage.push_back("crash point " + std::to_string(k) + ": child status " + std::to_string(status));
        continue;
      }
      stats.kills += expect_kill;
      if (exists(journal) && read_bytes(journal).size() > 32) ++stats.hot_journals;
      Outcome o = inspect(work, before, next, options);
      if (!o.problem.empty()) {
        stats.damage.push_back(core::cat("crash point ", k, torn ? " (torn)" : "", ": ", o.problem));
        continue;
      }
      stats.next_incomplete += o.next_incomplete;
      if (o.has_next) {
        ++stats.committed;
      } else if (read_bytes(work) == base_bytes) {
        ++stats.rolled_back;
      } else if (options.journal) {
        stats.damage.push_back(core::cat("crash point ", k, ": rolled back but not byte-identical"));
      }
    }
  }
  return stats;
}

/// A file with a few runs of both layouts, one of them failed.
std::vector<RunRecord> build_baseline(const std::string& path) {
  std::vector<RunRecord> runs = {make_run("t0", "lorahub", 0), make_run("t0", "zero-shot", 0),
                                 make_run("t1", "lorahub", 1), make_failed_run("t1", "lorahub", 2),
                                 make_run("t1", "icl", 3)};
  ResultStore store(path, Mode::kCreate);
  store.set_job_attrs({{"job_config", "{\"seeds\": [0, 1, 2, 3]}"}});
  for (const RunRecord& r : runs) store.write_run(r);
  return runs;
}

TEST(ResultStoreCrash, KillAtEveryCrashPointKeepsEarlierRuns) {
  TempDir dir;
  const std::string baseline = dir.file("baseline.h5");
  std::vector<RunRecord> before = build_baseline(baseline);
  struct Case {
    const char* name;
    RunRecord next;
  };
  std::vector<Case> cases = {{"new task group", make_run("t2", "lorahub", 0)},
                             {"existing task group", make_run("t0", "lorahub", 5)},
                             {"new method group", make_run("t0", "uniform", 5)},
                             {"replacing a failed run", make_run("t1", "lorahub", 2)}};
  for (const Case& c : cases) {
    SweepStats s = sweep_write(dir, baseline, before, c.next, {});
    std::cout << "[crash sweep] " << c.name << ": " << s.crash_points << " crash points, " << s.kills
              << " kills (whole + torn): " << s.rolled_back << " rolled back byte-identical, " << s.committed
              << " committed, " << s.hot_journals << " left a hot journal, " << s.damage.size()
              << " damaged\n";
    EXPECT_GE(s.crash_points, 10) << c.name;
    EXPECT_EQ(s.kills, 2 * s.crash_points) << c.name;
    EXPECT_GT(s.rolled_back, 0) << c.name;
    EXPECT_GT(s.committed, 0) << c.name;
    EXPECT_GT(s.hot_journals, 0) << c.name;  // in-place overwrites of old metadata did happen
    EXPECT_EQ(s.next_incomplete, 0) << c.name;
    EXPECT_EQ(s.rolled_back + s.committed, 2 * (s.crash_points + 1)) << c.name;
    for (const auto& d : s.damage) ADD_FAILURE() << c.name << ": " << d;
  }
}

TEST(ResultStoreCrash, KillDuringRollbackIsRepairedByTheNextOpen) {
  TempDir dir;
  const std::string baseline = dir.file("baseline.h5");
  build_baseline(baseline);
  const std::string base_bytes = read_bytes(baseline);
  const std::string work = dir.file("work.h5");
  const std::string journal = detail::Journal::path_for(work);
  const RunRecord next = make_run("t0", "lorahub", 7);

  detail::arm_crash(0, false);
  write_bytes(work, base_bytes);
  ResultStore(work, Mode::kResume).write_run(next);
  const long write_points = detail::crash_points_passed();

  int states = 0;
  int rollback_kills = 0;
  for (long k = 1; k <= write_points; ++k) {
    write_bytes(work, base_bytes);
    std::remove(journal.c_str());
    wait_for(spawn([&] {
      detail::arm_crash(k, false);
      ResultStore(work, Mode::kResume).write_run(next);
    }));
    if (!exists(journal) || read_bytes(journal).size() <= 32) continue;  // nothing to undo here
    ++states;
    const std::string killed_file = read_bytes(work);
    const std::string killed_journal = read_bytes(journal);
    auto restore_state = [&] {
      write_bytes(work, killed_file);
      write_bytes(journal, killed_journal);
    };
    restore_state();
    detail::arm_crash(0, false);
    detail::recover(work);
    const long recover_points = detail::crash_points_passed();
    ASSERT_EQ(read_bytes(work), base_bytes) << "plain rollback after crash point " << k;
    for (bool torn : {false, true}) {
      for (long j = 1; j <= recover_points; ++j) {
        restore_state();
        int status = wait_for(spawn([&] {
          detail::arm_crash(j, torn);
          detail::recover(work);
        }));
        ASSERT_TRUE(killed(status)) << "write point " << k << ", rollback point " << j;
        ++rollback_kills;
        ResultStore store(work, Mode::kReadOnly);  // finishes the interrupted rollback
        EXPECT_FALSE(exists(journal));
        EXPECT_EQ(read_bytes(work), base_bytes)
            << "write point " << k << ", rollback point " << j << (torn ? " (torn)" : "");
      }
    }
  }
  std::cout << "[rollback sweep] " << states << " hot-journal states, " << rollback_kills
            << " kills during rollback, all repaired\n";
  EXPECT_GT(states, 0);
  EXPECT_GT(rollback_kills, states);
}

TEST(ResultStoreCrash, SeededKillsWhileWritingRunsInALoop) {
  TempDir dir;
  const std::string path = dir.file("loop.h5");
  const RunShape big{20, 16, 16, 1024, 60};  // 16 composed matrices of 64 KiB: 1 MiB per run
  std::vector<std::tuple<std::string, std::string, std::int64_t>> keys;
  for (const char* task : {"boolean_expressions", "date_understanding", "navigate", "snarks", "sports_understanding",
                           "word_sorting"}) {
    for (std::int64_t seed = 0; seed < 6; ++seed) keys.emplace_back(task, "lorahub", seed);
    keys.emplace_back(task, "zero-shot", 0);
  }
  auto expected = [&](const std::string& task, const std::string& method, std::int64_t seed,
                      const std::string& status) {
    return status == "failed" ? make_failed_run(task, method, seed) : make_run(task, method, seed, big);
  };
  // Seeds 4 are first recorded as failed and then replaced, as a retried run would be.
  int writes = 0;
  auto writer = [&] {
    ResultStore store(path, Mode::kResume);
    std::map<std::string, std::string> status;
    for (const RunKey& k : store.list_runs()) status[key_text(k)] = k.status;
    for (const auto& [task, method, seed] : keys) {
      std::string key = task + "/" + method + "/" + std::to_string(seed);
      if (status[key] == "complete") continue;
      if (seed == 4 && status[key] != "failed") {
        store.write_run(expected(task, method, seed, "failed"));
        ++writes;
      }
      store.write_run(expected(task, method, seed, "complete"));
      ++writes;
    }
  };

  // The kills land at seeded crash points (every durable step is one: journal record, write, truncate,
  // fsync, unlink) within the next three writes' worth of wherever the writer is, its rollback of the
  // previous kill included. Nothing depends on timing, so the same kills happen on every machine.
  detail::arm_crash(0, false);
  writer();
  const long points_per_write = detail::crash_points_passed() / writes;
  ASSERT_GT(points_per_write, 5);
  std::remove(path.c_str());

  core::Rng rng(20240607);
  const int kKills = 40;
  std::map<std::string, std::string> durable;  // key -> status seen complete after some kill
  int kills = 0, torn = 0, hot = 0, finished = 0, jobs = 1;
  for (int i = 0; i < kKills; ++i) {
    const long point = 1 + static_cast<long>(rng.below(static_cast<std::uint64_t>(points_per_write * 3)));
    const bool tear = rng.below(2) == 1;
    int status = wait_for(spawn([&] {
      detail::arm_crash(point, tear);
      writer();
    }));
    if (killed(status)) {
      ++kills;
      torn += tear;
    } else {
      ASSERT_TRUE(exited_ok(status)) << "writer failed on its own, kill " << i;
      ++finished;  // it ran out of work before the crash point
    }
    hot += exists(detail::Journal::path_for(path));
    if (!exists(path)) continue;  // killed before the file was first renamed into place
    ResultStore store(path, Mode::kReadOnly);
    EXPECT_FALSE(exists(detail::Journal::path_for(path)));
    std::map<std::string, std::string> now;
    for (const RunKey& k : store.list_runs()) {
      now[key_text(k)] = k.status;
      ASSERT_NE(k.status, "incomplete") << key_text(k) << " after kill " << i;
      EXPECT_EQ(run_difference(store.read_run(k.task, k.method, k.seed),
                               expected(k.task, k.method, k.seed, k.status)),
                "")
          << key_text(k) << " after kill " << i << " (crash point " << point << (tear ? ", torn" : "") << ")";
    }
    for (const auto& [key, st] : durable) {
      EXPECT_EQ(now[key], "complete") << key << " was complete before kill " << i;
    }
    for (const auto& [key, st] : now) {
      if (st == "complete") durable[key] = st;
    }
    if (durable.size() == keys.size() && i + 1 < kKills) {
      std::remove(path.c_str());  // the job is done: the next kills go to a new one
      durable.clear();
      ++jobs;
    }
  }
  std::cout << "[seeded kills] " << kills << " SIGKILLs (" << torn << " torn, " << finished
            << " writers finished first) over " << jobs << " job(s), " << hot << " left a hot journal, "
            << durable.size() << "/" << keys.size() << " runs complete before the final resume; "
            << points_per_write << " crash points per write\n";
  EXPECT_GE(kills, 30);
  EXPECT_GT(torn, 0);
  EXPECT_GT(hot, 0);

  ASSERT_TRUE(exited_ok(wait_for(spawn(writer))));
  ResultStore store(path, Mode::kReadOnly);
  std::vector<RunKey> all = store.list_runs();
  ASSERT_EQ(all.size(), keys.size());
  for (const RunKey& k : all) {
    EXPECT_EQ(k.status, "complete") << key_text(k);
    EXPECT_EQ(run_difference(store.read_run(k.task, k.method, k.seed), expected(k.task, k.method, k.seed, "complete")),
              "")
        << key_text(k);
  }
}

// The end-to-end tests' hook: LORAHUB_TEST_CRASH_AT=R:K kills the process at crash point K of its R-th run write.
TEST(ResultStoreCrash, TheEnvironmentHookKillsAtTheNamedPointOfTheNamedRun) {
  TempDir dir;
  const std::string path = dir.file("hook.h5");
  const std::vector<RunRecord> runs = {make_run("t", "lorahub", 1), make_run("t", "lorahub", 2), make_run("t", "lorahub", 3)};
  auto write_all = [&](const char* hook) {
    return wait_for(spawn([&] {
      ::setenv(detail::kCrashEnv, hook, 1);
      ResultStore store(path, Mode::kResume);
      for (const RunRecord& r : runs) store.write_run(r);
    }));
  };
  ASSERT_TRUE(killed(write_all("2:3")));
  EXPECT_TRUE(exists(detail::Journal::path_for(path)));  // killed inside the second write
  {
    ResultStore store(path, Mode::kReadOnly);  // rolls it back
    std::vector<RunKey> keys = store.list_runs();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(run_difference(store.read_run("t", "lorahub", 1), runs[0]), "");
  }
  std::remove(path.c_str());
  ASSERT_TRUE(killed(write_all("3:5:torn")));
  EXPECT_EQ(ResultStore(path, Mode::kReadOnly).list_runs().size(), 2u);
  std::remove(path.c_str());
  EXPECT_EQ(WEXITSTATUS(write_all("2")), 3);  // malformed: the child's write throws (exit 3 from spawn)
  EXPECT_EQ(WEXITSTATUS(write_all("1:0")), 3);
}

// The same sweep with the journal off, to measure what the journal buys. Not run by default (about
// ten minutes: HDF5 reads some damaged files slowly): run with --gtest_also_run_disabled_tests; it
// prints how many crash points damaged earlier runs or the file.
TEST(ResultStoreCrash, DISABLED_WithoutJournalMeasureExposure) {
  TempDir dir;
  const std::string baseline = dir.file("baseline.h5");
  std::vector<RunRecord> before = build_baseline(baseline);
  ResultStoreOptions no_journal;
  no_journal.journal = false;
  for (const RunRecord& next : {make_run("t2", "lorahub", 0), make_run("t0", "lorahub", 5),
                                make_run("t1", "lorahub", 2)}) {
    SweepStats s = sweep_write(dir, baseline, before, next, no_journal);
    std::cout << "[no journal] writing " << key_text(next) << ": " << s.crash_points << " crash points, "
              << s.kills << " kills: " << s.committed << " committed, " << s.next_incomplete
              << " left the new run incomplete, " << s.damage.size() << " damaged earlier runs or the file\n";
    for (const auto& d : s.damage) std::cout << "    " << d << "\n";
  }
}

}  // namespace
}  // namespace lorahub::io
