#pragma once
#include <string>
#include <vector>

#include "lorahub/data/example.h"

namespace lorahub::data {

/// How a model input is built from an example.
///  - kZeroShot:  "<description>\n\nQ: <input>\nA:" (the LoraHub example.py format);
///  - kFewShot:   the description, each shot as "Q: <input>\nA: <target>", then the question,
///                blocks joined by "\n\n":
///                "<desc>\n\nQ: x1\nA: y1\n\nQ: x2\nA: y2\n\nQ: <input>\nA:";
///  - kInputOnly: the input unchanged (the reference's data_bbh contexts already hold the prompt).
/// An empty description drops its block and the "\n\n" after it.
enum class PromptMode { kZeroShot, kFewShot, kInputOnly };

/// "<description>\n\nQ: <input>\nA:" (or "Q: <input>\nA:" when description is empty).
std::string zero_shot_prompt(const std::string& description, const std::string& input);

/// The zero-shot prompt preceded by the solved `shots`, each "Q: <input>\nA: <target>\n\n",
/// after the description block. No shots gives the zero-shot prompt.
std::string few_shot_prompt(const std::string& description, const std::vector<Example>& shots,
                            const std::string& input);

/// The prompt for `input` in `mode`; `shots` is used only by kFewShot.
std::string make_prompt(PromptMode mode, const std::string& description,
                        const std::vector<Example>& shots, const std::string& input);

/// `examples` with each input replaced by make_prompt(mode, description, shots, input); targets
/// and order unchanged.
std::vector<Example> make_prompts(PromptMode mode, const std::string& description,
                                  const std::vector<Example>& shots,
                                  const std::vector<Example>& examples);

}  // namespace lorahub::data
