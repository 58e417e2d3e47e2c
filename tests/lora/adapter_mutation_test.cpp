// Mutation test over adapter folders: thousands of seeded variants of a real PEFT adapter (adapter_config.json
// fields, regex target_modules, truncated and garbled JSON, weights with NaN/Inf, wrong shapes, dtypes and keys)
// must each load consistently or throw core::Error naming the folder — never crash, hang or throw anything else.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "lora/adapter_folder.h"
#include "lorahub/core/error.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"

namespace lorahub::lora {
namespace {
using core::Error;
using Json = nlohmann::ordered_json;

struct Stats {
  int accepted = 0;
  int rejected = 0;
};

// An accepted adapter must be what load_adapter promises: valid config values, finite float32 factors of rank r
// that fit the model, every module targeted, every targeted projection present, and a config that round-trips.
void expect_consistent(const LoraAdapter& a, const model::T5ModelImpl* m, const std::string& label) {
  const auto& c = a.config;
  EXPECT_GE(c.r, 1) << label;
  EXPECT_LE(c.r, AdapterConfig::kMaxRank) << label;
  EXPECT_TRUE(c.lora_alpha > 0 && c.lora_alpha <= AdapterConfig::kMaxAlpha) << label << ": alpha " << c.lora_alpha;
  EXPECT_TRUE(std::isfinite(c.scaling()) && c.scaling() > 0) << label;
  EXPECT_FALSE(a.modules.empty()) << label;
  for (const auto& [name, ab] : a.modules) {
    const auto& [A, B] = ab;
    ASSERT_EQ(A.dim(), 2) << label << ": " << name;
    ASSERT_EQ(B.dim(), 2) << label << ": " << name;
    EXPECT_EQ(A.scalar_type(), torch::kFloat32) << label;
    EXPECT_EQ(A.size(0), c.r) << label << ": " << name;
    EXPECT_EQ(B.size(1), c.r) << label << ": " << name;
    EXPECT_TRUE(torch::isfinite(A).all().item<bool>() && torch::isfinite(B).all().item<bool>())
        << label << ": " << name;
    EXPECT_TRUE(c.targets(name)) << label << ": " << name;
    if (m) {
      auto p = m->projection(name);
      EXPECT_EQ(A.size(1), p->in_features()) << label << ": " << name;
      EXPECT_EQ(B.size(0), p->out_features()) << label << ": " << name;
    }
  }
  if (m) {
    for (const auto& name : m->projection_names()) {
      EXPECT_EQ(c.targets(name), a.modules.count(name) == 1) << label << ": " << name;
    }
  }
  const auto back = AdapterConfig::parse(c.to_json(), label + " (round trip)");
  EXPECT_EQ(back.r, c.r) << label;
  EXPECT_EQ(back.lora_alpha, c.lora_alpha) << label;
  EXPECT_EQ(back.use_rslora, c.use_rslora) << label;
  EXPECT_EQ(back.target_regex, c.target_regex) << label;
  EXPECT_EQ(back.target_modules, c.target_modules) << label;
  EXPECT_EQ(back.layers_to_transform, c.layers_to_transform) << label;
  EXPECT_EQ(back.layers_pattern, c.layers_pattern) << label;
}

class AdapterMutation : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = model::load_t5(test::kGatedFixture);
    config_text_ = test::kGatedFixture + "/lora_0/adapter_config.json";
    std::ifstream in(config_text_);
    config_text_.assign(std::istreambuf_iterator<char>(in), {});
    config_ = Json::parse(config_text_);
    for (auto& [key, t] : model::load_adapter_weights(test::kGatedFixture + "/lora_0")) weights_[key] = t.clone();
    dir_ = tmp_.fresh("variant");
  }

  // Writes one variant and loads it with and without the model.
  void run(const std::string& config_text, const model::StateDict& weights, const std::string& label) {
    test::write_text(dir_ + "/adapter_config.json", config_text);
    try {
      model::save_safetensors(dir_ + "/adapter_model.safetensors", weights);
    } catch (const Error& e) {
      ++unwritable_;  // the writer refuses it (e.g. an empty key): nothing to load
      return;
    }
    for (const model::T5ModelImpl* m : {static_cast<const model::T5ModelImpl*>(model_.get()),
                                        static_cast<const model::T5ModelImpl*>(nullptr)}) {
      const std::string what = label + (m ? " (with model)" : " (no model)");
      try {
        const auto a = load_adapter(dir_, m);
        ++stats_.accepted;
        expect_consistent(a, m, what);
      } catch (const Error& e) {
        ++stats_.rejected;
        EXPECT_NE(std::string(e.what()).find(dir_), std::string::npos)
            << what << ": does not name the folder: " << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << what << ": not a core::Error: " << e.what();
      }
    }
  }
  void run_config(const Json& config, const std::string& label) {
    // Invalid UTF-8 cannot be dumped strictly; replaced, it still tests the reader.
    run(config.dump(2, ' ', false, Json::error_handler_t::replace), weights_, label);
  }

  test::TempDir tmp_{/*in_memory=*/true};
  model::T5Model model_{nullptr};
  std::string config_text_;
  Json config_;
  model::StateDict weights_;
  std::string dir_;
  Stats stats_;
  int unwritable_ = 0;
};

std::string deep(int depth, const std::string& inner, char open = '(', char close = ')') {
  return std::string(static_cast<std::size_t>(depth), open) + inner +
         std::string(static_cast<std::size_t>(depth), close);
}

std::vector<Json> patterns() {
  return {".*", ".*\\.(q|v)", ".*(SelfAttention|EncDecAttention)\\.(q|v)", ".*\\.[qv]", "(?i).*\\.Q|.*\\.V",
          "(?P<m>.*)\\.(q|v)", "encoder.*\\.q", "decoder.*", ".*\\.q", "q", "(a+)+$", "(q|q)*x", "(.*.*)*\\.(q|v)",
          "(x+x+)+y", "(", ")", "[", "\\", "(?=q)", "(?<=x)q", "(?!k).*", "(q)\\1", "a{1001}", "\\pL{1000}", "\\Z",
          "", deep(100'000, "q"), deep(2000, ".*\\.(q|v)"), std::string(20'000, 'q'), "\xff\xfe", "\\x{110000}",
          std::string("a\0b", 3)};
}

std::vector<Json> values() {
  std::vector<Json> v = {nullptr, true, false, 0, 1, -1, 2, 3, 4, 8, 16, 0.5, -0.0, 1e308, -1e308, 1e-308,
                         AdapterConfig::kMaxRank, AdapterConfig::kMaxRank + 1, std::numeric_limits<std::int64_t>::max(),
                         std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::uint64_t>::max(), 4.0,
                         "", "4", "q", "LORA", "IA3", "block", Json::array(), Json::array({"q"}),
                         Json::array({"q", "v"}), Json::array({"k"}), Json::array({1}), Json::array({0, 1, 2}),
                         Json::array({-1}), Json::array({"layer", "block"}), Json::object(), Json{{"q", 8}}};
  Json nested = Json::array();
  for (int i = 0; i < 50; ++i) nested = Json::array({nested});
  v.push_back(nested);
  for (auto& p : patterns()) v.push_back(p);
  return v;
}

const std::vector<std::string> kFields = {"r", "lora_alpha", "lora_dropout", "target_modules", "layers_to_transform",
                                          "layers_pattern", "use_rslora", "fan_in_fan_out", "peft_type",
                                          "modules_to_save", "use_dora", "rank_pattern", "alpha_pattern",
                                          "exclude_modules", "base_model_name_or_path"};

TEST_F(AdapterMutation, EveryVariantLoadsConsistentlyOrThrowsError) {
  std::mt19937_64 rng(20240607);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const auto pool = values();

  // 1. One field at a time: every value, and removed.
  for (const auto& field : kFields) {
    for (std::size_t v = 0; v < pool.size(); ++v) {
      auto c = config_;
      c[field] = pool[v];
      run_config(c, field + " := value " + std::to_string(v));
    }
    auto c = config_;
    c.erase(field);
    run_config(c, field + " removed");
  }
  // Regex target_modules with layer filters (ignored by PEFT for a regex).
  for (const auto& p : patterns()) {
    auto c = config_;
    c["target_modules"] = p;
    c["layers_to_transform"] = Json::array({0, 1});
    c["layers_pattern"] = pick(2) ? Json("block") : Json(p);
    run_config(c, "regex with layers");
  }
  // 2. Several fields at once, seeded.
  for (int i = 0; i < 300; ++i) {
    auto c = config_;
    const auto n = 2 + pick(3);
    for (std::size_t k = 0; k < n; ++k) c[kFields[pick(kFields.size())]] = pool[pick(pool.size())];
    run_config(c, "multi " + std::to_string(i));
  }
  // 3. The JSON text: truncated, garbled, not an object.
  for (std::size_t len = 0; len < config_text_.size(); len += 3) {
    run(config_text_.substr(0, len), weights_, "truncated to " + std::to_string(len));
  }
  static const char kBytes[] = "\"{}[],:09-e.+ x\\\0\xff\n";
  const std::string bytes(kBytes, sizeof kBytes - 1);  // with the NUL
  for (int i = 0; i < 200; ++i) {
    auto text = config_text_;
    const auto n = 1 + pick(3);
    for (std::size_t k = 0; k < n; ++k) text[pick(text.size())] = bytes[pick(bytes.size())];
    run(text, weights_, "garbled " + std::to_string(i));
  }
  for (const std::string text : {"", " ", "[]", "4", "\"x\"", "null", "{}", "\xef\xbb\xbf{}", "{\"r\": 4,}",
                                 "{\"r\": 4} // comment", "{\"r\": 4, \"r\": 8}", "{\"lora_alpha\": NaN}"}) {
    run(text, weights_, "text '" + text + "'");
  }
  run(deep(100'000, "", '[', ']'), weights_, "100,000-deep array");
  run(config_text_ + std::string(1000, ' '), weights_, "trailing spaces");
  {
    // The same value 100,000 deep in every field.
    for (const auto& field : kFields) {
      auto c = config_;
      c.erase(field);
      auto text = c.dump();
      text.insert(1, "\"" + field + "\": " + deep(100'000, "", '[', ']') + ",");
      run(text, weights_, field + " 100,000 deep");
    }
  }

  // 4. The weights.
  std::vector<std::string> keys;
  for (const auto& [k, t] : weights_) keys.push_back(k);
  const std::string text = config_.dump(2);
  for (int i = 0; i < 360; ++i) {
    auto w = weights_;
    const auto& key = keys[pick(keys.size())];
    auto t = w[key].clone();
    std::string label = "weights " + std::to_string(i) + " " + key;
    switch (i % 18) {
      case 0: t.view(-1)[static_cast<std::int64_t>(pick(static_cast<std::size_t>(t.numel())))] = std::nan(""); break;
      case 1: t.view(-1)[static_cast<std::int64_t>(pick(static_cast<std::size_t>(t.numel())))] = HUGE_VAL; break;
      case 2: t.view(-1)[static_cast<std::int64_t>(pick(static_cast<std::size_t>(t.numel())))] = -HUGE_VAL; break;
      case 3: t = t.to(torch::kFloat64); t.view(-1)[0] = 1e300; break;
      case 4: t = torch::cat({t, t.narrow(0, 0, 1)}, 0); break;
      case 5: t = t.narrow(0, 0, t.size(0) - 1).clone(); break;
      case 6: t = torch::cat({t, t.narrow(1, 0, 1)}, 1); break;
      case 7: t = t.reshape({-1}).clone(); break;
      case 8: t = t.unsqueeze(0).clone(); break;
      case 9: t = t.narrow(0, 0, 0).clone(); break;
      case 10: t = t.to(torch::kFloat16); break;  // fine: converted to float32
      case 11: t = t.to(torch::kBFloat16); break;
      case 12: t = t.to(torch::kInt32); break;
      case 13: t = t.t().contiguous(); break;
      case 14: w.erase(key); break;
      case 15:  // moved to a module the model does not have
        w.erase(key);
        w[peft_key("encoder.block.0.layer.0.SelfAttention.X", key.find(".lora_A.") != std::string::npos)] = t;
        break;
      case 16: {
        const std::vector<std::string> odd = {
            "lora_A.weight",
            "base_model.model.lora_A.weight",
            "base_model.model..lora_B.weight",
            "base_model.model.x.lora_C.weight",
            peft_key("encoder.block.7.layer.0.SelfAttention.q", true),
            peft_key("encoder.block.0.layer.0.SelfAttention.k", true),
            peft_key("encoder.block.99999999999999999999.layer.0.SelfAttention.q", true),
            peft_key(std::string(3000, 'q'), false),
            peft_key("é.q", true),
            ""};
        w[odd[pick(odd.size())]] = t;
        break;
      }
      case 17: w.clear(); break;
    }
    if (i % 18 != 14 && i % 18 != 15 && i % 18 != 16 && i % 18 != 17) w[key] = t;
    run(text, w, label);
  }
  // 5. A config field and a weight at once.
  for (int i = 0; i < 100; ++i) {
    auto c = config_;
    c[kFields[pick(kFields.size())]] = pool[pick(pool.size())];
    auto w = weights_;
    const auto& key = keys[pick(keys.size())];
    w[key] = pick(2) ? torch::full_like(w[key], std::nan("")) : w[key].narrow(0, 0, 1).clone();
    run(c.dump(2, ' ', false, Json::error_handler_t::replace), w, "config and weights " + std::to_string(i));
  }

  const int total = stats_.accepted + stats_.rejected;
  std::printf("[ mutation ] %d loads of adapter variants: %d rejected with Error, %d accepted and consistent (%d "
              "variants the writer refused)\n",
              total, stats_.rejected, stats_.accepted, unwritable_);
  EXPECT_GT(total, 3000);
  EXPECT_GT(stats_.rejected, total / 2);  // most mutations must be caught
  EXPECT_GT(stats_.accepted, 200);        // and harmless ones (dropout, fan_in_fan_out, regexes that fit) still load
}

}  // namespace
}  // namespace lorahub::lora
