// A library as a job lists it (no weights loaded) and the modules each run uses.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/job/library.h"

namespace fs = std::filesystem;
namespace job = lorahub::job;

namespace {

class JobLibraryFolders : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("lorahub_job_library_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    for (const char* name : {"m2", "m0", "m1"}) {
      fs::create_directories(root_ / "lib" / name);
      std::ofstream(root_ / "lib" / name / "adapter_config.json") << R"({"r": 4, "lora_alpha": 8, "target_modules": ["q"]})";
    }
    fs::create_directories(root_ / "lib" / "not_an_adapter");
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(JobLibraryFolders, AFolderListsItsAdaptersByName) {
  EXPECT_EQ(job::library_module_names((root_ / "lib").string()), (std::vector<std::string>{"m0", "m1", "m2"}));
  // One adapter folder is a library of one.
  EXPECT_EQ(job::library_module_names((root_ / "lib" / "m1").string()), std::vector<std::string>{"m1"});
  EXPECT_EQ(job::library_adapter_config((root_ / "lib").string()).at("r"), "4");
  EXPECT_TRUE(job::library_adapter_config("").empty());
}

TEST_F(JobLibraryFolders, AListFileKeepsItsOrderAndNamesBadLines) {
  std::ofstream(root_ / "list.txt") << "# two modules\nlib/m2\n\n" << (root_ / "lib" / "m0").string() << "  # absolute\n";
  EXPECT_EQ(job::library_module_names((root_ / "list.txt").string()), (std::vector<std::string>{"m2", "m0"}));
  std::ofstream(root_ / "bad.txt") << "lib/m2\nlib/no_such_module\n";
  try {
    job::library_module_folders((root_ / "bad.txt").string());
    FAIL() << "no error";
  } catch (const lorahub::core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(job::library_module_folders((root_ / "lib" / "not_an_adapter").string()), lorahub::core::Error);
  EXPECT_THROW(job::library_module_folders((root_ / "nothing").string()), lorahub::core::Error);
}

TEST(JobLibrary, CpythonModuleSamplingReplaysTheReference) {
  // The published library's 196 names, sampled as random.seed(s); random.sample(names, 20).
  std::vector<std::string> names;
  std::ifstream in(std::string(LORAHUB_TEST_FIXTURES) + "/sampling/lorahub-flan-t5-large-modules.txt");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  ASSERT_EQ(names.size(), 196u);
  std::ifstream oracle_in(std::string(LORAHUB_TEST_FIXTURES) + "/sampling/cpython-random.json");
  auto oracle = nlohmann::json::parse(oracle_in);
  int checked = 0;
  for (const auto& s : oracle["sample"]) {
    auto got = job::choose_modules(196, 20, s["seed"].get<std::int64_t>(), lorahub::data::Sampler::kCpython);
    EXPECT_EQ(got, s["result"].get<std::vector<std::size_t>>()) << "seed " << s["seed"];
    ++checked;
  }
  EXPECT_GE(checked, 5);
  EXPECT_NE(job::choose_modules(196, 20, 1, lorahub::data::Sampler::kNative), job::choose_modules(196, 20, 1, lorahub::data::Sampler::kCpython));
}

}  // namespace
