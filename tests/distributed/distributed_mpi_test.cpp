// dist under mpiexec -n 1..4: manager–worker runs equal run_serial, every exit path stops all
// ranks, byte and file broadcast, agree(). Every test is collective: all ranks run it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake_scheduler.h"
#include "lorahub/core/error.h"
#include "lorahub/distributed/broadcast.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/distributed/run.h"
#include "mpi_env.h"

namespace lorahub::distributed {
namespace {

using test::comm;
using test::FakeConfig;
using test::FakeScheduler;
using test::fake_handler;

FakeConfig big_config() {
  FakeConfig c;
  c.runs = 8;
  c.steps = 5;
  c.candidates = 3;
  c.shards = 3;
  c.examples = 10;
  return c;
}

/// Runs `config` over all ranks; on rank 0 compares every result with run_serial's.
void expect_matches_serial(const FakeConfig& config, const CoordinatorOptions& options) {
  auto& c = comm();
  if (c.rank() != 0) {
    auto stats = run(c, nullptr, fake_handler, options);
    EXPECT_EQ(stats.items, 0u);
    return;
  }
  FakeScheduler reference(config);
  run_serial(reference, fake_handler);
  FakeScheduler s(config);
  std::size_t callbacks = 0;
  auto opts = options;
  opts.on_result = [&](const core::WorkResult&, std::size_t done) { callbacks = done; };
  auto stats = run(c, &s, fake_handler, opts);
  test::expect_same_results(reference, s);
  EXPECT_EQ(stats.items, s.items_planned());
  EXPECT_EQ(callbacks, s.items_planned());
  EXPECT_GT(stats.failed, 0u);
  std::size_t sum = 0;
  for (const auto& w : stats.workers) {
    sum += w.items;
    // The first dispatch round gives every worker an item (more are ready than there are workers).
    EXPECT_GT(w.items, 0u) << "rank " << w.rank;
  }
  EXPECT_EQ(sum, stats.items);
  if (c.size() == 1) {
    EXPECT_EQ(stats.workers.size(), 1u);
    EXPECT_EQ(stats.messages_sent, 0u);
  } else {
    auto workers = static_cast<std::size_t>(c.size() - 1);
    EXPECT_EQ(stats.workers.size(), workers);
    EXPECT_EQ(stats.messages_sent, stats.items + workers);      // work + stop
    EXPECT_EQ(stats.messages_received, stats.items + workers);  // results + acknowledgements
    EXPECT_GT(stats.bytes_received, 0u);
  }
}

TEST(DistRun, MatchesSerialWithDefaultPrefetch) { expect_matches_serial(big_config(), CoordinatorOptions{}); }

TEST(DistRun, MatchesSerialWithPrefetchOne) {
  CoordinatorOptions o;
  o.prefetch = 1;
  expect_matches_serial(big_config(), o);
}

TEST(DistRun, MatchesSerialWithDeepPrefetch) {
  CoordinatorOptions o;
  o.prefetch = 5;
  expect_matches_serial(big_config(), o);
}

TEST(DistRun, MatchesSerialWithOneRunAtATime) {
  // Fewer ready items than workers at times: workers must sit idle without harm.
  FakeConfig c;
  c.runs = 1;
  c.candidates = 2;
  c.shards = 1;
  CoordinatorOptions o;
  auto& cm = comm();
  if (cm.rank() == 0) {
    FakeScheduler reference(c);
    run_serial(reference, fake_handler);
    FakeScheduler s(c);
    run(cm, &s, fake_handler, o);
    test::expect_same_results(reference, s);
  } else {
    run(cm, nullptr, fake_handler, o);
  }
}

/// Rank 0 expects run() to throw an Error containing `needle`; workers return; then a full run
/// proves that no rank is stuck and no stale message is left behind.
void expect_coordinator_error(const FakeConfig& config, const std::string& needle, CoordinatorOptions options = {}) {
  auto& c = comm();
  if (c.rank() == 0) {
    FakeScheduler s(config);
    try {
      run(c, &s, fake_handler, options);
      ADD_FAILURE() << "run() returned normally; expected: " << needle;
    } catch (const core::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  } else {
    EXPECT_NO_THROW(run(c, nullptr, fake_handler, options));
  }
  expect_matches_serial(FakeConfig{}, CoordinatorOptions{});
}

TEST(DistRun, SchedulerThrowingInCompleteStopsEveryRank) {
  FakeConfig c = big_config();
  c.throw_in_complete_after = 20;
  expect_coordinator_error(c, "injected failure in complete()");
}

TEST(DistRun, SchedulerThrowingInNextStopsEveryRank) {
  FakeConfig c = big_config();
  c.throw_in_next_after = 30;
  expect_coordinator_error(c, "injected failure in next()");
}

TEST(DistRun, SchedulerThrowingAtOnceStopsEveryRank) {
  FakeConfig c = big_config();
  c.throw_in_next_after = 0;
  expect_coordinator_error(c, "injected failure in next()");
}

TEST(DistRun, StalledSchedulerIsAnErrorNotAHang) {
  FakeConfig c = big_config();
  c.stall = true;
  expect_coordinator_error(c, "scheduler bug");
}

TEST(DistRun, ThrowingResultCallbackStopsEveryRank) {
  CoordinatorOptions o;
  o.on_result = [](const core::WorkResult&, std::size_t done) {
    if (done == 9) core::fail("progress hook failed");
  };
  expect_coordinator_error(big_config(), "progress hook failed", o);
}

TEST(DistRun, MissingSchedulerOnRootFailsEveryRank) {
  auto& c = comm();
  try {
    run(c, nullptr, fake_handler);
    ADD_FAILURE() << "run() without a scheduler returned";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 needs a scheduler"), std::string::npos) << e.what();
  }
}

TEST(DistRun, BadPrefetchFailsEveryRank) {
  CoordinatorOptions o;
  o.prefetch = 0;
  auto& c = comm();
  FakeScheduler s(FakeConfig{});
  EXPECT_THROW(run(c, c.rank() == 0 ? &s : nullptr, fake_handler, o), core::Error);
}

TEST(DistComm, RanksAndNode) {
  auto& c = comm();
  EXPECT_GE(c.rank(), 0);
  EXPECT_LT(c.rank(), c.size());
  EXPECT_GE(c.local_rank(), 0);
  EXPECT_LT(c.local_rank(), c.local_size());
  // ctest runs every rank on this one host.
  EXPECT_EQ(c.local_size(), c.size());
  EXPECT_EQ(local_gpu(c, 0), -1);
  EXPECT_EQ(local_gpu(c, 3), c.local_rank() % 3);
  EXPECT_EQ(local_gpu(c, 1), 0);
  c.barrier();
}

std::string pattern(std::size_t n, int salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + static_cast<std::size_t>(salt) * 7) % 256);
  return s;
}

TEST(DistComm, ChunkedBroadcastFromEveryRoot) {
  auto& c = comm();
  auto saved = c.chunk_bytes();
  c.set_chunk_bytes(7);
  for (int root = 0; root < c.size(); ++root) {
    for (std::size_t n : {0, 1, 6, 7, 8, 100, 1001}) {
      auto expected = pattern(n, root);
      std::string bytes = c.rank() == root ? expected : std::string("stale contents of another length");
      c.broadcast(bytes, root);
      EXPECT_EQ(bytes, expected) << "root " << root << ", " << n << " bytes";
    }
  }
  c.set_chunk_bytes(saved);
  EXPECT_THROW(c.set_chunk_bytes(0), core::Error);
  EXPECT_THROW(c.set_chunk_bytes(Comm::kMaxChunkBytes + 1), core::Error);
  EXPECT_THROW(
      {
        std::string s;
        c.broadcast(s, c.size());
      },
      core::Error);
}

TEST(DistComm, AgreeAllOk) {
  auto& c = comm();
  EXPECT_FALSE(c.agree(true, "unused").has_value());
  EXPECT_NO_THROW(c.agree_or_throw(true, ""));
}

TEST(DistComm, AgreeReturnsTheLowestFailingRanksError) {
  auto& c = comm();
  // The upper half of the ranks fail; the lowest of them wins everywhere.
  int first_bad = c.size() / 2;
  bool ok = c.rank() < first_bad;
  auto first = c.agree(ok, core::cat("config error seen on rank ", c.rank()));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, core::cat("config error seen on rank ", first_bad));
}

TEST(DistComm, AgreeOrThrowThrowsOnEveryRank) {
  auto& c = comm();
  int bad = c.size() - 1;
  try {
    c.agree_or_throw(c.rank() != bad, core::cat("rank ", c.rank(), " cannot open the config"));
    ADD_FAILURE() << "no throw";
  } catch (const core::Error& e) {
    EXPECT_EQ(std::string(e.what()), core::cat("rank ", bad, " cannot open the config"));
  }
}

TEST(DistComm, AgreeWithoutMessageNamesTheRank) {
  auto& c = comm();
  auto first = c.agree(c.rank() != 0, "");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, "rank 0 reported a failure without a message");
}

/// A directory made by rank 0 and known to all ranks; removed at scope end.
class SharedDir {
 public:
  SharedDir() {
    auto& c = comm();
    if (c.rank() == 0) {
      char tmpl[] = "/tmp/lorahub-dist-test-XXXXXX";
      if (!mkdtemp(tmpl)) std::abort();
      path_ = tmpl;
    }
    c.broadcast(path_, 0);
  }
  ~SharedDir() {
    comm().barrier();
    if (comm().rank() == 0) std::filesystem::remove_all(path_);
  }
  std::string file(const std::string& name, const std::string& bytes) const {
    auto p = path_ + "/" + name;
    if (comm().rank() == 0) std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(DistBroadcastFiles, EveryRankGetsRootsBytes) {
  auto& c = comm();
  SharedDir dir;
  std::vector<std::string> contents = {pattern(1000, 1), "", std::string("tiny\0file", 9), pattern(5, 2)};
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < contents.size(); ++i) {
    paths.push_back(dir.file(core::cat("f", i, ".bin"), contents[i]));
  }
  auto saved = c.chunk_bytes();
  c.set_chunk_bytes(5);
  for (int root : {0, c.size() - 1}) {
    c.barrier();  // rank 0 has written the files (all ranks share this host's /tmp)
    auto blobs = broadcast_files(c, paths, root);
    ASSERT_EQ(blobs.files.size(), paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i) {
      ASSERT_TRUE(blobs.at(paths[i]));
      EXPECT_EQ(*blobs.at(paths[i]), contents[i]) << paths[i];
    }
    if (c.size() == 1) {
      EXPECT_EQ(blobs.transport, "local");
    } else {
      EXPECT_EQ(blobs.transport, visible_gpus() > 0 && built_with_nccl() ? "nccl" : "mpi");
    }
    EXPECT_THROW(blobs.at(dir.path() + "/not-broadcast"), core::Error);
  }
  c.set_chunk_bytes(saved);
}

TEST(DistBroadcastFiles, ForcedMpiTransport) {
  auto& c = comm();
  SharedDir dir;
  auto p = dir.file("w.bin", pattern(77, 3));
  auto blobs = broadcast_files(c, {p}, 0, Transport::kMpi);
  EXPECT_EQ(*blobs.at(p), pattern(77, 3));
  EXPECT_EQ(blobs.transport, c.size() == 1 ? "local" : "mpi");
}

TEST(DistBroadcastFiles, MissingFileOnRootGivesEveryRankTheSameError) {
  auto& c = comm();
  SharedDir dir;
  auto good = dir.file("good.bin", "abc");
  auto missing = dir.path() + "/missing.safetensors";
  std::string message;
  try {
    broadcast_files(c, {good, missing}, 0);
    ADD_FAILURE() << "no throw";
  } catch (const core::Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
  auto roots = message;
  c.broadcast(roots, 0);
  EXPECT_EQ(message, roots);
}

TEST(DistBroadcastFiles, DifferentPathListsAreAnError) {
  auto& c = comm();
  SharedDir dir;
  std::vector<std::string> paths = {dir.file("a", "1"), dir.file("b", "2")};
  if (c.size() > 1 && c.rank() == c.size() - 1) paths.pop_back();
  if (c.size() == 1) {
    EXPECT_NO_THROW(broadcast_files(c, paths, 0));
  } else {
    try {
      broadcast_files(c, paths, 0);
      ADD_FAILURE() << "no throw";
    } catch (const core::Error& e) {
      EXPECT_NE(std::string(e.what()).find(core::cat("rank ", c.size() - 1)), std::string::npos) << e.what();
    }
  }
}

TEST(DistBroadcastFiles, NcclWithoutDevicesIsAnAgreedError) {
  auto& c = comm();
  if (visible_gpus() > 0) GTEST_SKIP() << "this host has CUDA devices";
  SharedDir dir;
  auto p = dir.file("x", "payload");
  std::string message;
  try {
    broadcast_files(c, {p}, 0, Transport::kNccl);
    ADD_FAILURE() << "no throw";
  } catch (const core::Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(built_with_nccl() ? "NCCL broadcast unavailable" : "LORAHUB_WITH_NCCL=OFF"),
            std::string::npos)
      << message;
  auto roots = message;
  c.broadcast(roots, 0);
  EXPECT_EQ(message, roots);
}

TEST(DistBroadcastFiles, BadRootIsAnError) {
  auto& c = comm();
  EXPECT_THROW(broadcast_files(c, {}, c.size()), core::Error);
  EXPECT_THROW(broadcast_files(c, {}, -1), core::Error);
}

}  // namespace
}  // namespace lorahub::distributed
