#include "lorahub/text/t5_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lorahub/core/error.h"
#include "text/spm_oracle.h"
#include "support/errors.h"

namespace lorahub::text {
namespace {

using core::Error;
namespace t = testing;
namespace fs = std::filesystem;
using lorahub::test::error_text;

enum class Kind { kUnigram, kBpe, kRaw };

// Models trained on first use, once per process: T5-like unigram (nmt_nfkc), BPE (nmt_nfkc,
// default character coverage so rare characters become <unk>), and a unigram model that keeps the
// text as written (identity normalisation, extra whitespace kept), which exposes any whitespace
// the tokenizer adds or drops.
class Models {
 public:
  const fs::path& path(Kind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    fs::path& slot = kind == Kind::kUnigram ? unigram_ : kind == Kind::kBpe ? bpe_ : raw_;
    if (slot.empty()) {
      const std::string common = "--vocab_size=600 --hard_vocab_limit=false " + t::t5_ids();
      switch (kind) {
        case Kind::kUnigram:
          slot = t::train_model(dir_.path(), "unigram",
                                "--model_type=unigram --character_coverage=1.0 " + common);
          break;
        case Kind::kBpe:
          slot = t::train_model(dir_.path(), "bpe", "--model_type=bpe " + common);
          break;
        case Kind::kRaw:
          slot = t::train_model(dir_.path(), "raw",
                                "--model_type=unigram --character_coverage=1.0 "
                                "--normalization_rule_name=identity "
                                "--remove_extra_whitespaces=false " + common);
          break;
      }
    }
    return slot;
  }
  const fs::path& dir() const { return dir_.path(); }

 private:
  std::mutex mutex_;
  t::TempDir dir_;
  fs::path unigram_, bpe_, raw_;
};

Models& models() {
  static Models m;
  return m;
}

// spm_encode of several lines in one call, looked up by text.
std::map<std::string, std::vector<int64_t>> spm_map(const fs::path& model,
                                                    const std::vector<std::string>& lines) {
  const auto ids = t::spm_encode(model, lines);
  std::map<std::string, std::vector<int64_t>> out;
  for (std::size_t i = 0; i < lines.size(); ++i) out[lines[i]] = ids[i];
  return out;
}

std::vector<int64_t> concat(std::initializer_list<std::vector<int64_t>> parts) {
  std::vector<int64_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string long_text() {
  const std::vector<std::string> words = {"translate", "premise", "café", "東京", "😀", "kalore",
                                          "  ", "question?", "Ωμέγα", "straße", "\t", "don't"};
  std::string out;
  for (std::size_t i = 0; out.size() < 100000; ++i) {
    out += words[(i * 7 + i / 3) % words.size()];
    out += ' ';
  }
  return out;
}

std::vector<std::string> oracle_lines() {
  return {"The quick brown fox jumps over the lazy dog.",
          "translate premise to hypothesis: true or false?",
          "café naïve Zürich résumé straße",
          "東京 日本語 中文 안녕하세요 Привет мир Ωμέγα",
          "emoji 😀🚀 and unknown ⭐ ✨ 𝄞 chars",
          "ﬁ ① Ｆｕｌｌ width ½",
          "runs    of     spaces  here",
          "   leading and trailing   ",
          "tabs\tbetween\t\twords\t",
          "",
          " ",
          "a < b > c <extra_id_999> <extra_id_03> <extra_id_> <EXTRA_ID_1> </S> <s>",
          "don't it's 3.14 x+y=z e-mail (a) 1984",
          long_text()};
}

class PerModel : public ::testing::TestWithParam<Kind> {
 protected:
  fs::path model() const { return models().path(GetParam()); }
  T5Tokenizer tok() const { return T5Tokenizer::load(model().string()); }
};

std::string kind_name(const ::testing::TestParamInfo<Kind>& kind) {
  return kind.param == Kind::kUnigram ? "unigram" : kind.param == Kind::kBpe ? "bpe" : "raw";
}

INSTANTIATE_TEST_SUITE_P(Models, PerModel, ::testing::Values(Kind::kUnigram, Kind::kBpe, Kind::kRaw),
                         kind_name);

TEST_P(PerModel, EncodeMatchesSpmEncode) {
  const auto tokenizer = tok();
  const auto lines = oracle_lines();
  const auto expected = t::spm_encode(model(), lines);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(tokenizer.encode(lines[i], false), expected[i]) << "line " << i << ": " << lines[i].substr(0, 80);
  }
  EXPECT_GT(expected.back().size(), 10000u);  // the 100k-char line really was segmented
}

TEST_P(PerModel, EosIsAppendedOnce) {
  const auto tokenizer = tok();
  for (const auto& line : oracle_lines()) {
    auto with = tokenizer.encode(line);
    ASSERT_FALSE(with.empty());
    EXPECT_EQ(with.back(), tokenizer.eos_id());
    with.pop_back();
    EXPECT_EQ(with, tokenizer.encode(line, false));
    EXPECT_EQ(tokenizer.count_tokens(line), with.size() + 1);
    EXPECT_EQ(tokenizer.count_tokens(line, false), with.size());
  }
  EXPECT_EQ(tokenizer.encode(""), std::vector<int64_t>{tokenizer.eos_id()});
}

// The raw model keeps '\n' as a character, which spm_encode (one line at a time) cannot be given.
class NfkcModel : public PerModel {};
INSTANTIATE_TEST_SUITE_P(Models, NfkcModel, ::testing::Values(Kind::kUnigram, Kind::kBpe), kind_name);

TEST_P(NfkcModel, NewlinesMatchSpmEncodeLineByLine) {
  // nmt_nfkc turns '\n' into a space and pieces never span whitespace, so the segmentation of a
  // multi-line text is the concatenation of spm_encode's per-line segmentations.
  const auto tokenizer = tok();
  const std::vector<std::vector<std::string>> texts = {
      {"first line", "second line"}, {"trailing newline", ""}, {"", "leading"},
      {"a", "", "", "b"},            {"windows \r", "line\r"}, {"東京 ", " café", "\t😀"}};
  std::vector<std::string> all_lines;
  for (const auto& lines : texts) all_lines.insert(all_lines.end(), lines.begin(), lines.end());
  const auto oracle = spm_map(model(), all_lines);
  for (const auto& lines : texts) {
    std::string text;
    std::vector<int64_t> expected;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      text += (i ? "\n" : "") + lines[i];
      const auto& part = oracle.at(lines[i]);
      expected.insert(expected.end(), part.begin(), part.end());
    }
    EXPECT_EQ(tokenizer.encode(text, false), expected) << text;
  }
}

TEST_P(PerModel, SpecialTokenLiteralsAreSplitOut) {
  const auto tokenizer = tok();
  const int64_t eos = tokenizer.eos_id(), pad = tokenizer.pad_id(), unk = tokenizer.unk_id();
  auto x = [&](int n) { return tokenizer.extra_id(n); };
  const auto oracle = spm_map(model(), {"Translate", "this", "now", "start", "end", "x", "y", "a",
                                        "b", "  a  b", "c  d  ", "q"});
  auto spm = [&](const std::string& chunk) { return oracle.at(chunk); };
  EXPECT_EQ(tokenizer.encode("Translate <extra_id_3> this </s> now", false),
            concat({spm("Translate"), {x(3)}, spm("this"), {eos}, spm("now")}));
  // Adjacent specials, a whitespace-only chunk, and <extra_id_10> rather than <extra_id_1>.
  EXPECT_EQ(tokenizer.encode("<extra_id_0><extra_id_1> <extra_id_10>", false),
            (std::vector<int64_t>{x(0), x(1), x(10)}));
  EXPECT_EQ(tokenizer.encode("  <pad>start", false), concat({{pad}, spm("start")}));
  EXPECT_EQ(tokenizer.encode("end\t <unk>", false), concat({spm("end"), {unk}}));
  EXPECT_EQ(tokenizer.encode("x <extra_id_99>y", false), concat({spm("x"), {x(99)}, spm("y")}));
  // Python's str.strip() whitespace (U+3000, U+00A0, U+2003) goes too; inner and far-end
  // whitespace stays.
  EXPECT_EQ(tokenizer.encode("a\u3000<extra_id_0>\u00a0\u2003b", false),
            concat({spm("a"), {x(0)}, spm("b")}));
  EXPECT_EQ(tokenizer.encode("  a  b <extra_id_0>  c  d  ", false),
            concat({spm("  a  b"), {x(0)}, spm("c  d  ")}));
  // A literal </s> at the end is not doubled (HF's _add_eos_if_not_present); two stay two.
  EXPECT_EQ(tokenizer.encode("q</s>"), concat({spm("q"), {eos}}));
  EXPECT_EQ(tokenizer.encode("</s></s>"), (std::vector<int64_t>{eos, eos}));
  EXPECT_EQ(tokenizer.encode("</s> q"), concat({{eos}, spm("q"), {eos}}));
}

TEST_P(PerModel, PieceIdsFollowTheVocabFile) {
  const auto tokenizer = tok();
  const auto pieces = t::vocab_pieces(model());
  ASSERT_EQ(tokenizer.piece_count(), static_cast<int64_t>(pieces.size()));
  EXPECT_EQ(tokenizer.vocab_size(), static_cast<int64_t>(pieces.size()) + 100);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(tokenizer.id_to_token(static_cast<int64_t>(i)), pieces[i]);
    EXPECT_EQ(tokenizer.token_to_id(pieces[i]), static_cast<int64_t>(i));
  }
  EXPECT_EQ(pieces.at(tokenizer.pad_id()), "<pad>");
  EXPECT_EQ(pieces.at(tokenizer.eos_id()), "</s>");
  EXPECT_EQ(pieces.at(tokenizer.unk_id()), "<unk>");
  EXPECT_EQ(tokenizer.token_to_id("no-such-piece-here"), tokenizer.unk_id());
}

TEST_P(PerModel, DecodeMatchesSpmDecode) {
  const auto tokenizer = tok();
  std::vector<std::string> lines;
  for (const auto& line : oracle_lines()) {
    if (line.size() < 1000) lines.push_back(line);
  }
  const auto encoded = t::spm_encode(model(), lines);
  // HF drops <unk> before sentencepiece sees the ids, then strips the result.
  std::vector<std::vector<int64_t>> known(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    for (int64_t id : encoded[i]) {
      if (id != tokenizer.unk_id()) known[i].push_back(id);
    }
  }
  const auto decoded = t::spm_decode(model(), known);
  std::size_t with_unk = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string expected = decoded[i];
    const auto first = expected.find_first_not_of(" \t\n\r\f\v");
    expected = first == std::string::npos
                   ? std::string()
                   : expected.substr(first, expected.find_last_not_of(" \t\n\r\f\v") + 1 - first);
    with_unk += known[i].size() != encoded[i].size();
    EXPECT_EQ(tokenizer.decode(encoded[i], true, false), expected) << lines[i];
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(lines[i]), true, false), expected) << lines[i];
  }
  EXPECT_GT(with_unk, 0u);  // the skipping of <unk> was exercised
}

TEST_P(PerModel, DecodeRoundTripsPlainText) {
  const auto tokenizer = tok();
  for (const std::string text : {"the quick brown fox jumps over the lazy dog",
                                 "café naïve Zürich résumé straße", "東京 日本語 Привет мир"}) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  }
}

TEST_P(PerModel, ThreadsShareOneTokenizer) {
  const auto tokenizer = tok();
  const std::string text = long_text();
  const auto expected = tokenizer.encode(text);
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = tokenizer.encode(text); });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, expected);
}

class Unigram : public ::testing::Test {
 protected:
  fs::path model() const { return models().path(Kind::kUnigram); }
  T5Tokenizer tok(int extra_ids = 100) const { return T5Tokenizer::load(model().string(), extra_ids); }
  std::vector<int64_t> spm(const std::string& line) const { return t::spm_encode(model(), line); }
};

TEST_F(Unigram, ExtraIdsCountDownFromTheTop) {
  const auto tokenizer = tok();
  const int64_t pieces = static_cast<int64_t>(t::vocab_pieces(model()).size());
  EXPECT_EQ(tokenizer.extra_id(0), pieces + 99);
  EXPECT_EQ(tokenizer.extra_id(99), pieces);
  EXPECT_EQ(tokenizer.extra_id(42), tokenizer.vocab_size() - 1 - 42);
  for (int n : {0, 1, 10, 57, 99}) {
    const std::string token = "<extra_id_" + std::to_string(n) + ">";
    EXPECT_EQ(tokenizer.id_to_token(tokenizer.extra_id(n)), token);
    EXPECT_EQ(tokenizer.token_to_id(token), tokenizer.extra_id(n));
    EXPECT_EQ(tokenizer.encode(token), (std::vector<int64_t>{tokenizer.extra_id(n), tokenizer.eos_id()}));
    EXPECT_TRUE(tokenizer.is_special_id(tokenizer.extra_id(n)));
  }
  EXPECT_THROW(tokenizer.extra_id(100), Error);
  EXPECT_THROW(tokenizer.extra_id(-1), Error);
  EXPECT_THROW(tokenizer.token_to_id("<extra_id_100>"), Error);

  const auto five = tok(5);
  EXPECT_EQ(five.vocab_size(), pieces + 5);
  EXPECT_EQ(five.extra_id(4), pieces);
  // Beyond extra_ids the text is ordinary text.
  EXPECT_EQ(five.encode("<extra_id_7>", false), spm("<extra_id_7>"));
  EXPECT_EQ(five.encode("<extra_id_4>", false), (std::vector<int64_t>{pieces}));
  const auto none = tok(0);
  EXPECT_EQ(none.vocab_size(), pieces);
  EXPECT_EQ(none.encode("a <extra_id_0> b", false), spm("a <extra_id_0> b"));
  EXPECT_THROW(tok(-1), Error);
}

TEST_F(Unigram, DecodeSkipsOrShowsSpecialTokens) {
  const auto tokenizer = tok();
  const auto hello = tokenizer.encode("hello", false);
  const auto world = tokenizer.encode("world", false);
  const std::vector<int64_t> ids = concat({{tokenizer.pad_id()}, hello, {tokenizer.extra_id(0)},
                                           world, {tokenizer.unk_id()}, {tokenizer.eos_id()},
                                           {tokenizer.pad_id()}});
  EXPECT_EQ(tokenizer.decode(ids), "hello world");
  // HF 4.26 T5Tokenizer.convert_tokens_to_string: a space before a special token that follows
  // ordinary text, none between specials, each ordinary run decoded on its own, then strip().
  EXPECT_EQ(tokenizer.decode(ids, false), "<pad> hello<extra_id_0> world<unk></s><pad>");
  EXPECT_EQ(tokenizer.decode(concat({hello, {tokenizer.unk_id()}, world}), false), "hello<unk>world");
  EXPECT_EQ(tokenizer.decode({}), "");
  EXPECT_EQ(tokenizer.decode({tokenizer.eos_id(), tokenizer.pad_id()}), "");
}

TEST_F(Unigram, DecodeCleansUpTokenizationSpaces) {
  const auto tokenizer = tok();
  const std::string spaced = "it 's fine , is n't it ? yes ! i 'm sure . we 've , they 're";
  const auto ids = tokenizer.encode(spaced);
  ASSERT_EQ(tokenizer.decode(ids, true, false), spaced);  // every character is in the vocabulary
  EXPECT_EQ(tokenizer.decode(ids), "it's fine, isn't it? yes! i'm sure. we've, they're");
}

TEST_F(Unigram, BatchPadsToLongest) {
  const auto tokenizer = tok();
  const std::vector<std::string> texts = {"hello world", "", "a much longer sentence with many words in it",
                                          "x </s>"};
  const auto batch = tokenizer.encode_batch(texts);
  ASSERT_EQ(batch.rows, texts.size());
  std::size_t longest = 0;
  for (const auto& text : texts) longest = std::max(longest, tokenizer.encode(text).size());
  ASSERT_EQ(batch.cols, longest);
  ASSERT_EQ(batch.input_ids.size(), batch.rows * batch.cols);
  ASSERT_EQ(batch.attention_mask.size(), batch.rows * batch.cols);
  for (std::size_t r = 0; r < texts.size(); ++r) {
    const auto ids = tokenizer.encode(texts[r]);
    EXPECT_EQ(batch.lengths[r], ids.size());
    for (std::size_t c = 0; c < batch.cols; ++c) {
      const bool real = c < ids.size();
      EXPECT_EQ(batch.input_ids[r * batch.cols + c], real ? ids[c] : tokenizer.pad_id()) << r << "," << c;
      EXPECT_EQ(batch.attention_mask[r * batch.cols + c], real ? 1 : 0) << r << "," << c;
    }
  }
  EXPECT_EQ(batch.lengths[1], 1u);  // just </s>
}

TEST_F(Unigram, BatchTruncatesKeepingRoomForEos) {
  const auto tokenizer = tok();
  const std::string long_one = "a much longer sentence with many words in it";
  const auto full = tokenizer.encode(long_one, false);
  ASSERT_GT(full.size(), 6u);
  EncodeOptions options;
  options.padding = Padding::kMaxLength;
  options.max_length = 6;
  options.truncation = true;
  const auto batch = tokenizer.encode_batch({long_one, "hi"}, options);
  ASSERT_EQ(batch.cols, 6u);
  const std::vector<int64_t> row0(batch.input_ids.begin(), batch.input_ids.begin() + 6);
  EXPECT_EQ(row0, concat({{full.begin(), full.begin() + 5}, {tokenizer.eos_id()}}));
  const auto hi = tokenizer.encode("hi");
  EXPECT_EQ(batch.lengths[1], hi.size());
  EXPECT_EQ(batch.input_ids[6 + hi.size()], tokenizer.pad_id());
  EXPECT_EQ(batch.attention_mask[6 + hi.size() - 1], 1);
  EXPECT_EQ(batch.attention_mask[6 + hi.size()], 0);

  // Without </s> the row is simply cut to max_length.
  options.add_eos = false;
  const auto bare = tokenizer.encode_batch({long_one}, options);
  EXPECT_EQ(bare.input_ids, (std::vector<int64_t>(full.begin(), full.begin() + 6)));

  // HF cuts to max_length - 1 and does not add </s> when the cut already ends with a literal one.
  const auto abc = tokenizer.encode("a b c", false);
  options.add_eos = true;
  options.padding = Padding::kLongest;
  options.max_length = abc.size() + 2;
  const auto quirk = tokenizer.encode_batch({"a b c </s> d e f"}, options);
  EXPECT_EQ(quirk.input_ids, concat({abc, {tokenizer.eos_id()}}));
  EXPECT_EQ(quirk.cols, abc.size() + 1);
}

TEST_F(Unigram, BatchRejectsRowsThatCannotFit) {
  const auto tokenizer = tok();
  EncodeOptions none;
  none.padding = Padding::kNone;
  EXPECT_THROW(tokenizer.encode_batch({"hello world", "hi"}, none), Error);
  const auto same = tokenizer.encode_batch({"hello", "hello"}, none);
  EXPECT_EQ(same.cols, tokenizer.encode("hello").size());

  EncodeOptions fixed;
  fixed.padding = Padding::kMaxLength;
  fixed.max_length = 3;
  EXPECT_THROW(tokenizer.encode_batch({"a much longer sentence"}, fixed), Error);

  EncodeOptions tiny;
  tiny.truncation = true;
  tiny.max_length = 1;
  EXPECT_THROW(tokenizer.encode_batch({"hello"}, tiny), Error);
  EXPECT_EQ(tokenizer.encode_batch({""}, tiny).input_ids, std::vector<int64_t>{tokenizer.eos_id()});
  tiny.add_eos = false;
  EXPECT_EQ(tokenizer.encode_batch({"hello"}, tiny).cols, 1u);

  const auto empty = tokenizer.encode_batch({});
  EXPECT_EQ(empty.rows, 0u);
  EXPECT_TRUE(empty.input_ids.empty());
}

TEST_F(Unigram, ErrorsNameTheFileOrId) {
  const auto tokenizer = tok();
  const std::string missing = (models().dir() / "absent" / "spiece.model").string();
  EXPECT_NE(error_text([&] { T5Tokenizer::load(missing); }).find(missing), std::string::npos);

  t::TempDir tmp;
  const std::string garbage = (tmp.path() / "garbage.model").string();
  t::write_file(garbage, "this is not a sentencepiece model at all\n");
  EXPECT_NE(error_text([&] { T5Tokenizer::load(garbage); }).find(garbage), std::string::npos);
  const std::string empty = (tmp.path() / "empty.model").string();
  t::write_file(empty, "");
  EXPECT_NE(error_text([&] { T5Tokenizer::load(empty); }).find(empty), std::string::npos);
  EXPECT_NE(error_text([&] { T5Tokenizer::load(tmp.path().string()); }).find(tmp.path().string()),
            std::string::npos);
  EXPECT_NE(error_text([&] { T5Tokenizer::from_bytes("\x0a\x03xyz", "broadcast:spiece"); })
                .find("broadcast:spiece"),
            std::string::npos);

  const int64_t v = tokenizer.vocab_size();
  EXPECT_NE(error_text([&] { tokenizer.decode({5, v}); }).find("id " + std::to_string(v)),
            std::string::npos);
  EXPECT_NE(error_text([&] { tokenizer.decode({-1}); }).find("id -1"), std::string::npos);
  EXPECT_THROW(tokenizer.id_to_token(v), Error);
}

TEST_F(Unigram, ModelWithoutPadIsRejected) {
  t::TempDir tmp;
  // spm_train's default layout: unk 0, bos 1, eos 2, no <pad>.
  const auto path = t::train_model(tmp.path(), "nopad", "--model_type=unigram --vocab_size=300 "
                                                        "--hard_vocab_limit=false");
  const auto message = error_text([&] { T5Tokenizer::load(path.string()); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("<pad>"), std::string::npos) << message;
}

TEST_F(Unigram, FromBytesEqualsLoad) {
  const auto from_file = tok();
  const auto from_bytes = T5Tokenizer::from_bytes(t::read_file(model()), "bytes");
  EXPECT_EQ(from_bytes.vocab_size(), from_file.vocab_size());
  EXPECT_EQ(from_bytes.source(), "bytes");
  const std::string text = long_text();
  EXPECT_EQ(from_bytes.encode(text), from_file.encode(text));
}

TEST(SpmShim, FoundByDefault) {
  const std::string path = spm_shim_path();
  EXPECT_TRUE(fs::is_regular_file(path)) << path;
  EXPECT_NE(path.find("liblorahub_spm_shim"), std::string::npos) << path;
  // Set by FoundNextToTheExecutable when it runs a copy of this binary.
  if (const char* expected = std::getenv("LORAHUB_TEST_EXPECT_SHIM")) {
    EXPECT_TRUE(fs::equivalent(path, expected)) << path << " vs " << expected;
  }
}

TEST(SpmShim, FoundNextToTheExecutable) {
  // A copy of this test binary in <tmp>/bin must prefer a shim in <tmp>/bin, else <tmp>/lib, over
  // the build-tree path compiled in.
  for (const std::string shim_dir : {"bin", "lib"}) {
    t::TempDir tmp;
    fs::create_directories(tmp.path() / "bin");
    fs::create_directories(tmp.path() / shim_dir);
    const fs::path exe = tmp.path() / "bin" / "text_test_copy";
    fs::copy_file("/proc/self/exe", exe);
    fs::permissions(exe, fs::perms::owner_all);
    const fs::path shim = tmp.path() / shim_dir / fs::path(LORAHUB_TEST_SPM_SHIM).filename();
    fs::copy_file(LORAHUB_TEST_SPM_SHIM, shim);
    const std::string command = "env -u LORAHUB_SPM_SHIM LORAHUB_TEST_EXPECT_SHIM=" +
                                t::quote(shim.string()) + " " + t::quote(exe.string()) +
                                " --gtest_filter=SpmShim.FoundByDefault > " +
                                t::quote((tmp.path() / "log.txt").string()) + " 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << shim_dir << ":\n"
                                               << t::read_file(tmp.path() / "log.txt");
  }
}

// The shim is located once per process, so these run in a fresh process each.
TEST(SpmShimDeathTest, EnvironmentVariableIsTheOnlyCandidateWhenSet) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("LORAHUB_SPM_SHIM", "/nonexistent/liblorahub_spm_shim.so", 1);
        const auto message = error_text([] { spm_shim_path(); });
        std::exit(message.find("/nonexistent/liblorahub_spm_shim.so") != std::string::npos &&
                          message.find("LORAHUB_SPM_SHIM") != std::string::npos
                      ? 0
                      : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(SpmShimDeathTest, EnvironmentVariableSelectsACopy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        bool ok = false;
        {  // scoped so that the copy is removed before exit()
          t::TempDir tmp;
          const fs::path copy = tmp.path() / "renamed_shim.so";
          fs::copy_file(LORAHUB_TEST_SPM_SHIM, copy);
          ::setenv("LORAHUB_SPM_SHIM", copy.c_str(), 1);
          const auto tokenizer = T5Tokenizer::load(models().path(Kind::kUnigram).string());
          ok = spm_shim_path() == copy.string() &&
               tokenizer.encode("hello", false) == t::spm_encode(models().path(Kind::kUnigram), "hello");
        }
        std::exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace lorahub::text
