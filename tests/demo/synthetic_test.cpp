// The synthetic-world helpers shared by the toy world, the benchmarks and the demo tooling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "lorahub/demo/synthetic.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace {
using namespace lorahub;
using test::error_text;
using test::has_substr;

model::T5Config tiny_config() {
  model::T5Config c;
  c.vocab_size = 40;
  c.d_model = 16;
  c.d_kv = 4;
  c.num_heads = 2;
  c.d_ff = 24;
  c.num_layers = 1;
  c.num_decoder_layers = 1;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.dropout_rate = 0.0;
  return c;
}

TEST(Synthetic, DistinctWordsAreDistinctFromTheirPoolAndDeterministic) {
  core::Rng a(3), b(3);
  const auto x = demo::distinct_words(a, 20, 20);
  EXPECT_EQ(std::set<std::string>(x.begin(), x.end()).size(), 20u);
  const std::set<std::string> pool(demo::synthetic_words().begin(), demo::synthetic_words().begin() + 20);
  for (const auto& w : x) EXPECT_TRUE(pool.count(w)) << w;
  EXPECT_EQ(demo::distinct_words(b, 20, 20), x);
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { demo::distinct_words(a, 21, 20); }), "21 distinct words");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { demo::random_sentence(a, 2, 99); }), "a pool of 99 words");
}

TEST(Synthetic, RandomAdaptersFitTheModelAndFollowTheSpec) {
  auto m = model::random_t5(tiny_config(), 1);
  demo::RandomLibrarySpec spec;
  spec.modules = 3;
  spec.rank = 2;
  spec.lora_alpha = 4;
  spec.name_digits = 3;
  spec.b_scale = 0.0;
  const auto lib = demo::random_adapters(*m, spec);
  ASSERT_EQ(lib.size(), 3u);
  EXPECT_EQ(lib[2].name, "module_002");
  for (const auto& a : lib) {
    EXPECT_EQ(a.config.r, 2);
    EXPECT_EQ(a.config.lora_alpha, 4);
    // q and v of the encoder's and decoder's self-attention and of the cross-attention: 2 × 3 projections.
    EXPECT_EQ(a.modules.size(), 6u);
    for (const auto& [name, ab] : a.modules) {
      const auto p = m->projection(name);
      EXPECT_EQ(ab.first.sizes(), (std::vector<std::int64_t>{2, p->in_features()})) << name;
      EXPECT_EQ(ab.second.sizes(), (std::vector<std::int64_t>{p->out_features(), 2})) << name;
      EXPECT_EQ(ab.second.abs().max().item<float>(), 0.0f) << "b_scale 0";
    }
  }
  const auto again = demo::random_adapters(*m, spec);
  for (const auto& [name, ab] : lib[1].modules) EXPECT_TRUE(torch::equal(ab.first, again[1].modules.at(name).first));
  spec.target_modules = {"no_such_projection"};
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { demo::random_adapters(*m, spec); }), "match no projection");
}

TEST(Synthetic, FlanT5ShapesHaveThePublishedParameterCounts) {
  // Hugging Face's model.num_parameters() of google/flan-t5-{small,base,large}.
  EXPECT_EQ(demo::flan_t5_config("small").num_parameters(), 76961152);
  EXPECT_EQ(demo::flan_t5_config("base").num_parameters(), 247577856);
  EXPECT_EQ(demo::flan_t5_config("large").num_parameters(), 783150080);
  EXPECT_PRED_FORMAT2(has_substr, error_text([] { demo::flan_t5_config("xxl"); }), "'xxl'");
}

TEST(Synthetic, TokenSequencesEndInEosAndKeepTheirLengthsAndVocabulary) {
  core::Rng rng(9);
  const auto seqs = demo::random_token_sequences(rng, 50, 6, 3, 30);
  ASSERT_EQ(seqs.size(), 50u);
  for (const auto& s : seqs) {
    ASSERT_GE(s.size(), 3u);
    ASSERT_LE(s.size(), 9u);
    EXPECT_EQ(s.back(), 1);
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      EXPECT_GE(s[i], 2);
      EXPECT_LT(s[i], 30);
    }
  }
}

TEST(Synthetic, TokenizerHasTheT5LayoutAndFailuresNameTheLog) {
  test::TempDir dir;
  {
    core::Rng rng(1);
    std::ofstream corpus(dir.file("corpus.txt"));
    for (int i = 0; i < 500; ++i) corpus << demo::random_sentence(rng, 3 + rng.below(5)) << "\n";
  }
  const auto model = demo::train_t5_tokenizer(dir.file("corpus.txt"), dir.file("tok/spiece"), 60, dir.file("log"));
  const auto tok = text::T5Tokenizer::load(model);
  EXPECT_LE(tok.vocab_size(), 60 + 100);  // pieces plus T5's extra ids at most
  const auto ids = tok.encode("red apple");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), 1) << "eos id 1";
  const auto msg = error_text(
      [&] { demo::train_t5_tokenizer(dir.file("missing.txt"), dir.file("bad/spiece"), 60, dir.file("bad.log")); });
  EXPECT_PRED_FORMAT2(has_substr, msg, "missing.txt");
  EXPECT_PRED_FORMAT2(has_substr, msg, "bad.log");
}

}  // namespace
