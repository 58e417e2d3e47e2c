#pragma once
#include <vector>

#include "opt/gradient_optimizer.h"

namespace lorahub::opt {

/// L-BFGS-B (LBFGS++, Qiu; Byrd, Lu, Nocedal & Zhu 1995) on the objective smooth(w) + l1 · mean|w| over the box,
/// with the l1 term made smooth exactly by the split w = u - v, u, v >= 0: it minimises
/// f(u, v) = smooth(u - v) + l1 / dim · Σ (u_i + v_i) over u ∈ [max(lower, 0), max(upper, 0)],
/// v ∈ [max(-upper, 0), max(-lower, 0)] (at a minimum, u_i v_i = 0, so the sum is Σ|w_i|). Starts at init
/// (default: gradient_start).
/// Every point the solver evaluates, line-search trials included, is one evaluation of the budget. LBFGS++ is
/// callback-driven, so ask/tell is by replay (as for NLopt): each step reruns the solver over the told history
/// and stops it at the first new point. It finishes early when the projected gradient vanishes (< 1e-8) or the
/// line search can make no progress.
class Lbfgsb : public GradientOptimizer {
 public:
  Lbfgsb(const OptimizerOptions& options, int dim);

 protected:
  std::vector<std::vector<double>> propose(int max_count) override;
  void absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
              const std::vector<std::vector<double>>& gradients) override;

 private:
  void advance();

  std::vector<std::vector<double>> told_z_;  // [u; v] of every told point
  std::vector<double> told_f_;
  std::vector<std::vector<double>> told_gz_;
  std::vector<double> next_z_;
  bool has_next_ = false;
};

}  // namespace lorahub::opt
