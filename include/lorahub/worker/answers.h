#pragma once
// Prompts into token ids and greedy answers back, as the reference's preprocessing and evaluation do.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::worker {

/// Tokenizer settings of the reference's preprocessing (max_length 2048 with truncation, EOS appended).
inline constexpr std::size_t kMaxInputTokens = 2048;

/// The token ids of `text` (EOS appended), cut to kMaxInputTokens with EOS kept last.
std::vector<std::int64_t> encode_prompt(const text::T5Tokenizer& tokenizer, const std::string& text);

/// Greedy answers for `prompts` (reference: max_new_tokens 256, decoded without special tokens). Prompts are
/// sorted by length and answered in batches of `batch_size`, then returned in the input order.
std::vector<std::string> generate_answers(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                                          const std::vector<std::string>& prompts, std::int64_t max_new_tokens,
                                          std::int64_t batch_size);

}  // namespace lorahub::worker
