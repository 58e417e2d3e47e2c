#pragma once
// What the gradient methods (adam, lbfgsb) share: they work on w itself, need gradients with every tell, and start
// from the uniform composition unless told otherwise.
#include <vector>

#include "lorahub/opt/optimizer.h"

namespace lorahub::opt {

/// Where the gradient methods start without an explicit init: every weight 1/dim (the uniform composition),
/// clipped into the bounds. Not w = 0: LoraHub composes Â = Σ w_i A_i and B̂ = Σ w_i B_i, so the low-rank update
/// B̂Â is quadratic in w and vanishes with its gradient at w = 0, a stationary point no gradient step leaves.
std::vector<double> gradient_start(const OptimizerOptions& options, int dim);

class GradientOptimizer : public Optimizer {
 public:
  bool uses_gradient() const override { return true; }
  std::vector<double> to_w(const std::vector<double>& x) const override { return x; }

 protected:
  /// Optimizer's validation, then init = gradient_start when the options give none.
  GradientOptimizer(const OptimizerOptions& options, int dim) : Optimizer(options, dim) {
    if (options.init.empty()) options_.init = gradient_start(options_, dim);
  }
};

}  // namespace lorahub::opt
