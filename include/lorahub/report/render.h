#pragma once
// Text and chart forms of a Summary: Markdown for people, CSV and JSON for tools, SVG for a browser.
#include <string>

#include "lorahub/report/summary.h"

namespace lorahub::report {

enum class Format { kMarkdown, kCsv, kJson };

/// "md" / "markdown", "csv", "json". Throws core::Error listing the choices otherwise.
Format parse_format(const std::string& name);

/// A Markdown report: the accuracy table (%; one row per task, the unweighted average over tasks,
/// and when some cells are empty also the average over the tasks every method has), a table of
/// input tokens per example, learning and evaluation seconds per task and run counts per method,
/// and notes that list missing, failed and incomplete runs. Empty cells are "–".
std::string render_markdown(const Summary& summary);

/// RFC 4180 CSV, one row per task x method ("row" = "task") and per method ("average",
/// "average_common"); accuracies as fractions in [0, 1], empty fields for no value.
std::string render_csv(const Summary& summary);

/// JSON document {"format": "lorahub-report", "version": 1, "source", "tasks", "methods", "cells",
/// "averages", "common_tasks", "issues", ...}; accuracies as fractions; null for no value.
std::string render_json(const Summary& summary);

/// Dispatches to one of the three above.
std::string render(const Summary& summary, Format format);

/// A standalone SVG 1.1 document: a horizontal grouped bar chart of mean accuracy (%) per task and
/// method, with the seed range (min to max) drawn as a line across bars of several seeds, and an
/// "Average" group; title, legend, axes, value labels and hover titles. Text is XML-escaped.
std::string render_svg(const Summary& summary);

}  // namespace lorahub::report
