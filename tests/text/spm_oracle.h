#pragma once
// Test oracle for the text module: trains small sentencepiece models with the real `spm_train`
// and segments text with the real `spm_encode` / `spm_decode`, all inside a temporary directory.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace lorahub::text::testing {

namespace fs = std::filesystem;
using lorahub::test::TempDir;

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline void run_or_throw(const std::string& command) {
  const int rc = std::system(command.c_str());
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + command);
}

inline void write_file(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Mixed-script training text: English-like words built from syllables, accented Latin, Greek,
/// Cyrillic, CJK, Hangul, emoji and punctuation, one sentence a line (deterministic).
inline std::string training_corpus() {
  const std::vector<std::string> syllables = {"ka", "lo", "re", "mi", "tan", "sen", "po",  "da",
                                              "ing", "er", "the", "qu", "est", "ion", "an", "s"};
  const std::vector<std::string> words = {
      "translate", "premise", "hypothesis", "answer", "question", "options", "true", "false",
      "café",      "naïve",   "Zürich",     "résumé", "東京",     "日本語",  "中文", "안녕하세요",
      "Привет",    "мир",     "Ωμέγα",      "straße", "😀",       "🚀",      "don't", "it's",
      "(a)",       "1984",    "3.14",       "e-mail", "x+y=z",    "<tag>",  "The",  "quick",
      "brown",     "fox",     "jumps",      "over",   "lazy",     "dog",    "Hello", "World",
      "JUMPS",     "Quiz",    "vex",        "WALTZ"};
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&](std::uint64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % n;
  };
  std::string out;
  for (int line = 0; line < 4000; ++line) {
    const auto n_words = 3 + next(12);
    for (std::uint64_t w = 0; w < n_words; ++w) {
      if (w > 0) out += ' ';
      if (next(3) == 0) {
        out += words[next(words.size())];
      } else {
        const auto n_syl = 1 + next(3);
        for (std::uint64_t s = 0; s < n_syl; ++s) out += syllables[next(syllables.size())];
      }
    }
    static const char* kEnd[] = {".", "?", "!", ",", ""};
    out += kEnd[next(5)];
    out += '\n';
  }
  return out;
}

/// Trains `<dir>/<name>.model` with spm_train; `options` are extra spm_train flags.
inline fs::path train_model(const fs::path& dir, const std::string& name, const std::string& options) {
  const fs::path corpus = dir / "corpus.txt";
  if (!fs::exists(corpus)) write_file(corpus, training_corpus());
  const fs::path prefix = dir / name;
  run_or_throw(std::string(LORAHUB_SPM_TRAIN) + " --input=" + quote(corpus.string()) +
               " --model_prefix=" + quote(prefix.string()) + " " + options +
               " --minloglevel=2 > " + quote((dir / (name + ".log")).string()) + " 2>&1");
  return prefix.string() + ".model";
}

/// The T5 layout: pad 0, eos 1, unk 2, no bos.
inline std::string t5_ids() { return "--pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"; }

/// `spm_encode --output_format=id`, one result per line (no line may contain '\n').
inline std::vector<std::vector<int64_t>> spm_encode(const fs::path& model,
                                                    const std::vector<std::string>& lines) {
  TempDir tmp;
  std::string input;
  for (const auto& line : lines) {
    if (line.find('\n') != std::string::npos) throw std::runtime_error("newline in oracle input");
    input += line + "\n";
  }
  write_file(tmp.path() / "in.txt", input);
  run_or_throw(std::string(LORAHUB_SPM_ENCODE) + " --model=" + quote(model.string()) +
               " --output_format=id --input=" + quote((tmp.path() / "in.txt").string()) +
               " --output=" + quote((tmp.path() / "out.txt").string()));
  std::ifstream in(tmp.path() / "out.txt");
  std::vector<std::vector<int64_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::vector<int64_t> ids;
    int64_t id = 0;
    while (ss >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  if (out.size() != lines.size()) {
    throw std::runtime_error("spm_encode returned " + std::to_string(out.size()) + " lines for " +
                             std::to_string(lines.size()));
  }
  return out;
}

inline std::vector<int64_t> spm_encode(const fs::path& model, const std::string& line) {
  return spm_encode(model, std::vector<std::string>{line}).front();
}

/// `spm_decode --input_format=id`, one text per id sequence.
inline std::vector<std::string> spm_decode(const fs::path& model,
                                           const std::vector<std::vector<int64_t>>& rows) {
  TempDir tmp;
  std::string input;
  for (const auto& ids : rows) {
    for (std::size_t i = 0; i < ids.size(); ++i) input += (i ? " " : "") + std::to_string(ids[i]);
    input += "\n";
  }
  write_file(tmp.path() / "in.txt", input);
  run_or_throw(std::string(LORAHUB_SPM_DECODE) + " --model=" + quote(model.string()) +
               " --input_format=id --input=" + quote((tmp.path() / "in.txt").string()) +
               " --output=" + quote((tmp.path() / "out.txt").string()));
  std::ifstream in(tmp.path() / "out.txt");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  if (out.size() != rows.size()) throw std::runtime_error("spm_decode returned a wrong line count");
  return out;
}

/// The pieces of a model in id order, from the `.vocab` file spm_train writes next to it.
inline std::vector<std::string> vocab_pieces(const fs::path& model) {
  fs::path vocab = model;
  vocab.replace_extension(".vocab");
  std::ifstream in(vocab);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line.substr(0, line.find('\t')));
  return out;
}

}  // namespace lorahub::text::testing
