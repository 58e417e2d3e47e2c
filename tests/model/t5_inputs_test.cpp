// Hostile or nonsensical model inputs: config.json values (non-positive, overflowing, or disagreeing with the
// weights: checked before anything is allocated) and weights holding NaN or Inf.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"
#include "lorahub/model/t5_config.h"
#include "support/temp_dir.h"
#include "support/errors.h"

namespace lorahub::model {
namespace {
namespace fs = std::filesystem;
using lorahub::test::error_text;
using lorahub::test::expect_error;
using lorahub::test::TempDir;
using core::Error;

const std::string kRef = std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference";

nlohmann::json fixture_config(const std::string& name) {
  std::ifstream in(kRef + "/" + name + "/config.json");
  return nlohmann::json::parse(in);
}

// A model folder: the fixture's weights (a copy, or `weights`) with `config` as its config.json.
std::string model_folder(const TempDir& tmp, const std::string& fixture, const nlohmann::json& config,
                         const StateDict* weights = nullptr) {
  const auto dir = tmp.path().string() + "/model";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << config.dump(2);
  if (weights) {
    save_safetensors(dir + "/model.safetensors", *weights);
  } else {
    fs::copy_file(kRef + "/" + fixture + "/model.safetensors", dir + "/model.safetensors");
  }
  return dir;
}

TEST(T5ConfigValues, NonPositiveAndOverflowingDimensionsNameTheKey) {
  const auto base = fixture_config("t5v11_gated_untied");
  auto parse = [&](const nlohmann::json& changes) {
    auto j = base;
    for (const auto& [k, v] : changes.items()) j[k] = v;
    return T5Config::from_json(j, "m/config.json");
  };
  for (const char* key : {"vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads"}) {
    for (const auto& v :
         {nlohmann::json(0), nlohmann::json(-1), nlohmann::json(std::numeric_limits<std::int64_t>::min()),
          nlohmann::json(1e9), nlohmann::json("32"), nlohmann::json::array()}) {
      expect_error([&] { parse({{key, v}}); }, {"m/config.json", key});
    }
    // 2^63 does not fit in int64_t (it wrapped to a negative number).
    expect_error([&] { parse({{key, std::uint64_t{1} << 63}}); }, {"m/config.json", key, "64-bit"});
  }
  // Each alone is representable; their products are not.
  expect_error([&] { parse({{"vocab_size", std::int64_t{1} << 40}, {"d_model", std::int64_t{1} << 30}}); },
               {"m/config.json", "vocab_size × d_model", "overflows"});
  expect_error([&] { parse({{"num_heads", std::int64_t{1} << 32}, {"d_kv", std::int64_t{1} << 32}}); },
               {"num_heads × d_kv", "overflows"});
  expect_error([&] { parse({{"d_ff", std::int64_t{1} << 40}, {"d_model", std::int64_t{1} << 24}}); },
               {"d_model × d_ff"});
  expect_error([&] { parse({{"num_layers", std::int64_t{1} << 50}}); }, {"num_layers", "overflows"});
  // A 1e12-parameter config still fits: the weights decide whether it is real (see below).
  EXPECT_EQ(parse({{"vocab_size", 1'000'000'000}}).vocab_size, 1'000'000'000);
  // The relative-position buckets: HF's formula divides by log(max_distance / max_exact).
  expect_error([&] { parse({{"relative_attention_num_buckets", 2}}); }, {"relative_attention_num_buckets"});
  expect_error([&] { parse({{"relative_attention_max_distance", 4}}); }, {"relative_attention_max_distance"});
  expect_error([&] { parse({{"layer_norm_epsilon", 0}}); }, {"layer_norm_epsilon"});
  expect_error([&] { parse({{"dropout_rate", 1}}); }, {"dropout_rate"});
  expect_error([&] { parse({{"tie_word_embeddings", "false"}}); }, {"tie_word_embeddings"});
  // The num_parameters() of a parsed config cannot overflow.
  const auto big = parse({{"vocab_size", std::int64_t{1} << 20}, {"d_model", std::int64_t{1} << 16}});
  EXPECT_GT(big.num_parameters(), std::int64_t{1} << 36);
}

TEST(T5ConfigValues, DeepAndHugeValuesAreReportedBriefly) {
  auto j = fixture_config("t5v11_gated_untied");
  j["d_model"] = nlohmann::json::parse(std::string(100'000, '[') + std::string(100'000, ']'));
  // nlohmann's dump() would recurse 100,000 levels to quote it.
  const auto msg = error_text([&] { T5Config::from_json(j, "m/config.json"); });
  EXPECT_NE(msg.find("d_model"), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 200u) << msg;
  j = fixture_config("t5v11_gated_untied");
  j["feed_forward_proj"] = std::string(1'000'000, 'x');
  EXPECT_LT(error_text([&] { T5Config::from_json(j, "m/config.json"); }).size(), 400u);
}

TEST(T5ConfigAgainstWeights, DisagreeingConfigNamesTheKeyBeforeAllocating) {
  TempDir tmp;
  const auto base = fixture_config("t5v11_gated_untied");
  auto load_with = [&](const nlohmann::json& changes) {
    auto j = base;
    for (const auto& [k, v] : changes.items()) j[k] = v;
    const auto dir = model_folder(tmp, "t5v11_gated_untied", j);
    return error_text([&] { load_t5(dir); });
  };
  const std::string file = tmp.path().string() + "/model/model.safetensors";
  const std::string config = tmp.path().string() + "/model/config.json";
  // Before: "DefaultCPUAllocator: can't allocate memory: you tried to allocate 128000000000 bytes".
  auto msg = load_with({{"vocab_size", 1'000'000'000}});
  EXPECT_EQ(msg, config + ": vocab_size = 1000000000 but shared.weight in " + file +
                     " has 128 rows (shape [128, 32]; the config implies [1000000000, 32])");
  msg = load_with({{"d_model", 1 << 20}});
  EXPECT_NE(msg.find("d_model = 1048576 but shared.weight in " + file + " has 32 columns"), std::string::npos) << msg;
  msg = load_with({{"d_ff", 1 << 24}});
  EXPECT_NE(msg.find("d_ff = 16777216 but encoder.block.0.layer.1.DenseReluDense.wi_0.weight"), std::string::npos)
      << msg;
  msg = load_with({{"num_heads", 1 << 20}});
  EXPECT_NE(msg.find("num_heads × d_kv = 1048576 × 8 = 8388608 but encoder.block.0.layer.0.SelfAttention.q.weight"),
            std::string::npos)
      << msg;
  msg = load_with({{"num_heads", 6}, {"d_kv", 4}});  // same inner width 24: the bias table tells
  EXPECT_NE(msg.find("num_heads = 6 but encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            std::string::npos)
      << msg;
  msg = load_with({{"relative_attention_num_buckets", 1 << 30}, {"relative_attention_max_distance", 1 << 30}});
  EXPECT_NE(msg.find("relative_attention_num_buckets = 1073741824"), std::string::npos) << msg;
  msg = load_with({{"num_layers", 1'000'000}});
  EXPECT_NE(msg.find(config + ": num_layers = 1000000 but " + file + " has 2 encoder blocks"), std::string::npos)
      << msg;
  msg = load_with({{"num_decoder_layers", 2}});
  EXPECT_NE(msg.find("num_decoder_layers = 2 but " + file + " has 3 decoder blocks"), std::string::npos) << msg;
  msg = load_with({{"feed_forward_proj", "relu"}});
  EXPECT_NE(msg.find("feed_forward_proj = 'relu' is not gated"), std::string::npos) << msg;

  const auto tied = fixture_config("t5v10_relu_tied");
  auto j = tied;
  j["tie_word_embeddings"] = false;
  const auto dir = model_folder(tmp, "t5v10_relu_tied", j);
  msg = error_text([&] { load_t5(dir); });
  EXPECT_NE(msg.find("tie_word_embeddings = false but the checkpoint has no lm_head.weight"), std::string::npos) << msg;
  j = tied;
  j["feed_forward_proj"] = "gated-gelu";
  const auto dir2 = model_folder(tmp, "t5v10_relu_tied", j);
  msg = error_text([&] { load_t5(dir2); });
  EXPECT_NE(msg.find("feed_forward_proj = 'gated-gelu' is gated"), std::string::npos) << msg;
}

TEST(T5ConfigAgainstWeights, AsymmetricStacksAndBothFeedForwardsLoad) {
  // The expected-shape list must agree with the model's own parameters for every layout.
  TempDir tmp;
  for (const char* ff : {"relu", "gated-gelu"}) {
    for (const bool tie : {true, false}) {
      T5Config c;
      c.vocab_size = 40;
      c.d_model = 16;
      c.d_kv = 4;
      c.num_heads = 3;
      c.d_ff = 24;
      c.num_layers = 1;
      c.num_decoder_layers = 3;
      c.relative_attention_num_buckets = 8;
      c.relative_attention_max_distance = 20;
      c.feed_forward_proj = ff;
      c.is_gated_act = std::string(ff) == "gated-gelu";
      c.dense_act_fn = c.is_gated_act ? "gelu_new" : "relu";
      c.tie_word_embeddings = tie;
      auto m = random_t5(c, 7);
      const auto dir = tmp.path().string() + "/" + ff + (tie ? "-tied" : "-untied");
      save_t5(m, dir);
      auto back = load_t5(dir);
      EXPECT_TRUE(torch::equal(back->decoder->blocks[2]->ff->DenseReluDense->wo->weight,
                               m->decoder->blocks[2]->ff->DenseReluDense->wo->weight))
          << dir;
    }
  }
}

TEST(T5Weights, NonFiniteWeightsAreRejectedUnlessTheCheckIsOff) {
  TempDir tmp;
  const auto config = fixture_config("t5v11_gated_untied");
  StateDict w;
  for (const auto& [k, t] : load_checkpoint(kRef + "/t5v11_gated_untied")) w[k] = t.clone();
  const std::string key = "decoder.block.1.layer.1.EncDecAttention.k.weight";
  const std::string file = tmp.path().string() + "/model/model.safetensors";
  for (const double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    auto v = w;
    v[key] = v[key].clone();
    v[key][7][3] = bad;
    const auto dir = model_folder(tmp, "", config, &v);
    for (const auto dtype : {ComputeDType::kF32, ComputeDType::kBF16}) {
      const auto msg = error_text([&] { load_t5(dir, {torch::kCPU, dtype}); });
      EXPECT_NE(msg.find(file + ": key '" + key + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("at [7, 3]"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::isnan(bad) ? "NaN" : (bad > 0 ? "+Inf" : "-Inf")), std::string::npos) << msg;
    }
    RuntimeOptions off;
    off.check_finite = false;
    EXPECT_TRUE(std::isnan(load_t5(dir, off)->decoder->blocks[1]->cross_attention->EncDecAttention->k->weight[7][3]
                               .item<double>()) == std::isnan(bad));
  }
  // Finite in float32, but beyond bfloat16's largest value: Inf after the conversion, so only bf16 rejects it.
  auto v = w;
  v[key] = v[key].clone();
  v[key][0][0] = std::numeric_limits<float>::max();
  const auto dir = model_folder(tmp, "", config, &v);
  EXPECT_NO_THROW(load_t5(dir));
  const auto msg = error_text([&] { load_t5(dir, {torch::kCPU, ComputeDType::kBF16}); });
  EXPECT_NE(msg.find("+Inf at [0, 0]"), std::string::npos) << msg;
}

TEST(CheckFinite, EveryDtypeLayoutAndPosition) {
  for (const auto dtype : {torch::kFloat32, torch::kFloat64, torch::kFloat16, torch::kBFloat16}) {
    // Past several parallel chunks (16 blocks of 16,384 elements each), and in the last element.
    for (const std::int64_t at : {std::int64_t{0}, std::int64_t{300'000}, std::int64_t{999'999}}) {
      auto t = torch::randn({1000, 1000}).to(dtype);
      check_finite(t, "f", "k");
      t.view(-1)[at] = std::nan("");
      if (at < 999'999) t.view(-1)[999'999 - (999'999 - at) / 2] = HUGE_VAL;  // a later one: the first is reported
      const auto msg = error_text([&] { check_finite(t, "f", "k"); });
      EXPECT_NE(
          msg.find(std::string("holds NaN at [") + std::to_string(at / 1000) + ", " + std::to_string(at % 1000) + "]"),
          std::string::npos)
          << c10::toString(dtype) << ": " << msg;
      // Strided: the slow path agrees.
      const auto msg_t = error_text([&] { check_finite(t.t(), "f", "k"); });
      EXPECT_NE(msg_t.find("holds "), std::string::npos) << msg_t;
    }
  }
  check_finite(torch::full({3}, std::numeric_limits<float>::max()), "f", "k");
  check_finite(torch::zeros({0, 5}), "f", "k");
  check_finite(torch::full({4}, 7, torch::kInt64), "f", "k");  // integers are always finite
  expect_error([] { check_finite(torch::full({}, -HUGE_VAL), "file.safetensors", "scalar"); },
               {"file.safetensors: key 'scalar'", "-Inf at []"});
}

}  // namespace
}  // namespace lorahub::model
