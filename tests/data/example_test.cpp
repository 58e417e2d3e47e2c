#include "lorahub/data/example.h"

#include <gtest/gtest.h>

#include "support/errors.h"
#include "support/temp_dir.h"

namespace lorahub::data {
namespace {

using lorahub::test::error_text;
using lorahub::test::has_substr;

TEST(ParseExamples, JsonLinesInputTarget) {
  const auto ex = parse_examples(
      "{\"input\": \"1 + 1\", \"target\": \"2\"}\n\n  \r\n{\"target\": \"b\", \"input\": \"a\", "
      "\"extra\": 3}\n",
      "t.jsonl");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].input, "1 + 1");
  EXPECT_EQ(ex[0].target, "2");
  EXPECT_EQ(ex[1].input, "a");
  EXPECT_EQ(ex[1].target, "b");
}

TEST(ParseExamples, JsonLinesContextCompletionWithCrlfAndBom) {
  const auto ex = parse_examples(
      "\xEF\xBB\xBF{\"context\": \"Q: x\\nA:\", \"completion\": \"(A)\"}\r\n"
      "{\"context\": \"caf\xC3\xA9\", \"completion\": \"\\u00e9\"}",
      "t.jsonl");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].input, "Q: x\nA:");
  EXPECT_EQ(ex[0].target, "(A)");
  EXPECT_EQ(ex[1].input, "caf\xC3\xA9");
  EXPECT_EQ(ex[1].target, "\xC3\xA9");
}

TEST(ParseExamples, BbhObjectOverManyLines) {
  const auto ex = parse_examples(
      "{\"canary\": \"DO NOT TRAIN\",\n \"examples\": [\n  {\"input\": \"q1\", \"target\": "
      "\"a1\"},\n"
      "  {\"input\": \"q2\", \"target\": \"a2\"}\n ]\n}\n",
      "t.json");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1], (Example{"q2", "a2"}));
}

TEST(ParseExamples, SingleRecordSpreadOverLines) {
  const auto ex = parse_examples("{\n \"input\": \"q\",\n \"target\": \"a\"\n}\n", "t.json");
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0], (Example{"q", "a"}));
}

TEST(ParseExamples, EmptyFile) {
  EXPECT_PRED_FORMAT2(has_substr, error_text([] { parse_examples("", "empty.jsonl"); }),
                      "empty.jsonl: no examples");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] { parse_examples(" \n\r\n\t\n", "blank.jsonl"); }),
                      "blank.jsonl: no examples");
  EXPECT_PRED_FORMAT2(has_substr,
                      error_text([] { parse_examples("{\"examples\": []}", "e.json"); }),
                      "e.json: \"examples\" is empty");
}

TEST(ParseExamples, InvalidJsonNamesLine) {
  const std::string msg = error_text([] {
    parse_examples("{\"input\": \"a\", \"target\": \"b\"}\n\n{\"input\": \"a\", \"target\": }\n",
                   "bad.jsonl");
  });
  EXPECT_PRED_FORMAT2(has_substr, msg, "bad.jsonl: line 3: invalid JSON");
}

TEST(ParseExamples, InvalidMultiLineJsonReportsParserPosition) {
  const std::string msg = error_text([] {
    parse_examples("{\"examples\": [\n {\"input\": \"a\", \"target\": \"b\"},,\n]}\n", "bad.json");
  });
  EXPECT_PRED_FORMAT2(has_substr, msg, "bad.json: invalid JSON");
  EXPECT_PRED_FORMAT2(has_substr, msg, "line 2");
}

TEST(ParseExamples, MissingField) {
  EXPECT_PRED_FORMAT2(
      has_substr, error_text([] {
        parse_examples("{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"c\"}\n", "m.jsonl");
      }),
      "m.jsonl: line 2: missing field \"target\"");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples(
                            "{\"examples\": [{\"input\": \"a\", \"target\": \"b\"}, "
                            "{\"target\": \"c\"}]}",
                            "m.json");
                      }),
                      "m.json: examples[1]: missing field \"input\"");
  const std::string none = error_text([] { parse_examples("{\"question\": \"a\"}\n", "n.jsonl"); });
  EXPECT_PRED_FORMAT2(has_substr, none,
                      "n.jsonl: record 1: expected fields \"input\" and \"target\"");
  EXPECT_PRED_FORMAT2(has_substr, none, "\"question\"");
}

TEST(ParseExamples, NonStringField) {
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples(
                            "{\"input\": \"a\", \"target\": \"b\"}\n"
                            "{\"input\": \"a\", \"target\": 7}\n",
                            "n.jsonl");
                      }),
                      "n.jsonl: line 2: field \"target\" must be a string, got number");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples("{\"examples\": [{\"input\": null, \"target\": \"b\"}]}",
                                       "n.json");
                      }),
                      "n.json: examples[0]: field \"input\" must be a string, got null");
}

TEST(ParseExamples, NonObjectRecords) {
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples("{\"input\": \"a\", \"target\": \"b\"}\n[1, 2]\n",
                                       "x.jsonl");
                      }),
                      "x.jsonl: line 2: expected a JSON object, got array");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples("[{\"input\": \"a\", \"target\": \"b\"}]", "x.json");
                      }),
                      "x.json: expected JSON Lines of objects or an object with \"examples\"");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples("{\"examples\": {\"input\": \"a\"}}", "x.json");
                      }),
                      "x.json: \"examples\" must be an array, got object");
}

TEST(ParseExamples, MixedSchemas) {
  const std::string across = error_text([] {
    parse_examples(
        "{\"input\": \"a\", \"target\": \"b\"}\n"
        "{\"context\": \"c\", \"completion\": \"d\"}\n",
        "mix.jsonl");
  });
  EXPECT_PRED_FORMAT2(has_substr, across, "mix.jsonl: line 2: record uses context/completion");
  EXPECT_PRED_FORMAT2(has_substr, across, "mix.jsonl: line 1 uses input/target");
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples("{\"input\": \"a\", \"completion\": \"d\"}\n", "mix.jsonl");
                      }),
                      "record 1: record mixes input/target and context/completion");
}

TEST(ParseExamples, InvalidUtf8NamesLineAndColumn) {
  // Latin-1 'é' (0xE9) where UTF-8 is required.
  EXPECT_PRED_FORMAT2(has_substr, error_text([] {
                        parse_examples(
                            "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"caf\xE9\", "
                            "\"target\": \"b\"}\n",
                            "latin1.jsonl");
                      }),
                      "latin1.jsonl: line 2, column 15 (byte 44): invalid UTF-8 (bytes e9");
  // Overlong '/', an encoded surrogate, a code point above U+10FFFF and a truncated sequence.
  for (const std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"}) {
    const std::string text = "{\"input\": \"" + bad + "\", \"target\": \"b\"}";
    EXPECT_PRED_FORMAT2(has_substr, error_text([&] { parse_examples(text, "u.jsonl"); }),
                        "u.jsonl: line 1, column 12 (byte 11): invalid UTF-8")
        << "bytes of length " << bad.size();
  }
}

TEST(ParseExamples, AcceptsEveryUtf8Length) {
  // 2-, 3- and 4-byte sequences at the edges of their ranges: U+0080, U+07FF, U+0800, U+FFFF,
  // U+10000 and U+10FFFF.
  const std::string s = "\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF";
  const auto ex = parse_examples("{\"input\": \"" + s + "\", \"target\": \"\"}", "ok.jsonl");
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].input, s);
}

TEST(LoadExamples, ReadsFileAndNamesItInErrors) {
  lorahub::test::TempDir dir;
  const std::string path = dir.write("a.jsonl", "{\"input\": \"x\", \"target\": \"y\"}\n");
  EXPECT_EQ(load_examples(path), (std::vector<Example>{{"x", "y"}}));
  const std::string missing = (dir.path() / "missing.jsonl").string();
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_examples(missing); }),
                      "cannot open " + missing);
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_examples(dir.path().string()); }),
                      "is a directory");
  const std::string bad = dir.write("b.jsonl", "{\"input\": \"x\"}\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_examples(bad); }),
                      bad + ": record 1: missing field \"target\"");
}

}  // namespace
}  // namespace lorahub::data
