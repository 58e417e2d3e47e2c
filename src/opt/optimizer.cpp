#include "lorahub/opt/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <type_traits>

#include "lorahub/core/error.h"
#include "opt/adam.h"
#include "opt/cmaes.h"
#include "opt/lbfgsb.h"
#include "opt/nlopt_optimizer.h"

namespace lorahub::opt {

using core::fail;

double bounce(double v, double lower, double upper) {
  if (v >= lower && v <= upper) return v;
  const double inside = std::min(std::max(v, lower), upper);
  return std::min(std::max(2.0 * inside - v, lower), upper);
}

Optimizer::Optimizer(const OptimizerOptions& options, int dim) : options_(options), dim_(dim) {
  const std::string where = "optimizer '" + options.name + "': ";
  if (dim < 1) fail(where, "dimension must be >= 1, got ", dim);
  if (options.budget < 1) fail(where, "budget must be >= 1, got ", options.budget);
  if (!std::isfinite(options.lower) || !std::isfinite(options.upper) || !(options.lower < options.upper)) {
    fail(where, "bounds must be finite with lower < upper, got [", options.lower, ", ", options.upper, "]");
  }
  if (!std::isfinite(options.sigma) || !(options.sigma > 0.0)) {
    fail(where, "sigma must be finite and > 0, got ", options.sigma);
  }
  if (options.population < 0) fail(where, "population must be >= 0 (0 = default), got ", options.population);
  if (!std::isfinite(options.rho_begin) || options.rho_begin < 0) fail(where, "rho_begin must be >= 0, got ", options.rho_begin);
  if (!std::isfinite(options.rho_end) || options.rho_end < 0) fail(where, "rho_end must be >= 0, got ", options.rho_end);
  if (options.restarts < 0) fail(where, "restarts must be >= 0, got ", options.restarts);
  if (!std::isfinite(options.l1) || options.l1 < 0) fail(where, "l1 must be finite and >= 0, got ", options.l1);
  if (!std::isfinite(options.lr) || !(options.lr > 0)) fail(where, "lr must be finite and > 0, got ", options.lr);
  if (options.memory < 1) fail(where, "memory must be >= 1, got ", options.memory);
  if (options_.init.empty()) options_.init.assign(static_cast<std::size_t>(dim), 0.0);
  if (options_.init.size() != static_cast<std::size_t>(dim)) {
    fail(where, "init has ", options_.init.size(), " values, expected dim = ", dim);
  }
  for (std::size_t i = 0; i < options_.init.size(); ++i) {
    const double v = options_.init[i];
    if (!std::isfinite(v) || v < options.lower || v > options.upper) {
      fail(where, "init[", i, "] = ", v, " is outside the bounds [", options.lower, ", ", options.upper, "]");
    }
  }
}

Optimizer::~Optimizer() = default;

std::vector<double> Optimizer::to_w(const std::vector<double>& x) const {
  std::vector<double> w(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    w[i] = bounce(options_.init[i] + options_.sigma * x[i], options_.lower, options_.upper);
  }
  return w;
}

bool Optimizer::done() const { return finished_ || evaluations() >= options_.budget; }

std::vector<std::vector<double>> Optimizer::ask() {
  if (pending_) {
    fail("optimizer '", options_.name, "': ask() called again before tell() answered the previous ",
         pending_w_.size(), " candidate(s)");
  }
  if (done()) return {};
  const int left = options_.budget - evaluations();
  std::vector<std::vector<double>> xs = propose(left);
  if (xs.empty()) {
    finished_ = true;
    return {};
  }
  if (xs.size() > static_cast<std::size_t>(left)) {
    fail("optimizer '", options_.name, "': proposed ", xs.size(), " candidates with only ", left,
         " evaluations left");
  }
  std::vector<std::vector<double>> ws;
  ws.reserve(xs.size());
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (xs[k].size() != static_cast<std::size_t>(dim_)) {
      fail("optimizer '", options_.name, "': candidate ", k, " has ", xs[k].size(), " values, expected ", dim_);
    }
    std::vector<double> w = to_w(xs[k]);
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (!(w[i] >= options_.lower && w[i] <= options_.upper)) {
        fail("optimizer '", options_.name, "': evaluation ", evaluations() + static_cast<int>(k), " coordinate ",
             i, " maps to w = ", w[i], " outside [", options_.lower, ", ", options_.upper, "] (x = ", xs[k][i],
             ")");
      }
    }
    ws.push_back(std::move(w));
  }
  pending_x_ = std::move(xs);
  pending_w_ = ws;
  pending_ = true;
  return ws;
}

void Optimizer::tell(const std::vector<double>& losses) {
  if (uses_gradient()) fail("optimizer '", options_.name, "': tell() needs the gradients of the asked points");
  tell(losses, {});
}

void Optimizer::tell(const std::vector<double>& losses, const std::vector<std::vector<double>>& gradients) {
  if (!pending_) fail("optimizer '", options_.name, "': tell() without a preceding ask()");
  if (losses.size() != pending_w_.size()) {
    fail("optimizer '", options_.name, "': tell() got ", losses.size(), " losses for ", pending_w_.size(),
         " asked candidate(s)");
  }
  if (uses_gradient()) {
    if (gradients.size() != losses.size()) {
      fail("optimizer '", options_.name, "': tell() got ", gradients.size(), " gradients for ", losses.size(), " losses");
    }
    for (const auto& g : gradients) {
      if (g.size() != static_cast<std::size_t>(dim_)) {
        fail("optimizer '", options_.name, "': a gradient has ", g.size(), " values, expected ", dim_);
      }
    }
  }
  for (std::size_t k = 0; k < losses.size(); ++k) {
    const double loss = losses[k];
    history_x_.push_back(pending_x_[k]);
    history_w_.push_back(pending_w_[k]);
    history_loss_.push_back(loss);
    if (uses_gradient()) history_gradient_.push_back(gradients[k]);
    if (std::isfinite(loss) && (best_index_ < 0 || loss <= history_loss_[static_cast<std::size_t>(best_index_)])) {
      best_index_ = static_cast<int>(history_loss_.size()) - 1;
    }
  }
  pending_ = false;
  std::vector<std::vector<double>> xs = std::move(pending_x_);
  pending_x_.clear();
  pending_w_.clear();
  absorb(xs, losses, uses_gradient() ? gradients : std::vector<std::vector<double>>{});
}

void Optimizer::replay(const std::vector<std::vector<double>>& history_w, const std::vector<double>& history_loss,
                       const std::vector<std::vector<double>>& history_gradient) {
  const std::string where = "optimizer '" + options_.name + "' replay: ";
  if (evaluations() != 0 || pending_) fail(where, "the optimizer is not fresh (", evaluations(), " evaluations)");
  if (history_w.size() != history_loss.size()) {
    fail(where, history_w.size(), " points but ", history_loss.size(), " losses");
  }
  if (uses_gradient() && history_gradient.size() != history_loss.size()) {
    fail(where, history_loss.size(), " losses but ", history_gradient.size(), " gradients (a gradient method needs both)");
  }
  if (history_w.size() > static_cast<std::size_t>(options_.budget)) {
    fail(where, "history has ", history_w.size(), " evaluations, more than the budget ", options_.budget);
  }
  std::size_t i = 0;
  while (i < history_w.size()) {
    std::vector<std::vector<double>> ws = ask();
    if (ws.empty()) fail(where, "the optimizer finished after ", i, " evaluations but the history has ", history_w.size());
    if (i + ws.size() > history_w.size()) {
      fail(where, "history ends inside a batch: ", history_w.size(), " evaluations, batch [", i, ", ", i + ws.size(), ")");
    }
    for (std::size_t k = 0; k < ws.size(); ++k) {
      const auto& stored = history_w[i + k];
      if (stored.size() != ws[k].size()) {
        fail(where, "evaluation ", i + k, " has ", stored.size(), " coordinates, expected ", ws[k].size());
      }
      for (std::size_t c = 0; c < stored.size(); ++c) {
        if (stored[c] != ws[k][c]) {
          fail(where, "evaluation ", i + k, " coordinate ", c, ": stored w = ", stored[c],
               " but the optimizer asks for ", ws[k][c], " (history from other options or another optimizer?)");
        }
      }
    }
    auto slice = [&](const auto& v) {
      using V = std::decay_t<decltype(v)>;
      return V(v.begin() + static_cast<std::ptrdiff_t>(i), v.begin() + static_cast<std::ptrdiff_t>(i + ws.size()));
    };
    tell(slice(history_loss), uses_gradient() ? slice(history_gradient) : std::vector<std::vector<double>>{});
    i += ws.size();
  }
}

std::vector<double> Optimizer::best_w() const {
  if (best_index_ < 0) return options_.init;
  return history_w_[static_cast<std::size_t>(best_index_)];
}

double Optimizer::best_loss() const {
  if (best_index_ < 0) return std::numeric_limits<double>::infinity();
  return history_loss_[static_cast<std::size_t>(best_index_)];
}

std::vector<std::string> optimizer_names() { return {"cobyla", "bobyqa", "neldermead", "cmaes", "adam", "lbfgsb"}; }

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options, int dim) {
  if (options.name == "cobyla") return std::make_unique<NloptOptimizer>(options, dim, NloptMethod::kCobyla);
  if (options.name == "bobyqa") return std::make_unique<NloptOptimizer>(options, dim, NloptMethod::kBobyqa);
  if (options.name == "neldermead") {
    return std::make_unique<NloptOptimizer>(options, dim, NloptMethod::kNelderMead);
  }
  if (options.name == "cmaes") return std::make_unique<CmaEs>(options, dim);
  if (options.name == "adam") return std::make_unique<Adam>(options, dim);
  if (options.name == "lbfgsb") return std::make_unique<Lbfgsb>(options, dim);
  std::ostringstream valid;
  for (const auto& n : optimizer_names()) valid << (valid.tellp() > 0 ? ", " : "") << n;
  fail("unknown optimizer '", options.name, "' (valid: ", valid.str(), ")");
}

std::unique_ptr<Optimizer> restore_optimizer(const OptimizerOptions& options, int dim,
                                             const std::vector<std::vector<double>>& history_w,
                                             const std::vector<double>& history_loss,
                                             const std::vector<std::vector<double>>& history_gradient) {
  auto optimizer = make_optimizer(options, dim);
  optimizer->replay(history_w, history_loss, history_gradient);
  return optimizer;
}

}  // namespace lorahub::opt
