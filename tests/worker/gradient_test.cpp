// The gradient of the few-shot objective with respect to the composition weights, against finite differences on
// the Hugging Face fixture model and its three LoRA modules.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "lorahub/lora/adapter.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"
#include "lorahub/worker/fitness.h"
#include "support/f32_tolerance.h"

namespace lm = lorahub::model;
namespace ll = lorahub::lora;
namespace lw = lorahub::worker;
namespace lt = lorahub::test;

namespace {

const std::string kRef = std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference";

// The fixture's examples as the evaluator takes them: token ids without padding, targets without -100.
struct Examples {
  std::vector<std::vector<std::int64_t>> inputs, targets;
};
Examples fixture_examples(const lm::StateDict& ref) {
  Examples e;
  auto ids = ref.at("input_ids"), mask = ref.at("attention_mask"), labels = ref.at("labels");
  for (std::int64_t b = 0; b < ids.size(0); ++b) {
    std::vector<std::int64_t> in, out;
    for (std::int64_t j = 0; j < ids.size(1); ++j) {
      if (mask[b][j].item<std::int64_t>()) in.push_back(ids[b][j].item<std::int64_t>());
    }
    for (std::int64_t j = 0; j < labels.size(1); ++j) {
      auto v = labels[b][j].item<std::int64_t>();
      if (v != -100) out.push_back(v);
    }
    e.inputs.push_back(in);
    e.targets.push_back(out);
  }
  return e;
}

class GradientFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kRef + "/" + GetParam();
    ref_ = lm::load_tensor_file(dir_ + "/reference.safetensors");
  }
  ll::LoraLibrary library(lm::T5ModelImpl& model) {
    std::vector<std::string> folders;
    for (int i = 0; i < 3; ++i) folders.push_back(dir_ + "/lora_" + std::to_string(i));
    return ll::LoraLibrary::load(folders, dir_, &model);
  }
  std::string dir_;
  lm::StateDict ref_;
};

// Central differences of the cross-entropy part, coordinate by coordinate, Richardson-extrapolated:
// (4 D(h/2) - D(h)) / 3 with D(h) = (f(w + h e_i) - f(w - h e_i)) / 2h cancels the h^2 error term. With h = 1e-2
// the float32 objective's rounding (~5e-7 on a loss of ~5) contributes ~5e-5 and the h^4 term less, both under
// 1e-3 of the gradient. Only the gated-gelu (Flan-T5) fixture is smooth: the relu fixture's objective has kinks
// wherever a unit crosses zero, so differences over h do not converge to the gradient there.
TEST(Gradient, MatchesRichardsonCentralDifferencesOnTheGatedFixture) {
  const std::string dir = kRef + "/t5v11_gated_untied";
  auto ref = lm::load_tensor_file(dir + "/reference.safetensors");
  std::vector<std::string> folders;
  for (int i = 0; i < 3; ++i) folders.push_back(dir + "/lora_" + std::to_string(i));
  auto model = lm::load_t5(dir);
  auto lib = ll::LoraLibrary::load(folders, dir, model.get());
  auto stack = lib.stack();
  auto ex = fixture_examples(ref);
  lw::FitnessEvaluator fit(*model, stack, {0, 1, 2}, ex.inputs, ex.targets, 0.05, 0);
  const std::vector<double> w = {0.7, -0.3, 1.1};
  auto g = fit.evaluate_gradient(w);
  ASSERT_EQ(g.gradient.size(), 3u);
  // The loss is evaluate()'s up to float32 rounding: the differentiable path composes the modules in one GEMM
  // where evaluate() adds them one by one, so the sums run in another order (f32_tolerance.h's model, with the
  // logits' scale of the reference and a mean over tokens).
  const double loss_tol = lt::token_loss_tolerance(lt::logits_tolerance(model->config(), ref.at("logits")));
  EXPECT_NEAR(g.loss, fit.evaluate({w})[0], loss_tol);
  EXPECT_NE(g.loss, fit.evaluate({{0.0, 0.0, 0.0}})[0]) << "the weights must reach the loss";
  const double h = 1e-2;
  double norm = 0;
  for (double x : g.gradient) norm = std::max(norm, std::abs(x));
  ASSERT_GT(norm, 1e-3) << "a flat objective would make the check vacuous";
  auto difference = [&](std::size_t i, double step) {
    auto plus = w, minus = w;
    plus[i] += step;
    minus[i] -= step;
    fit.evaluate({plus});
    const double ce_plus = fit.last_cross_entropy()[0];
    fit.evaluate({minus});
    return (ce_plus - fit.last_cross_entropy()[0]) / (2 * step);
  };
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double fd = (4 * difference(i, h / 2) - difference(i, h)) / 3;
    EXPECT_NEAR(g.gradient[i], fd, 1e-3 * norm) << "coordinate " << i;
  }
  // Positions pick modules: the gradient over modules {2, 0} at (1.1, 0.7) is the full one's restricted, up to
  // the rounding of another summation order (the same model, at the gradient's scale).
  auto sub = fit.evaluate_gradient({1.1, 0.7}, {2, 0});
  auto full = fit.evaluate_gradient({0.7, 0.0, 1.1});
  const auto& c = model->config();
  const double grad_tol = lt::token_loss_tolerance(lt::f32_tolerance(norm, lt::logits_depth(c), lt::reduction_width(c)));
  EXPECT_NEAR(sub.gradient[0], full.gradient[2], grad_tol);
  EXPECT_NEAR(sub.gradient[1], full.gradient[0], grad_tol);
  EXPECT_LT(grad_tol, 1e-3 * norm) << "the bound must stay far below the finite-difference check's";
  EXPECT_GT(sub.forward_seconds, 0);
  EXPECT_GT(sub.backward_seconds, 0);
  // Nothing of the model took a gradient, and nothing was left on it.
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_EQ(fit.evaluate({{0.0, 0.0, 0.0}})[0], fit.evaluate_gradient({0.0, 0.0, 0.0}).loss);
}

// bf16 keeps weights and matmuls in bfloat16; the weights and their gradient stay float32. On these O(1)-weight
// fixtures bf16 moves the logits by up to 0.18 (docs/forward.md), so the gradient is asked to point the same way
// (cosine > 0.9), not to agree digit by digit.
TEST_P(GradientFixture, Bf16GradientPointsLikeFloat32) {
  auto f32 = lm::load_t5(dir_);
  auto bf16 = lm::load_t5(dir_, {torch::kCPU, lm::ComputeDType::kBF16});
  auto lib = library(*f32);
  auto stack = lib.stack();
  auto ex = fixture_examples(ref_);
  lw::FitnessEvaluator a(*f32, stack, {0, 1, 2}, ex.inputs, ex.targets, 0.05, 0);
  lw::FitnessEvaluator b(*bf16, stack, {0, 1, 2}, ex.inputs, ex.targets, 0.05, 0);
  auto ga = a.evaluate_gradient({0.7, -0.3, 1.1}).gradient;
  auto gb = b.evaluate_gradient({0.7, -0.3, 1.1}).gradient;
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < ga.size(); ++i) {
    EXPECT_TRUE(std::isfinite(gb[i]));
    dot += ga[i] * gb[i];
    na += ga[i] * ga[i];
    nb += gb[i] * gb[i];
  }
  EXPECT_GT(dot / std::sqrt(na * nb), 0.9) << "f32 " << ga[0] << ", " << ga[1] << ", " << ga[2] << "; bf16 " << gb[0]
                                           << ", " << gb[1] << ", " << gb[2];
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GradientFixture, ::testing::Values("t5v11_gated_untied", "t5v10_relu_tied"));

}  // namespace
