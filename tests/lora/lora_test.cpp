// PEFT adapters and LoraHub composition against the Hugging Face / PEFT references.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "lorahub/core/error.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"
#include "support/f32_tolerance.h"

namespace fs = std::filesystem;
namespace lm = lorahub::model;
namespace ll = lorahub::lora;
namespace lt = lorahub::test;

namespace {

const std::string kRef = std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference";
const std::vector<double> kWeights = {0.7, -0.3, 1.1};

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return lt::max_abs_diff(a, b);
}

double abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return std::abs(a.item<double>() - b.item<double>()); }

class LoraReference : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kRef + "/" + GetParam();
    ref_ = lm::load_tensor_file(dir_ + "/reference.safetensors");
    model_ = lm::load_t5(dir_);
  }
  const torch::Tensor& ref(const std::string& name) { return ref_.at(name); }
  // Float32 bounds (support/f32_tolerance.h): logits at the model's depth, losses from the logits' bound.
  double logits_tol(const std::string& name) { return lt::logits_tolerance(model_->config(), ref(name)); }
  double loss_tol(const std::string& logits_name) { return lt::token_loss_tolerance(logits_tol(logits_name)); }
  double encoder_tol(const std::string& name) {
    const auto& c = model_->config();
    return lt::f32_tolerance(ref(name), lt::encoder_depth(c), lt::reduction_width(c));
  }
  double tokens() { return static_cast<double>(ref("labels").size(1)); }
  ll::LoraLibrary load_three() {
    std::vector<ll::LoraAdapter> adapters;
    for (int i = 0; i < 3; ++i) adapters.push_back(ll::load_adapter(dir_ + "/lora_" + std::to_string(i), model_.get()));
    return ll::LoraLibrary::from_adapters(std::move(adapters), dir_);
  }
  lm::Seq2SeqOutput run() {
    c10::InferenceMode g;
    return model_->forward(ref("input_ids"), ref("attention_mask"), ref("decoder_input_ids"));
  }
  torch::Tensor generate() {
    lm::GenerateOptions opts;
    opts.max_new_tokens = 8;
    return lm::generate_greedy(*model_, ref("input_ids"), ref("attention_mask"), opts).ids;
  }
  std::string dir_;
  lm::StateDict ref_;
  lm::T5Model model_{nullptr};
};

TEST_P(LoraReference, AdapterConfigAndKeys) {
  auto a = ll::load_adapter(dir_ + "/lora_0", model_.get());
  EXPECT_EQ(a.name, "lora_0");
  EXPECT_EQ(a.config.r, 4);
  EXPECT_DOUBLE_EQ(a.config.scaling(), 2.0);
  EXPECT_EQ(a.modules.size(), GetParam() == "t5v11_gated_untied" ? 16u : 12u);
  EXPECT_TRUE(a.modules.count("decoder.block.1.layer.1.EncDecAttention.v"));
  EXPECT_FALSE(a.modules.count("encoder.block.0.layer.0.SelfAttention.k"));
}

TEST_P(LoraReference, SingleAdapterMerged) {
  auto lib = load_three();
  ll::ScopedAdapters scope(*model_);
  ll::merge(*model_, ll::compose(lib.stack().select({0}), {1.0}));
  auto out = run();
  EXPECT_LT(max_diff(out.logits, ref("lora0.logits")), logits_tol("lora0.logits"));
  auto loss = lm::seq2seq_loss(out.logits, ref("labels"));
  EXPECT_LT(abs_diff(loss.loss, ref("lora0.loss")), loss_tol("lora0.logits"));
  EXPECT_LT(max_diff(loss.token_loss, ref("lora0.token_loss")), loss_tol("lora0.logits"));
  EXPECT_TRUE(torch::equal(generate(), ref("lora0.generated_ids")));
}

TEST_P(LoraReference, CompositionEqualsPeftStateDictArithmetic) {
  auto lib = load_three();
  auto c = ll::compose(lib.stack(), kWeights);
  auto composed = ll::load_adapter(dir_ + "/lora_composed", model_.get());
  ASSERT_EQ(c.targets.size(), composed.modules.size());
  for (std::size_t t = 0; t < c.targets.size(); ++t) {
    const auto& [a, b] = composed.modules.at(c.targets[t]);
    // Accumulated in the reference's order, the composition is bit-identical to PEFT's.
    EXPECT_TRUE(torch::equal(c.a[t], a)) << c.targets[t] << " A max diff " << max_diff(c.a[t], a);
    EXPECT_TRUE(torch::equal(c.b[t], b)) << c.targets[t] << " B max diff " << max_diff(c.b[t], b);
  }
  // ΔW unit checks.
  for (const std::string name : {"encoder.block.0.layer.0.SelfAttention.q", "decoder.block.0.layer.1.EncDecAttention.v"}) {
    auto t = static_cast<std::size_t>(std::find(c.targets.begin(), c.targets.end(), name) - c.targets.begin());
    auto delta = torch::matmul(c.b[t], c.a[t]) * c.scaling;
    // One r-term product per entry, then a scale.
    EXPECT_LT(max_diff(delta, ref("lorahub.delta." + name)), lt::f32_tolerance(ref("lorahub.delta." + name), 1, c.a[t].size(0)))
        << name;
  }
}

TEST_P(LoraReference, LoraHubMergedMatchesReference) {
  auto lib = load_three();
  auto base_q = model_->projection("encoder.block.0.layer.0.SelfAttention.q")->weight.clone();
  {
    ll::ScopedAdapters scope(*model_);
    ll::merge(*model_, ll::compose(lib.stack(), kWeights));
    auto out = run();
    EXPECT_LT(max_diff(out.logits, ref("lorahub.logits")), logits_tol("lorahub.logits"));
    EXPECT_LT(max_diff(out.encoder_last_hidden_state, ref("lorahub.encoder_last_hidden_state")),
              encoder_tol("lorahub.encoder_last_hidden_state"));
    auto loss = lm::seq2seq_loss(out.logits, ref("labels"));
    EXPECT_LT(abs_diff(loss.loss, ref("lorahub.loss")), loss_tol("lorahub.logits"));
    EXPECT_LT(max_diff(loss.example_loss_sum, ref("lorahub.example_loss_sum")), tokens() * loss_tol("lorahub.logits"));
    EXPECT_LT(max_diff(loss.example_loss_mean, ref("lorahub.example_loss_mean")), loss_tol("lorahub.logits"));
    EXPECT_TRUE(torch::equal(generate(), ref("lorahub.generated_ids")));
    EXPECT_FALSE(torch::equal(model_->projection("encoder.block.0.layer.0.SelfAttention.q")->weight, base_q));
  }
  // Restored bit for bit.
  EXPECT_TRUE(torch::equal(model_->projection("encoder.block.0.layer.0.SelfAttention.q")->weight, base_q));
  auto out = run();
  EXPECT_LT(max_diff(out.logits, ref("logits")), logits_tol("logits"));
}

TEST_P(LoraReference, LoraHubUnmergedMatchesReference) {
  auto lib = load_three();
  ll::ScopedAdapters scope(*model_);
  ll::apply_unmerged(*model_, lib.stack(), {kWeights}, 0);
  auto out = run();
  // Unmerged and merged differ only in rounding order (HF's own two differ by 4.7e-5 on the gated fixture).
  EXPECT_LT(max_diff(out.logits, ref("lorahub_unmerged.logits")), logits_tol("lorahub_unmerged.logits"));
  EXPECT_LT(max_diff(out.logits, ref("lorahub.logits")), logits_tol("lorahub.logits"));
  auto loss = lm::seq2seq_loss(out.logits, ref("labels"));
  EXPECT_LT(abs_diff(loss.loss, ref("lorahub_unmerged.loss")), loss_tol("lorahub_unmerged.logits"));
  EXPECT_TRUE(torch::equal(generate(), ref("lorahub_unmerged.generated_ids")));
}

TEST_P(LoraReference, BatchedCandidatesEqualSeparateEvaluations) {
  auto lib = load_three();
  const std::vector<std::vector<double>> cands = {kWeights, {0.0, 0.0, 0.0}, {-1.2, 0.4, 0.9}, {1.5, 1.5, -1.5}};
  const auto k = static_cast<std::int64_t>(cands.size());
  std::vector<double> separate;
  for (const auto& w : cands) {
    ll::ScopedAdapters scope(*model_);
    ll::apply_unmerged(*model_, lib.stack(), {w}, 0);
    separate.push_back(lm::seq2seq_loss(run().logits, ref("labels")).loss.item<double>());
  }
  ll::ScopedAdapters scope(*model_);
  ll::apply_unmerged(*model_, lib.stack(), cands, 3);
  c10::InferenceMode g;
  auto rep = [&](const torch::Tensor& t) { return t.repeat({k, 1}); };
  auto out = model_->forward(rep(ref("input_ids")), rep(ref("attention_mask")), rep(ref("decoder_input_ids")));
  auto labels = rep(ref("labels"));
  // Batched and separate evaluations differ in rounding order only: the loss bound at the logits' scale.
  const double tol = lt::token_loss_tolerance(lt::logits_tolerance(model_->config(), out.logits));
  for (std::int64_t i = 0; i < k; ++i) {
    auto l = lm::seq2seq_loss(out.logits.narrow(0, 3 * i, 3), labels.narrow(0, 3 * i, 3)).loss.item<double>();
    EXPECT_NEAR(l, separate[static_cast<std::size_t>(i)], tol) << "candidate " << i;
  }
  // The zero vector is the base model.
  EXPECT_NEAR(separate[1], ref("loss").item<double>(), loss_tol("logits"));
}

// The encoder may skip padding (what evaluations and generation do): losses stay those of the padded computation
// within 1e-6 relative, logits and real encoder positions within float32 rounding (segments of fewer rows sum
// in another blocking), with one composition and with candidates in segments, and the skipped positions are
// zeros. Extra padding columns make sure there is padding to skip.
TEST_P(LoraReference, SkippingPaddingKeepsLogitsAndLosses) {
  auto lib = load_three();
  const auto rows = ref("input_ids").size(0);
  auto ids = torch::cat({ref("input_ids"), torch::zeros({rows, 5}, torch::kLong)}, 1);
  auto mask = torch::cat({ref("attention_mask"), torch::zeros({rows, 5}, ref("attention_mask").options())}, 1);
  for (const std::vector<std::vector<double>>& cands :
       {std::vector<std::vector<double>>{kWeights}, {kWeights, {-1.2, 0.4, 0.9}, {1.5, 1.5, -1.5}}}) {
    const auto k = static_cast<std::int64_t>(cands.size());
    ll::ScopedAdapters scope(*model_);
    ll::apply_unmerged(*model_, lib.stack(), cands, k == 1 ? 0 : rows);
    auto rep = [&](const torch::Tensor& t) { return k == 1 ? t : t.repeat({k, 1}); };
    c10::InferenceMode g;
    auto padded = model_->forward(rep(ids), rep(mask), rep(ref("decoder_input_ids")), false, false);
    auto skipped = model_->forward(rep(ids), rep(mask), rep(ref("decoder_input_ids")), false, true);
    EXPECT_LE(max_diff(skipped.logits, padded.logits), lt::logits_tolerance(model_->config(), padded.logits))
        << k << " candidate(s)";
    auto labels = rep(ref("labels"));
    for (std::int64_t i = 0; i < k; ++i) {
      auto part = [&](const torch::Tensor& t) { return t.narrow(0, rows * i, rows); };
      const double lp = lm::seq2seq_loss(part(padded.logits), part(labels)).loss.item<double>();
      const double ls = lm::seq2seq_loss(part(skipped.logits), part(labels)).loss.item<double>();
      EXPECT_LE(std::abs(ls - lp), 1e-6 * std::abs(lp)) << "candidate " << i << " of " << k;
    }
    auto real = rep(mask).unsqueeze(-1).to(torch::kBool);
    const auto& c = model_->config();
    EXPECT_LE(max_diff(skipped.encoder_last_hidden_state.masked_fill(~real, 0),
                       padded.encoder_last_hidden_state.masked_fill(~real, 0)),
              lt::f32_tolerance(padded.encoder_last_hidden_state, lt::encoder_depth(c), lt::reduction_width(c)));
    EXPECT_EQ(skipped.encoder_last_hidden_state.masked_fill(real, 0).abs().max().item<double>(), 0.0);
  }
}

// The bounds above must still catch real mistakes: each wrong composition below moves the logits by at least
// ten times the bound (measured: 146 to 97,000 times). Wrong scalings (lora_alpha without /r, PEFT's rslora rule),
// a module left out, the weights given to the wrong modules, one weight off by 0.1 %, and A and B swapped
// (ΔW transposed; only shape-compatible where a target is square, as in the relu fixture).
TEST_P(LoraReference, ToleranceStillCatchesWrongCompositions) {
  auto lib = load_three();
  const auto& expected = ref("lorahub_unmerged.logits");
  const double tol = logits_tol("lorahub_unmerged.logits");
  auto logits_with = [&](const ll::Composition& c, bool swap_ab) {
    ll::ScopedAdapters scope(*model_);
    for (std::size_t t = 0; t < c.targets.size(); ++t) {
      lm::LowRankAddition add;
      add.a = (swap_ab ? c.b[t].t() : c.a[t]).unsqueeze(0).contiguous();
      add.b = (swap_ab ? c.a[t].t() : c.b[t]).unsqueeze(0).contiguous();
      add.scale = c.scaling;
      model_->projection(c.targets[t])->set_low_rank(std::move(add));
    }
    return run().logits;
  };
  auto right = ll::compose(lib.stack(), kWeights);
  EXPECT_LT(max_diff(logits_with(right, false), expected), tol);
  std::vector<std::pair<std::string, ll::Composition>> wrong;
  auto scaled = right;
  scaled.scaling = right.scaling * static_cast<double>(lib.stack().r);  // lora_alpha instead of lora_alpha / r
  wrong.emplace_back("scaling lora_alpha", scaled);
  scaled.scaling = right.scaling * std::sqrt(static_cast<double>(lib.stack().r));  // alpha / sqrt(r)
  wrong.emplace_back("rslora scaling", scaled);
  for (std::size_t left_out = 0; left_out < kWeights.size(); ++left_out) {
    auto w = kWeights;
    w[left_out] = 0;
    wrong.emplace_back("module " + std::to_string(left_out) + " left out", ll::compose(lib.stack(), w));
  }
  wrong.emplace_back("weights permuted", ll::compose(lib.stack(), {kWeights[1], kWeights[0], kWeights[2]}));
  wrong.emplace_back("w0 off by 0.1 %", ll::compose(lib.stack(), {kWeights[0] * 1.001, kWeights[1], kWeights[2]}));
  for (const auto& [what, c] : wrong) {
    auto d = max_diff(logits_with(c, false), expected);
    EXPECT_GT(d, 10 * tol) << what;
    std::printf("%s: %s moves the logits by %.3g = %.0f x the bound %.2g\n", GetParam().c_str(), what.c_str(), d,
                d / tol, tol);
  }
  bool square = true;
  for (std::size_t t = 0; t < right.targets.size(); ++t) square = square && right.a[t].size(1) == right.b[t].size(0);
  if (square) {
    auto d = max_diff(logits_with(right, true), expected);
    EXPECT_GT(d, 10 * tol) << "A and B swapped";
    std::printf("%s: A and B swapped moves the logits by %.3g = %.0f x the bound\n", GetParam().c_str(), d, d / tol);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraReference, ::testing::Values("t5v11_gated_untied", "t5v10_relu_tied"));

TEST(LoraFormats, BinAndSafetensorsAdaptersAreIdentical) {
  auto dir = kRef + "/t5v11_gated_untied";
  auto a = ll::load_adapter(dir + "/lora_0");
  auto b = ll::load_adapter(dir + "/lora_0_bin");
  ASSERT_EQ(a.modules.size(), b.modules.size());
  for (const auto& [name, ab] : a.modules) {
    EXPECT_TRUE(torch::equal(ab.first, b.modules.at(name).first)) << name;
    EXPECT_TRUE(torch::equal(ab.second, b.modules.at(name).second)) << name;
  }
}

class LoraErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::temp_directory_path() / ("lorahub_lora_errors_" + std::to_string(::getpid()));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
    model_ = lm::load_t5(kRef + "/t5v11_gated_untied");
    good_ = ll::load_adapter(kRef + "/t5v11_gated_untied/lora_0", model_.get());
  }
  void TearDown() override { fs::remove_all(tmp_); }
  std::string expect_error(const std::string& dir, const std::vector<std::string>& fragments) {
    try {
      ll::load_adapter(dir, model_.get());
    } catch (const lorahub::core::Error& e) {
      std::string msg = e.what();
      for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
      return msg;
    }
    ADD_FAILURE() << "no error for " << dir;
    return "";
  }
  fs::path tmp_;
  lm::T5Model model_{nullptr};
  ll::LoraAdapter good_;
};

TEST_F(LoraErrors, WrongShapeMissingKeyUnknownModule) {
  {
    auto bad = good_;
    bad.modules["encoder.block.0.layer.0.SelfAttention.q"].first = torch::zeros({4, 31});
    ll::save_adapter(bad, (tmp_ / "shape").string());
    expect_error((tmp_ / "shape").string(), {"shape", "encoder.block.0.layer.0.SelfAttention.q", "[4, 32]"});
  }
  {
    auto bad = good_;
    bad.modules.erase("decoder.block.2.layer.1.EncDecAttention.v");
    ll::save_adapter(bad, (tmp_ / "missing").string());
    expect_error((tmp_ / "missing").string(), {"missing", "decoder.block.2.layer.1.EncDecAttention.v"});
  }
  {
    auto bad = good_;
    bad.modules["encoder.block.7.layer.0.SelfAttention.q"] = bad.modules.begin()->second;
    ll::save_adapter(bad, (tmp_ / "unknown").string());
    expect_error((tmp_ / "unknown").string(), {"encoder.block.7.layer.0.SelfAttention.q"});
  }
  {
    auto bad = good_;
    bad.config.r = 8;
    ll::save_adapter(bad, (tmp_ / "rank").string());
    expect_error((tmp_ / "rank").string(), {"r = 8"});
  }
  expect_error((tmp_ / "nothing").string(), {"nothing"});
  fs::create_directories(tmp_ / "noconfig");
  expect_error((tmp_ / "noconfig").string(), {"adapter_config.json"});
}

TEST_F(LoraErrors, LibraryRejectsMismatchedModules) {
  auto other = good_;
  other.name = "odd_one";
  other.config.lora_alpha = 16;
  auto first = good_;
  EXPECT_THROW(
      {
        try {
          ll::LoraLibrary::from_adapters({first, other}, "lib");
        } catch (const lorahub::core::Error& e) {
          EXPECT_NE(std::string(e.what()).find("odd_one"), std::string::npos) << e.what();
          throw;
        }
      },
      lorahub::core::Error);
  auto dup = good_;
  EXPECT_THROW(ll::LoraLibrary::from_adapters({first, dup}, "lib"), lorahub::core::Error);
}

TEST_F(LoraErrors, LibraryKeepsTheFolderOrder) {
  for (int i = 0; i < 3; ++i) {
    fs::create_directory_symlink(kRef + "/t5v11_gated_untied/lora_" + std::to_string(i),
                                 tmp_ / ("m" + std::to_string(2 - i)));
  }
  auto lib = ll::LoraLibrary::load({(tmp_ / "m2").string(), (tmp_ / "m0").string()}, "list", model_.get());
  EXPECT_EQ(lib.names(), (std::vector<std::string>{"m2", "m0"}));
  EXPECT_EQ(lib.stack().a.front().sizes(), (std::vector<std::int64_t>{2, 4, 32}));
  EXPECT_THROW(lib.index_of("m1"), lorahub::core::Error);
  EXPECT_THROW(ll::LoraLibrary::load({(tmp_ / "no_such_module").string()}, "list"), lorahub::core::Error);
  EXPECT_THROW(ll::LoraLibrary::load({}, "empty"), lorahub::core::Error);
}

TEST(AdapterConfig, TargetsListRegexAndLayers) {
  auto c = ll::AdapterConfig::parse(R"({"r": 2, "lora_alpha": 4, "target_modules": ["q", "v"]})", "cfg");
  EXPECT_TRUE(c.targets("encoder.block.0.layer.0.SelfAttention.q"));
  EXPECT_FALSE(c.targets("encoder.block.0.layer.0.SelfAttention.qq"));
  auto r = ll::AdapterConfig::parse(R"J({"r": 2, "lora_alpha": 4, "target_modules": ".*decoder.*\\.(q|v)"})J", "cfg");
  EXPECT_TRUE(r.targets("decoder.block.1.layer.1.EncDecAttention.v"));
  EXPECT_FALSE(r.targets("encoder.block.1.layer.0.SelfAttention.v"));
  auto l = ll::AdapterConfig::parse(
      R"({"r": 2, "lora_alpha": 4, "target_modules": ["q"], "layers_to_transform": [1], "use_rslora": true})", "cfg");
  EXPECT_TRUE(l.targets("encoder.block.1.layer.0.SelfAttention.q"));
  EXPECT_FALSE(l.targets("encoder.block.0.layer.0.SelfAttention.q"));
  EXPECT_DOUBLE_EQ(l.scaling(), 4.0 / std::sqrt(2.0));
  EXPECT_THROW(ll::AdapterConfig::parse(R"({"r": 0, "lora_alpha": 4, "target_modules": ["q"]})", "cfg"),
               lorahub::core::Error);
  EXPECT_THROW(ll::AdapterConfig::parse(R"({"r": 2, "lora_alpha": 4})", "cfg"), lorahub::core::Error);
  EXPECT_THROW(ll::AdapterConfig::parse(R"({"r": 2, "lora_alpha": 4, "target_modules": ["q"], "peft_type": "IA3"})", "c"),
               lorahub::core::Error);
  // to_json round-trips.
  auto back = ll::AdapterConfig::parse(l.to_json(), "roundtrip");
  EXPECT_EQ(back.r, 2);
  EXPECT_TRUE(back.use_rslora);
  EXPECT_EQ(back.layers_to_transform, std::vector<std::int64_t>{1});
}

}  // namespace
