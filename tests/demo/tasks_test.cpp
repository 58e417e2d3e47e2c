// The demo world's task family: determinism, and every answer checked by an independent solver written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/data/bbh.h"
#include "lorahub/data/prompt.h"
#include "lorahub/demo/tasks.h"
#include "lorahub/demo/world.h"

namespace demo = lorahub::demo;
using lorahub::data::Example;
namespace fs = std::filesystem;

namespace {

using Words = std::vector<std::string>;

Words split(const std::string& s) {
  std::istringstream in(s);
  Words w;
  std::string x;
  while (in >> x) w.push_back(x);
  return w;
}

std::string join(const Words& w) {
  std::string s;
  for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
  return s;
}

// The categories, spelled out again here so that a misfiled word in the generator's table is caught.
const std::map<std::string, std::string>& categories() {
  static const std::map<std::string, std::string> m = [] {
    std::map<std::string, std::string> c;
    for (auto w : {"cat", "dog", "cow", "pig", "fox", "owl", "bee", "hen", "horse", "tiger", "mouse", "zebra", "eagle",
                   "rabbit"})
      c[w] = "animal";
    for (auto w : {"red", "blue", "green", "pink", "gray", "black", "white", "brown", "yellow", "purple"}) c[w] = "color";
    for (auto w : {"apple", "pear", "plum", "lime", "fig", "kiwi", "mango", "lemon", "cherry", "banana", "grape", "melon"})
      c[w] = "fruit";
    for (auto w : {"cup", "pen", "box", "car", "hat", "book", "chair", "table", "lamp", "spoon", "clock", "phone"})
      c[w] = "thing";
    return c;
  }();
  return m;
}

std::string cat_of(const std::string& w) {
  auto it = categories().find(w);
  return it == categories().end() ? "?" : it->second;
}

Words only(const Words& w, const std::string& c) {
  Words out;
  for (const auto& x : w) {
    if (cat_of(x) == c) out.push_back(x);
  }
  return out;
}

// Asserts a plain word list of n in [lo, hi] distinct vocabulary words.
::testing::AssertionResult word_list(const Words& w, std::size_t lo, std::size_t hi) {
  if (w.size() < lo || w.size() > hi) return ::testing::AssertionFailure() << w.size() << " words";
  std::set<std::string> s(w.begin(), w.end());
  if (s.size() != w.size()) return ::testing::AssertionFailure() << "repeated word";
  for (const auto& x : w) {
    if (cat_of(x) == "?") return ::testing::AssertionFailure() << "'" << x << "' is not a vocabulary word";
  }
  return ::testing::AssertionSuccess();
}

// Returns the expected answer for one input, checking the input's form on the way.
using Solver = std::function<std::string(const std::string&)>;

Solver reversed_list() {
  return [](const std::string& in) {
    auto w = split(in);
    EXPECT_TRUE(word_list(w, 3, 6)) << in;
    std::reverse(w.begin(), w.end());
    return join(w);
  };
}
Solver nth(int i) {
  return [i](const std::string& in) {
    auto w = split(in);
    EXPECT_TRUE(word_list(w, 3, 6)) << in;
    return i >= 0 ? w[static_cast<std::size_t>(i)] : w[w.size() - 1];
  };
}
Solver filter(const std::string& c) {
  return [c](const std::string& in) {
    auto w = split(in);
    EXPECT_TRUE(word_list(w, 3, 6)) << in;
    auto k = only(w, c);
    EXPECT_GE(k.size(), 1u) << in;
    EXPECT_LT(k.size(), w.size()) << in;
    return join(k);
  };
}
Solver counting() {
  return [](const std::string& in) {
    auto w = split(in);
    EXPECT_TRUE(word_list(w, 1, 9)) << in;
    return std::to_string(w.size());
  };
}
Solver extreme_digit(bool largest) {
  return [largest](const std::string& in) {
    auto w = split(in);
    EXPECT_GE(w.size(), 3u);
    EXPECT_LE(w.size(), 6u);
    std::set<int> d;
    for (const auto& x : w) {
      EXPECT_TRUE(x.size() == 1 && x[0] >= '0' && x[0] <= '9') << in;
      d.insert(x[0] - '0');
    }
    EXPECT_EQ(d.size(), w.size()) << "digits must be distinct: " << in;
    return std::to_string(largest ? *d.rbegin() : *d.begin());
  };
}

const std::map<std::string, Solver>& solvers() {
  static const std::map<std::string, Solver> s = {
      {"reverse", reversed_list()},
      {"backwards", reversed_list()},
      {"first", nth(0)},
      {"second", nth(1)},
      {"last", nth(-1)},
      {"final_word", nth(-1)},
      {"rotate_left",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 6)) << in;
         Words out(w.begin() + 1, w.end());
         out.push_back(w[0]);
         return join(out);
       }},
      {"rotate_right",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 6)) << in;
         Words out = {w.back()};
         out.insert(out.end(), w.begin(), w.end() - 1);
         return join(out);
       }},
      {"drop_first",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 6)) << in;
         return join(Words(w.begin() + 1, w.end()));
       }},
      {"double",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 2, 4)) << in;
         std::string out;
         for (const auto& x : w) out += (out.empty() ? "" : " ") + x + " " + x;
         return out;
       }},
      {"dedup",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_GE(w.size(), 4u);
         EXPECT_LE(w.size(), 6u);
         Words out;
         for (const auto& x : w) {
           EXPECT_NE(cat_of(x), "?") << x;
           if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
         }
         EXPECT_LE(out.size(), 4u) << in;  // drawn from 2 to 4 base words (not necessarily all used)
         EXPECT_LT(out.size(), w.size()) << "no repeat in " << in;
         return join(out);
       }},
      {"only_animals", filter("animal")},
      {"only_colors", filter("color")},
      {"only_fruits", filter("fruit")},
      {"count", counting()},
      {"number_of_items", counting()},
      {"sort",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 5)) << in;
         std::sort(w.begin(), w.end());
         return join(w);
       }},
      {"add",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_EQ(w.size(), 3u) << in;
         EXPECT_EQ(w[1], "+");
         int a = std::stoi(w[0]), b = std::stoi(w[2]);
         EXPECT_TRUE(a >= 0 && a <= 9 && b >= 0 && b <= 9) << in;
         return std::to_string(a + b);
       }},
      {"max", extreme_digit(true)},
      {"smallest", extreme_digit(false)},
      {"bool",
       [](const std::string& in) {
         auto w = split(in);
         std::size_t i = 0;
         auto term = [&]() {
           bool neg = false;
           if (i < w.size() && w[i] == "not") {
             neg = true;
             ++i;
           }
           EXPECT_TRUE(i < w.size() && (w[i] == "true" || w[i] == "false")) << in;
           bool v = i < w.size() && w[i] == "true";
           ++i;
           return neg != v;
         };
         bool a = term();
         EXPECT_TRUE(i < w.size() && (w[i] == "and" || w[i] == "or")) << in;
         bool is_and = i < w.size() && w[i] == "and";
         ++i;
         bool b = term();
         EXPECT_EQ(i, w.size()) << in;
         return std::string((is_and ? (a && b) : (a || b)) ? "true" : "false");
       }},
      {"first_cat",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 6)) << in;
         return cat_of(w[0]);
       }},
      {"first_animal",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 6)) << in;
         EXPECT_NE(cat_of(w[0]), "animal") << in;
         auto a = only(w, "animal");
         EXPECT_FALSE(a.empty()) << in;
         return a.empty() ? std::string() : a[0];
       }},
      {"animals_reversed",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 4, 6)) << in;
         auto a = only(w, "animal");
         EXPECT_GE(a.size(), 2u) << in;
         std::reverse(a.begin(), a.end());
         return join(a);
       }},
      {"animals_twice",
       [](const std::string& in) {
         auto w = split(in);
         EXPECT_TRUE(word_list(w, 3, 6)) << in;
         auto a = only(w, "animal");
         EXPECT_GE(a.size(), 1u) << in;
         EXPECT_LT(a.size(), w.size()) << in;
         std::string out;
         for (const auto& x : a) out += (out.empty() ? "" : " ") + x + " " + x;
         return out;
       }},
  };
  return s;
}

}  // namespace

TEST(DemoTasks, VocabularyHasFortyEightDistinctWordsInTheirCategories) {
  const auto& items = demo::items();
  ASSERT_EQ(items.size(), 48u);
  std::set<std::string> seen;
  for (const auto& it : items) {
    EXPECT_TRUE(seen.insert(it.word).second) << it.word;
    EXPECT_EQ(demo::to_string(it.category), cat_of(it.word)) << it.word;
    EXPECT_EQ(demo::category_of(it.word), it.category);
  }
  EXPECT_THROW(demo::category_of("unicorn"), lorahub::core::Error);
}

TEST(DemoTasks, FamilyHasSixteenUpstreamTasksWithFiveWordingsAndNewWordingsHeldOut) {
  auto up = demo::task_names(demo::TaskRole::kUpstream);
  auto held = demo::task_names(demo::TaskRole::kHeldOut);
  EXPECT_EQ(up.size(), 16u);
  EXPECT_GE(held.size(), 4u);
  std::set<std::string> upstream_instructions;
  for (const auto& t : up) {
    const auto& s = demo::task_spec(t);
    EXPECT_EQ(s.instructions.size(), 5u) << t;
    std::set<std::string> distinct(s.instructions.begin(), s.instructions.end());
    EXPECT_EQ(distinct.size(), 5u) << t;
    upstream_instructions.insert(s.instructions.begin(), s.instructions.end());
  }
  for (const auto& t : held) {
    const auto& s = demo::task_spec(t);
    ASSERT_EQ(s.instructions.size(), 1u) << t;
    EXPECT_EQ(upstream_instructions.count(s.instructions[0]), 0u) << t << " reuses an upstream wording";
    EXPECT_FALSE(s.relation.empty()) << t;
  }
  EXPECT_THROW(demo::task_spec("no_such_task"), lorahub::core::Error);
}

TEST(DemoTasks, EveryAnswerMatchesAnIndependentSolver) {
  for (const auto& spec : demo::task_family()) {
    SCOPED_TRACE(spec.name);
    auto it = solvers().find(spec.name);
    ASSERT_NE(it, solvers().end()) << "no solver in this test for task " << spec.name;
    for (const auto& x : demo::generate_examples(spec.name, 400, 11)) {
      ASSERT_EQ(x.target, it->second(x.input)) << "input: " << x.input;
    }
  }
}

TEST(DemoTasks, GenerationIsDeterministicPerSeedAndTask) {
  for (const auto& spec : demo::task_family()) {
    auto a = demo::generate_examples(spec.name, 60, 5);
    auto b = demo::generate_examples(spec.name, 60, 5);
    auto c = demo::generate_examples(spec.name, 60, 6);
    EXPECT_EQ(a, b) << spec.name;
    EXPECT_NE(a, c) << spec.name;
    // A longer draw starts with the shorter one.
    auto longer = demo::generate_examples(spec.name, 80, 5);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), longer.begin())) << spec.name;
  }
  // Tasks with the same generator but different names draw different streams.
  EXPECT_NE(demo::generate_examples("last", 20, 5), demo::generate_examples("final_word", 20, 5));
}

TEST(DemoTasks, GeneratorStreamIsPinned) {
  // The shipped world depends on these exact streams: a change to a generator or to core::Rng shows up here
  // (then regenerate demo/ with tools/make-demo-world.sh).
  EXPECT_EQ(demo::stream_id("first"), 0x89d7ed7f996f1d41ULL);
  auto first = demo::generate_examples("first", 3, 2024);
  auto bool_ex = demo::generate_examples("bool", 3, 2024);
  std::string all;
  for (const auto& x : first) all += x.input + "=" + x.target + ";";
  for (const auto& x : bool_ex) all += x.input + "=" + x.target + ";";
  EXPECT_EQ(all,
            "lamp spoon blue=lamp;eagle apple black fox pen mouse=eagle;dog lime box lemon brown zebra=dog;"
            "not false or false=true;true or true=true;not false and true=true;");
}

TEST(DemoTasks, TaskCodesNumberTheUpstreamTasks) {
  auto up = demo::task_names(demo::TaskRole::kUpstream);
  for (std::size_t i = 0; i < up.size(); ++i) EXPECT_EQ(demo::task_code(up[i]), "Task " + std::to_string(i + 1) + ".");
  EXPECT_THROW(demo::task_code("first_animal"), lorahub::core::Error);
  EXPECT_THROW(demo::task_code("no_such_task"), lorahub::core::Error);
  auto coded = demo::prompted_examples("max", 5, 2, demo::Wording::kTaskCode);
  auto bare = demo::generate_examples("max", 5, 2);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(coded[i].input, lorahub::data::zero_shot_prompt("Task 14.", bare[i].input));
}

TEST(DemoTasks, UniqueInputsAndTooSmallSpacesFail) {
  auto held = demo::generate_examples("first_animal", 300, 3, /*unique=*/true);
  std::set<std::string> inputs;
  for (const auto& x : held) inputs.insert(x.input);
  EXPECT_EQ(inputs.size(), 300u);
  // "add" has only 100 distinct inputs.
  EXPECT_NO_THROW(demo::generate_examples("add", 100, 3, true));
  EXPECT_THROW(demo::generate_examples("add", 101, 3, true), lorahub::core::Error);
}

TEST(DemoTasks, PromptsUseTheSolverFormatAndAllWordings) {
  const auto& spec = demo::task_spec("sort");
  auto bare = demo::generate_examples("sort", 300, 9);
  auto canonical = demo::prompted_examples("sort", 300, 9, demo::Wording::kCanonical);
  auto templated = demo::prompted_examples("sort", 300, 9, demo::Wording::kAllTemplates);
  std::map<std::string, int> used;
  for (std::size_t i = 0; i < bare.size(); ++i) {
    EXPECT_EQ(canonical[i].input, lorahub::data::zero_shot_prompt(spec.instructions[0], bare[i].input));
    EXPECT_EQ(canonical[i].target, bare[i].target);
    EXPECT_EQ(templated[i].target, bare[i].target);
    bool found = false;
    for (const auto& instr : spec.instructions) {
      if (templated[i].input == lorahub::data::zero_shot_prompt(instr, bare[i].input)) {
        ++used[instr];
        found = true;
      }
    }
    EXPECT_TRUE(found) << templated[i].input;
  }
  ASSERT_EQ(used.size(), 5u);
  for (const auto& [instr, n] : used) EXPECT_GT(n, 30) << instr;  // uniform: about 60 each
}

TEST(DemoTasks, MixtureCoversEveryTaskWithItsCanonicalWording) {
  auto up = demo::task_names(demo::TaskRole::kUpstream);
  auto mix = demo::mixture_examples(up, 3200, 4, demo::Wording::kCanonical);
  ASSERT_EQ(mix.size(), 3200u);
  EXPECT_EQ(mix, demo::mixture_examples(up, 3200, 4, demo::Wording::kCanonical));
  std::map<std::string, int> per_task;
  for (const auto& x : mix) {
    for (const auto& t : up) {
      const auto& instr = demo::task_spec(t).instructions[0];
      if (x.input.rfind(instr + "\n\nQ: ", 0) == 0) ++per_task[t];
    }
  }
  ASSERT_EQ(per_task.size(), up.size());
  for (const auto& [t, n] : per_task) EXPECT_GT(n, 120) << t;  // about 200 each
  EXPECT_THROW(demo::mixture_examples({}, 10, 4, demo::Wording::kCanonical), lorahub::core::Error);
}

TEST(DemoWorld, BbhFilesRoundTripThroughTheSolversLoader) {
  auto dir = fs::temp_directory_path() / ("lorahub-demo-bbh-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto examples = demo::generate_examples("first_animal", 130, 1, true);
  demo::write_bbh_task(dir.string(), "first_animal", "Which animal appears first?", examples, "header line");
  auto task = lorahub::data::load_bbh_task(dir.string(), "first_animal");
  EXPECT_EQ(task.description, "Which animal appears first?");
  EXPECT_EQ(task.examples, examples);
  auto split = lorahub::data::split_bbh(task);
  EXPECT_EQ(split.pool.size(), 100u);
  EXPECT_EQ(split.test.size(), 30u);
  EXPECT_THROW(demo::write_bbh_task(dir.string(), "x", "two\nlines", examples, "h"), lorahub::core::Error);
  fs::remove_all(dir);
}

TEST(DemoWorld, CorpusCoversEveryInstructionAndIsDeterministic) {
  demo::WorldSizes small;
  small.corpus_per_task = 5;
  small.corpus_per_template = 2;
  small.corpus_word_lists = 10;
  auto a = demo::tokenizer_corpus(3, small);
  EXPECT_EQ(a, demo::tokenizer_corpus(3, small));
  for (const auto& spec : demo::task_family()) {
    for (const auto& instr : spec.instructions) {
      bool found = std::any_of(a.begin(), a.end(), [&](const std::string& l) { return l.find(instr) != std::string::npos; });
      EXPECT_TRUE(found) << instr;
    }
  }
  for (const auto& l : a) {
    EXPECT_FALSE(l.empty());
    EXPECT_EQ(l.find('\n'), std::string::npos);
  }
}

TEST(DemoWorld, BaseModelConfigIsTheDocumentedArchitecture) {
  auto c = demo::base_model_config(356);
  EXPECT_EQ(c.num_parameters(), 1424256);  // docs/demo-world.md (tied embedding counted once)
  auto back = lorahub::model::T5Config::from_json(c.to_json(), "test");
  EXPECT_EQ(back.d_model, 128);
  EXPECT_EQ(back.relative_attention_max_distance, 64);
  EXPECT_TRUE(back.tie_word_embeddings);
}
