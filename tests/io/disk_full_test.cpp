// A disk that fills up while results are written (the io layer's ENOSPC hook, posix_io.h): every write
// that fails must leave the file as it was, with the earlier runs readable, the HDF5 library in a sound
// state (no file left open: a failed H5Fclose used to leave a dangling identifier that crashed the
// process at exit), and a later write with space must complete as if nothing had happened.
#include <hdf5.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/journal.h"
#include "io/posix_io.h"
#include "io/run_fixtures.h"
#include "lorahub/core/error.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io {
namespace {

using namespace test;  // the run fixtures and Mode (run_fixtures.h)

// Restores an unlimited disk when a test ends, whatever happens in it.
struct DiskLimit {
  explicit DiskLimit(long long n) { detail::limit_disk_space(n); }
  ~DiskLimit() { detail::limit_disk_space(-1); }
};

long long open_hdf5_files() { return static_cast<long long>(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE)); }

// Bytes the io layer writes (file and journal) to do `fn`.
template <class Fn>
long long bytes_written_by(Fn&& fn) {
  constexpr long long kPlenty = 1LL << 40;
  DiskLimit limit(kPlenty);
  fn();
  return kPlenty - detail::disk_space_left();
}

// What must hold after a write that ran out of space: an error naming the file and the reason, the
// file byte for byte as before, no journal, no open HDF5 file, and the earlier runs readable.
void expect_clean_failure(const std::string& error, const std::string& path, const std::string& before,
                          const std::vector<RunRecord>& earlier, const std::string& where) {
  EXPECT_NE(error.find(path), std::string::npos) << where << ": " << error;
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << where << ": " << error;
  EXPECT_NE(error.find("as it was before this write"), std::string::npos) << where << ": " << error;
  EXPECT_EQ(open_hdf5_files(), 0) << where;
  EXPECT_FALSE(exists(detail::Journal::path_for(path))) << where;
  EXPECT_TRUE(read_bytes(path) == before) << where << ": the file was not rolled back";
  ResultStore store(path, Mode::kReadOnly);
  ASSERT_EQ(store.list_runs().size(), earlier.size()) << where;
  for (const RunRecord& r : earlier) {
    EXPECT_EQ(run_difference(store.read_run(r.task, r.method, r.seed), r), "") << where;
  }
}

std::vector<RunRecord> earlier_runs() {
  return {make_run("t0", "lorahub", 0), make_run("t0", "zero-shot", 0), make_failed_run("t1", "lorahub", 2)};
}

TEST(ResultStoreDiskFull, RunningOutOfSpaceAnywhereInAWriteRollsItBackAndAResumeCompletes) {
  TempDir dir;
  const std::string base = dir.file("base.h5");
  const std::vector<RunRecord> earlier = earlier_runs();
  {
    ResultStore store(base, Mode::kCreate);
    store.set_job_attrs({{"job_config", "{}"}});
    for (const RunRecord& r : earlier) store.write_run(r);
  }
  const std::string before = read_bytes(base);
  const RunRecord next = make_run("t1", "lorahub", 2, RunShape{20, 16, 16, 1024, 60});  // replaces the failed run
  const std::string work = dir.file("work.h5");
  write_bytes(work, before);
  const long long needed = bytes_written_by([&] { ResultStore(work, Mode::kResume).write_run(next); });
  const std::string after = read_bytes(work);
  ASSERT_GT(needed, 100000);  // 16 composed matrices of 64 KiB: most of it raw data written directly

  // Space for 0, 1, ... bytes of the write, then evenly over the rest: the journal's header, its undo
  // records, raw data, and the metadata flushed by H5Fclose all meet a full disk somewhere.
  std::vector<long long> limits;
  for (long long n = 0; n < 64; n += 7) limits.push_back(n);
  for (int i = 1; i < 30; ++i) limits.push_back(needed * i / 30);
  limits.push_back(needed - 1);
  int failures = 0;
  for (long long n : limits) {
    const std::string where = "space for " + std::to_string(n) + " of " + std::to_string(needed) + " bytes";
    write_bytes(work, before);
    std::string error;
    {
      ResultStore store(work, Mode::kResume);
      DiskLimit limit(n);
      try {
        store.write_run(next);
      } catch (const core::Error& e) {
        error = e.what();
      }
    }
    ASSERT_FALSE(error.empty()) << where << ": the write succeeded";
    ++failures;
    expect_clean_failure(error, work, before, earlier, where);
    // With space again, the same write completes and gives the bytes of an uninterrupted one.
    ResultStore(work, Mode::kResume).write_run(next);
    EXPECT_TRUE(read_bytes(work) == after) << where << ": resumed file differs from an uninterrupted one";
  }
  EXPECT_EQ(failures, static_cast<int>(limits.size()));
  {
    write_bytes(work, before);
    DiskLimit limit(needed);
    ResultStore(work, Mode::kResume).write_run(next);
  }
  EXPECT_TRUE(read_bytes(work) == after) << "exactly enough space";
}

TEST(ResultStoreDiskFull, AJobThatFillsTheDiskKeepsItsRunsAndResumesToTheSameFile) {
  TempDir dir;
  std::vector<RunRecord> runs;
  for (std::int64_t seed = 0; seed < 6; ++seed) runs.push_back(make_run("navigate", "lorahub", seed, RunShape{8, 8, 8, 512, 30}));
  auto write_all = [&](const std::string& path) {
    ResultStore store(path, Mode::kResume);
    for (const RunRecord& r : runs) {
      if (!store.has_complete_run(r.task, r.method, r.seed)) store.write_run(r);
    }
  };
  const std::string reference = dir.file("reference.h5");
  const long long needed = bytes_written_by([&] { write_all(reference); });
  for (int part = 1; part < 8; ++part) {
    const std::string path = dir.file("full" + std::to_string(part) + ".h5");
    const long long space = needed * part / 8;
    std::string error;
    {
      DiskLimit limit(space);
      try {
        write_all(path);
      } catch (const core::Error& e) {
        error = e.what();
      }
    }
    ASSERT_FALSE(error.empty()) << "space " << space << " of " << needed;
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_EQ(open_hdf5_files(), 0);
    if (exists(path)) {
      ResultStore store(path, Mode::kReadOnly);
      for (const RunKey& k : store.list_runs()) {
        EXPECT_EQ(k.status, "complete");
        EXPECT_EQ(run_difference(store.read_run(k.task, k.method, k.seed), runs[static_cast<std::size_t>(k.seed)]), "");
      }
    }
    write_all(path);
    EXPECT_TRUE(read_bytes(path) == read_bytes(reference)) << "space " << space << ": resumed file differs";
  }
}

TEST(ResultStoreDiskFull, CreatingOrLabellingAFileOnAFullDiskFailsCleanly) {
  TempDir dir;
  const std::string path = dir.file("new.h5");
  const long long needed = bytes_written_by([&] { ResultStore(dir.file("probe.h5"), Mode::kCreate); });
  for (long long space : {0LL, needed / 2, needed - 1}) {
    DiskLimit limit(space);
    try {
      ResultStore store(path, Mode::kCreate);
      ADD_FAILURE() << "created with " << space << " bytes of space";
    } catch (const core::Error& e) {
      EXPECT_NE(std::string(e.what()).find("creating results file " + path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(exists(path));
    EXPECT_EQ(open_hdf5_files(), 0);
  }
  ResultStore store(path, Mode::kCreate);
  const std::string before = read_bytes(path);
  {
    DiskLimit limit(40);  // the journal's header fits, the attribute does not
    try {
      store.set_job_attrs({{"job_config", std::string(5000, 'x')}});
      ADD_FAILURE() << "set_job_attrs succeeded";
    } catch (const core::Error& e) {
      EXPECT_NE(std::string(e.what()).find("setting job attributes in " + path + " failed"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(read_bytes(path) == before);
  EXPECT_FALSE(exists(detail::Journal::path_for(path)));
  EXPECT_EQ(open_hdf5_files(), 0);
}

}  // namespace
}  // namespace lorahub::io
