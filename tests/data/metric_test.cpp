#include "lorahub/data/metric.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "data/utf8.h"
#include "support/errors.h"

namespace lorahub::data {
namespace {

using lorahub::test::error_text;
using lorahub::test::has_substr;

std::string utf8(char32_t cp) {
  std::string s;
  detail::append_utf8(s, cp);
  return s;
}

// CPython's own answers (tests/data/make_python_str_oracle.py).
nlohmann::json python_oracle() {
  std::ifstream in(LORAHUB_SOURCE_DIR "/tests/data/python-str-oracle.json");
  EXPECT_TRUE(in.good()) << "missing python-str-oracle.json";
  return nlohmann::json::parse(in);
}

TEST(PythonStr, WhitespaceMatchesCpythonOnEveryCodePoint) {
  const auto oracle = python_oracle();
  const auto list = oracle.at("whitespace").get<std::vector<std::uint32_t>>();
  const std::set<std::uint32_t> spaces(list.begin(), list.end());
  ASSERT_EQ(spaces.size(), 29u);  // a sanity check on the oracle file itself
  std::size_t mismatches = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (is_python_space(cp) != (spaces.count(cp) == 1)) {
      ADD_FAILURE() << "U+" << std::hex << static_cast<std::uint32_t>(cp);
      if (++mismatches > 10) break;
    }
  }
}

TEST(PythonStr, LowerMatchesCpythonBelowU0180) {
  const auto lower = python_oracle().at("lower");
  ASSERT_GT(lower.size(), 100u);
  for (char32_t cp = 0; cp < 0x180; ++cp) {
    std::string expected;
    const auto it = lower.find(std::to_string(static_cast<std::uint32_t>(cp)));
    if (it == lower.end()) {
      expected = utf8(cp);
    } else {
      for (const auto& c : *it) detail::append_utf8(expected, c.get<char32_t>());
    }
    EXPECT_EQ(python_lower(utf8(cp)), expected)
        << "U+" << std::hex << static_cast<std::uint32_t>(cp);
  }
}

TEST(PythonStr, LowerLeavesHigherCodePointsAndInvalidBytes) {
  // Documented limit: Greek/Cyrillic capitals are not lowered (Python would).
  EXPECT_EQ(python_lower("\xCE\xA3\xD0\x96"), "\xCE\xA3\xD0\x96");  // "ΣЖ"
  EXPECT_EQ(python_lower("AB\xFF"
                         "C"),
            "ab\xFF"
            "c");
  EXPECT_EQ(python_lower("\xC3\x89"
                         "COLE"),
            "\xC3\xA9"
            "cole");  // "ÉCOLE" -> "école"
}

TEST(PythonStr, StripOnlyTheEnds) {
  EXPECT_EQ(python_strip("  a b \t\n"), "a b");
  EXPECT_EQ(python_strip("\xC2\xA0x\xE3\x80\x80"), "x");  // NBSP, ideographic space
  EXPECT_EQ(python_strip("\xE2\x80\x8Bx\xE2\x80\x8B"), "\xE2\x80\x8Bx\xE2\x80\x8B");  // ZWSP stays
  EXPECT_EQ(python_strip("\xEF\xBB\xBFx"), "\xEF\xBB\xBFx");  // BOM is not whitespace
  EXPECT_EQ(python_strip("\x1C\x1Fx\xC2\x85"), "x");          // separators and NEL are
  EXPECT_EQ(python_strip(" \xFF "), "\xFF");                  // invalid byte kept
  EXPECT_EQ(python_strip(" \t "), "");
  EXPECT_EQ(python_strip(""), "");
}

TEST(Normalize, ReferenceOrderStripLowerThenDropDots) {
  EXPECT_EQ(normalize_answer("  (B).\n"), "(b)");
  EXPECT_EQ(normalize_answer("a ."), "a ");  // the space before '.' survives, as in Python
  EXPECT_EQ(normalize_answer(". a"), " a");
  EXPECT_EQ(normalize_answer("1.5"), "15");
  EXPECT_EQ(normalize_answer("..."), "");
  EXPECT_EQ(normalize_answer("Yes\xE2\x80\xA8"), "yes");  // U+2028 line separator
}

TEST(ExactMatch, TrickyCases) {
  EXPECT_TRUE(exact_match("(A)", "(a)"));
  EXPECT_TRUE(exact_match("  True. ", "true"));
  EXPECT_TRUE(exact_match("\xC2\xA0valid", "VALID"));
  EXPECT_TRUE(exact_match("...", ""));
  EXPECT_TRUE(exact_match("\xC3\x89t\xC3\xA9", "\xC3\xA9T\xC3\x89"));  // "Été" vs "éTÉ"
  EXPECT_FALSE(exact_match("a .", "a"));
  EXPECT_FALSE(exact_match("\xE2\x80\x8Byes", "yes"));  // zero-width space
  EXPECT_FALSE(exact_match("(A) ", "(B)"));
  EXPECT_FALSE(exact_match("\xC3\x9F", "ss"));  // 'ß'.lower() == 'ß'
  EXPECT_FALSE(exact_match("\xC4\xB0", "i"));   // 'İ'.lower() == 'i̇'
  EXPECT_TRUE(exact_match("\xC4\xB0", "i\xCC\x87"));
  EXPECT_FALSE(exact_match("12", "1 2"));
}

TEST(Accuracy, CountsAndFraction) {
  const std::vector<std::string> preds = {"(A)", "no.", " 42", "x"};
  const std::vector<std::string> targets = {"(a)", "No", "42", "y"};
  EXPECT_EQ(count_exact_matches(preds, targets), 3u);
  EXPECT_DOUBLE_EQ(accuracy(preds, targets), 0.75);
  EXPECT_DOUBLE_EQ(accuracy({"b"}, {"a"}), 0.0);
}

TEST(Accuracy, SizeMismatchAndEmpty) {
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        accuracy({"a", "b"}, {"a"});
                      }),
                      "2 predictions but 1 targets");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] { accuracy({}, {}); }), "no predictions");
  EXPECT_EQ(count_exact_matches({}, {}), 0u);
}

}  // namespace
}  // namespace lorahub::data
