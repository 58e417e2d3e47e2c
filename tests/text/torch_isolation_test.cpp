// Debian's libsentencepiece bundles protobuf 3.14; libtorch links protobuf 3.21. Linking both
// into one process crashes at load. This executable links libtorch, uses it, then loads the
// tokenizer (which dlopens the sentencepiece shim) and checks both still work.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "lorahub/text/t5_tokenizer.h"
#include "text/spm_oracle.h"

namespace lorahub::text {
namespace {

namespace t = testing;

TEST(TorchIsolation, TokenizerAndTorchShareAProcess) {
  const auto before = torch::ones({2, 3}, torch::kFloat32).sum().item<float>();
  ASSERT_EQ(before, 6.0f);

  t::TempDir dir;
  const auto model = t::train_model(dir.path(), "unigram",
                                    "--model_type=unigram --vocab_size=400 "
                                    "--hard_vocab_limit=false " + t::t5_ids());
  const auto tokenizer = T5Tokenizer::load(model.string());
  const std::vector<std::string> lines = {"translate premise to hypothesis: true or false?",
                                          "café 東京 😀   spaced   out", ""};
  const auto expected = t::spm_encode(model, lines);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(tokenizer.encode(lines[i], false), expected[i]) << lines[i];
  }

  // The ids feed torch directly, as the model code will do.
  auto ids = tokenizer.encode(lines[0]);
  const auto tensor = torch::tensor(ids, torch::kInt64);
  EXPECT_EQ(tensor.size(0), static_cast<int64_t>(ids.size()));
  EXPECT_EQ(tensor[-1].item<int64_t>(), tokenizer.eos_id());
  const auto after = torch::matmul(torch::ones({2, 3}), torch::ones({3, 4})).sum().item<float>();
  EXPECT_EQ(after, 24.0f);
}

}  // namespace
}  // namespace lorahub::text
