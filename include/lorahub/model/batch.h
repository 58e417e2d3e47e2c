#pragma once
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace lorahub::model {

/// Pads token sequences into [rows, longest] int64 with `pad_value`; fills `mask` (1 token, 0 pad) when given.
torch::Tensor pad_sequences(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad_value,
                            torch::Tensor* mask = nullptr);

}  // namespace lorahub::model
