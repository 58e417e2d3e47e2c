#include "lorahub/worker/answers.h"

#include <algorithm>
#include <numeric>

#include "lorahub/model/batch.h"

namespace lorahub::worker {

std::vector<std::int64_t> encode_prompt(const text::T5Tokenizer& tok, const std::string& text) {
  auto ids = tok.encode(text);
  if (ids.size() > kMaxInputTokens) {
    ids.resize(kMaxInputTokens - 1);
    ids.push_back(tok.eos_id());
  }
  return ids;
}

std::vector<std::string> generate_answers(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                                          const std::vector<std::string>& prompts, std::int64_t max_new_tokens,
                                          std::int64_t batch_size) {
  std::vector<std::vector<std::int64_t>> ids;
  ids.reserve(prompts.size());
  for (const auto& p : prompts) ids.push_back(encode_prompt(tokenizer, p));
  // Longest first: batches of similar length waste little on padding, and results never depend on it.
  std::vector<std::size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ids[a].size() > ids[b].size(); });
  std::vector<std::string> answers(prompts.size());
  model::GenerateOptions opts;
  opts.max_new_tokens = max_new_tokens;
  const auto step = static_cast<std::size_t>(std::max<std::int64_t>(1, batch_size));
  for (std::size_t begin = 0; begin < order.size(); begin += step) {
    auto end = std::min(order.size(), begin + step);
    std::vector<std::vector<std::int64_t>> rows;
    for (auto i = begin; i < end; ++i) rows.push_back(ids[order[i]]);
    torch::Tensor mask;
    auto input = model::pad_sequences(rows, model.config().pad_token_id, &mask);
    auto out = model::generate_greedy(model, input, mask, opts).ids;
    for (auto i = begin; i < end; ++i) {
      auto row = out[static_cast<std::int64_t>(i - begin)];
      std::vector<std::int64_t> tokens(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel());
      answers[order[i]] = tokenizer.decode(tokens, /*skip_special_tokens=*/true);
    }
  }
  return answers;
}

}  // namespace lorahub::worker
