#pragma once
// Test objectives for the optimizers, including the three of tests/fixtures/optimizer (computed in the
// same floating-point order as numpy, so that losses agree with the recorded trace).
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace lorahub::opt::testing {

/// numpy's pairwise summation of a contiguous float64 array (np.sum / np.add.reduce, identity 0).
inline double numpy_sum(const std::vector<double>& a) {
  const std::size_t n = a.size();
  double res = 0.0;
  if (n < 8) {
    double s = 0.0;
    for (double v : a) s += v;
    return res + s;
  }
  if (n > 128) {
    std::size_t half = n / 2;
    half -= half % 8;
    return numpy_sum(std::vector<double>(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(half))) +
           numpy_sum(std::vector<double>(a.begin() + static_cast<std::ptrdiff_t>(half), a.end()));
  }
  double r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[static_cast<std::size_t>(j)];
  std::size_t i = 8;
  for (; i < n - (n % 8); i += 8) {
    for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
  }
  double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) s += a[i];
  return res + s;
}

inline double numpy_mean(const std::vector<double>& a) { return numpy_sum(a) / static_cast<double>(a.size()); }

/// np.linspace(start, stop, num) (endpoint included).
inline std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> t(static_cast<std::size_t>(num));
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) t[static_cast<std::size_t>(i)] = i * step + start;
  t.back() = stop;
  return t;
}

inline double l1(const std::vector<double>& w) {
  std::vector<double> a(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) a[i] = std::fabs(w[i]);
  return 0.05 * numpy_mean(a);
}

/// sum_i (w_i - t_i)^2 + l1(w), t = linspace(a, b, dim).
inline std::function<double(const std::vector<double>&)> quadratic_target(double a, double b, int dim) {
  const std::vector<double> t = linspace(a, b, dim);
  return [t](const std::vector<double>& w) {
    std::vector<double> sq(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) sq[i] = (w[i] - t[i]) * (w[i] - t[i]);
    return numpy_sum(sq) + l1(w);
  };
}

/// mean_i(sin(3 w_i) + 0.5 w_i^2) + l1(w).
inline double rugged_sin(const std::vector<double>& w) {
  std::vector<double> v(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) v[i] = std::sin(3.0 * w[i]) + 0.5 * (w[i] * w[i]);
  return numpy_mean(v) + l1(w);
}

/// The trace's objective by its run name.
inline std::function<double(const std::vector<double>&)> trace_objective(const std::string& name, int dim) {
  if (name == "quadratic_target_linspace(-1,1.2)") return quadratic_target(-1.0, 1.2, dim);
  if (name == "quadratic_target_linspace(-3,3)_hits_bounds") return quadratic_target(-3.0, 3.0, dim);
  if (name == "rugged_sin") return rugged_sin;
  return {};
}

/// sum_i (w_i - c_i)^2 with c_i = 0.8 * cos(i): minimum 0 inside [-1.5, 1.5].
inline double shifted_sphere(const std::vector<double>& w) {
  double s = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double d = w[i] - 0.8 * std::cos(static_cast<double>(i));
    s += d * d;
  }
  return s;
}

/// Rosenbrock: sum_i 100 (w_{i+1} - w_i^2)^2 + (1 - w_i)^2, minimum 0 at w = 1 (inside [-1.5, 1.5]).
inline double rosenbrock(const std::vector<double>& w) {
  double s = 0.0;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) {
    const double a = w[i + 1] - w[i] * w[i];
    const double b = 1.0 - w[i];
    s += 100.0 * a * a + b * b;
  }
  return s;
}

}  // namespace lorahub::opt::testing
