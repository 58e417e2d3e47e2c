#include "opt/cmaes.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lorahub/core/error.h"

namespace lorahub::opt {

namespace {

// Sub-stream of core::Rng so that CMA-ES samples differ from other draws made with the same seed.
constexpr std::uint64_t kCmaStream = 0x434d41455355ULL;
constexpr double kMinStep = 1e-12;
constexpr double kMaxCondition = 1e14;

}  // namespace

CmaEs::CmaEs(const OptimizerOptions& options, int dim)
    : Optimizer(options, dim), rng_(core::Rng::derive(options.seed, kCmaStream)) {
  const double n = dim;
  restart(options.population > 0 ? options.population : 4 + static_cast<int>(std::floor(3.0 * std::log(n))));
}

void CmaEs::restart(int lambda) {
  const double n = dim_;
  lambda_ = lambda;
  if (lambda_ < 2) core::fail("optimizer 'cmaes': population must be >= 2, got ", lambda_);
  mu_ = lambda_ / 2;
  weights_.resize(mu_);
  for (int i = 0; i < mu_; ++i) weights_[i] = std::log((lambda_ + 1) / 2.0) - std::log(i + 1.0);
  weights_ /= weights_.sum();
  mueff_ = 1.0 / weights_.squaredNorm();

  cc_ = (4.0 + mueff_ / n) / (n + 4.0 + 2.0 * mueff_ / n);
  cs_ = (mueff_ + 2.0) / (n + mueff_ + 5.0);
  c1_ = 2.0 / ((n + 1.3) * (n + 1.3) + mueff_);
  cmu_ = std::min(1.0 - c1_, 2.0 * (mueff_ - 2.0 + 1.0 / mueff_) / ((n + 2.0) * (n + 2.0) + mueff_));
  damps_ = 1.0 + 2.0 * std::max(0.0, std::sqrt((mueff_ - 1.0) / (n + 1.0)) - 1.0) + cs_;
  chi_n_ = std::sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n));

  mean_ = Eigen::VectorXd::Zero(dim_);
  sigma_ = 1.0;
  c_ = Eigen::MatrixXd::Identity(dim_, dim_);
  b_ = Eigen::MatrixXd::Identity(dim_, dim_);
  d_ = Eigen::VectorXd::Ones(dim_);
  inv_sqrt_c_ = Eigen::MatrixXd::Identity(dim_, dim_);
  pc_ = Eigen::VectorXd::Zero(dim_);
  ps_ = Eigen::VectorXd::Zero(dim_);
  generations_ = 0;
  evaluations_at_eigen_ = evaluations_used_;
  generation_best_.clear();
}

std::vector<std::vector<double>> CmaEs::propose(int max_count) {
  const int count = std::min(lambda_, max_count);
  pending_y_.clear();
  std::vector<std::vector<double>> xs;
  xs.reserve(static_cast<std::size_t>(count));
  Eigen::VectorXd z(dim_);
  for (int k = 0; k < count; ++k) {
    for (int i = 0; i < dim_; ++i) z[i] = rng_.normal();
    Eigen::VectorXd y = b_ * d_.cwiseProduct(z);
    Eigen::VectorXd x = mean_ + sigma_ * y;
    xs.emplace_back(x.data(), x.data() + dim_);
    pending_y_.push_back(std::move(y));
  }
  return xs;
}

void CmaEs::absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
                       const std::vector<std::vector<double>>& /*gradients*/) {
  evaluations_used_ += static_cast<long long>(xs.size());
  // A partial generation only happens when the budget runs out; there is nothing left to adapt for.
  if (static_cast<int>(xs.size()) < lambda_) return;

  // Non-finite losses rank after every finite one; equal keys keep sampling order.
  auto key = [&losses](std::size_t k) {
    const double v = losses[k];
    return std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
  };
  std::vector<std::size_t> order(xs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&key](std::size_t a, std::size_t b) { return key(a) < key(b); });

  Eigen::VectorXd y_w = Eigen::VectorXd::Zero(dim_);
  for (int i = 0; i < mu_; ++i) y_w += weights_[i] * pending_y_[order[static_cast<std::size_t>(i)]];

  mean_ += sigma_ * y_w;
  ps_ = (1.0 - cs_) * ps_ + std::sqrt(cs_ * (2.0 - cs_) * mueff_) * (inv_sqrt_c_ * y_w);
  ++generations_;
  const double ps_norm = ps_.norm();
  const double hsig_lhs = ps_norm / std::sqrt(1.0 - std::pow(1.0 - cs_, 2.0 * generations_)) / chi_n_;
  const double hsig = hsig_lhs < 1.4 + 2.0 / (dim_ + 1.0) ? 1.0 : 0.0;
  pc_ = (1.0 - cc_) * pc_ + hsig * std::sqrt(cc_ * (2.0 - cc_) * mueff_) * y_w;

  Eigen::MatrixXd rank_mu = Eigen::MatrixXd::Zero(dim_, dim_);
  for (int i = 0; i < mu_; ++i) {
    const Eigen::VectorXd& y = pending_y_[order[static_cast<std::size_t>(i)]];
    rank_mu.noalias() += weights_[i] * y * y.transpose();
  }
  c_ = (1.0 - c1_ - cmu_) * c_ + c1_ * (pc_ * pc_.transpose() + (1.0 - hsig) * cc_ * (2.0 - cc_) * c_) +
       cmu_ * rank_mu;

  // Cap the per-generation growth, as in Hansen's reference code, so one lucky outlier cannot blow sigma up.
  sigma_ *= std::exp(std::min(1.0, (cs_ / damps_) * (ps_norm / chi_n_ - 1.0)));

  if (static_cast<double>(evaluations_used_ - evaluations_at_eigen_) > lambda_ / (c1_ + cmu_) / dim_ / 10.0) {
    update_eigensystem();
  }
  pending_y_.clear();

  // Stagnation (Hansen's TolHistFun / NoEffect family): the generation's best has not improved over the last
  // 10 + 30 n / lambda generations.
  generation_best_.push_back(key(order.front()));
  const auto window = static_cast<std::size_t>(10 + std::ceil(30.0 * dim_ / lambda_));
  bool stagnant = false;
  if (generation_best_.size() > window) {
    const double recent = *std::min_element(generation_best_.end() - static_cast<std::ptrdiff_t>(window), generation_best_.end());
    const double before = *std::min_element(generation_best_.begin(), generation_best_.end() - static_cast<std::ptrdiff_t>(window));
    stagnant = !(recent < before);
  }
  const double max_d = d_.maxCoeff();
  const double min_d = d_.minCoeff();
  const bool collapsed = !std::isfinite(sigma_) || !mean_.allFinite() || !c_.allFinite() || sigma_ * max_d < kMinStep ||
                         max_d * max_d > kMaxCondition * min_d * min_d;
  if (collapsed || stagnant) {
    if (restarts_done_ < options_.restarts) {
      ++restarts_done_;
      restart(2 * lambda_);  // IPOP: the same start, twice the population
    } else if (collapsed) {
      mark_finished();
    }
  }
}

void CmaEs::update_eigensystem() {
  evaluations_at_eigen_ = evaluations_used_;
  c_ = 0.5 * (c_ + c_.transpose()).eval();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(c_);
  if (solver.info() != Eigen::Success || !solver.eigenvalues().allFinite()) {
    mark_finished();
    return;
  }
  b_ = solver.eigenvectors();
  d_ = solver.eigenvalues().cwiseMax(std::numeric_limits<double>::min()).cwiseSqrt();
  inv_sqrt_c_ = b_ * d_.cwiseInverse().asDiagonal() * b_.transpose();
}

}  // namespace lorahub::opt
