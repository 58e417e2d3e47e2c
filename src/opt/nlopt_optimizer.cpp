#include "opt/nlopt_optimizer.h"

#include <nlopt.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"

namespace lorahub::opt {

using core::fail;

namespace {

// Stand-in for a non-finite loss when none finite was told before it.
constexpr double kNoFiniteStandIn = 1e30;

const char* method_label(NloptMethod method) {
  switch (method) {
    case NloptMethod::kCobyla:
      return "LN_COBYLA";
    case NloptMethod::kBobyqa:
      return "LN_BOBYQA";
    case NloptMethod::kNelderMead:
      return "LN_NELDERMEAD";
  }
  return "?";
}

nlopt_algorithm to_nlopt(NloptMethod method) {
  switch (method) {
    case NloptMethod::kCobyla:
      return NLOPT_LN_COBYLA;
    case NloptMethod::kBobyqa:
      return NLOPT_LN_BOBYQA;
    case NloptMethod::kNelderMead:
      return NLOPT_LN_NELDERMEAD;
  }
  return NLOPT_LN_COBYLA;
}

struct ReplayState {
  nlopt_opt opt = nullptr;
  const std::vector<std::vector<double>>* told_x = nullptr;
  const std::vector<double>* told_values = nullptr;
  std::size_t calls = 0;
  bool mismatch = false;
  std::size_t mismatch_index = 0;
  std::size_t mismatch_coordinate = 0;
  double mismatch_value = 0.0;
  bool found_new = false;
  std::vector<double> new_x;
};

double replay_callback(unsigned n, const double* x, double* /*grad*/, void* data) {
  auto& state = *static_cast<ReplayState*>(data);
  // Every NLopt method checks the stop flag right after the call; this only guards against one that doesn't.
  if (state.found_new || state.mismatch) return 0.0;
  const std::size_t i = state.calls++;
  if (i < state.told_x->size()) {
    const auto& recorded = (*state.told_x)[i];
    for (unsigned c = 0; c < n; ++c) {
      // Bitwise equality: NLopt is deterministic, so any difference means the replay went astray.
      if (std::memcmp(&x[c], &recorded[c], sizeof(double)) != 0) {
        state.mismatch = true;
        state.mismatch_index = i;
        state.mismatch_coordinate = c;
        state.mismatch_value = x[c];
        nlopt_force_stop(state.opt);
        return 0.0;
      }
    }
    return (*state.told_values)[i];
  }
  state.found_new = true;
  state.new_x.assign(x, x + n);
  nlopt_force_stop(state.opt);
  return 0.0;
}

void check(nlopt_result result, const char* call, NloptMethod method) {
  if (result < 0) fail("NLopt ", method_label(method), ": ", call, " failed with code ", static_cast<int>(result));
}

}  // namespace

NloptOptimizer::NloptOptimizer(const OptimizerOptions& options, int dim, NloptMethod method)
    : Optimizer(options, dim), method_(method) {
  const auto n = static_cast<unsigned>(dim);
  opt_.reset(nlopt_create(to_nlopt(method), n));
  if (!opt_) fail("NLopt ", method_label(method), ": nlopt_create failed for dimension ", dim);

  std::vector<double> lower(n, -HUGE_VAL);
  std::vector<double> upper(n, HUGE_VAL);
  // The initial trust radius (step) and the stopping radius, in x units: rho / sigma.
  const double step0 = options_.rho_begin > 0 ? options_.rho_begin / options_.sigma : 1.0;
  std::vector<double> step(n, step0);
  if (method == NloptMethod::kBobyqa) {
    double min_width = HUGE_VAL;
    for (unsigned i = 0; i < n; ++i) {
      lower[i] = (options_.lower - options_.init[i]) / options_.sigma;
      upper[i] = (options_.upper - options_.init[i]) / options_.sigma;
      min_width = std::min(min_width, upper[i] - lower[i]);
    }
    // BOBYQA refuses an initial radius above half of any box width.
    std::fill(step.begin(), step.end(), std::min(step0, 0.25 * min_width));
  }
  check(nlopt_set_lower_bounds(opt_.get(), lower.data()), "set_lower_bounds", method);
  check(nlopt_set_upper_bounds(opt_.get(), upper.data()), "set_upper_bounds", method);
  check(nlopt_set_initial_step(opt_.get(), step.data()), "set_initial_step", method);
  check(nlopt_set_maxeval(opt_.get(), options_.budget), "set_maxeval", method);
  check(nlopt_set_xtol_rel(opt_.get(), 0.0), "set_xtol_rel", method);
  check(nlopt_set_xtol_abs1(opt_.get(), options_.rho_end / options_.sigma), "set_xtol_abs1", method);
  check(nlopt_set_ftol_rel(opt_.get(), 0.0), "set_ftol_rel", method);
  check(nlopt_set_ftol_abs(opt_.get(), 0.0), "set_ftol_abs", method);
  check(nlopt_set_stopval(opt_.get(), -HUGE_VAL), "set_stopval", method);
  check(nlopt_set_maxtime(opt_.get(), 0.0), "set_maxtime", method);
  advance();
}

NloptOptimizer::~NloptOptimizer() = default;

void NloptOptimizer::NloptDeleter::operator()(nlopt_opt_s* opt) const { nlopt_destroy(opt); }

std::vector<double> NloptOptimizer::to_w(const std::vector<double>& x) const {
  if (method_ != NloptMethod::kBobyqa) return Optimizer::to_w(x);
  std::vector<double> w(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    // The clamp only absorbs rounding of the affine map at the box faces.
    w[i] = std::min(std::max(options_.init[i] + options_.sigma * x[i], options_.lower), options_.upper);
  }
  return w;
}

std::vector<std::vector<double>> NloptOptimizer::propose(int /*max_count*/) {
  if (!has_next_) return {};
  return {next_x_};
}

double NloptOptimizer::nlopt_value(double loss) {
  if (std::isfinite(loss)) {
    if (!any_finite_) {
      min_finite_ = max_finite_ = loss;
      any_finite_ = true;
    } else {
      min_finite_ = std::min(min_finite_, loss);
      max_finite_ = std::max(max_finite_, loss);
    }
    return loss;
  }
  if (!any_finite_) return kNoFiniteStandIn;
  return max_finite_ + std::max(1.0, max_finite_ - min_finite_);
}

void NloptOptimizer::absorb(const std::vector<std::vector<double>>& xs, const std::vector<double>& losses,
                       const std::vector<std::vector<double>>& /*gradients*/) {
  for (std::size_t k = 0; k < xs.size(); ++k) {
    told_x_.push_back(xs[k]);
    told_values_.push_back(nlopt_value(losses[k]));
  }
  has_next_ = false;
  if (static_cast<int>(told_x_.size()) >= options_.budget) return;
  advance();
}

void NloptOptimizer::advance() {
  ReplayState state;
  state.opt = opt_.get();
  state.told_x = &told_x_;
  state.told_values = &told_values_;
  check(nlopt_set_min_objective(opt_.get(), replay_callback, &state), "set_min_objective", method_);
  std::vector<double> x(static_cast<std::size_t>(dim_), 0.0);
  double minf = 0.0;
  const nlopt_result result = nlopt_optimize(opt_.get(), x.data(), &minf);
  // The callback holds a pointer to this stack frame; never leave it installed.
  nlopt_set_min_objective(opt_.get(), replay_callback, nullptr);
  if (state.mismatch) {
    fail("optimizer '", options_.name, "' (NLopt ", method_label(method_), "): replay diverged at evaluation ",
         state.mismatch_index, " coordinate ", state.mismatch_coordinate, ": NLopt proposes x = ",
         state.mismatch_value, " but x = ", told_x_[state.mismatch_index][state.mismatch_coordinate],
         " was recorded");
  }
  if (state.found_new) {
    next_x_ = std::move(state.new_x);
    has_next_ = true;
    return;
  }
  if (state.calls < told_x_.size()) {
    fail("optimizer '", options_.name, "' (NLopt ", method_label(method_), "): replay stopped after ", state.calls,
         " of ", told_x_.size(), " recorded evaluations (result ", static_cast<int>(result), ")");
  }
  // NLopt ended on its own before the budget: converged (xtol, ...), roundoff-limited, or a generic
  // failure such as Nelder-Mead's collapsed simplex; the evaluated points stay valid in every case.
  if (result == NLOPT_FAILURE) {
    const char* message = nlopt_get_errmsg(opt_.get());
    core::log_warn(core::cat("optimizer '", options_.name, "' (NLopt ", method_label(method_), "): stopped after ",
                             told_x_.size(), " evaluations", message != nullptr ? ": " : "",
                             message != nullptr ? message : ""));
  } else if (result < 0 && result != NLOPT_ROUNDOFF_LIMITED && result != NLOPT_FORCED_STOP) {
    const char* message = nlopt_get_errmsg(opt_.get());
    fail("optimizer '", options_.name, "' (NLopt ", method_label(method_), "): nlopt_optimize failed with code ",
         static_cast<int>(result), message != nullptr ? ": " : "", message != nullptr ? message : "");
  }
  has_next_ = false;
  mark_finished();
}

}  // namespace lorahub::opt
