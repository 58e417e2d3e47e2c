#include "opt/lbfgsb.h"

#include <LBFGSB.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "lorahub/core/error.h"

namespace lorahub::opt {

using core::fail;

namespace {

// Thrown by the replay callback to stop the solver at a point nobody has evaluated yet.
struct NewPoint {
  Eigen::VectorXd z;
};

struct Replay {
  const std::vector<std::vector<double>>* z = nullptr;
  const std::vector<double>* f = nullptr;
  const std::vector<std::vector<double>>* g = nullptr;
  std::size_t calls = 0;

  double operator()(const Eigen::VectorXd& z_now, Eigen::VectorXd& grad) {
    const std::size_t i = calls++;
    if (i >= z->size()) throw NewPoint{z_now};
    const auto& recorded = (*z)[i];
    // Bitwise: the solver is deterministic, so a difference means the replay went astray.
    if (std::memcmp(z_now.data(), recorded.data(), recorded.size() * sizeof(double)) != 0) {
      fail("optimizer 'lbfgsb': replay diverged at evaluation ", i);
    }
    grad = Eigen::Map<const Eigen::VectorXd>((*g)[i].data(), static_cast<Eigen::Index>((*g)[i].size()));
    return (*f)[i];
  }
};

}  // namespace

Lbfgsb::Lbfgsb(const OptimizerOptions& options, int dim) : GradientOptimizer(options, dim) {
  advance();
}

std::vector<std::vector<double>> Lbfgsb::propose(int /*max_count*/) {
  if (!has_next_) return {};
  const std::size_t n = static_cast<std::size_t>(dim_);
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) {
    // u and v sit inside their boxes, so u - v sits inside [lower, upper] up to rounding.
    w[i] = std::min(std::max(next_z_[i] - next_z_[n + i], options_.lower), options_.upper);
  }
  return {w};
}

void Lbfgsb::absorb(const std::vector<std::vector<double>>& /*xs*/, const std::vector<double>& losses,
                    const std::vector<std::vector<double>>& gradients) {
  const std::size_t n = static_cast<std::size_t>(dim_);
  const auto& g = gradients.front();
  const double loss = losses.front();
  const double c = options_.l1 / static_cast<double>(n);
  if (!std::isfinite(loss) || !std::all_of(g.begin(), g.end(), [](double x) { return std::isfinite(x); })) {
    // Worse than every finite point, and flat: the line search backs off from it.
    double worst = 1e30;
    if (!told_f_.empty()) {
      const auto [lo, hi] = std::minmax_element(told_f_.begin(), told_f_.end());
      worst = *hi + std::max(1.0, *hi - *lo);
    }
    told_z_.push_back(next_z_);
    told_f_.push_back(worst);
    told_gz_.emplace_back(2 * n, 0.0);
    has_next_ = false;
    if (static_cast<int>(told_z_.size()) >= options_.budget) return;
    advance();
    return;
  }
  // f(u, v) = smooth(u - v) + l1/n Σ(u + v). The told loss is smooth + l1 · mean|u - v|, which equals f whenever
  // u_i v_i = 0; f itself is what the solver must see, so it is rebuilt from the loss.
  double abs_w = 0, sum_uv = 0;
  for (std::size_t i = 0; i < n; ++i) {
    abs_w += std::abs(next_z_[i] - next_z_[n + i]);
    sum_uv += next_z_[i] + next_z_[n + i];
  }
  std::vector<double> gz(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    gz[i] = g[i] + c;
    gz[n + i] = -g[i] + c;
  }
  told_z_.push_back(next_z_);
  told_f_.push_back(loss - c * abs_w + c * sum_uv);
  told_gz_.push_back(std::move(gz));
  has_next_ = false;
  if (static_cast<int>(told_z_.size()) >= options_.budget) return;
  advance();
}

void Lbfgsb::advance() {
  const auto n = static_cast<Eigen::Index>(dim_);
  Eigen::VectorXd lb(2 * n), ub(2 * n), z(2 * n);
  for (Eigen::Index i = 0; i < n; ++i) {
    lb[i] = std::max(options_.lower, 0.0);
    ub[i] = std::max(options_.upper, 0.0);
    lb[n + i] = std::max(-options_.upper, 0.0);
    ub[n + i] = std::max(-options_.lower, 0.0);
    const double w0 = options_.init[static_cast<std::size_t>(i)];
    z[i] = std::max(w0, 0.0);
    z[n + i] = std::max(-w0, 0.0);
  }
  LBFGSpp::LBFGSBParam<double> param;
  param.m = options_.memory;
  param.epsilon = 1e-8;
  param.epsilon_rel = 0;
  param.past = 0;  // no stop on a small decrease: the budget decides
  param.max_iterations = 0;
  LBFGSpp::LBFGSBSolver<double> solver(param);
  Replay replay{&told_z_, &told_f_, &told_gz_};
  double fz = 0;
  try {
    solver.minimize(replay, z, fz, lb, ub);
  } catch (const NewPoint& p) {
    next_z_.assign(p.z.data(), p.z.data() + p.z.size());
    has_next_ = true;
    return;
  } catch (const core::Error&) {
    throw;  // a diverged replay is a bug, not convergence
  } catch (const std::runtime_error&) {
    // The line search found no acceptable step: the told points stay valid, the search ends.
  } catch (const std::logic_error&) {
  }
  has_next_ = false;
  mark_finished();
}

}  // namespace lorahub::opt
