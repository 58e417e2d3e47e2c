// The grouped bar chart of a Summary as a hand-written SVG 1.1 document (no plotting library needed).
#include <algorithm>
#include <cmath>
#include <sstream>

#include "lorahub/report/render.h"
#include "lorahub/job/methods.h"
#include "report/text.h"

namespace lorahub::report {
namespace {

using detail::fixed;
using detail::xml_escape;

constexpr double kFont = 12;
constexpr double kSmallFont = 9;
constexpr double kBarHeight = 10;
constexpr double kBarGap = 1;
constexpr double kGroupGap = 12;
constexpr double kPlotWidth = 600;
constexpr double kRightMargin = 56;
constexpr double kMaxLabelWidth = 330;
constexpr std::size_t kMaxLabelChars = 48;
constexpr const char* kFontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif";

// Okabe-Ito colours, distinguishable with colour-vision deficiencies; fixed per known method, and
// methods this build does not know take the next of the others.
std::string colour(const std::string& method, std::size_t& unknown_seen) {
  static const char* kOthers[] = {"#CC79A7", "#F0E442", "#000000", "#7F3C8D", "#11A579"};
  if (const auto* m = job::find_method(method); m && method == m->name) return m->colour;
  return kOthers[unknown_seen++ % (sizeof kOthers / sizeof kOthers[0])];
}

std::string px(double v) { return fixed(v, 1); }

std::string no_result_reason(const Cell& c) {
  std::vector<std::string> parts;
  if (c.failed) parts.push_back(std::to_string(c.failed) + " failed");
  if (c.incomplete) parts.push_back(std::to_string(c.incomplete) + " incomplete");
  if (c.missing) parts.push_back(std::to_string(c.missing) + " missing");
  if (c.unevaluated) parts.push_back(std::to_string(c.unevaluated) + " without accuracy");
  if (parts.empty()) return "no runs";
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

}  // namespace

std::string render_svg(const Summary& s) {
  const std::size_t n_series = s.methods.size();
  const bool empty = s.tasks.empty() || n_series == 0;

  std::vector<std::string> labels;
  double label_width = detail::text_width("Average", kFont);
  for (const auto& t : s.tasks) {
    labels.push_back(detail::truncate(t, kMaxLabelChars));
    label_width = std::max(label_width, detail::text_width(labels.back(), kFont));
  }
  const double left = 16 + std::min(label_width, kMaxLabelWidth) + 10;
  const double width = std::ceil(left + kPlotWidth + kRightMargin);

  // Legend entries flow left to right and wrap at the chart width.
  struct LegendItem {
    double x, y;
    std::string text, colour;
    bool range = false;
  };
  std::vector<LegendItem> legend;
  double lx = 16, ly = 62;
  auto add_legend = [&](const std::string& text, const std::string& fill, bool range) {
    const double w = 18 + detail::text_width(text, kFont) + 20;
    if (lx + w > width - 16 && lx > 16) {
      lx = 16;
      ly += 20;
    }
    legend.push_back({lx, ly, text, fill, range});
    lx += w;
  };
  std::size_t unknown = 0;
  std::vector<std::string> fills;
  for (const auto& m : s.methods) {
    fills.push_back(colour(m, unknown));
    add_legend(method_label(m), fills.back(), false);
  }
  add_legend("range over seeds (min–max)", "#000000", true);

  const double axis_top = ly + 40;
  const double group_height = n_series * (kBarHeight + kBarGap) - kBarGap;
  const std::size_t n_groups = empty ? 0 : s.tasks.size() + 1;
  const double plot_top = axis_top + 8;
  const double plot_bottom = plot_top + n_groups * (group_height + kGroupGap) + (empty ? 40 : 8);
  const double height = std::ceil(plot_bottom + 70);
  auto x_of = [&](double fraction) { return left + std::clamp(fraction, 0.0, 1.0) * kPlotWidth; };

  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"" << kFontFamily << "\" font-size=\""
    << kFont << "\">\n";
  o << "<title>LoraHub report: " << xml_escape(s.source) << "</title>\n";
  o << "<desc>Exact-match accuracy (%) per task and method; bars show the mean over seeds, lines the range over "
       "seeds; the last group is the unweighted average over tasks.</desc>\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"#FFFFFF\"/>\n";
  o << "<text x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\">Accuracy per task (%)</text>\n";
  o << "<text x=\"16\" y=\"44\" font-size=\"11\" fill=\"#444444\">" << xml_escape(detail::truncate(s.source, 120))
    << "</text>\n";

  o << "<g id=\"legend\">\n";
  for (const auto& item : legend) {
    if (item.range) {
      o << "<line x1=\"" << px(item.x) << "\" y1=\"" << px(item.y - 4) << "\" x2=\"" << px(item.x + 12) << "\" y2=\""
        << px(item.y - 4) << "\" stroke=\"#000000\" stroke-width=\"1.5\"/>\n";
    } else {
      o << "<rect x=\"" << px(item.x) << "\" y=\"" << px(item.y - 10) << "\" width=\"12\" height=\"12\" fill=\""
        << item.colour << "\"/>\n";
    }
    o << "<text x=\"" << px(item.x + 18) << "\" y=\"" << px(item.y) << "\">" << xml_escape(item.text) << "</text>\n";
  }
  o << "</g>\n";

  if (empty) {
    o << "<text x=\"" << px(left + 8) << "\" y=\"" << px(plot_top + 20) << "\">No runs are stored yet.</text>\n";
  }

  // Axis: grid every 10 %, tick labels above and below so a tall chart stays readable.
  o << "<g id=\"axis\" font-size=\"10\" fill=\"#444444\">\n";
  for (int tick = 0; tick <= 100; tick += 10) {
    const double x = x_of(tick / 100.0);
    o << "<line x1=\"" << px(x) << "\" y1=\"" << px(axis_top) << "\" x2=\"" << px(x) << "\" y2=\"" << px(plot_bottom)
      << "\" stroke=\"" << (tick == 0 ? "#000000" : "#DDDDDD") << "\" stroke-width=\"1\"/>\n";
    o << "<text x=\"" << px(x) << "\" y=\"" << px(axis_top - 4) << "\" text-anchor=\"middle\">" << tick << "</text>\n";
    o << "<text x=\"" << px(x) << "\" y=\"" << px(plot_bottom + 14) << "\" text-anchor=\"middle\">" << tick
      << "</text>\n";
  }
  o << "<text x=\"" << px(left + kPlotWidth / 2) << "\" y=\"" << px(plot_bottom + 32)
    << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#000000\">Exact-match accuracy (%)</text>\n";
  o << "</g>\n";

  bool any_partial = false, any_fewer = false;
  o << "<g id=\"bars\">\n";
  for (std::size_t g = 0; g < n_groups; ++g) {
    const bool average = g == s.tasks.size();
    const double top = plot_top + g * (group_height + kGroupGap);
    if (average) {
      const double y = top - kGroupGap / 2;
      o << "<line x1=\"16\" y1=\"" << px(y) << "\" x2=\"" << px(width - 16) << "\" y2=\"" << px(y)
        << "\" stroke=\"#888888\" stroke-dasharray=\"4 3\"/>\n";
    }
    const std::string group_name = average ? "Average" : labels[g];
    o << "<text x=\"" << px(left - 10) << "\" y=\"" << px(top + group_height / 2) << "\" dy=\"0.35em\" text-anchor=\"end\""
      << (average ? " font-weight=\"bold\"" : "") << ">" << xml_escape(group_name);
    if (!average && labels[g] != s.tasks[g]) o << "<title>" << xml_escape(s.tasks[g]) << "</title>";
    o << "</text>\n";
    for (std::size_t m = 0; m < n_series; ++m) {
      const double y = top + m * (kBarHeight + kBarGap);
      const std::string who = (average ? std::string("Average") : s.tasks[g]) + " — " + method_label(s.methods[m]);
      double value = kNaN, lo = kNaN, hi = kNaN;
      std::string mark, tip;
      if (average) {
        const MethodAverage& a = s.averages[m];
        value = a.mean;
        if (a.tasks_with_value > 0) {
          const bool fewer = a.tasks_with_value < s.tasks.size();
          any_fewer = any_fewer || fewer;
          mark = fewer ? "‡" : "";
          tip = who + ": " + fixed(100 * a.mean, 1) + "% (unweighted mean over " + std::to_string(a.tasks_with_value) +
                " of " + std::to_string(s.tasks.size()) + " tasks; mean of best seeds " + fixed(100 * a.best, 1) + ")";
        } else {
          tip = who + ": no result";
        }
      } else {
        const Cell& c = s.cell(g, m);
        value = c.mean;
        if (c.has_value()) {
          if (c.seeds.size() > 1) {
            lo = c.min;
            hi = c.best;
          }
          any_partial = any_partial || c.partial();
          mark = c.partial() ? "†" : "";
          tip = who + ": " + fixed(100 * c.mean, 1) + "%";
          if (c.seeds.size() > 1) {
            tip += " (mean of " + std::to_string(c.seeds.size()) + " seeds; min " + fixed(100 * c.min, 1) + ", best " +
                   fixed(100 * c.best, 1) + ")";
          }
          if (c.partial()) tip += "; " + no_result_reason(c);
          if (!c.best_module.empty()) tip += "; module " + c.best_module;
        } else {
          tip = who + ": no result (" + no_result_reason(c) + ")";
        }
      }
      if (!std::isfinite(value)) {
        o << "<text x=\"" << px(left + kPlotWidth + 6) << "\" y=\"" << px(y + kBarHeight / 2) << "\" dy=\"0.35em\" font-size=\""
          << kSmallFont << "\" fill=\"#888888\">–<title>" << xml_escape(tip) << "</title></text>\n";
        continue;
      }
      const double x_end = x_of(value);
      o << "<rect x=\"" << px(left) << "\" y=\"" << px(y) << "\" width=\"" << px(x_end - left) << "\" height=\""
        << px(kBarHeight) << "\" fill=\"" << fills[m] << "\"" << (mark == "†" ? " fill-opacity=\"0.55\"" : "")
        << "><title>" << xml_escape(tip) << "</title></rect>\n";
      if (std::isfinite(lo) && std::isfinite(hi)) {
        const double cy = y + kBarHeight / 2;
        o << "<path d=\"M" << px(x_of(lo)) << " " << px(cy) << "H" << px(x_of(hi)) << "M" << px(x_of(lo)) << " "
          << px(y + 1) << "V" << px(y + kBarHeight - 1) << "M" << px(x_of(hi)) << " " << px(y + 1) << "V"
          << px(y + kBarHeight - 1) << "\" stroke=\"#000000\" stroke-width=\"1\" fill=\"none\"/>\n";
      }
      // Values form one column right of the plot, clear of the range lines.
      o << "<text x=\"" << px(left + kPlotWidth + 6) << "\" y=\"" << px(y + kBarHeight / 2) << "\" dy=\"0.35em\" font-size=\""
        << kSmallFont << "\" fill=\"#333333\">" << fixed(100 * value, 1) << mark << "</text>\n";
    }
  }
  o << "</g>\n";

  std::string note = "Bars: mean over seeds; lines: min–max over seeds; –: no result.";
  if (any_partial) note += " †: fewer runs than expected.";
  if (any_fewer) note += " ‡: average over only the tasks with a value.";
  o << "<text x=\"16\" y=\"" << px(plot_bottom + 56) << "\" font-size=\"10\" fill=\"#444444\">" << xml_escape(note)
    << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

}  // namespace lorahub::report
