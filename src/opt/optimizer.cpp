#include "lorahub/opt/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "lorahub/core/error.h"
#include "opt/cmaes.h"
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
  if (!pending_) fail("optimizer '", options_.name, "': tell() without a preceding ask()");
  if (losses.size() != pending_w_.size()) {
    fail("optimizer '", options_.name, "': tell() got ", losses.size(), " losses for ", pending_w_.size(),
         " asked candidate(s)");
  }
  for (std::size_t k = 0; k < losses.size(); ++k) {
    const double loss = losses[k];
    history_x_.push_back(pending_x_[k]);
    history_w_.push_back(pending_w_[k]);
    history_loss_.push_back(loss);
    if (std::isfinite(loss) && (best_index_ < 0 || loss <= history_loss_[static_cast<std::size_t>(best_index_)])) {
      best_index_ = static_cast<int>(history_loss_.size()) - 1;
    }
  }
  pending_ = false;
  std::vector<std::vector<double>> xs = std::move(pending_x_);
  pending_x_.clear();
  pending_w_.clear();
  absorb(xs, losses);
}

void Optimizer::replay(const std::vector<std::vector<double>>& history_w, const std::vector<double>& history_loss) {
  const std::string where = "optimizer '" + options_.name + "' replay: ";
  if (evaluations() != 0 || pending_) fail(where, "the optimizer is not fresh (", evaluations(), " evaluations)");
  if (history_w.size() != history_loss.size()) {
    fail(where, history_w.size(), " points but ", history_loss.size(), " losses");
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
    tell(std::vector<double>(history_loss.begin() + static_cast<std::ptrdiff_t>(i),
                             history_loss.begin() + static_cast<std::ptrdiff_t>(i + ws.size())));
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

std::vector<std::string> optimizer_names() { return {"cobyla", "bobyqa", "neldermead", "cmaes"}; }

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options, int dim) {
  if (options.name == "cobyla") return std::make_unique<NloptOptimizer>(options, dim, NloptMethod::kCobyla);
  if (options.name == "bobyqa") return std::make_unique<NloptOptimizer>(options, dim, NloptMethod::kBobyqa);
  if (options.name == "neldermead") {
    return std::make_unique<NloptOptimizer>(options, dim, NloptMethod::kNelderMead);
  }
  if (options.name == "cmaes") return std::make_unique<CmaEs>(options, dim);
  std::ostringstream valid;
  for (const auto& n : optimizer_names()) valid << (valid.tellp() > 0 ? ", " : "") << n;
  fail("unknown optimizer '", options.name, "' (valid: ", valid.str(), ")");
}

std::unique_ptr<Optimizer> restore_optimizer(const OptimizerOptions& options, int dim,
                                             const std::vector<std::vector<double>>& history_w,
                                             const std::vector<double>& history_loss) {
  auto optimizer = make_optimizer(options, dim);
  optimizer->replay(history_w, history_loss);
  return optimizer;
}

}  // namespace lorahub::opt
