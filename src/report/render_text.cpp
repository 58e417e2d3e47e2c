// Markdown, CSV and JSON forms of a Summary.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/report/render.h"
#include "report/text.h"

namespace lorahub::report {
namespace {

using detail::clean_utf8;
using detail::md_escape;

constexpr const char* kNone = "–";
constexpr const char* kPartialMark = "†";
constexpr const char* kFewerTasksMark = "‡";
// Longer issue lists are cut in Markdown; JSON keeps them all.
constexpr std::size_t kMaxIssueLines = 40;

// One accuracy column of the Markdown table: a method's mean, or (LoraHub) its best seed too.
struct Column {
  std::size_t method;
  bool best;
  std::string label;
};

std::vector<Column> columns(const Summary& s) {
  std::vector<Column> out;
  for (std::size_t m = 0; m < s.methods.size(); ++m) {
    const std::string label = method_label(s.methods[m]);
    if (s.methods[m] == "lorahub") {
      out.push_back({m, false, label + " avg"});
      out.push_back({m, true, label + " best"});
    } else {
      out.push_back({m, false, label});
    }
  }
  return out;
}

std::string percent(double fraction) { return detail::fixed(100.0 * fraction, 1); }

std::string join_seeds(const std::vector<std::int64_t>& seeds) {
  std::string out;
  for (std::size_t i = 0; i < seeds.size(); ++i) out += (i ? ", " : "") + std::to_string(seeds[i]);
  return out;
}

std::string or_none(const std::string& text) { return text.empty() ? kNone : text; }

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::size_t expected_runs(const Summary& s) {
  std::size_t n = 0;
  for (const auto& a : s.averages) n += a.runs_expected;
  return n;
}

std::size_t complete_runs(const Summary& s) {
  std::size_t n = 0;
  for (const auto& a : s.averages) n += a.runs_complete;
  return n;
}

// LoraHub's accuracy per seed beside zero-shot, so that the spread over seeds (few-shot samples, module
// choices) is visible and not only its mean. Left out with more than 10 seeds (the JSON has them all).
void per_seed_table(const Summary& s, std::ostringstream& md) {
  const auto find = [&](const char* name) {
    return static_cast<std::size_t>(std::find(s.methods.begin(), s.methods.end(), name) - s.methods.begin());
  };
  const std::size_t hub = find("lorahub"), zero = find("zero-shot");
  if (hub == s.methods.size()) return;
  std::set<std::int64_t> seeds;
  for (std::size_t t = 0; t < s.tasks.size(); ++t) {
    const Cell& c = s.cell(t, hub);
    seeds.insert(c.seeds.begin(), c.seeds.end());
    seeds.insert(c.expected_seeds.begin(), c.expected_seeds.end());
  }
  if (seeds.size() < 2 || seeds.size() > 10) return;
  md << "\n## LoraHub per seed\n\nAccuracy (%) of each seed's run; beats zero-shot: the seeds above the zero-shot "
        "accuracy.\n\n| Task |";
  for (auto seed : seeds) md << " seed " << seed << " |";
  md << " Mean ± sd |" << (zero < s.methods.size() ? " Zero-shot | Beats zero-shot |" : "") << "\n|:---|";
  for (std::size_t i = 0; i < seeds.size() + 1 + (zero < s.methods.size() ? 2 : 0); ++i) md << "---:|";
  md << "\n";
  std::size_t beats = 0, runs = 0;
  for (std::size_t t = 0; t < s.tasks.size(); ++t) {
    const Cell& c = s.cell(t, hub);
    md << "| " << md_escape(s.tasks[t]) << " |";
    for (auto seed : seeds) {
      auto it = std::find(c.seeds.begin(), c.seeds.end(), seed);
      md << " " << (it == c.seeds.end() ? std::string(kNone) : percent(c.accuracies[static_cast<std::size_t>(it - c.seeds.begin())])) << " |";
    }
    md << " " << (c.has_value() ? percent(c.mean) : std::string(kNone))
       << (std::isfinite(c.stdev) ? " ± " + percent(c.stdev) : std::string()) << " |";
    if (zero < s.methods.size()) {
      const Cell& z = s.cell(t, zero);
      if (z.has_value() && c.has_value()) {
        const auto n = static_cast<std::size_t>(
            std::count_if(c.accuracies.begin(), c.accuracies.end(), [&](double a) { return a > z.mean; }));
        beats += n;
        runs += c.accuracies.size();
        md << " " << percent(z.mean) << " | " << n << " of " << c.accuracies.size() << " |";
      } else {
        md << " " << (z.has_value() ? percent(z.mean) : std::string(kNone)) << " | " << kNone << " |";
      }
    }
    md << "\n";
  }
  if (runs) md << "\nLoraHub beats zero-shot in " << beats << " of " << runs << " runs.\n";
}

void issue_notes(const Summary& s, std::ostringstream& md) {
  struct Kind {
    const char* kind;
    const char* title;
  };
  static const Kind kKinds[] = {{"missing", "Missing runs"},
                                {"failed", "Failed runs"},
                                {"incomplete", "Incomplete runs (interrupted writes; rerun with --resume)"},
                                {"unevaluated", "Complete runs without an accuracy"},
                                {"damaged", "Damaged runs (their groups cannot be read; `lorahub merge` skips them)"}};
  for (const auto& k : kKinds) {
    // Seeds of one task, method and reason are listed together: "task / LoraHub: seeds 2, 3 — reason".
    std::vector<std::tuple<std::string, std::string, std::string>> keys;
    std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::int64_t>> seeds;
    std::size_t count = 0;
    for (const auto& i : s.issues) {
      if (i.kind != k.kind) continue;
      ++count;
      auto key = std::make_tuple(i.task, i.method, i.reason);
      if (!seeds.count(key)) keys.push_back(key);
      seeds[key].push_back(i.seed);
    }
    if (count == 0) continue;
    md << "- **" << k.title << "** (" << count << "):\n";
    for (std::size_t n = 0; n < keys.size(); ++n) {
      if (n == kMaxIssueLines) {
        md << "  - … and " << keys.size() - n << " more (all are listed by `--format json`)\n";
        break;
      }
      const auto& [task, method, reason] = keys[n];
      const auto& ss = seeds[keys[n]];
      md << "  - " << md_escape(task) << " / " << md_escape(method_label(method)) << ": seed" << (ss.size() > 1 ? "s " : " ")
         << join_seeds(ss);
      if (!reason.empty()) md << " — " << md_escape(detail::truncate(reason, 200));
      md << "\n";
    }
  }
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "md" || name == "markdown") return Format::kMarkdown;
  if (name == "csv") return Format::kCsv;
  if (name == "json") return Format::kJson;
  core::fail("report format '", name, "' is not one of md, csv, json");
}

std::string render_markdown(const Summary& s) {
  std::ostringstream md;
  md << "# LoraHub report\n\n";
  md << "Results file: " << md_escape(s.source) << " — " << s.tasks.size() << " task" << (s.tasks.size() == 1 ? "" : "s")
     << ", " << s.methods.size() << " method" << (s.methods.size() == 1 ? "" : "s") << ", " << complete_runs(s)
     << " runs with an accuracy";
  if (s.has_plan) md << " of " << expected_runs(s) << " expected";
  md << ".\n\n";
  if (s.tasks.empty() || s.methods.empty()) {
    md << "No runs are stored yet.\n";
    if (!s.plan_problem.empty()) md << "\n- " << md_escape(s.plan_problem) << "\n";
    return md.str();
  }
  md << "Exact-match accuracy (%) on each task's test set. Methods run with several seeds show the mean over "
        "seeds; LoraHub also shows its best seed.";
  for (const auto& m : s.methods) {
    if (m == "lora-single") md << " Best single: the library module with the highest test accuracy (an oracle).";
  }
  md << "\n\n";

  const auto cols = columns(s);
  md << "| Task |";
  for (const auto& c : cols) md << " " << md_escape(c.label) << " |";
  md << "\n|:---|";
  for (std::size_t i = 0; i < cols.size(); ++i) md << "---:|";
  md << "\n";
  bool any_partial = false;
  for (std::size_t t = 0; t < s.tasks.size(); ++t) {
    md << "| " << md_escape(s.tasks[t]) << " |";
    for (const auto& c : cols) {
      const Cell& cell = s.cell(t, c.method);
      if (!cell.has_value()) {
        md << " " << kNone << " |";
        continue;
      }
      md << " " << percent(c.best ? cell.best : cell.mean) << (cell.partial() ? kPartialMark : "") << " |";
      any_partial = any_partial || cell.partial();
    }
    md << "\n";
  }
  bool fewer_tasks = false;
  md << "| **Average** |";
  for (const auto& c : cols) {
    const MethodAverage& a = s.averages[c.method];
    if (a.tasks_with_value == 0) {
      md << " " << kNone << " |";
      continue;
    }
    const bool fewer = a.tasks_with_value < s.tasks.size();
    fewer_tasks = fewer_tasks || fewer;
    md << " **" << percent(c.best ? a.best : a.mean) << "**" << (fewer ? kFewerTasksMark : "") << " |";
  }
  md << "\n";
  if (s.averages_differ() && !s.common_tasks.empty()) {
    md << "| Average over the " << s.common_tasks.size() << " task" << (s.common_tasks.size() == 1 ? "" : "s")
       << " every method has |";
    for (const auto& c : cols) {
      const MethodAverage& a = s.averages[c.method];
      md << " " << percent(c.best ? a.common_best : a.common_mean) << " |";
    }
    md << "\n";
  }

  per_seed_table(s, md);

  md << "\n## Cost per method\n\n";
  md << "Means over tasks (each task's value is the mean over its seeds).\n\n";
  md << "| Method | Input tokens / example | Learning s / task | Evaluation s / task | Runs complete";
  if (s.has_plan) md << " / expected";
  md << " |\n|:---|---:|---:|---:|---:|\n";
  for (const auto& a : s.averages) {
    md << "| " << md_escape(method_label(a.method)) << " | "
       << (std::isfinite(a.tokens_per_example) ? detail::fixed(a.tokens_per_example, 1) : kNone) << " | "
       << or_none(detail::seconds(a.learn_seconds)) << " | " << or_none(detail::seconds(a.eval_seconds)) << " | "
       << a.runs_complete;
    if (s.has_plan) md << " / " << a.runs_expected;
    md << " |\n";
  }

  std::ostringstream notes;
  if (any_partial) {
    notes << "- " << kPartialMark << " Fewer runs than expected (some are missing, failed or incomplete; see below): "
       << "the value is over the seeds that have one.\n";
  }
  if (fewer_tasks) {
    notes << "- " << kFewerTasksMark << " Averaged only over the tasks where the method has a value:";
    for (const auto& a : s.averages) {
      if (a.tasks_with_value < s.tasks.size()) {
        notes << " " << md_escape(method_label(a.method)) << " " << a.tasks_with_value << " of " << s.tasks.size() << ";";
      }
    }
    if (!s.common_tasks.empty()) notes << " the row below it compares all methods on the same tasks.";
    notes << "\n";
  }
  if (md.str().find(kNone) != std::string::npos) notes << "- " << kNone << ": no result.\n";
  if (!s.plan_problem.empty()) notes << "- " << md_escape(s.plan_problem) << ".\n";
  if (!s.unplanned_tasks.empty()) {
    notes << "- Stored but not in the job's configuration (kept from an earlier job; nothing is expected of them):";
    for (std::size_t i = 0; i < s.unplanned_tasks.size(); ++i) notes << (i ? ", " : " ") << md_escape(s.unplanned_tasks[i]);
    notes << ".\n";
  }
  issue_notes(s, notes);
  if (!s.damaged_groups.empty()) {
    notes << "- **Damaged groups** (" << s.damaged_groups.size() << "; their runs cannot be listed and count as missing):\n";
    for (const auto& g : s.damaged_groups) notes << "  - " << md_escape(detail::truncate(g, 300)) << "\n";
  }
  if (!notes.str().empty()) md << "\n## Notes\n\n" << notes.str();
  return md.str();
}

std::string render_csv(const Summary& s) {
  using detail::csv_field;
  using detail::shortest;
  std::ostringstream csv;
  csv << "row,task,method,runs_expected,runs_complete,accuracy_mean,accuracy_best,accuracy_min,accuracy_std,"
         "tokens_per_example,learn_seconds,eval_seconds,evaluations,failed,incomplete,missing,unevaluated,"
         "tasks_with_value,best_module\r\n";
  for (std::size_t t = 0; t < s.tasks.size(); ++t) {
    for (std::size_t m = 0; m < s.methods.size(); ++m) {
      const Cell& c = s.cell(t, m);
      csv << "task," << csv_field(c.task) << "," << csv_field(c.method) << ","
          << (s.has_plan ? std::to_string(c.expected_seeds.size()) : "") << "," << c.seeds.size() << ","
          << shortest(c.mean) << "," << shortest(c.best) << "," << shortest(c.min) << "," << shortest(c.stdev) << ","
          << shortest(c.tokens_per_example) << "," << shortest(c.learn_seconds) << "," << shortest(c.eval_seconds)
          << "," << shortest(c.evaluations) << "," << c.failed << "," << c.incomplete << "," << c.missing << ","
          << c.unevaluated << ",," << csv_field(c.best_module) << "\r\n";
    }
  }
  for (const auto& a : s.averages) {
    csv << "average,," << csv_field(a.method) << "," << (s.has_plan ? std::to_string(a.runs_expected) : "") << ","
        << a.runs_complete << "," << shortest(a.mean) << "," << shortest(a.best) << ",,," << shortest(a.tokens_per_example)
        << "," << shortest(a.learn_seconds) << "," << shortest(a.eval_seconds) << ",," << a.runs_failed << ","
        << a.runs_incomplete << "," << a.runs_missing << "," << a.runs_unevaluated << "," << a.tasks_with_value
        << ",\r\n";
  }
  if (!s.common_tasks.empty()) {
    for (const auto& a : s.averages) {
      csv << "average_common,," << csv_field(a.method) << ",,," << shortest(a.common_mean) << ","
          << shortest(a.common_best) << ",,,,,,,,,,," << s.common_tasks.size() << ",\r\n";
    }
  }
  return csv.str();
}

std::string render_json(const Summary& s) {
  using nlohmann::json;
  json j;
  j["format"] = "lorahub-report";
  j["version"] = 1;
  j["source"] = clean_utf8(s.source);
  j["job_plan"] = s.has_plan;
  j["plan_problem"] = s.plan_problem.empty() ? json(nullptr) : json(clean_utf8(s.plan_problem));
  json attrs = json::object();
  for (const auto& [k, v] : s.file_attrs) attrs[clean_utf8(k)] = clean_utf8(v);
  j["file_attrs"] = attrs;
  j["tasks"] = json::array();
  for (const auto& t : s.tasks) j["tasks"].push_back(clean_utf8(t));
  j["methods"] = json::array();
  for (const auto& m : s.methods) j["methods"].push_back({{"name", clean_utf8(m)}, {"label", clean_utf8(method_label(m))}});
  j["cells"] = json::array();
  for (const auto& c : s.cells) {
    json accs = json::array();
    for (double a : c.accuracies) accs.push_back(number(a));
    json modules = json::object();
    for (const auto& [name, acc] : c.module_accuracies) modules[clean_utf8(name)] = number(acc);
    j["cells"].push_back({{"task", clean_utf8(c.task)},
                          {"method", clean_utf8(c.method)},
                          {"expected_seeds", c.expected_seeds},
                          {"seeds", c.seeds},
                          {"accuracies", accs},
                          {"mean", number(c.mean)},
                          {"best", number(c.best)},
                          {"min", number(c.min)},
                          {"std", number(c.stdev)},
                          {"partial", c.partial()},
                          {"tokens_per_example", number(c.tokens_per_example)},
                          {"learn_seconds", number(c.learn_seconds)},
                          {"eval_seconds", number(c.eval_seconds)},
                          {"evaluations", number(c.evaluations)},
                          {"best_module", c.best_module.empty() ? json(nullptr) : json(clean_utf8(c.best_module))},
                          {"module_accuracies", modules},
                          {"failed", c.failed},
                          {"incomplete", c.incomplete},
                          {"missing", c.missing},
                          {"unevaluated", c.unevaluated}});
  }
  j["averages"] = json::array();
  for (const auto& a : s.averages) {
    j["averages"].push_back({{"method", clean_utf8(a.method)},
                             {"tasks_with_value", a.tasks_with_value},
                             {"mean", number(a.mean)},
                             {"best", number(a.best)},
                             {"common_mean", number(a.common_mean)},
                             {"common_best", number(a.common_best)},
                             {"tokens_per_example", number(a.tokens_per_example)},
                             {"learn_seconds", number(a.learn_seconds)},
                             {"eval_seconds", number(a.eval_seconds)},
                             {"runs_expected", a.runs_expected},
                             {"runs_complete", a.runs_complete},
                             {"runs_failed", a.runs_failed},
                             {"runs_incomplete", a.runs_incomplete},
                             {"runs_missing", a.runs_missing},
                             {"runs_unevaluated", a.runs_unevaluated}});
  }
  j["common_tasks"] = json::array();
  for (const auto& t : s.common_tasks) j["common_tasks"].push_back(clean_utf8(t));
  j["unplanned_tasks"] = json::array();
  for (const auto& t : s.unplanned_tasks) j["unplanned_tasks"].push_back(clean_utf8(t));
  j["issues"] = json::array();
  for (const auto& i : s.issues) {
    j["issues"].push_back({{"task", clean_utf8(i.task)},
                           {"method", clean_utf8(i.method)},
                           {"seed", i.seed},
                           {"kind", i.kind},
                           {"reason", clean_utf8(i.reason)}});
  }
  j["damaged_groups"] = json::array();
  for (const auto& g : s.damaged_groups) j["damaged_groups"].push_back(clean_utf8(g));
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string render(const Summary& summary, Format format) {
  switch (format) {
    case Format::kMarkdown: return render_markdown(summary);
    case Format::kCsv: return render_csv(summary);
    case Format::kJson: return render_json(summary);
  }
  core::fail("unknown report format");
}

}  // namespace lorahub::report
