#pragma once
#include <Eigen/Dense>
#include <vector>

#include "lorahub/core/random.h"
#include "lorahub/opt/optimizer.h"

namespace lorahub::opt {

/// (mu/mu_w, lambda)-CMA-ES after Hansen, "The CMA Evolution Strategy: A Tutorial" (2016): weighted
/// recombination of the best mu = lambda/2 of lambda samples, cumulation paths p_sigma and p_c,
/// rank-one and rank-mu covariance updates, cumulative step-size adaptation, lazy eigendecomposition.
///
/// It searches the same standardized x as COBYLA (start x = 0, initial step size 1 in x, i.e. sigma in
/// w units) and bounds are handled by the same bouncing transform w = bounce(init + sigma * x), as
/// nevergrad does for a bounded Array: samples are never repaired or penalized, the transform maps
/// every x inside the box. Samples come from core::Rng (seeded from options.seed), so a run is
/// reproducible. A generation asks lambda candidates at once (fewer when the budget runs out, in which
/// case that last partial generation is recorded but not used for an update).
/// It finishes early when the step size collapses (sigma * max sqrt(eig C) < 1e-12), C becomes
/// ill-conditioned (condition > 1e14) or the state stops being finite. With options.restarts > 0 it restarts
/// instead (IPOP, Auger & Hansen 2005: from the same start x = 0 with twice the population), also when the best
/// loss of a generation has not improved over the last 10 + 30 dim / lambda generations.
class CmaEs : public Optimizer {
 public:
  CmaEs(const OptimizerOptions& options, int dim);
  int lambda() const { return lambda_; }

 protected:
  std::vector<std::vector<double>> propose(int max_count) override;
  void absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
              const std::vector<std::vector<double>>& gradients) override;

 private:
  void update_eigensystem();
  void restart(int lambda);

  core::Rng rng_;
  int lambda_;
  int mu_;
  Eigen::VectorXd weights_;
  double mueff_, cc_, cs_, c1_, cmu_, damps_, chi_n_;
  Eigen::VectorXd mean_;
  double sigma_ = 1.0;
  Eigen::MatrixXd c_;
  Eigen::MatrixXd b_;
  Eigen::VectorXd d_;
  Eigen::MatrixXd inv_sqrt_c_;
  Eigen::VectorXd pc_;
  Eigen::VectorXd ps_;
  int generations_ = 0;
  long long evaluations_at_eigen_ = 0;
  long long evaluations_used_ = 0;
  std::vector<Eigen::VectorXd> pending_y_;
  std::vector<double> generation_best_;
  int restarts_done_ = 0;
};

}  // namespace lorahub::opt
