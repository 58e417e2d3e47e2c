#include "search_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "lorahub/core/error.h"

namespace lorahub::bench {
namespace {

constexpr double kWidth = 900, kHeight = 460;
constexpr double kLeft = 64, kRight = 380, kTop = 40, kBottom = 48;  // plot margins; the legend sits on the right

std::string num(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << v;
  return os.str();
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

}  // namespace

void write_curve_plot(const std::string& path, const std::string& title,
                      const std::vector<std::pair<std::string, Curve>>& series, double max_x) {
  // Okabe-Ito colours and dash patterns, distinguishable without colour too.
  static const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  static const char* kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};
  double max_y = 0;
  for (const auto& [name, c] : series) {
    for (const auto& [x, y] : c) {
      if (std::isfinite(y)) max_y = std::max(max_y, y);
    }
  }
  double y_step = 0.1;
  for (double s : {0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0}) {
    y_step = s;
    if (max_y / s <= 8) break;
  }
  max_y = max_y > 0 ? std::ceil(max_y / y_step) * y_step : 1;
  const int y_ticks = static_cast<int>(std::lround(max_y / y_step));
  // Round ticks: the x axis ends on a multiple of a step that gives at most 8 ticks.
  double step = 10;
  for (double s : {10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 500.0}) {
    step = s;
    if (max_x / s <= 8) break;
  }
  max_x = std::ceil(max_x / step) * step;
  const int x_ticks = static_cast<int>(std::lround(max_x / step));
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + pw * std::min(x, max_x) / max_x; };
  auto py = [&](double y) { return kTop + ph * (1 - y / max_y); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kLeft << "\" y=\"22\" font-size=\"14\">" << escape(title) << "</text>\n";
  // Axes, ticks and grid.
  for (int i = 0; i <= y_ticks; ++i) {
    const double y = y_step * i;
    svg << "<line x1=\"" << num(kLeft) << "\" x2=\"" << num(kLeft + pw) << "\" y1=\"" << num(py(y)) << "\" y2=\""
        << num(py(y)) << "\" stroke=\"#dddddd\"/>\n"
        << "<text x=\"" << num(kLeft - 6) << "\" y=\"" << num(py(y) + 4) << "\" font-size=\"11\" text-anchor=\"end\">"
        << std::fixed << std::setprecision(2) << y << "</text>\n";
  }
  for (int i = 0; i <= x_ticks; ++i) {
    const double x = step * i;
    svg << "<line x1=\"" << num(px(x)) << "\" x2=\"" << num(px(x)) << "\" y1=\"" << num(kTop) << "\" y2=\""
        << num(kTop + ph) << "\" stroke=\"#eeeeee\"/>\n"
        << "<text x=\"" << num(px(x)) << "\" y=\"" << num(kTop + ph + 16) << "\" font-size=\"11\" text-anchor=\"middle\">"
        << std::fixed << std::setprecision(0) << x << "</text>\n";
  }
  svg << "<rect x=\"" << num(kLeft) << "\" y=\"" << num(kTop) << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
      << "\" fill=\"none\" stroke=\"#333333\"/>\n"
      << "<text x=\"" << num(kLeft + pw / 2) << "\" y=\"" << num(kHeight - 10)
      << "\" font-size=\"12\" text-anchor=\"middle\">forward-equivalents per run</text>\n"
      << "<text x=\"16\" y=\"" << num(kTop + ph / 2) << "\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
      << num(kTop + ph / 2) << ")\">median best loss</text>\n";
  for (std::size_t s = 0; s < series.size(); ++s) {
    const auto& [name, c] = series[s];
    const char* colour = kColours[s % (sizeof kColours / sizeof kColours[0])];
    const char* dash = kDashes[(s / (sizeof kColours / sizeof kColours[0]) + s) % (sizeof kDashes / sizeof kDashes[0])];
    std::ostringstream points;
    for (const auto& [x, y] : c) {
      if (std::isfinite(y) && x <= max_x) points << num(px(x)) << "," << num(py(y)) << " ";
    }
    svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\""
        << (*dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string()) << " points=\"" << points.str()
        << "\"><title>" << escape(name) << "</title></polyline>\n";
    const double ly = kTop + 14 + 18 * static_cast<double>(s);
    svg << "<line x1=\"" << num(kWidth - kRight + 16) << "\" x2=\"" << num(kWidth - kRight + 44) << "\" y1=\"" << num(ly)
        << "\" y2=\"" << num(ly) << "\" stroke=\"" << colour << "\" stroke-width=\"2\""
        << (*dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string()) << "/>\n"
        << "<text x=\"" << num(kWidth - kRight + 50) << "\" y=\"" << num(ly + 4) << "\" font-size=\"11\">" << escape(name)
        << "</text>\n";
  }
  svg << "</svg>\n";
  std::ofstream out(path);
  out << svg.str();
  if (!out) core::fail(path, ": cannot write the plot");
}

}  // namespace lorahub::bench
