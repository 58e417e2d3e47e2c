#include "opt/adam.h"

#include <algorithm>
#include <cmath>

#include "lorahub/core/error.h"

namespace lorahub::opt {

namespace {
constexpr double kBeta1 = 0.9;
constexpr double kBeta2 = 0.999;
constexpr double kEps = 1e-8;
}  // namespace

std::vector<double> gradient_start(const OptimizerOptions& options, int dim) {
  const double w = std::min(std::max(1.0 / dim, options.lower), options.upper);
  return std::vector<double>(static_cast<std::size_t>(dim), w);
}

Adam::Adam(const OptimizerOptions& options, int dim)
    : GradientOptimizer(options, dim),
      w_(options_.init),
      m_(static_cast<std::size_t>(dim), 0.0),
      v_(static_cast<std::size_t>(dim), 0.0) {}

std::vector<std::vector<double>> Adam::propose(int /*max_count*/) { return {w_}; }

void Adam::absorb(const std::vector<std::vector<double>>& /*xs*/, const std::vector<double>& losses,
                  const std::vector<std::vector<double>>& gradients) {
  const auto& g = gradients.front();
  if (!std::isfinite(losses.front()) ||
      !std::all_of(g.begin(), g.end(), [](double x) { return std::isfinite(x); })) {
    // Worse than every finite point: back off halfway to the best one and restart the moments there.
    if (best_index() < 0) {
      mark_finished();
      return;
    }
    const auto best = best_w();
    for (std::size_t i = 0; i < w_.size(); ++i) w_[i] = 0.5 * (w_[i] + best[i]);
    std::fill(m_.begin(), m_.end(), 0.0);
    std::fill(v_.begin(), v_.end(), 0.0);
    t_ = 0;
    return;
  }
  ++t_;
  const double c1 = 1.0 - std::pow(kBeta1, t_);
  const double c2 = 1.0 - std::pow(kBeta2, t_);
  const double threshold = options_.l1 / static_cast<double>(dim_);
  for (std::size_t i = 0; i < w_.size(); ++i) {
    m_[i] = kBeta1 * m_[i] + (1 - kBeta1) * g[i];
    v_[i] = kBeta2 * v_[i] + (1 - kBeta2) * g[i] * g[i];
    const double step = options_.lr / (std::sqrt(v_[i] / c2) + kEps);
    double w = w_[i] - step * (m_[i] / c1);
    w = std::copysign(std::max(std::abs(w) - step * threshold, 0.0), w);
    w_[i] = std::min(std::max(w, options_.lower), options_.upper);
  }
}

}  // namespace lorahub::opt
