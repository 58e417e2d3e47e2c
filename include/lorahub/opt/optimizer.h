#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lorahub::opt {

/// Settings shared by every optimizer. Coefficients w live in the box [lower, upper]^dim; each method
/// searches a standardized vector x with x = 0 at w = init, and maps x to w (see Optimizer::to_w).
struct OptimizerOptions {
  std::string name = "cobyla";  ///< cobyla | bobyqa | neldermead | cmaes | adam | lbfgsb (see optimizer_names())
  int budget = 40;              ///< maximum number of evaluations (gradient methods: evaluations with a gradient), >= 1
  double lower = -1.5;          ///< lower bound of every w_i
  double upper = 1.5;           ///< upper bound of every w_i (> lower)
  std::vector<double> init;     ///< start point in w units, inside the bounds; empty = zeros (adam, lbfgsb: 1/dim)
  std::uint64_t seed = 0;       ///< seeds the stochastic methods (CMA-ES); the others ignore it
  int population = 0;           ///< CMA-ES lambda; 0 = 4 + floor(3 ln dim)
  double sigma = 0.5;           ///< initial scale in w units: w = transform(init + sigma * x)
  // COBYLA's trust region, in w units (the reference's NGOpt: rho_begin = sigma, no stopping radius).
  double rho_begin = 0;         ///< initial trust-region radius; 0: sigma (the reference)
  double rho_end = 0;           ///< stop once the radius is below this (NLopt xtol_abs); 0: only the budget stops
  // CMA-ES.
  int restarts = 0;             ///< IPOP restarts (population doubled) when a run stagnates or collapses
  // The gradient methods (adam, lbfgsb) see the objective as smooth(w) + l1 * mean|w| and handle the l1 term
  // exactly (a proximal step, or the split w = u - v with u, v >= 0); tell() gets the smooth part's gradient.
  double l1 = 0;                ///< the objective's l1 weight (on mean|w|)
  double lr = 0.05;             ///< adam: step size in w units
  int memory = 6;               ///< lbfgsb: correction pairs of the Hessian approximation
};

/// nevergrad's "bouncing" bound transform of one coordinate: v itself inside [lower, upper],
/// otherwise clip(2 * clip(v, lower, upper) - v, lower, upper) (mirror once at the crossed bound,
/// then clip). The LoraHub reference evaluates w = bounce(init + 0.5 * x) for COBYLA's x.
double bounce(double v, double lower, double upper);

/// An ask/tell minimizer over w in [lower, upper]^dim, deterministic for given options (seed included)
/// and told losses. Usage: while (!done()) { auto c = ask(); if (c.empty()) break; tell(losses(c)); }
/// Every asked point lies inside the bounds. Non-finite losses are accepted and recorded as told;
/// they never become the best point and each method sees them as worse than every finite loss.
class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Next candidates to evaluate: [k][dim] w values inside the bounds, k >= 1 (1 for the sequential
  /// methods, up to lambda for CMA-ES, never more than the budget left). Empty once done().
  /// Each non-empty ask must be answered by tell() before the next ask (else Error).
  std::vector<std::vector<double>> ask();
  /// Losses for the last ask, in its order (exactly as many as it returned; else Error). Gradient methods need
  /// the overload with gradients.
  void tell(const std::vector<double>& losses);
  /// Losses and the gradients of the objective's smooth part, gradients[k] = ∇(loss_k - l1 * mean|w_k|) with
  /// respect to w_k (each [dim]). Gradient-free methods ignore the gradients.
  void tell(const std::vector<double>& losses, const std::vector<std::vector<double>>& gradients);
  /// Whether tell() must carry gradients (adam, lbfgsb).
  virtual bool uses_gradient() const { return false; }

  /// Feeds a stored history (for example one read back from a result file) into this fresh optimizer:
  /// asks, checks that every asked w equals the stored one exactly, and tells the stored losses.
  /// Afterwards the optimizer continues exactly as the one that produced the history would have.
  /// Throws Error when the optimizer is not fresh, the sizes differ, or the history diverges.
  void replay(const std::vector<std::vector<double>>& history_w, const std::vector<double>& history_loss,
              const std::vector<std::vector<double>>& history_gradient = {});

  /// True when the budget is spent or the method has finished early (nothing more to ask).
  bool done() const;
  int evaluations() const { return static_cast<int>(history_loss_.size()); }
  int budget() const { return options_.budget; }
  int dim() const { return dim_; }
  /// Best evaluated point (lowest finite loss, ties go to the later evaluation), as nevergrad recommends.
  /// Before any finite loss was told: best_index() = -1, best_w() = init, best_loss() = +inf.
  std::vector<double> best_w() const;
  double best_loss() const;
  int best_index() const { return best_index_; }
  /// All told evaluations in order: w [evaluations][dim], losses [evaluations].
  const std::vector<std::vector<double>>& history_w() const { return history_w_; }
  const std::vector<double>& history_loss() const { return history_loss_; }
  /// The gradients told with each evaluation [evaluations][dim] (empty for gradient-free methods).
  const std::vector<std::vector<double>>& history_gradient() const { return history_gradient_; }
  /// The method's own standardized points x [evaluations][dim] (w = to_w(x)).
  const std::vector<std::vector<double>>& history_x() const { return history_x_; }
  /// Method name as given in the options (lower case).
  std::string name() const { return options_.name; }
  const OptimizerOptions& options() const { return options_; }
  /// The x -> w map of this method (bounce of init + sigma * x, or a plain affine map for bobyqa).
  virtual std::vector<double> to_w(const std::vector<double>& x) const;

 protected:
  /// Validates the options (Error naming the bad field) and fills init with zeros when empty.
  Optimizer(const OptimizerOptions& options, int dim);
  /// Up to max_count (>= 1) new standardized points x; empty when the method has finished.
  virtual std::vector<std::vector<double>> propose(int max_count) = 0;
  /// Called by tell() after the evaluations were recorded: xs are the last proposal, losses their values and
  /// gradients (w.r.t. w) their smooth part's gradients, or empty for a gradient-free tell.
  virtual void absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
                      const std::vector<std::vector<double>>& gradients) = 0;
  /// Marks the method as finished before its budget (done() becomes true).
  void mark_finished() { finished_ = true; }

  OptimizerOptions options_;
  int dim_;

 private:
  std::vector<std::vector<double>> history_w_;
  std::vector<std::vector<double>> history_x_;
  std::vector<double> history_loss_;
  std::vector<std::vector<double>> history_gradient_;
  std::vector<std::vector<double>> pending_x_;
  std::vector<std::vector<double>> pending_w_;
  bool pending_ = false;
  bool finished_ = false;
  int best_index_ = -1;
};

/// The optimizer named by options.name for a dim-dimensional problem (dim >= 1).
/// Throws Error for an unknown name (listing the valid ones) or invalid options.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options, int dim);

/// make_optimizer followed by replay(history_w, history_loss): an optimizer rebuilt from a stored history.
std::unique_ptr<Optimizer> restore_optimizer(const OptimizerOptions& options, int dim,
                                             const std::vector<std::vector<double>>& history_w,
                                             const std::vector<double>& history_loss,
                                             const std::vector<std::vector<double>>& history_gradient = {});

/// Valid values of OptimizerOptions::name, default first.
std::vector<std::string> optimizer_names();

}  // namespace lorahub::opt
