#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "io/h5.h"
#include "io/journal.h"
#include "io/journal_driver.h"
#include "io/run_fixtures.h"
#include "lorahub/core/error.h"
#include "lorahub/io/result_store.h"
#include "support/errors.h"

namespace lorahub::io {
namespace {

using lorahub::test::expect_error;
using namespace test;  // the run fixtures and Mode (run_fixtures.h)

TEST(ResultStore, RoundTripsEveryField) {
  TempDir dir;
  std::string path = dir.file("results.h5");
  RunRecord lorahub = make_run("boolean_expressions", "lorahub", 3);
  RunRecord zero_shot = make_run("boolean_expressions", "zero-shot", 3, {0, 0, 0, 0, 5});
  {
    ResultStore store(path, Mode::kCreate);
    store.write_run(lorahub);
    store.write_run(zero_shot);
  }
  ResultStore store(path, Mode::kReadOnly);
  EXPECT_EQ(run_difference(store.read_run("boolean_expressions", "lorahub", 3), lorahub), "");
  EXPECT_EQ(run_difference(store.read_run("boolean_expressions", "zero-shot", 3), zero_shot), "");
  EXPECT_TRUE(store.has_complete_run("boolean_expressions", "lorahub", 3));
  EXPECT_FALSE(store.has_complete_run("boolean_expressions", "lorahub", 4));
  EXPECT_FALSE(store.has_complete_run("boolean_expressions", "icl", 3));
  EXPECT_FALSE(store.has_complete_run("navigate", "lorahub", 3));

  std::vector<RunKey> keys = store.list_runs();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].method, "lorahub");
  EXPECT_EQ(keys[0].group, "/runs/boolean_expressions/seed_3");
  EXPECT_EQ(keys[0].status, "complete");
  EXPECT_EQ(keys[1].method, "zero-shot");
  EXPECT_EQ(keys[1].group, "/runs/boolean_expressions/zero-shot/seed_3");
  EXPECT_FALSE(exists(detail::Journal::path_for(path)));
}

TEST(ResultStore, EmptyVectorsAndNaNRoundTrip) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  RunRecord r;
  r.task = "t";
  r.method = "icl";
  r.seed = -2;  // negative seeds are legal keys
  r.status = "complete";
  ResultStore store(path, Mode::kCreate);
  store.write_run(r);
  RunRecord back = store.read_run("t", "icl", -2);
  EXPECT_EQ(run_difference(back, r), "");
  EXPECT_TRUE(std::isnan(back.best_loss));
  EXPECT_TRUE(std::isnan(back.accuracy));
  EXPECT_TRUE(back.composed.empty());
  EXPECT_TRUE(back.adapter_config.empty());

  // Rows of zero width survive too.
  RunRecord rows;
  rows.task = "t";
  rows.method = "lorahub";
  rows.seed = 0;
  rows.status = "failed";
  rows.history_weights = {{}, {}, {}};
  rows.composed = {{"empty.lora_A.weight", {0, 16}, {}}};
  store.write_run(rows);
  EXPECT_EQ(run_difference(store.read_run("t", "lorahub", 0), rows), "");
}

TEST(ResultStore, FailedRunIsListedAndReplaced) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  ResultStore store(path, Mode::kCreate);
  RunRecord failed = make_failed_run("navigate", "lorahub", 1);
  store.write_run(failed);
  EXPECT_FALSE(store.has_complete_run("navigate", "lorahub", 1));
  std::vector<RunKey> keys = store.list_runs();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].status, "failed");
  EXPECT_EQ(run_difference(store.read_run("navigate", "lorahub", 1), failed), "");

  RunRecord complete = make_run("navigate", "lorahub", 1);
  store.write_run(complete);
  EXPECT_TRUE(store.has_complete_run("navigate", "lorahub", 1));
  EXPECT_EQ(run_difference(store.read_run("navigate", "lorahub", 1), complete), "");
  ASSERT_EQ(store.list_runs().size(), 1u);
}

TEST(ResultStore, IncompleteGroupIsReportedAndReplaced) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  ResultStore store(path, Mode::kCreate);
  RunRecord other = make_run("navigate", "lorahub", 0);
  store.write_run(other);
  {
    // What an unjournaled writer killed mid-run would leave: a group without a status.
    h5::PropertyList fapl = detail::make_fapl({});
    h5::File file = h5::File::open(path, H5F_ACC_RDWR, fapl.id());
    h5::Group task = file.root().open_group("runs").open_group("navigate");
    h5::Group run = task.create_group("seed_5");
    h5::write_attr(run, "task", std::string("navigate"));
    h5::write_dataset(run, "best_weights", std::vector<double>{1, 2, 3});
  }
  std::vector<RunKey> keys = store.list_runs();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].seed, 0);
  EXPECT_EQ(keys[0].status, "complete");
  EXPECT_EQ(keys[1].seed, 5);
  EXPECT_EQ(keys[1].status, "incomplete");
  EXPECT_FALSE(store.has_complete_run("navigate", "lorahub", 5));
  expect_error([&] { store.read_run("navigate", "lorahub", 5); }, {"incomplete", path, "seed 5"});

  RunRecord fresh = make_run("navigate", "lorahub", 5);
  store.write_run(fresh);
  EXPECT_EQ(run_difference(store.read_run("navigate", "lorahub", 5), fresh), "");
  EXPECT_EQ(run_difference(store.read_run("navigate", "lorahub", 0), other), "");
  EXPECT_EQ(store.list_runs()[1].status, "complete");
}

TEST(ResultStore, RefusesToOverwriteACompleteRun) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  ResultStore store(path, Mode::kCreate);
  RunRecord first = make_run("navigate", "uniform", 2);
  store.write_run(first);
  std::string before = read_bytes(path);
  RunRecord second = make_run("navigate", "uniform", 2, {3, 2, 2, 8, 4});
  expect_error([&] { store.write_run(second); }, {"already complete", path});
  EXPECT_EQ(read_bytes(path), before);  // the failed transaction was rolled back byte for byte
  EXPECT_FALSE(exists(detail::Journal::path_for(path)));
  EXPECT_EQ(run_difference(store.read_run("navigate", "uniform", 2), first), "");
}

TEST(ResultStore, FailureInsideAWriteRollsBack) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  ResultStore store(path, Mode::kCreate);
  RunRecord good = make_run("navigate", "lorahub", 0);
  store.write_run(good);
  std::string before = read_bytes(path);
  // A NUL byte is only detected when the predictions dataset is written, deep in the transaction.
  RunRecord bad = make_run("navigate", "lorahub", 1);
  bad.predictions[2] = std::string("a\0b", 3);
  expect_error([&] { store.write_run(bad); }, {"NUL", "/runs/navigate/seed_1/test/predictions", path});
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(exists(detail::Journal::path_for(path)));
  ASSERT_EQ(store.list_runs().size(), 1u);
  EXPECT_EQ(run_difference(store.read_run("navigate", "lorahub", 0), good), "");
}

TEST(ResultStore, ReadOnlyOpenOfMissingFileNamesIt) {
  TempDir dir;
  std::string path = dir.file("no-such-results.h5");
  expect_error([&] { ResultStore store(path, Mode::kReadOnly); }, {path, "does not exist"});
}

TEST(ResultStore, ReadOnlyStoreRejectsWrites) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  { ResultStore store(path, Mode::kCreate); }
  ResultStore store(path, Mode::kReadOnly);
  expect_error([&] { store.write_run(make_run("t", "lorahub", 0)); }, {"read-only", path});
  expect_error([&] { store.set_job_attrs({{"job_config", "{}"}}); }, {"read-only"});
}

TEST(ResultStore, ResumeKeepsRunsAndCreateStartsOver) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  RunRecord a = make_run("a", "lorahub", 0);
  RunRecord b = make_run("b", "lora-single", 1);
  { ResultStore(path, Mode::kResume).write_run(a); }  // kResume creates a missing file
  { ResultStore(path, Mode::kResume).write_run(b); }
  {
    ResultStore store(path, Mode::kResume);
    ASSERT_EQ(store.list_runs().size(), 2u);
    EXPECT_EQ(run_difference(store.read_run("a", "lorahub", 0), a), "");
    EXPECT_EQ(run_difference(store.read_run("b", "lora-single", 1), b), "");
  }
  ResultStore fresh(path, Mode::kCreate);
  EXPECT_TRUE(fresh.list_runs().empty());
  EXPECT_EQ(fresh.job_attrs().at("format"), ResultStore::kFormat);
}

TEST(ResultStore, RejectsFilesThatAreNotResults) {
  TempDir dir;
  std::string text = dir.file("notes.txt");
  test::write_bytes(text, "just text\n");
  expect_error([&] { ResultStore store(text, Mode::kResume); }, {text});
  EXPECT_EQ(read_bytes(text), "just text\n");  // untouched

  std::string other = dir.file("other.h5");
  {
    h5::PropertyList fapl = detail::make_fapl({});
    h5::File file = h5::File::create(other, fapl.id());
    h5::write_attr(file.root(), "format", std::string("something else"));
  }
  expect_error([&] { ResultStore store(other, Mode::kReadOnly); }, {other, "not a lorahub-hpc results file"});
}

TEST(ResultStore, JobAttributes) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  ResultStore store(path, Mode::kCreate);
  // Bigger than the 64 KiB an attribute may take in an object header of the earliest format.
  std::string config = "{\"tasks\": [";
  for (int i = 0; i < 20000; ++i) config += "\"task_" + std::to_string(i) + "\",";
  config += "\"é\"]}";
  store.set_job_attrs({{"job_config", config}, {"host", "node-ü"}});
  std::map<std::string, std::string> attrs = ResultStore(path, Mode::kReadOnly).job_attrs();
  EXPECT_EQ(attrs.at("job_config"), config);
  EXPECT_EQ(attrs.at("host"), "node-ü");
  EXPECT_EQ(attrs.at("format"), "lorahub-hpc results");
  EXPECT_EQ(attrs.at("software_version"), "0.1.0");
  expect_error([&] { store.set_job_attrs({{"format", "x"}}); }, {"format", "reserved"});
}

TEST(ResultStore, RejectsInconsistentRecords) {
  TempDir dir;
  ResultStore store(dir.file("r.h5"), Mode::kCreate);
  auto with = [](auto change) {
    RunRecord r = make_run("t", "lorahub", 1);
    change(r);
    return r;
  };
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.status = "done"; })); }, {"status", "done"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.task = "bbh/x"; })); }, {"task", "bbh/x"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.method = "seed_x"; })); }, {"seed_x"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.history_weights[1].pop_back(); })); },
               {"history_weights row 1"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.composed[0].shape = {3, 3}; })); },
               {"composed", "lora_A"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.composed[1].name = r.composed[0].name; })); },
               {"appears twice"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.text_attrs["status"] = "x"; })); },
               {"reserved", "status"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.number_attrs["optimizer"] = 1; })); },
               {"optimizer", "both"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.best_weights.pop_back(); })); },
               {"best_weights", "seed 1"});
  expect_error([&] { store.write_run(with([](RunRecord& r) { r.correct.pop_back(); })); }, {"correct"});
  // The same gaps are fine in a failed run, which records whatever it had.
  RunRecord failed = with([](RunRecord& r) {
    r.status = "failed";
    r.best_weights.pop_back();
    r.correct.clear();
  });
  store.write_run(failed);
  EXPECT_EQ(run_difference(store.read_run("t", "lorahub", 1), failed), "");
  EXPECT_TRUE(store.list_runs().size() == 1);
}

TEST(ResultStore, GroupPaths) {
  EXPECT_EQ(ResultStore::group_path("navigate", "lorahub", 7), "/runs/navigate/seed_7");
  EXPECT_EQ(ResultStore::group_path("navigate", "zero-shot", 7), "/runs/navigate/zero-shot/seed_7");
  EXPECT_THROW(ResultStore::group_path("", "lorahub", 0), core::Error);
}

TEST(ResultStore, LiveWriterJournalIsRespected) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  { ResultStore(path, Mode::kCreate).write_run(make_run("t", "lorahub", 0)); }
  std::string journal = detail::Journal::path_for(path);
  int fd = ::open(journal.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as a writer in another process would hold it
  expect_error([&] { ResultStore store(path, Mode::kResume); }, {"being written by another process", path});
  ::close(fd);  // the "writer" died before writing a header: the journal is empty and harmless
  ResultStore store(path, Mode::kResume);
  EXPECT_FALSE(exists(journal));
  EXPECT_TRUE(store.has_complete_run("t", "lorahub", 0));
}

TEST(ResultStore, OpenReaderMakesAWriteFailCleanly) {
  TempDir dir;
  std::string path = dir.file("r.h5");
  ResultStoreOptions quick;
  quick.lock_wait_s = 0.2;
  ResultStore store(path, Mode::kCreate, quick);
  store.write_run(make_run("t", "lorahub", 0));
  std::string before = read_bytes(path);
  int reader = ::open(path.c_str(), O_RDONLY);  // what an open h5py file holds
  ASSERT_GE(reader, 0);
  ASSERT_EQ(::flock(reader, LOCK_SH), 0);
  expect_error([&] { store.write_run(make_run("t", "lorahub", 1)); }, {"locked by another process", path});
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(exists(detail::Journal::path_for(path)));
  EXPECT_TRUE(store.has_complete_run("t", "lorahub", 0));  // shared locks coexist
  ::close(reader);
  store.write_run(make_run("t", "lorahub", 1));
  EXPECT_TRUE(store.has_complete_run("t", "lorahub", 1));
}

}  // namespace
}  // namespace lorahub::io
