// The job configuration: TOML files, overrides, stored JSON and validation, all through the settings table.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/job/config.h"
#include "lorahub/job/plan.h"
#include "support/errors.h"

namespace fs = std::filesystem;
using lorahub::test::error_text;
namespace job = lorahub::job;

namespace {

TEST(JobConfig, TomlErrorsNameFileAndKey) {
  auto expect_error = [](const std::string& toml, const std::string& fragment) {
    try {
      job::JobConfig::from_toml_string(toml, "job.toml", "/tmp");
      ADD_FAILURE() << "no error for:\n" << toml;
    } catch (const lorahub::core::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("job.toml"), std::string::npos) << e.what();
    }
  };
  expect_error("[lorahub]\nbudgett = 3\n", "lorahub.budgett");
  expect_error("[lorahub]\nbudget = \"many\"\n", "lorahub.budget");
  expect_error("[nonsense]\n", "nonsense");
  expect_error("[run]\nseeds = [1, \"x\"]\n", "run.seeds");
  expect_error("[run\n", "invalid TOML");
  auto c = job::JobConfig::from_toml_string(
      "[lorahub]\nbudget = 7\noptimizer = \"cmaes\"\n[run]\nseeds = [3]\n"
      "[[data.task]]\nname = \"t\"\ntrain = \"a.jsonl\"\ntest = \"b.jsonl\"\n",
      "job.toml", "/base");
  ASSERT_EQ(c.data.tasks.size(), 1u);
  EXPECT_EQ(c.data.tasks[0].train_file, "/base/a.jsonl");
  EXPECT_EQ(c.lorahub.optimizer.budget, 7);
  EXPECT_EQ(c.lorahub.optimizer.name, "cmaes");
  EXPECT_EQ(c.run.seeds, std::vector<std::int64_t>{3});
  c.apply_overrides({"lorahub.budget=9", "output.path=out.h5", "run.seeds=[4,5]"});
  EXPECT_EQ(c.lorahub.optimizer.budget, 9);
  EXPECT_EQ(c.run.seeds, (std::vector<std::int64_t>{4, 5}));
  c.apply_overrides({"data.max_test=3"});
  EXPECT_EQ(c.data.max_test, 3);
  EXPECT_EQ(c.data.tasks.size(), 1u) << "an override of another key must keep the task list";
  EXPECT_EQ(c.lorahub.optimizer.name, "cmaes");
  EXPECT_THROW(c.apply_overrides({"lorahub.nope=1"}), lorahub::core::Error);
  EXPECT_THROW(c.apply_overrides({"budget=1"}), lorahub::core::Error);
  // validate() names what is missing.
  try {
    c.validate();
    ADD_FAILURE();
  } catch (const lorahub::core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.path"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

TEST(JobConfig, StoredJsonReadsBackToTheSameConfiguration) {
  auto c = job::JobConfig::from_toml_string(
      "[model]\npath = \"./m\"\ndtype = \"bf16\"\n[library]\nnames = [\"a\", \"b\"]\nsampler = \"native\"\n"
      "[run]\nmethods = [\"lorahub\", \"zero_shot\"]\nshots_seed = \"run\"\n[lorahub]\ninit = [0.5, -0.5]\nl1 = 0.1\n"
      "[[data.task]]\nname = \"t\"\ntrain = \"a.jsonl\"\ntest = \"b.jsonl\"\n",
      "job.toml", "/base");
  const auto j = c.to_json();
  EXPECT_EQ(j["run"]["methods"], (nlohmann::json{"lorahub", "zero-shot"}));  // aliases are stored by their name
  EXPECT_EQ(j["run"]["shots_seed"], "run");
  EXPECT_EQ(j["model"]["tokenizer"], "/base/m/spiece.model");
  auto back = job::JobConfig::from_json(j, "results.h5");
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.model.dtype, job::DType::kBF16);
  EXPECT_FALSE(back.run.shots_seed.has_value());
  ASSERT_EQ(back.data.tasks.size(), 1u);
  EXPECT_EQ(back.data.tasks[0].test_file, "/base/b.jsonl");
  // Keys of other versions are skipped, not errors; a known key of the wrong type is one.
  auto newer = j;
  newer["lorahub"]["future_knob"] = 3;
  newer["future_section"] = {{"x", 1}};
  EXPECT_NO_THROW(job::JobConfig::from_json(newer, "results.h5"));
  newer["lorahub"]["budget"] = "many";
  EXPECT_NE(error_text([&] { job::JobConfig::from_json(newer, "results.h5"); }).find("lorahub.budget"), std::string::npos);
}

TEST(JobConfig, EveryTableKeyIsStoredOrPartOfTheTaskSelection) {
  const auto j = job::JobConfig().to_json();
  for (const auto& s : job::settings()) {
    auto dot = s.key.find('.');
    const auto section = s.key.substr(0, dot), key = s.key.substr(dot + 1);
    const bool selection = section == "data" && (key == "bbh_dir" || key == "task_list" || key == "task");
    EXPECT_EQ(j.contains(section) && j[section].contains(key), !selection) << s.key;
    EXPECT_FALSE(s.help.empty()) << s.key;
  }
}

TEST(JobConfig, BadValuesAreReportedWhereTheyWereSet) {
  auto base = [] {
    return job::JobConfig::from_toml_string("[lorahub]\nl1 = nan\nbudget = 0\n", "job.toml", "/tmp");
  };
  // validate() checks values in table order: budget comes before l1.
  auto msg = error_text([&] { base().validate(); });
  EXPECT_NE(msg.find("job.toml: lorahub.budget must be >= 1, got 0"), std::string::npos) << msg;
  auto c = base();
  c.set("lorahub.budget", "3", "--budget");
  msg = error_text([&] { c.validate(); });
  EXPECT_NE(msg.find("job.toml: lorahub.l1 must be a finite number >= 0, got nan"), std::string::npos) << msg;
  c.set("lorahub.l1", "inf", "--l1");
  msg = error_text([&] { c.validate(); });
  EXPECT_NE(msg.find("--l1: lorahub.l1"), std::string::npos) << msg;
  c.set("lorahub.l1", "0.05", "--l1");
  c.set("data.max_test", "-1", "--max-test");
  msg = error_text([&] { c.validate(); });
  EXPECT_NE(msg.find("--max-test: data.max_test must be >= 0, got -1"), std::string::npos) << msg;
  // Enumerations say what they accept.
  msg = error_text([] { job::JobConfig::from_toml_string("[model]\ndtype = \"fp8\"\n", "m.toml", "/tmp"); });
  EXPECT_NE(msg.find("m.toml: key 'model.dtype' must be \"f32\" or \"bf16\", got \"fp8\""), std::string::npos) << msg;
  msg = error_text([] { job::JobConfig::from_toml_string("[run]\nmethods = [\"lorahub\", \"magic\"]\n", "j.toml", "/"); });
  EXPECT_NE(msg.find("unknown method 'magic'"), std::string::npos) << msg;
}

TEST(JobConfig, MovingTheBbhFolderKeepsTheTaskNames) {
  auto dir = fs::temp_directory_path() / ("lorahub_job_bbh_" + std::to_string(::getpid()));
  for (const char* sub : {"a", "b"}) {
    fs::create_directories(dir / sub);
    for (const char* t : {"x", "y", "z"}) std::ofstream(dir / sub / (std::string(t) + ".json")) << "{}";
  }
  auto c = job::JobConfig::from_toml_string("[data]\nbbh_dir = \"a\"\ntasks = [\"y\", \"x\"]\n", "job.toml", dir.string());
  c.apply_overrides({"data.bbh_dir=" + (dir / "b").string()});
  ASSERT_EQ(c.data.tasks.size(), 2u);
  EXPECT_EQ(c.data.tasks[0].name, "y");
  EXPECT_EQ(c.data.tasks[1].bbh_dir, (dir / "b").string());
  // A folder alone names every task in it; a later layer that names tasks replaces the selection.
  auto all = job::JobConfig::from_toml_string("[data]\nbbh_dir = \"a\"\n", "job.toml", dir.string());
  EXPECT_EQ(all.data.tasks.size(), 3u);
  all.apply_overrides({"data.tasks=[\"z\"]"});
  ASSERT_EQ(all.data.tasks.size(), 1u);
  EXPECT_EQ(all.data.tasks[0].name, "z");
  fs::remove_all(dir);
}

TEST(JobConfig, FlagTextBecomesTomlOfTheSettingsType) {
  auto find = [](const std::string& key) {
    for (const auto& s : job::settings()) {
      if (s.key == key) return s;
    }
    throw std::runtime_error(key);
  };
  EXPECT_EQ(job::flag_to_toml(find("lorahub.init"), "0.1, -0.2,0.3"), "[0.1, -0.2, 0.3]");
  EXPECT_EQ(job::flag_to_toml(find("model.path"), "a b/c"), "\"a b/c\"");
  EXPECT_EQ(job::flag_to_toml(find("model.dtype"), "bf16"), "\"bf16\"");
  EXPECT_EQ(job::flag_to_toml(find("lorahub.budget"), "40"), "40");
  job::JobConfig c;
  c.set("lorahub.init", job::flag_to_toml(find("lorahub.init"), "0.1,0.2"), "--init");
  EXPECT_EQ(c.lorahub.optimizer.init, (std::vector<double>{0.1, 0.2}));
  EXPECT_EQ(c.origin_of("lorahub.init"), "--init");
}

TEST(JobPlan, MethodsRunOncePerSeedAsTheirTableEntrySays) {
  job::JobConfig c;
  c.data.tasks = {job::TaskSource{"t1", "/d", "", "", ""}, job::TaskSource{"t2", "/d", "", "", ""}};
  c.run.methods = {job::Method::kZeroShot, job::Method::kIcl, job::Method::kLoraHub, job::Method::kLoraSingle};
  c.run.seeds = {3, 1};
  auto runs = job::plan_runs(c);
  // Per task: zero-shot once, icl once (fixed shots seed), lorahub per seed, lora-single once.
  ASSERT_EQ(runs.size(), 2u * (1 + 1 + 2 + 1));
  EXPECT_EQ(runs[2].method, job::Method::kLoraHub);
  EXPECT_EQ(runs[2].seed, 3);
  EXPECT_EQ(runs[1].seed, 0);
  c.run.shots_seed.reset();  // each seed draws its own shots: ICL runs per seed too
  EXPECT_EQ(job::plan_runs(c).size(), 2u * (1 + 2 + 2 + 1));
}

}  // namespace
