// The stored composition, exported as a PEFT folder, is the fixture's lora_composed bit for bit.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/job/library.h"
#include "lorahub/worker/worker.h"
#include "lorahub/io/peft_export.h"
#include "lorahub/io/result_store.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"

namespace fs = std::filesystem;

namespace {

class ExportFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ExportFixture, ComposedRunExportsAsLoraComposed) {
  const std::string dir = std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference/" + GetParam();
  auto tmp = fs::temp_directory_path() / ("lorahub_export_" + GetParam() + "_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "library");
  for (int i = 0; i < 3; ++i) {
    fs::create_directory_symlink(dir + "/lora_" + std::to_string(i), tmp / "library" / ("lora_" + std::to_string(i)));
  }
  auto model = lorahub::model::load_t5(dir);
  const auto library_dir = (tmp / "library").string();
  auto library = lorahub::lora::LoraLibrary::load(lorahub::job::library_module_folders(library_dir), library_dir, model.get());
  // What a worker returns for the evaluation shard that carries the composition.
  auto composition = lorahub::lora::compose(library.stack(), {0.7, -0.3, 1.1});
  lorahub::io::RunRecord r;
  r.task = "fixture";
  r.seed = 1;
  r.status = "complete";
  r.module_names = library.names();
  r.best_weights = {0.7, -0.3, 1.1};
  r.best_loss = 1.0;
  r.history_weights = {r.best_weights};
  r.history_loss = {1.0};
  r.accuracy = 0;
  r.text_attrs["model_path"] = dir;
  for (const auto& a : lorahub::worker::composition_arrays(composition)) r.composed.push_back(a);
  r.adapter_config = lorahub::job::library_adapter_config(library_dir);
  {
    lorahub::io::ResultStore store((tmp / "results.h5").string(), lorahub::io::ResultStore::Mode::kCreate);
    store.write_run(r);
  }
  lorahub::io::ResultStore store((tmp / "results.h5").string(), lorahub::io::ResultStore::Mode::kReadOnly);
  lorahub::io::export_peft_adapter(store.read_run("fixture", "lorahub", 1), (tmp / "exported").string());

  auto exported = lorahub::model::load_tensor_file((tmp / "exported/adapter_model.safetensors").string());
  auto expected = lorahub::model::load_tensor_file(dir + "/lora_composed/adapter_model.safetensors");
  ASSERT_EQ(exported.size(), expected.size());
  for (const auto& [name, t] : expected) {
    ASSERT_TRUE(exported.count(name)) << name;
    EXPECT_TRUE(torch::equal(exported.at(name), t)) << name;
  }
  std::ifstream a(tmp / "exported/adapter_config.json");
  std::ifstream b(dir + "/lora_composed/adapter_config.json");
  auto ja = nlohmann::json::parse(a);
  auto jb = nlohmann::json::parse(b);
  for (const auto* key : {"r", "lora_alpha", "target_modules", "peft_type", "task_type", "fan_in_fan_out", "bias"}) {
    EXPECT_EQ(ja[key], jb[key]) << key;
  }
  // And this engine loads it back as one adapter that equals the composition.
  auto back = lorahub::lora::load_adapter((tmp / "exported").string(), model.get());
  EXPECT_DOUBLE_EQ(back.config.scaling(), library.stack().scaling);
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ExportFixture, ::testing::Values("t5v11_gated_untied", "t5v10_relu_tied"));

TEST(Export, RefusesRunsWithoutComposition) {
  lorahub::io::RunRecord r;
  r.task = "t";
  r.method = "zero-shot";
  r.status = "complete";
  EXPECT_THROW(lorahub::io::export_peft_adapter(r, "/tmp/never"), lorahub::core::Error);
  r.status = "failed";
  EXPECT_THROW(lorahub::io::export_peft_adapter(r, "/tmp/never"), lorahub::core::Error);
}

}  // namespace
