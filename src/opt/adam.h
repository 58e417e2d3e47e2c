#pragma once
#include <vector>

#include "lorahub/opt/optimizer.h"

namespace lorahub::opt {

/// Where the gradient methods start without an explicit init: every weight 1/dim (the uniform composition),
/// clipped into the bounds. Not w = 0: LoraHub composes Â = Σ w_i A_i and B̂ = Σ w_i B_i, so the low-rank update
/// B̂Â is quadratic in w and vanishes with its gradient at w = 0, a stationary point no gradient step leaves.
std::vector<double> gradient_start(const OptimizerOptions& options, int dim);

/// Proximal Adam on the box: w_{t+1} = clip(prox(w_t - a_t ⊙ m̂_t / (√v̂_t + ε)), lower, upper), with Adam's
/// moments of the smooth part's gradient (β1 0.9, β2 0.999, ε 1e-8, bias-corrected) and a_t = lr. The l1 term
/// l1 · mean|w| is handled by its proximal map with Adam's per-coordinate step (Melchior et al., "Proximal
/// Adam", 2019): w_i ← sign(w_i) · max(|w_i| - l1 / dim · lr / (√v̂_i + ε), 0), so weights reach exactly zero
/// instead of chattering around it as a subgradient would make them. One candidate per ask, starting at init
/// (default: gradient_start); x is w itself. Deterministic.
class Adam : public Optimizer {
 public:
  Adam(const OptimizerOptions& options, int dim);
  bool uses_gradient() const override { return true; }
  std::vector<double> to_w(const std::vector<double>& x) const override { return x; }

 protected:
  std::vector<std::vector<double>> propose(int max_count) override;
  void absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
              const std::vector<std::vector<double>>& gradients) override;

 private:
  std::vector<double> w_, m_, v_;
  int t_ = 0;
};

}  // namespace lorahub::opt
