#pragma once
#include <memory>
#include <vector>

#include "lorahub/opt/optimizer.h"

struct nlopt_opt_s;

namespace lorahub::opt {

enum class NloptMethod { kCobyla, kBobyqa, kNelderMead };

/// NLopt's callback-driven local methods turned into ask/tell by replay: every step reruns NLopt from
/// x = 0 with a callback that answers the already-told points with their recorded losses and stops
/// NLopt (nlopt_force_stop) at the first new point, which becomes the next candidate. NLopt is
/// deterministic, so the state is just the history (O(budget^2) cheap optimizer steps in all).
///
/// - kCobyla: LN_COBYLA on unbounded x, initial step 1, all tolerances 0, maxeval = budget,
///   w = bounce(init + sigma * x): the LoraHub reference's NGOpt setting (COBYLA on nevergrad's
///   standardized, bouncing Array). rho_begin > 0 sets the initial step to rho_begin / sigma (w units:
///   rho_begin); rho_end > 0 stops COBYLA once its trust radius is below rho_end (NLopt's xtol_abs).
/// - kNelderMead: LN_NELDERMEAD with the same unbounded x and bounce.
/// - kBobyqa: LN_BOBYQA on the box x in [(lower - init) / sigma, (upper - init) / sigma], so
///   w = init + sigma * x directly (no bounce); initial step min(1, width_x / 4).
class NloptOptimizer : public Optimizer {
 public:
  NloptOptimizer(const OptimizerOptions& options, int dim, NloptMethod method);
  ~NloptOptimizer() override;
  std::vector<double> to_w(const std::vector<double>& x) const override;

 protected:
  std::vector<std::vector<double>> propose(int max_count) override;
  void absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
              const std::vector<std::vector<double>>& gradients) override;

 private:
  /// Reruns NLopt over the told history; sets next_x_ or marks the optimizer finished.
  void advance();
  /// The value NLopt sees for a told loss: the loss itself, or a stand-in worse than every finite loss
  /// told before it when the loss is not finite (NLopt's models cannot take inf or NaN).
  double nlopt_value(double loss);

  struct NloptDeleter {
    void operator()(nlopt_opt_s* opt) const;
  };

  NloptMethod method_;
  std::unique_ptr<nlopt_opt_s, NloptDeleter> opt_;
  std::vector<std::vector<double>> told_x_;
  std::vector<double> told_values_;
  std::vector<double> next_x_;
  bool has_next_ = false;
  bool any_finite_ = false;
  double min_finite_ = 0.0;
  double max_finite_ = 0.0;
};

}  // namespace lorahub::opt
