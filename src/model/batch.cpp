#include "lorahub/model/batch.h"

#include <algorithm>

namespace lorahub::model {

torch::Tensor pad_sequences(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad_value,
                            torch::Tensor* mask) {
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.size());
  auto out = torch::full({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(width)}, pad_value, torch::kLong);
  auto m = torch::zeros_like(out);
  auto* p = out.data_ptr<std::int64_t>();
  auto* q = m.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::copy(rows[i].begin(), rows[i].end(), p + i * width);
    std::fill(q + i * width, q + i * width + rows[i].size(), 1);
  }
  if (mask) *mask = m;
  return out;
}

}  // namespace lorahub::model
