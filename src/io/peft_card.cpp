#include "io/peft_card.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "lorahub/core/version.h"
#include "lorahub/core/error.h"


namespace lorahub::io {
using core::cat;
using nlohmann::json;

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Table cells: a '|' would end the cell and a newline the row.
std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string text_attr(const RunRecord& run, const std::string& key) {
  auto it = run.text_attrs.find(key);
  return it != run.text_attrs.end() ? it->second : "";
}

double number_attr(const RunRecord& run, const std::string& key) {
  auto it = run.number_attrs.find(key);
  return it != run.number_attrs.end() ? it->second : std::nan("");
}

std::size_t correct_count(const RunRecord& run) {
  std::size_t n = 0;
  for (auto c : run.correct) n += c != 0;
  return n;
}

std::size_t shots(const RunRecord& run) {
  double k = number_attr(run, "shots");
  return std::isfinite(k) && k >= 0 ? static_cast<std::size_t>(k) : run.train_inputs.size();
}

std::string targets_text(const json& targets) {
  if (targets.is_string()) return cat("`", targets.get<std::string>(), "` (regex)");
  std::string out;
  if (targets.is_array()) {
    for (const auto& t : targets) out += (out.empty() ? "" : ", ") + (t.is_string() ? t.get<std::string>() : t.dump());
  }
  return out;
}

bool rslora(const json& cfg) { return cfg.contains("use_rslora") && cfg["use_rslora"] == true; }

}  // namespace

std::string model_card(const CardInputs& in) {
  const RunRecord& run = in.run;
  const json& cfg = in.adapter_config;
  std::ostringstream md;
  md << "---\n";
  if (in.base_is_hub_id) md << "base_model: " << in.base_model << "\n";
  md << "library_name: peft\ntags:\n- lora\n- lorahub\n---\n\n";
  md << "# LoraHub composition: " << run.task << ", seed " << run.seed << "\n\n";
  if (run.method == "lora-ft") {
    md << "A LoRA adapter fine-tuned by lorahub-hpc on the few-shot examples of task `" << run.task
       << "` (the `lora-ft` baseline of a LoraHub comparison).";
  } else {
    md << "A LoRA adapter that is a weighted sum of " << run.module_names.size()
       << " library modules (LoraHub, arXiv 2307.13269: `A = sum_i w_i A_i`, `B = sum_i w_i B_i`), with the "
       << "weights " << (run.method == "lorahub" ? "searched on " : "set for ") << "the few-shot examples of task `"
       << run.task << "` (method `" << run.method << "`).";
  }
  md << " Exported by lorahub-hpc " << core::version() << " as a PEFT adapter folder.\n\n";

  md << "| | |\n|:---|:---|\n";
  md << "| Base model | " << (in.base_model.empty() ? "unknown" : cat("`", cell(in.base_model), "`"))
     << (in.base_revision.empty() ? "" : cat(" at revision `", in.base_revision, "`")) << " |\n";
  md << "| Task | `" << cell(run.task) << "` |\n";
  md << "| Method | " << cell(run.method) << " |\n";
  md << "| Seed | " << run.seed << " |\n";
  const std::string optimizer = text_attr(run, "optimizer");
  const double budget = number_attr(run, "budget");
  if (!optimizer.empty()) {
    md << "| Optimizer | " << cell(optimizer) << (std::isfinite(budget) ? cat(", budget ", budget) : "") << " |\n";
  }
  md << "| Few-shot examples | " << shots(run) << " |\n";
  if (std::isfinite(run.best_loss)) md << "| Few-shot loss | " << fixed(run.best_loss, 4) << " |\n";
  if (!std::isnan(run.accuracy)) {
    md << "| Test accuracy | " << fixed(100 * run.accuracy, 1) << " %";
    if (!run.correct.empty()) md << " (" << correct_count(run) << " / " << run.correct.size() << ")";
    md << " |\n";
  }
  md << "| LoRA | r = " << cfg.value("r", json()).dump() << ", lora_alpha = " << cfg.value("lora_alpha", json()).dump()
     << (rslora(cfg) ? " (rsLoRA)" : "") << ", target modules "
     << cell(targets_text(cfg.value("target_modules", json()))) << " |\n";
  md << "| PEFT | adapter_config.json uses fields known to PEFT >= " << in.report.min_peft_version << " |\n";
  const std::string run_version = text_attr(run, "software_version");
  md << "| lorahub-hpc | " << core::version() << (run_version.empty() ? "" : cat(" (the run: ", cell(run_version), ")"))
     << " |\n\n";

  if (!run.module_names.empty()) {
    md << "## Modules and weights\n\n| # | Module | Weight |\n|---:|:---|---:|\n";
    for (std::size_t i = 0; i < run.module_names.size(); ++i) {
      md << "| " << i + 1 << " | `" << cell(run.module_names[i]) << "` | "
         << (run.best_weights.empty() ? std::string("-") : fixed(run.best_weights[i], 4)) << " |\n";
    }
    md << "\nThe exact values are in `lorahub_composition.json`.\n\n";
  }

  md << "## Use\n\n```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForSeq2SeqLM\n\n";
  md << "base = AutoModelForSeq2SeqLM.from_pretrained(\"" << (in.base_model.empty() ? "BASE_MODEL" : in.base_model)
     << "\"" << (in.base_revision.empty() ? "" : cat(", revision=\"", in.base_revision, "\"")) << ")\n";
  md << "model = PeftModel.from_pretrained(base, \"path/to/this/folder\")\n```\n";
  return md.str();
}

json composition_json(const CardInputs& in) {
  const RunRecord& run = in.run;
  const json& cfg = in.adapter_config;
  json modules = json::array();
  for (std::size_t i = 0; i < run.module_names.size(); ++i) {
    modules.push_back({{"name", run.module_names[i]},
                       {"weight", run.best_weights.empty() ? json(nullptr) : number_or_null(run.best_weights[i])}});
  }
  auto text_or_null = [&](const std::string& key) {
    std::string v = text_attr(run, key);
    return v.empty() ? json(nullptr) : json(v);
  };
  return {
      {"format", "lorahub-composition"},
      {"format_version", 1},
      {"lorahub_hpc_version", core::version()},
      {"run_software_version", text_or_null("software_version")},
      {"task", run.task},
      {"method", run.method},
      {"seed", run.seed},
      {"base_model", in.base_model.empty() ? json(nullptr) : json(in.base_model)},
      {"base_model_revision", in.base_revision.empty() ? json(nullptr) : json(in.base_revision)},
      {"library_path", text_or_null("library_path")},
      {"optimizer", text_or_null("optimizer")},
      {"budget", number_or_null(number_attr(run, "budget"))},
      {"shots", shots(run)},
      {"modules", modules},
      {"best_loss", number_or_null(run.best_loss)},
      {"accuracy", number_or_null(run.accuracy)},
      {"test_examples", run.correct.size()},
      {"test_correct", correct_count(run)},
      {"r", cfg.value("r", json())},
      {"lora_alpha", cfg.value("lora_alpha", json())},
      {"use_rslora", rslora(cfg)},
      {"peft", {{"requested_version", in.requested_peft_version.empty() ? json(nullptr) : json(in.requested_peft_version)},
                {"min_version", in.report.min_peft_version},
                {"dropped_fields", in.report.dropped_fields}}},
  };
}

}  // namespace lorahub::io
