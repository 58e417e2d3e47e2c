// json_excerpt: bounded renderings of JSON values for error messages.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lorahub/core/json_excerpt.h"

namespace lorahub::core {
namespace {

TEST(JsonExcerpt, ShortValuesAreTheirJsonText) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"null", "null"}, {"true", "true"}, {"4", "4"}, {"-1.5", "-1.5"}, {"\"q\"", "\"q\""}, {"[]", "[]"}, {"{}", "{}"},
      {"[1,2]", "[1, 2]"}, {R"({"a": [1, "x"], "b": null})", R"({"a": [1, "x"], "b": null})"}};
  for (const auto& [text, expected] : cases) EXPECT_EQ(json_excerpt(nlohmann::json::parse(text)), expected) << text;
}

TEST(JsonExcerpt, DeepLongAndWideValuesAreCut) {
  // dump() recurses once per level: 100,000 levels overflowed the stack in error messages.
  const auto deep = nlohmann::json::parse(std::string(100'000, '[') + std::string(100'000, ']'));
  EXPECT_EQ(json_excerpt(deep), "[[[[[...]]]]]");
  const auto long_string = nlohmann::json(std::string(1'000'000, 'x'));
  const auto s = json_excerpt(long_string, 40);
  EXPECT_EQ(s, "\"" + std::string(39, 'x') + "...");
  nlohmann::json wide = nlohmann::json::array();
  for (int i = 0; i < 100'000; ++i) wide.push_back(i);
  EXPECT_LE(json_excerpt(wide, 80).size(), 83u);
  EXPECT_EQ(json_excerpt(wide, 10), "[0, 1, 2, ...");
  // Non-ASCII text is escaped, so a cut never splits a character.
  EXPECT_EQ(json_excerpt(nlohmann::json("é")), "\"\\u00e9\"");
}

}  // namespace
}  // namespace lorahub::core
