// Hostile or nonsensical adapter inputs: regex target_modules (RE2: linear time, full match, bounded size),
// adapter_config.json values, and adapter weights. Each must load as PEFT would or throw core::Error naming the
// file and key; none may hang or crash.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "lora/adapter_folder.h"
#include "lorahub/core/error.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"
#include "support/errors.h"

namespace lorahub::lora {
namespace {
namespace fs = std::filesystem;
using lorahub::test::error_text;
using lorahub::test::expect_error;
using core::Error;
using test::TempDir;

const std::string kQ = "encoder.block.1.layer.0.SelfAttention.q";
const std::string kV = "decoder.block.2.layer.1.EncDecAttention.v";

AdapterConfig with_targets(const nlohmann::json& target_modules,
                           const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json j = {{"r", 2}, {"lora_alpha", 4}, {"target_modules", target_modules}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return AdapterConfig::parse(j.dump(), "dir/adapter_config.json");
}

void parse_error(const nlohmann::json& target_modules, const std::vector<std::string>& fragments) {
  expect_error([&] { with_targets(target_modules); }, fragments);
}

TEST(AdapterRegex, BacktrackingPatternsReturn) {
  // std::regex explores 2^40 ways to split these names between the nested repetitions (minutes to hours); RE2
  // runs in time linear in the name.
  const std::string as = std::string(40, 'a');
  EXPECT_FALSE(with_targets("(a+)+$").targets(as + "!"));
  EXPECT_TRUE(with_targets("(a+)+$").targets(as));
  EXPECT_FALSE(with_targets("(q|q)*x").targets(std::string(40, 'q')));
  EXPECT_FALSE(with_targets("(.*a){20}").targets(as.substr(0, 19) + std::string(30, 'b')));
  EXPECT_FALSE(with_targets("(x+x+)+y").targets(std::string(5000, 'x')));
  // And on the real names.
  EXPECT_FALSE(with_targets("(.*.*)*\\.k").targets(kQ));
  EXPECT_TRUE(with_targets("(.*.*)*\\.q").targets(kQ));
}

TEST(AdapterRegex, MatchesTheWholeNameAsPythonFullmatch) {
  EXPECT_FALSE(with_targets("q").targets(kQ));
  EXPECT_FALSE(with_targets("SelfAttention").targets(kQ));
  EXPECT_FALSE(with_targets("encoder").targets(kQ));
  EXPECT_TRUE(with_targets(".*SelfAttention\\.q").targets(kQ));
  EXPECT_TRUE(with_targets("encoder.*").targets(kQ));
  EXPECT_FALSE(with_targets(".*decoder.*\\.(q|v)").targets(kQ));
  EXPECT_TRUE(with_targets(".*decoder.*\\.(q|v)").targets(kV));
  // The alternation is inside the full match: "^encoder|.*\.v$" searched anywhere would accept kQ.
  EXPECT_FALSE(with_targets("encoder|.*\\.v").targets(kQ));
  EXPECT_TRUE(with_targets("encoder|.*\\.v").targets(kV));
  // Python syntax RE2 shares: named groups, classes, flags.
  EXPECT_TRUE(with_targets("(?P<stack>encoder|decoder)\\.block\\.\\d+\\..*\\.[qv]").targets(kQ));
  EXPECT_TRUE(with_targets("(?i)ENCODER.*Q").targets(kQ));
  EXPECT_FALSE(with_targets(".*\\.q").targets(kQ + "\n"));  // '.' and the end do not take a newline
}

TEST(AdapterRegex, InvalidAndUnsupportedPatternsNameTheFile) {
  parse_error("(", {"dir/adapter_config.json", "target_modules", "missing )"});
  parse_error("[q", {"dir/adapter_config.json", "target_modules", "missing ]"});
  parse_error(".*(?=q)", {"target_modules", "(?=", "lookaround"});
  parse_error(".*(?<!k)\\.q", {"target_modules", "lookaround"});
  parse_error("(q)\\1", {"target_modules", "\\1", "backreferences"});
  parse_error("a{1001}", {"target_modules", "repetition"});
  parse_error("((q{100}){100}){100}", {"target_modules"});
  expect_error([] { with_targets({"q"}, {{"layers_to_transform", {1}}, {"layers_pattern", "blo(ck"}}); },
               {"dir/adapter_config.json", "layers_pattern", "blo(ck"});
  expect_error([] { with_targets({"q"}, {{"layers_to_transform", {1}}, {"layers_pattern", "a)|(b"}}); },
               {"layers_pattern"});
  // Even where PEFT would not use it (no layers_to_transform).
  expect_error([] { with_targets({"q"}, {{"layers_pattern", "("}}); }, {"layers_pattern", "missing )"});
}

TEST(AdapterRegex, SizeIsBounded) {
  // std::regex's recursive-descent compiler overflows the stack on this (a segfault in `lorahub inspect`).
  std::string deep = std::string(100'000, '(') + "q" + std::string(100'000, ')');
  parse_error(deep, {"dir/adapter_config.json", "target_modules", "200001 characters", "limit"});
  const std::string longest(AdapterConfig::kMaxPatternLength, 'q');
  EXPECT_TRUE(with_targets(longest).targets(longest));
  parse_error(longest + "q", {"characters long", std::to_string(AdapterConfig::kMaxPatternLength)});
  // Deep nesting within the length limit is fine for RE2.
  const std::string nested = std::string(5000, '(') + ".*q" + std::string(5000, ')');
  EXPECT_TRUE(with_targets(nested).targets(kQ));
  // A pattern whose compiled program exceeds the memory bound.
  parse_error("\\pL{1000}", {"target_modules", "pattern too large", "MiB limit"});
}

TEST(AdapterRegex, CompiledOnceAndRecompiledWhenChangedInCode) {
  auto c = with_targets(".*\\.q");
  auto copy = c;  // shares the compiled pattern
  EXPECT_TRUE(copy.targets(kQ));
  copy.target_regex = ".*\\.v";  // changed after compile(): targets() must follow the field, not the cache
  EXPECT_FALSE(copy.targets(kQ));
  EXPECT_TRUE(copy.targets(kV));
  EXPECT_TRUE(c.targets(kQ));
  copy.target_regex = "(";
  EXPECT_THROW(copy.targets(kQ), Error);
  AdapterConfig code;  // built in code, never compiled
  code.target_modules = {"q"};
  EXPECT_TRUE(code.targets(kQ));
  code.target_regex = "encoder.*";
  EXPECT_TRUE(code.targets(kQ));
  EXPECT_FALSE(code.targets(kV));
}

TEST(AdapterRegex, LayersFollowPeft) {
  auto block1 = with_targets({"q"}, {{"layers_to_transform", {1}}});
  EXPECT_TRUE(block1.targets(kQ));  // PEFT's common patterns: "block" before "layer"
  EXPECT_FALSE(block1.targets("encoder.block.0.layer.1.SelfAttention.q"));
  auto by_layer = with_targets({"q"}, {{"layers_to_transform", 0}, {"layers_pattern", "layer"}});
  EXPECT_TRUE(by_layer.targets(kQ));
  auto listed = with_targets({"q"}, {{"layers_to_transform", {0}}, {"layers_pattern", {"layers", "layer"}}});
  EXPECT_TRUE(listed.targets(kQ));
  // A pattern with its own group: the index is still the last group.
  auto grouped = with_targets({"q"}, {{"layers_to_transform", {1}}, {"layers_pattern", "(block|blocks)"}});
  EXPECT_TRUE(grouped.targets(kQ));
  // An index past 64 bits is no layer in the list (std::stoll threw std::out_of_range here).
  EXPECT_FALSE(block1.targets("encoder.block.99999999999999999999999.layer.0.SelfAttention.q"));
  EXPECT_TRUE(block1.targets("encoder.blocks.1.SelfAttention.q"));   // "blocks" is one of the common names
  EXPECT_FALSE(block1.targets("encoder.stack.1.SelfAttention.q"));   // no layer pattern: not a layer PEFT counts
  // PEFT ignores layers_to_transform for a regex target_modules.
  EXPECT_TRUE(with_targets(".*\\.q", {{"layers_to_transform", {5}}}).targets(kQ));
  // A list entry matches the whole name or a "."-separated suffix, never a bare suffix.
  EXPECT_FALSE(with_targets({"Attention.q"}).targets("encoder.block.1.layer.0.SelfAttention.qq"));
  EXPECT_TRUE(with_targets({"SelfAttention.q"}).targets(kQ));
  EXPECT_FALSE(with_targets({"fAttention.q"}).targets(kQ));
}

TEST(AdapterConfigValues, NonsensicalValuesAreRejectedWithTheKey) {
  auto parse = [](const nlohmann::json& changes) {
    nlohmann::json j = {{"r", 4}, {"lora_alpha", 8}, {"target_modules", {"q", "v"}}};
    for (const auto& [k, v] : changes.items()) j[k] = v;
    return AdapterConfig::parse(j.dump(), "x/adapter_config.json");
  };
  for (const auto& alpha : {nlohmann::json(-8), nlohmann::json(0), nlohmann::json(1e308), nlohmann::json(-0.0),
                            nlohmann::json("8"), nlohmann::json(nullptr), nlohmann::json::array()}) {
    expect_error([&] { parse({{"lora_alpha", alpha}}); }, {"x/adapter_config.json", "lora_alpha"});
  }
  // Neither NaN nor a number beyond double's range (1e400) is JSON: the reader rejects both.
  expect_error([] { AdapterConfig::parse(R"({"r": 4, "lora_alpha": 1e400, "target_modules": ["q"]})", "x.json"); },
               {"x.json", "1e400"});
  expect_error([] { AdapterConfig::parse(R"({"r": 4, "lora_alpha": NaN, "target_modules": ["q"]})", "x.json"); },
               {"x.json", "invalid JSON"});
  for (const auto& r : {nlohmann::json(0), nlohmann::json(-1), nlohmann::json(4.0), nlohmann::json(1e9),
                        nlohmann::json(AdapterConfig::kMaxRank + 1), nlohmann::json(~std::uint64_t{0}),
                        nlohmann::json(std::numeric_limits<std::int64_t>::min()), nlohmann::json("4")}) {
    expect_error([&] { parse({{"r", r}}); }, {"x/adapter_config.json", "'r'"});
  }
  EXPECT_EQ(parse({{"r", AdapterConfig::kMaxRank}}).r, AdapterConfig::kMaxRank);
  EXPECT_DOUBLE_EQ(parse({{"lora_alpha", AdapterConfig::kMaxAlpha}}).scaling(), AdapterConfig::kMaxAlpha / 4);
  // Types that would silently change the computation.
  expect_error([&] { parse({{"use_rslora", "true"}}); }, {"use_rslora"});
  expect_error([&] { parse({{"use_dora", 1}}); }, {"use_dora"});
  expect_error([&] { parse({{"lora_dropout", 2}}); }, {"lora_dropout"});
  expect_error([&] { parse({{"layers_to_transform", {-1}}}); }, {"layers_to_transform"});
  expect_error([&] { parse({{"layers_to_transform", {1.5}}}); }, {"layers_to_transform"});
  expect_error([&] { parse({{"layers_to_transform", "1"}}); }, {"layers_to_transform"});
  expect_error([&] { parse({{"layers_pattern", 3}}); }, {"layers_pattern"});
  expect_error([&] { parse({{"rank_pattern", {{"q", 8}}}}); }, {"rank_pattern"});
  expect_error([&] { parse({{"alpha_pattern", {{"q", 8}}}}); }, {"alpha_pattern"});
  expect_error([&] { parse({{"exclude_modules", {"k"}}}); }, {"exclude_modules"});
  // What PEFT writes for unset options loads.
  auto ok = parse({{"rank_pattern", nlohmann::json::object()},
                   {"alpha_pattern", nlohmann::json::object()},
                   {"exclude_modules", nullptr},
                   {"layers_pattern", nullptr},
                   {"use_dora", false},
                   {"lora_dropout", 0.1}});
  EXPECT_EQ(ok.r, 4);
}

TEST(AdapterConfigValues, DeeplyNestedValuesAreReportedWithoutRecursion) {
  // nlohmann's dump() recurses once per level: a message quoting this value overflowed the stack.
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  for (const char* key : {"r", "lora_alpha", "target_modules", "layers_to_transform", "use_rslora", "peft_type"}) {
    nlohmann::json j = {{"r", 4}, {"lora_alpha", 8}, {"target_modules", {"q"}}};
    std::string text = j.dump();
    const std::string field = std::string("\"") + key + "\":";
    const auto at = text.find(field);
    if (at == std::string::npos) {
      text.insert(1, field + deep + ",");
    } else {
      const auto end = text.find_first_of(",}", at);
      text.replace(at + field.size(), end - at - field.size(), deep);
    }
    expect_error([&] { AdapterConfig::parse(text, "deep.json"); }, {"deep.json", key, "[[[[...]]]]"});
  }
}

class AdapterWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = model::load_t5(test::kGatedFixture);
    good_ = model::load_adapter_weights(test::kGatedFixture + "/lora_0");
    config_ = R"({"r": 4, "lora_alpha": 8, "target_modules": ["q", "v"], "peft_type": "LORA"})";
  }
  // Writes the adapter with `weights` and returns load_adapter's error message.
  std::string load_error(const model::StateDict& weights) {
    const auto dir = tmp_.fresh("adapter");
    test::write_adapter(dir, config_, weights);
    return error_text([&] { load_adapter(dir, model_.get()); });
  }
  TempDir tmp_;
  model::T5Model model_{nullptr};
  model::StateDict good_;
  std::string config_;
};

TEST_F(AdapterWeights, NanAndInfAreRejectedWithFileKeyAndIndex) {
  const std::string key = peft_key(kQ, true);
  for (const double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    auto w = good_;
    w[key] = w[key].clone();
    w[key][2][5] = bad;
    const auto msg = load_error(w);
    for (const std::string& frag : {std::string("adapter_model.safetensors"), key, std::string("[2, 5]")}) {
      EXPECT_NE(msg.find(frag), std::string::npos) << msg;
    }
    EXPECT_NE(msg.find(std::isnan(bad) ? "NaN" : (bad > 0 ? "+Inf" : "-Inf")), std::string::npos) << msg;
  }
  // float64 weights beyond float32's range become Inf in the conversion: caught after it.
  auto w = good_;
  const std::string b_key = peft_key(kV, false);
  w[b_key] = w[b_key].to(torch::kFloat64);
  w[b_key][0][0] = 1e300;
  const auto msg = load_error(w);
  EXPECT_NE(msg.find(b_key), std::string::npos) << msg;
  EXPECT_NE(msg.find("+Inf"), std::string::npos) << msg;
  // The unchanged weights load.
  const auto dir = tmp_.fresh("good");
  test::write_adapter(dir, config_, good_);
  EXPECT_EQ(load_adapter(dir, model_.get()).modules.size(), 16u);
}

TEST_F(AdapterWeights, MalformedKeysAreRejected) {
  auto with_key = [&](const std::string& key) {
    auto w = good_;
    w[key] = torch::zeros({4, 32});
    return load_error(w);
  };
  // Prefix and suffix overlap: this key names no module (it was read as module "lora_A.weight").
  EXPECT_NE(with_key("base_model.model.lora_A.weight").find("unexpected key"), std::string::npos);
  EXPECT_NE(with_key("base_model.model..lora_A.weight").find("unexpected key"), std::string::npos);
  const auto long_key = peft_key(std::string(5000, 'x'), true);
  EXPECT_NE(with_key(long_key).find("5031 characters long"), std::string::npos);
  // A module name whose layer index overflows 64 bits, in an adapter that filters layers.
  config_ = R"({"r": 4, "lora_alpha": 8, "target_modules": ["q", "v"], "layers_to_transform": [0, 1, 2]})";
  auto w = good_;
  const std::string huge = "encoder.block.99999999999999999999999.layer.0.SelfAttention.q";
  w[peft_key(huge, true)] = torch::zeros({4, 32});
  w[peft_key(huge, false)] = torch::zeros({24, 4});
  EXPECT_NE(load_error(w).find("not matched by target_modules"), std::string::npos);
}

TEST_F(AdapterWeights, OversizedConfigFileIsRejectedBeforeReading) {
  const auto dir = tmp_.fresh("big");
  test::write_adapter(dir, config_, good_);
  fs::resize_file(dir + "/adapter_config.json", std::uintmax_t{1} << 34);  // sparse: 16 GiB of zeros
  expect_error([&] { load_adapter(dir); }, {"adapter_config.json", "17179869184 bytes"});
}

}  // namespace
}  // namespace lorahub::lora
