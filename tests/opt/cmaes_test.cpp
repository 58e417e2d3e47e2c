#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lorahub/opt/optimizer.h"
#include "opt/objectives.h"

namespace {

using lorahub::opt::make_optimizer;
using lorahub::opt::Optimizer;
using lorahub::opt::OptimizerOptions;

OptimizerOptions cma(int budget, std::uint64_t seed, int population = 0) {
  OptimizerOptions o;
  o.name = "cmaes";
  o.budget = budget;
  o.seed = seed;
  o.population = population;
  return o;
}

std::vector<int> run(Optimizer& opt) {
  const auto f = lorahub::opt::testing::quadratic_target(-1.0, 1.2, opt.dim());
  std::vector<int> batch_sizes;
  while (!opt.done()) {
    const auto c = opt.ask();
    if (c.empty()) break;
    batch_sizes.push_back(static_cast<int>(c.size()));
    std::vector<double> losses;
    for (const auto& w : c) losses.push_back(f(w));
    opt.tell(losses);
  }
  return batch_sizes;
}

TEST(CmaEs, DeterministicForASeed) {
  auto a = make_optimizer(cma(100, 42), 20);
  auto b = make_optimizer(cma(100, 42), 20);
  run(*a);
  run(*b);
  EXPECT_EQ(a->history_w(), b->history_w());
  EXPECT_EQ(a->history_loss(), b->history_loss());
}

TEST(CmaEs, DifferentSeedsGiveDifferentRuns) {
  auto a = make_optimizer(cma(100, 1), 20);
  auto b = make_optimizer(cma(100, 2), 20);
  run(*a);
  run(*b);
  ASSERT_EQ(a->evaluations(), b->evaluations());
  int differing = 0;
  for (int k = 0; k < a->evaluations(); ++k) differing += a->history_w()[k] != b->history_w()[k];
  EXPECT_EQ(differing, a->evaluations());
  EXPECT_NE(a->best_loss(), b->best_loss());
}

TEST(CmaEs, AsksLambdaAtOnceAndFewerAtTheEnd) {
  // default lambda for N = 20: 4 + floor(3 ln 20) = 12; budget 40 = 12 + 12 + 12 + 4
  auto opt = make_optimizer(cma(40, 3), 20);
  EXPECT_EQ(run(*opt), (std::vector<int>{12, 12, 12, 4}));
  EXPECT_EQ(opt->evaluations(), 40);
  EXPECT_TRUE(opt->done());

  auto custom = make_optimizer(cma(25, 3, 10), 5);
  EXPECT_EQ(run(*custom), (std::vector<int>{10, 10, 5}));
}

TEST(CmaEs, ImprovesOverGenerations) {
  auto opt = make_optimizer(cma(600, 5), 10);
  run(*opt);
  const auto& loss = opt->history_loss();
  const int lambda = 4 + static_cast<int>(std::floor(3.0 * std::log(10.0)));
  double first_gen = loss[0];
  for (int k = 0; k < lambda; ++k) first_gen = std::min(first_gen, loss[static_cast<std::size_t>(k)]);
  double last_gen = loss[loss.size() - 1];
  for (std::size_t k = loss.size() - static_cast<std::size_t>(lambda); k < loss.size(); ++k) last_gen = std::min(last_gen, loss[k]);
  // the optimum of this target (sum (w - t)^2 + l1) is about 0.05 * mean|t|; the last generation must be close
  EXPECT_LT(last_gen, 0.1 * first_gen);
  EXPECT_LT(opt->best_loss(), 0.1);
}

// IPOP restarts: a run that has converged (the step size collapses on a sphere well inside the box) ends early
// without restarts; with them it starts again with twice the population and spends the budget.
TEST(CmaEs, RestartsDoubleThePopulationAfterConvergence) {
  auto sphere = [](const std::vector<double>& w) {
    double s = 0;
    for (double x : w) s += (x - 0.3) * (x - 0.3);
    return s;
  };
  auto drive = [&](Optimizer& opt) {
    std::vector<int> sizes;
    while (!opt.done()) {
      const auto c = opt.ask();
      if (c.empty()) break;
      sizes.push_back(static_cast<int>(c.size()));
      std::vector<double> losses;
      for (const auto& w : c) losses.push_back(sphere(w));
      opt.tell(losses);
    }
    return sizes;
  };
  auto once = make_optimizer(cma(20000, 3), 2);
  drive(*once);
  ASSERT_LT(once->evaluations(), 20000) << "expected convergence well before the budget";
  auto o = cma(20000, 3);
  o.restarts = 2;
  auto restarted = make_optimizer(o, 2);
  auto sizes = drive(*restarted);
  EXPECT_GT(restarted->evaluations(), once->evaluations());
  // 2-D default population 6, then 12 and 24.
  EXPECT_EQ(sizes.front(), 6);
  EXPECT_NE(std::find(sizes.begin(), sizes.end(), 12), sizes.end());
  EXPECT_NE(std::find(sizes.begin(), sizes.end(), 24), sizes.end());
  EXPECT_LE(restarted->best_loss(), once->best_loss() + 1e-12);
}

}  // namespace
