#include "lorahub/demo/tasks.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "lorahub/core/error.h"
#include "lorahub/data/prompt.h"

namespace lorahub::demo {
using core::fail;

namespace {

using Words = std::vector<std::string>;

std::string join(const Words& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

std::uint64_t uniform_int(core::Rng& rng, std::uint64_t lo, std::uint64_t hi) { return lo + rng.below(hi - lo + 1); }

// `n` distinct words drawn uniformly from the vocabulary (partial Fisher-Yates).
Words distinct_words(core::Rng& rng, std::size_t n) {
  const auto& all = items();
  std::vector<std::size_t> idx(all.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  Words out;
  for (std::size_t i = 0; i < n; ++i) {
    std::swap(idx[i], idx[i + rng.below(idx.size() - i)]);
    out.push_back(all[idx[i]].word);
  }
  return out;
}

Words random_list(core::Rng& rng, std::size_t lo, std::size_t hi) {
  return distinct_words(rng, static_cast<std::size_t>(uniform_int(rng, lo, hi)));
}

std::size_t count_in(const Words& words, Category c) {
  std::size_t n = 0;
  for (const auto& w : words) n += category_of(w) == c ? 1 : 0;
  return n;
}

Words keep(const Words& words, Category c) {
  Words out;
  for (const auto& w : words) {
    if (category_of(w) == c) out.push_back(w);
  }
  return out;
}

// Draws lists until `accept` holds; the acceptance rates here are all above 10%, so the bound is never reached.
Words list_where(core::Rng& rng, std::size_t lo, std::size_t hi, const std::function<bool(const Words&)>& accept) {
  for (int attempt = 0; attempt < 100000; ++attempt) {
    auto w = random_list(rng, lo, hi);
    if (accept(w)) return w;
  }
  fail("demo task generator: no acceptable word list after 100000 draws");
}

// 3 to 6 words with at least one word of category c and one of another category.
Words mixed_list(core::Rng& rng, Category c, std::size_t lo = 3, std::size_t hi = 6) {
  return list_where(rng, lo, hi, [c](const Words& w) {
    auto k = count_in(w, c);
    return k >= 1 && k < w.size();
  });
}

std::vector<int> distinct_digits(core::Rng& rng, std::size_t n) {
  std::vector<int> d = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (std::size_t i = 0; i < n; ++i) std::swap(d[i], d[i + rng.below(d.size() - i)]);
  d.resize(n);
  return d;
}

std::string join_digits(const std::vector<int>& d) {
  std::string s;
  for (int x : d) s += (s.empty() ? "" : " ") + std::to_string(x);
  return s;
}

data::Example ex(std::string input, std::string target) { return data::Example{std::move(input), std::move(target)}; }

using Generator = std::function<data::Example(core::Rng&)>;

struct TaskEntry {
  TaskSpec spec;
  Generator generate;
};

TaskSpec upstream(std::string name, std::string skill, std::vector<std::string> instructions) {
  TaskSpec s;
  s.name = std::move(name);
  s.role = TaskRole::kUpstream;
  s.instructions = std::move(instructions);
  s.skill = std::move(skill);
  return s;
}

TaskSpec held_out(std::string name, std::string skill, std::string instruction, std::string relation) {
  TaskSpec s;
  s.name = std::move(name);
  s.role = TaskRole::kHeldOut;
  s.instructions = {std::move(instruction)};
  s.skill = std::move(skill);
  s.relation = std::move(relation);
  return s;
}

const std::vector<TaskEntry>& entries() {
  static const std::vector<TaskEntry> table = [] {
    std::vector<TaskEntry> t;
    // ---- upstream: one LoRA module each ------------------------------------------------------------------
    t.push_back({upstream("reverse", "the words in reverse order",
                          {"Reverse the order of the words.", "Write the words in reverse order.",
                           "Put the words in the opposite order.", "Flip the list so the last word comes first.",
                           "Give the words from last to first."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   auto in = join(w);
                   std::reverse(w.begin(), w.end());
                   return ex(in, join(w));
                 }});
    t.push_back({upstream("first", "the first word",
                          {"What is the first word?", "Which word comes first?", "Give the first word of the list.",
                           "Name the word at the start.", "Write only the first word."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   return ex(join(w), w.front());
                 }});
    t.push_back({upstream("last", "the last word",
                          {"What is the last word?", "Give the final word of the list.",
                           "Name the word in the last position.", "Write only the last word.", "Which word is last?"}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   return ex(join(w), w.back());
                 }});
    t.push_back({upstream("second", "the second word",
                          {"What is the second word?", "Which word comes second?", "Give the word after the first one.",
                           "Name the word in position two.", "Write only the second word."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   return ex(join(w), w[1]);
                 }});
    t.push_back({upstream("rotate_left", "the first word moved to the end",
                          {"Move the first word to the end.", "Take the first word and put it last.",
                           "Shift the list left by one place.", "Rotate the words so the first one goes to the back.",
                           "Put the opening word at the end."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   auto in = join(w);
                   std::rotate(w.begin(), w.begin() + 1, w.end());
                   return ex(in, join(w));
                 }});
    t.push_back({upstream("drop_first", "the list without its first word",
                          {"Delete the first word.", "Remove the word at the start.",
                           "Write the list without its first word.", "Drop the first item.",
                           "Give every word except the first."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   return ex(join(w), join(Words(w.begin() + 1, w.end())));
                 }});
    t.push_back({upstream("double", "every word written twice in place",
                          {"Write every word twice.", "Say each word double.",
                           "Repeat every item once more right after it.", "Duplicate each word.",
                           "Copy each word twice in a row."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 2, 4);
                   Words out;
                   for (const auto& x : w) out.insert(out.end(), {x, x});
                   return ex(join(w), join(out));
                 }});
    t.push_back({upstream("dedup", "the first occurrence of every word, in order",
                          {"Remove the repeated words.", "Delete duplicates and keep the first copy.",
                           "Write each word only once.", "Drop words that appeared before.",
                           "Keep only the first occurrence of every word."}),
                 [](core::Rng& r) {
                   for (;;) {
                     auto base = random_list(r, 2, 4);
                     auto n = static_cast<std::size_t>(uniform_int(r, 4, 6));
                     Words w;
                     for (std::size_t i = 0; i < n; ++i) w.push_back(base[r.below(base.size())]);
                     Words out;
                     std::set<std::string> seen;
                     for (const auto& x : w) {
                       if (seen.insert(x).second) out.push_back(x);
                     }
                     if (out.size() < w.size()) return ex(join(w), join(out));
                   }
                 }});
    t.push_back({upstream("only_animals", "the animals, in order",
                          {"Keep only the animals.", "Which words are animals?",
                           "Remove everything that is not an animal.", "List the animal words.",
                           "Write just the animals."}),
                 [](core::Rng& r) {
                   auto w = mixed_list(r, Category::kAnimal);
                   return ex(join(w), join(keep(w, Category::kAnimal)));
                 }});
    t.push_back({upstream("only_colors", "the colors, in order",
                          {"Keep only the colors.", "Which words are colors?", "Remove everything that is not a color.",
                           "List the color words.", "Write just the colors."}),
                 [](core::Rng& r) {
                   auto w = mixed_list(r, Category::kColor);
                   return ex(join(w), join(keep(w, Category::kColor)));
                 }});
    t.push_back({upstream("count", "the number of words, as a digit",
                          {"How many words are there?", "Count the words.", "What is the number of words?",
                           "Give the length of the list.", "How long is the list?"}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 1, 9);
                   return ex(join(w), std::to_string(w.size()));
                 }});
    t.push_back({upstream("sort", "the words in alphabetical order",
                          {"Sort the words in alphabetical order.", "Put the words in a to z order.",
                           "Arrange the words alphabetically.", "Order the words like a dictionary.",
                           "Alphabetize the list."}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 5);
                   auto in = join(w);
                   std::sort(w.begin(), w.end());
                   return ex(in, join(w));
                 }});
    t.push_back({upstream("add", "the sum of two digits",
                          {"Add the two numbers.", "What is the sum?", "Compute the total of the two numbers.",
                           "Work out the addition.", "Give the result of the sum."}),
                 [](core::Rng& r) {
                   auto a = static_cast<int>(r.below(10));
                   auto b = static_cast<int>(r.below(10));
                   return ex(std::to_string(a) + " + " + std::to_string(b), std::to_string(a + b));
                 }});
    t.push_back({upstream("max", "the largest of 3 to 6 distinct digits",
                          {"Which number is the largest?", "What is the biggest number?", "Find the maximum.",
                           "Give the highest value.", "Name the greatest number."}),
                 [](core::Rng& r) {
                   auto d = distinct_digits(r, static_cast<std::size_t>(uniform_int(r, 3, 6)));
                   return ex(join_digits(d), std::to_string(*std::max_element(d.begin(), d.end())));
                 }});
    t.push_back({upstream("bool", "the truth value of 'T1 and|or T2', terms true/false with optional not",
                          {"Is the statement true or false?", "Evaluate the logic.", "Work out the truth value.",
                           "Decide: true or false?", "Compute the boolean expression."}),
                 [](core::Rng& r) {
                   auto term = [&r](bool& value) {
                     value = r.below(2) == 1;
                     const bool negate = r.uniform() < 0.4;
                     std::string text = value ? "true" : "false";
                     if (negate) {
                       value = !value;
                       text = "not " + text;
                     }
                     return text;
                   };
                   bool a = false, b = false;
                   auto ta = term(a);
                   const bool is_and = r.below(2) == 0;
                   auto tb = term(b);
                   const bool v = is_and ? (a && b) : (a || b);
                   return ex(ta + (is_and ? " and " : " or ") + tb, v ? "true" : "false");
                 }});
    t.push_back({upstream("first_cat", "the category of the first word (animal, color, fruit or thing)",
                          {"Is the first word an animal, a color, a fruit or a thing?",
                           "What kind of word is the first word?", "Name the category of the first word.",
                           "Give the type of the first item.", "Which group does the first word belong to?"}),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   return ex(join(w), to_string(category_of(w.front())));
                 }});

    // ---- held out: LoraHub learns these from 5 examples ------------------------------------------------
    t.push_back({held_out("final_word", "the last word", "Which word comes at the very end?",
                          "the skill of `last` under a new wording"),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   return ex(join(w), w.back());
                 }});
    t.push_back({held_out("first_animal", "the first animal of a list that does not start with one",
                          "Which animal appears first?", "composes `only_animals` with `first`"),
                 [](core::Rng& r) {
                   auto w = list_where(r, 3, 6, [](const Words& x) {
                     return count_in(x, Category::kAnimal) >= 1 && category_of(x.front()) != Category::kAnimal;
                   });
                   return ex(join(w), keep(w, Category::kAnimal).front());
                 }});
    t.push_back({held_out("animals_reversed", "the animals, last to first", "List the animals in reverse order.",
                          "composes `only_animals` with `reverse`"),
                 [](core::Rng& r) {
                   auto w = list_where(r, 4, 6, [](const Words& x) { return count_in(x, Category::kAnimal) >= 2; });
                   auto a = keep(w, Category::kAnimal);
                   std::reverse(a.begin(), a.end());
                   return ex(join(w), join(a));
                 }});
    t.push_back({held_out("animals_twice", "each animal written twice, in order", "Write each animal two times.",
                          "composes `only_animals` with `double`"),
                 [](core::Rng& r) {
                   auto w = mixed_list(r, Category::kAnimal);
                   Words out;
                   for (const auto& x : keep(w, Category::kAnimal)) out.insert(out.end(), {x, x});
                   return ex(join(w), join(out));
                 }});
    t.push_back({held_out("number_of_items", "the number of words, as a digit",
                          "Tell me the number of items in the list.", "the skill of `count` under a new wording"),
                 [](core::Rng& r) {
                   auto w = random_list(r, 1, 9);
                   return ex(join(w), std::to_string(w.size()));
                 }});
    t.push_back({held_out("backwards", "the words in reverse order",
                          "Read the list backwards, from the end to the start.",
                          "the skill of `reverse` under a new wording"),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   auto in = join(w);
                   std::reverse(w.begin(), w.end());
                   return ex(in, join(w));
                 }});
    t.push_back({held_out("only_fruits", "the fruits, in order", "Keep only the fruits.",
                          "a filter for a category no module filters (control)"),
                 [](core::Rng& r) {
                   auto w = mixed_list(r, Category::kFruit);
                   return ex(join(w), join(keep(w, Category::kFruit)));
                 }});
    t.push_back({held_out("smallest", "the smallest of 3 to 6 distinct digits", "Which number is the smallest?",
                          "the inverse of `max` (control)"),
                 [](core::Rng& r) {
                   auto d = distinct_digits(r, static_cast<std::size_t>(uniform_int(r, 3, 6)));
                   return ex(join_digits(d), std::to_string(*std::min_element(d.begin(), d.end())));
                 }});
    t.push_back({held_out("rotate_right", "the last word moved to the front", "Move the last word to the front.",
                          "the inverse of `rotate_left` (control)"),
                 [](core::Rng& r) {
                   auto w = random_list(r, 3, 6);
                   auto in = join(w);
                   std::rotate(w.begin(), w.end() - 1, w.end());
                   return ex(in, join(w));
                 }});
    return t;
  }();
  return table;
}

const TaskEntry& entry(const std::string& name) {
  for (const auto& e : entries()) {
    if (e.spec.name == name) return e;
  }
  std::string known;
  for (const auto& e : entries()) known += (known.empty() ? "" : ", ") + e.spec.name;
  fail("demo world: unknown task '", name, "' (known: ", known, ")");
}

}  // namespace

std::string to_string(Category category) {
  switch (category) {
    case Category::kAnimal: return "animal";
    case Category::kColor: return "color";
    case Category::kFruit: return "fruit";
    case Category::kThing: return "thing";
  }
  return "?";
}

const std::vector<Item>& items() {
  static const std::vector<Item> all = [] {
    std::vector<Item> v;
    auto add = [&v](Category c, std::initializer_list<const char*> words) {
      for (const char* w : words) v.push_back(Item{w, c});
    };
    add(Category::kAnimal, {"cat", "dog", "cow", "pig", "fox", "owl", "bee", "hen", "horse", "tiger", "mouse", "zebra",
                            "eagle", "rabbit"});
    add(Category::kColor, {"red", "blue", "green", "pink", "gray", "black", "white", "brown", "yellow", "purple"});
    add(Category::kFruit, {"apple", "pear", "plum", "lime", "fig", "kiwi", "mango", "lemon", "cherry", "banana", "grape",
                           "melon"});
    add(Category::kThing, {"cup", "pen", "box", "car", "hat", "book", "chair", "table", "lamp", "spoon", "clock",
                           "phone"});
    return v;
  }();
  return all;
}

Category category_of(const std::string& word) {
  static const std::map<std::string, Category> index = [] {
    std::map<std::string, Category> m;
    for (const auto& it : items()) m.emplace(it.word, it.category);
    return m;
  }();
  auto it = index.find(word);
  if (it == index.end()) fail("demo world: '", word, "' is not a vocabulary word");
  return it->second;
}

const std::vector<TaskSpec>& task_family() {
  static const std::vector<TaskSpec> specs = [] {
    std::vector<TaskSpec> s;
    for (const auto& e : entries()) s.push_back(e.spec);
    return s;
  }();
  return specs;
}

const TaskSpec& task_spec(const std::string& name) { return entry(name).spec; }

std::vector<std::string> task_names(TaskRole role) {
  std::vector<std::string> out;
  for (const auto& s : task_family()) {
    if (s.role == role) out.push_back(s.name);
  }
  return out;
}

data::Example draw_example(const std::string& task, core::Rng& rng) { return entry(task).generate(rng); }

std::uint64_t stream_id(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::vector<data::Example> generate_examples(const std::string& task, std::size_t n, std::uint64_t seed, bool unique) {
  const auto& e = entry(task);
  auto rng = core::Rng::derive(seed, stream_id(task));
  std::vector<data::Example> out;
  out.reserve(n);
  std::set<std::string> seen;
  std::size_t rejected = 0;
  while (out.size() < n) {
    auto x = e.generate(rng);
    if (unique && !seen.insert(x.input).second) {
      if (++rejected > 100 * n + 1000) {
        fail("demo task '", task, "': cannot draw ", n, " distinct inputs (got ", out.size(), ")");
      }
      continue;
    }
    out.push_back(std::move(x));
  }
  return out;
}

std::string task_code(const std::string& task) {
  std::size_t k = 0;
  for (const auto& e : entries()) {
    if (e.spec.role != TaskRole::kUpstream) continue;
    ++k;
    if (e.spec.name == task) return core::cat("Task ", k, ".");
  }
  entry(task);  // unknown: throws listing the known tasks
  fail("demo world: task '", task, "' is held out and has no task code");
}

std::vector<data::Example> prompted_examples(const std::string& task, std::size_t n, std::uint64_t seed,
                                             Wording wording) {
  const auto& spec = entry(task).spec;
  const std::string code = wording == Wording::kTaskCode ? task_code(task) : std::string();
  auto bare = generate_examples(task, n, seed, false);
  // Instruction choices come from their own stream so the bare examples are the same for every wording.
  auto pick = core::Rng::derive(seed ^ 0x7e3a1f0c9b5d2e41ULL, stream_id(task));
  for (auto& x : bare) {
    const std::string* instr = &code;
    if (wording == Wording::kCanonical) instr = &spec.instructions.front();
    if (wording == Wording::kAllTemplates) instr = &spec.instructions[pick.below(spec.instructions.size())];
    x.input = data::zero_shot_prompt(*instr, x.input);
  }
  return bare;
}

std::vector<data::Example> mixture_examples(const std::vector<std::string>& tasks, std::size_t n, std::uint64_t seed,
                                            Wording wording) {
  if (tasks.empty()) fail("demo world: a mixture needs at least one task");
  std::vector<std::size_t> per_task(tasks.size(), 0);
  std::vector<std::size_t> order;
  order.reserve(n);
  auto rng = core::Rng::derive(seed, stream_id("mixture"));
  for (std::size_t i = 0; i < n; ++i) {
    auto t = static_cast<std::size_t>(rng.below(tasks.size()));
    order.push_back(t);
    ++per_task[t];
  }
  std::vector<std::vector<data::Example>> pools;
  for (std::size_t t = 0; t < tasks.size(); ++t) pools.push_back(prompted_examples(tasks[t], per_task[t], seed, wording));
  std::vector<std::size_t> next(tasks.size(), 0);
  std::vector<data::Example> out;
  out.reserve(n);
  for (auto t : order) out.push_back(pools[t][next[t]++]);
  return out;
}

}  // namespace lorahub::demo
