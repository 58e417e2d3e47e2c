#pragma once
#include <vector>

#include "opt/gradient_optimizer.h"

namespace lorahub::opt {

/// Proximal Adam on the box: w_{t+1} = clip(prox(w_t - a_t ⊙ m̂_t / (√v̂_t + ε)), lower, upper), with Adam's
/// moments of the smooth part's gradient (β1 0.9, β2 0.999, ε 1e-8, bias-corrected) and a_t = lr. The l1 term
/// l1 · mean|w| is handled by its proximal map with Adam's per-coordinate step (Melchior et al., "Proximal
/// Adam", 2019): w_i ← sign(w_i) · max(|w_i| - l1 / dim · lr / (√v̂_i + ε), 0), so weights reach exactly zero
/// instead of chattering around it as a subgradient would make them. One candidate per ask, starting at init
/// (default: gradient_start); x is w itself. Deterministic.
class Adam : public GradientOptimizer {
 public:
  Adam(const OptimizerOptions& options, int dim);

 protected:
  std::vector<std::vector<double>> propose(int max_count) override;
  void absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
              const std::vector<std::vector<double>>& gradients) override;

 private:
  std::vector<double> w_, m_, v_;
  int t_ = 0;
};

}  // namespace lorahub::opt
