#pragma once
#include <string>
#include <utility>
#include <vector>

namespace lorahub::bench {

/// (forward-equivalents, best loss so far) points, in increasing forward-equivalents.
using Curve = std::vector<std::pair<double, double>>;

/// A line chart of several curves (x: forward-equivalents from 0 to max_x, y: loss), one colour each and a legend,
/// written as a standalone SVG file. Throws core::Error naming the file when it cannot be written.
void write_curve_plot(const std::string& path, const std::string& title,
                      const std::vector<std::pair<std::string, Curve>>& series, double max_x);

}  // namespace lorahub::bench
