// run_serial: the one-rank path, and the fake scheduler the MPI tests compare against.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "fake_scheduler.h"
#include "lorahub/core/error.h"
#include "lorahub/distributed/run.h"

namespace lorahub::distributed {
namespace {

using test::FakeConfig;
using test::FakeScheduler;
using test::fake_handler;

TEST(RunSerial, RunsEveryPlannedItem) {
  FakeScheduler s(FakeConfig{});
  std::size_t callbacks = 0;
  auto stats = run_serial(s, fake_handler, [&](const core::WorkResult&, std::size_t done) { callbacks = done; });
  // 5 runs x (4 steps x 3 candidates + 2 shards).
  EXPECT_EQ(s.items_planned(), 5u * (4 * 3 + 2));
  EXPECT_EQ(s.results().size(), s.items_planned());
  EXPECT_EQ(stats.items, s.items_planned());
  EXPECT_EQ(callbacks, s.items_planned());
  ASSERT_EQ(stats.workers.size(), 1u);
  EXPECT_EQ(stats.workers[0].items, stats.items);
  EXPECT_EQ(stats.messages_sent, 0u);
  EXPECT_NE(stats.summary().find(core::cat(stats.items, " items (", stats.failed, " failed)")), std::string::npos)
      << stats.summary();
}

TEST(RunSerial, HandlerExceptionsBecomeFailedResultsNamingTheRun) {
  FakeScheduler s(FakeConfig{});
  auto stats = run_serial(s, fake_handler);
  std::size_t thrown = 0;
  std::size_t failed = 0;
  for (const auto& [key, r] : s.results()) {
    if (key.second % 7 == 3) {
      ++thrown;
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.error, core::cat("run ", key.first, " (item ", key.second, "): injected handler exception"));
    } else if (key.second % 11 == 5) {
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.error, core::cat("run ", key.first, ": injected failed item"));
    } else {
      EXPECT_TRUE(r.ok) << r.error;
    }
    failed += r.ok ? 0 : 1;
    EXPECT_EQ(r.run, key.first);
    EXPECT_EQ(r.seq, key.second);
  }
  EXPECT_GT(thrown, 0u);
  EXPECT_EQ(stats.failed, failed);
}

TEST(RunSerial, IsDeterministic) {
  FakeScheduler a(FakeConfig{});
  FakeScheduler b(FakeConfig{});
  run_serial(a, fake_handler);
  run_serial(b, fake_handler);
  test::expect_same_results(a, b);
}

TEST(RunSerial, LaterItemsDependOnEarlierResults) {
  // If the scheduler ignored results, perturbing one loss would change nothing downstream.
  FakeScheduler a(FakeConfig{});
  FakeScheduler b(FakeConfig{});
  run_serial(a, fake_handler);
  run_serial(b, [](const core::WorkItem& item) {
    auto r = fake_handler(item);
    if (item.run == 2 && item.seq == 0) r.losses.assign(r.losses.size(), -100.0);
    return r;
  });
  EXPECT_NE(a.trajectories()[2], b.trajectories()[2]);
  EXPECT_EQ(a.trajectories()[1], b.trajectories()[1]);
}

TEST(RunSerial, MeasuresHandlerTimeWhenLeftZero) {
  FakeScheduler s(FakeConfig{1, 1, 1, 2, 1, 1});
  auto stats = run_serial(s, [](const core::WorkItem& item) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    core::WorkResult r;
    r.losses.assign(item.weights.size(), 1.0);
    return r;
  });
  for (const auto& [key, r] : s.results()) EXPECT_GT(r.seconds, 0.0) << key.second;
  EXPECT_GT(stats.workers[0].busy_seconds, 0.0);
}

TEST(RunSerial, KeepsHandlerSeconds) {
  FakeScheduler s(FakeConfig{1, 1, 1, 2, 1, 1});
  run_serial(s, [](const core::WorkItem& item) {
    core::WorkResult r;
    r.losses.assign(item.weights.size(), 1.0);
    r.seconds = 42.5;
    return r;
  });
  for (const auto& [key, r] : s.results()) EXPECT_EQ(r.seconds, 42.5);
}

TEST(RunSerial, StalledSchedulerIsAnError) {
  FakeConfig c;
  c.stall = true;
  FakeScheduler s(c);
  try {
    run_serial(s, fake_handler);
    FAIL() << "a stalled scheduler ran to the end";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("scheduler bug"), std::string::npos) << e.what();
  }
}

TEST(RunSerial, SchedulerExceptionsPropagate) {
  FakeConfig c;
  c.throw_in_complete_after = 4;
  FakeScheduler s(c);
  EXPECT_THROW(run_serial(s, fake_handler), core::Error);
  EXPECT_EQ(s.results().size(), 4u);
}

TEST(RunSerial, DoneSchedulerRunsNothing) {
  FakeScheduler s(FakeConfig{0});
  std::atomic<int> calls{0};
  auto stats = run_serial(s, [&](const core::WorkItem&) {
    ++calls;
    return core::WorkResult{};
  });
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(stats.items, 0u);
}

}  // namespace
}  // namespace lorahub::distributed
