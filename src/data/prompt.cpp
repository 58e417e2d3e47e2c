#include "lorahub/data/prompt.h"

namespace lorahub::data {

namespace {

void append_question(std::string& out, const std::string& input) {
  out += "Q: ";
  out += input;
  out += "\nA:";
}

}  // namespace

std::string few_shot_prompt(const std::string& description, const std::vector<Example>& shots,
                            const std::string& input) {
  std::string out;
  if (!description.empty()) {
    out += description;
    out += "\n\n";
  }
  for (const Example& shot : shots) {
    append_question(out, shot.input);
    out += ' ';
    out += shot.target;
    out += "\n\n";
  }
  append_question(out, input);
  return out;
}

std::string zero_shot_prompt(const std::string& description, const std::string& input) {
  return few_shot_prompt(description, {}, input);
}

std::string make_prompt(PromptMode mode, const std::string& description,
                        const std::vector<Example>& shots, const std::string& input) {
  switch (mode) {
    case PromptMode::kZeroShot:
      return zero_shot_prompt(description, input);
    case PromptMode::kFewShot:
      return few_shot_prompt(description, shots, input);
    case PromptMode::kInputOnly:
      break;
  }
  return input;
}

std::vector<Example> make_prompts(PromptMode mode, const std::string& description,
                                  const std::vector<Example>& shots,
                                  const std::vector<Example>& examples) {
  std::vector<Example> out;
  out.reserve(examples.size());
  for (const Example& e : examples) {
    out.push_back({make_prompt(mode, description, shots, e.input), e.target});
  }
  return out;
}

}  // namespace lorahub::data
