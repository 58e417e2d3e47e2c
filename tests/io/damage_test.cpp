// Damaged and old results files: a damaged run group is reported alone (the others still read, resume
// refuses the file, merge skips the run, export of it fails), a damaged journal is never half-applied,
// the same runs give the same bytes, and files of format_version 1 are still read.
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/journal.h"
#include "io/posix_io.h"
#include "io/run_fixtures.h"
#include "lorahub/core/error.h"
#include "lorahub/io/merge.h"
#include "lorahub/io/peft_export.h"
#include "lorahub/io/result_store.h"
#include "support/errors.h"

namespace lorahub::io {
namespace {
using lorahub::test::error_text;

using namespace test;  // the run fixtures and Mode (run_fixtures.h)

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Where HDF5 put an object's header.
haddr_t header_address(const std::string& path, const std::string& object) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(file, 0);
  H5O_info_t info;
  EXPECT_GE(H5Oget_info_by_name2(file, object.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT), 0);
  H5Fclose(file);
  return info.addr;
}

void flip_byte(const std::string& path, std::size_t offset) {
  std::string bytes = read_bytes(path);
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5a);
  write_bytes(path, bytes);
}

std::vector<RunRecord> sample_runs() {
  return {make_run("navigate", "lorahub", 1), make_run("navigate", "lorahub", 2), make_run("navigate", "zero-shot", 0),
          make_run("snarks", "lorahub", 1), make_failed_run("snarks", "lorahub", 2)};
}

std::string write_sample(const TempDir& dir, const std::string& name) {
  std::string path = dir.file(name);
  ResultStore store(path, Mode::kCreate);
  store.set_job_attrs({{"job_config", "{}"}});
  for (const RunRecord& r : sample_runs()) store.write_run(r);
  return path;
}

TEST(Damage, ADamagedRunIsReportedAloneWhileTheOthersStillRead) {
  TempDir dir;
  std::string path = write_sample(dir, "r.h5");
  flip_byte(path, header_address(path, "/runs/navigate/seed_2") + 12);  // inside its checksummed header
  ResultStore store(path, Mode::kReadOnly);
  std::vector<RunKey> keys = store.list_runs();
  ASSERT_EQ(keys.size(), sample_runs().size());
  for (const RunKey& k : keys) {
    if (k.group == "/runs/navigate/seed_2") {
      EXPECT_EQ(k.status, "damaged");
      EXPECT_TRUE(contains(k.problem, path)) << k.problem;
      EXPECT_TRUE(contains(k.problem, "checksum")) << k.problem;  // HDF5's own reason
      continue;
    }
    EXPECT_NE(k.status, "damaged") << k.group;
    for (const RunRecord& r : sample_runs()) {
      if (ResultStore::group_path(r.task, r.method, r.seed) == k.group) {
        EXPECT_EQ(run_difference(store.read_run(r.task, r.method, r.seed), r), "") << k.group;
      }
    }
  }
  std::string read = error_text([&] { store.read_run("navigate", "lorahub", 2); });
  EXPECT_TRUE(contains(read, "cannot be read (group /runs/navigate/seed_2)") && contains(read, path)) << read;
  std::string exported = error_text([&] { export_peft_adapter(store.read_run("navigate", "lorahub", 2), dir.file("x")); });
  EXPECT_TRUE(contains(exported, "/runs/navigate/seed_2")) << exported;

  // HDF5 can neither replace nor unlink a group whose header fails its checksum, so resume says what to do.
  std::string resume = error_text([&] { ResultStore(path, Mode::kResume); });
  EXPECT_TRUE(contains(resume, "group /runs/navigate/seed_2 is damaged") && contains(resume, "lorahub merge")) << resume;

  MergeOutcome merged = merge_results(dir.file("merged.h5"), {path});
  EXPECT_EQ(merged.written, sample_runs().size() - 1);
  ASSERT_EQ(merged.skipped.size(), 1u);
  EXPECT_TRUE(contains(merged.skipped[0], path + ": group /runs/navigate/seed_2 is damaged")) << merged.skipped[0];
  ResultStore repaired(dir.file("merged.h5"), Mode::kResume);  // the merged file can be continued
  repaired.write_run(make_run("navigate", "lorahub", 2));
  EXPECT_EQ(repaired.list_runs().size(), sample_runs().size());
}

TEST(Damage, ADamagedTaskGroupIsListedAsOneDamagedContainer) {
  TempDir dir;
  std::string path = write_sample(dir, "r.h5");
  flip_byte(path, header_address(path, "/runs/navigate") + 12);
  std::vector<RunKey> keys = ResultStore(path, Mode::kReadOnly).list_runs();
  ASSERT_EQ(keys.size(), 3u);  // the damaged navigate group, and snarks' two runs
  EXPECT_TRUE(keys[0].container);
  EXPECT_EQ(keys[0].status, "damaged");
  EXPECT_EQ(keys[0].group, "/runs/navigate");
  EXPECT_EQ(keys[0].task, "navigate");
  EXPECT_TRUE(contains(keys[0].problem, path)) << keys[0].problem;
  EXPECT_EQ(keys[1].task, "snarks");
  EXPECT_EQ(keys[2].status, "failed");
}

TEST(Damage, ADamagedJournalIsNeverHalfApplied) {
  TempDir dir;
  const std::string path = write_sample(dir, "r.h5");
  const std::string journal = detail::Journal::path_for(path);
  const std::string before = read_bytes(path);

  // An empty journal is a committed transaction: it just goes.
  write_bytes(journal, "");
  ResultStore(path, Mode::kReadOnly);
  EXPECT_FALSE(exists(journal));

  // A header that fails its checksum: the file is not used and the journal stays for a person to see.
  write_bytes(journal, std::string(40, 'x'));
  std::string header = error_text([&] { ResultStore(path, Mode::kReadOnly); });
  EXPECT_TRUE(contains(header, "journal " + journal + " is damaged (bad header")) << header;
  EXPECT_TRUE(exists(journal));
  std::remove(journal.c_str());

  // A writer killed just before its commit leaves a whole journal; damage in its first record, with more
  // after it, is not a torn tail.
  detail::arm_crash(0, false);
  std::string probe = dir.file("probe.h5");
  write_bytes(probe, before);
  ResultStore(probe, Mode::kResume).write_run(make_run("t9", "lorahub", 9));
  const long commit_point = detail::crash_points_passed() - 2;  // commit truncates, then two around the unlink
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    detail::arm_crash(commit_point, false);
    try {
      ResultStore(path, Mode::kResume).write_run(make_run("t9", "lorahub", 9));
    } catch (...) {
    }
    _exit(0);  // not killed: the test below fails
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer not killed before its commit";
  const std::string hot = read_bytes(journal);
  ASSERT_GT(hot.size(), 32u + 24 + 8 + 100);  // a header and undo records
  std::string damaged = hot;
  damaged[32 + 24 + 3] = static_cast<char>(damaged[32 + 24 + 3] ^ 1);  // first record's data
  write_bytes(journal, damaged);
  const std::string killed = read_bytes(path);
  std::string record = error_text([&] { ResultStore(path, Mode::kReadOnly); });
  EXPECT_TRUE(contains(record, "record 1 at byte 32 fails its checksum")) << record;
  EXPECT_TRUE(read_bytes(path) == killed) << "a damaged journal was applied";
  // The same journal undamaged rolls the file back byte for byte.
  write_bytes(journal, hot);
  ResultStore(path, Mode::kReadOnly);
  EXPECT_FALSE(exists(journal));
  EXPECT_TRUE(read_bytes(path) == before);
}

// Object headers of the 1.10 format may carry four timestamps; the store never writes them, so writing the
// same runs in the same order gives the same bytes whenever it happens (the root group included).
TEST(Damage, SameRunsInTheSameOrderGiveTheSameBytesWithoutTimestamps) {
  TempDir dir;
  std::string a = write_sample(dir, "a.h5");
  std::string b = write_sample(dir, "b.h5");
  const std::string bytes = read_bytes(a);
  EXPECT_TRUE(bytes == read_bytes(b));
  int headers = 0;
  for (std::size_t at = bytes.find("OHDR"); at != std::string::npos; at = bytes.find("OHDR", at + 4)) {
    ++headers;
    const auto flags = static_cast<unsigned char>(bytes[at + 5]);
    EXPECT_EQ(flags & 0x20, 0) << "object header at " << at << " stores times";
  }
  EXPECT_GT(headers, 20);
}

// Links and attributes stay in the (checksummed) object headers however many there are: no fractal heap
// (FRHP) or v2 B-tree (BTHD) is ever written. HDF5 1.10 double-frees when a damaged dense group fails to
// list, which is how a mutant of an end-to-end results file crashed `lorahub report`.
TEST(Damage, ManyLinksAndAttributesStayInTheObjectHeader) {
  TempDir dir;
  std::string path = dir.file("many.h5");
  {
    ResultStore store(path, Mode::kCreate);
    for (std::int64_t seed = 0; seed < 12; ++seed) store.write_run(make_run("navigate", "lorahub", seed, {5, 24, 4, 32, 7}));
  }
  const std::string bytes = read_bytes(path);
  EXPECT_EQ(bytes.find("FRHP"), std::string::npos);
  EXPECT_EQ(bytes.find("BTHD"), std::string::npos);
  EXPECT_EQ(ResultStore(path, Mode::kReadOnly).list_runs().size(), 12u);
}

// tests/fixtures/results-format1/README.md: written by the last version of format 1.
TEST(Damage, FormatVersion1FilesAreReadNotContinuedAndMergeIntoTheCurrentFormat) {
  TempDir dir;
  const std::string path = dir.file("old.h5");
  write_bytes(path, read_bytes(std::string(LORAHUB_TEST_FIXTURES) + "/results-format1/results.h5"));
  RunRecord empty;
  empty.task = "snarks";
  empty.method = "icl";
  empty.seed = 0;
  empty.status = "complete";
  const std::vector<RunRecord> runs = {make_run("navigate", "lorahub", 0), make_run("navigate", "zero-shot", 1, {0, 0, 0, 0, 4}),
                                       make_failed_run("snarks", "lorahub", 2), empty};
  {
    ResultStore store(path, Mode::kReadOnly);
    EXPECT_EQ(store.job_attrs().at("job_config"), "{\"tasks\": [\"navigate\", \"snarks\"], \"seeds\": [0, 1, 2]}");
    ASSERT_EQ(store.list_runs().size(), runs.size());
    for (const RunRecord& r : runs) EXPECT_EQ(run_difference(store.read_run(r.task, r.method, r.seed), r), "") << r.task;
  }
  std::string resume = error_text([&] { ResultStore(path, Mode::kResume); });
  EXPECT_TRUE(contains(resume, path + " has format_version 1") && contains(resume, "lorahub merge")) << resume;
  const std::string merged = dir.file("new.h5");
  EXPECT_EQ(merge_results(merged, {path}).written, runs.size());
  ResultStore store(merged, Mode::kResume);
  EXPECT_EQ(store.job_attrs().at("job_config"), "{\"tasks\": [\"navigate\", \"snarks\"], \"seeds\": [0, 1, 2]}");
  for (const RunRecord& r : runs) EXPECT_EQ(run_difference(store.read_run(r.task, r.method, r.seed), r), "") << r.task;
  H5F_info2_t info;
  hid_t file = H5Fopen(merged.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  ASSERT_GE(H5Fget_info2(file, &info), 0);
  H5Fclose(file);
  EXPECT_EQ(info.super.version, 3u);
}

}  // namespace
}  // namespace lorahub::io
