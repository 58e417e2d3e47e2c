// Mutated .bin zips, pickles and safetensors files: each loads or throws core::Error, never crashes.
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>
#include <stdlib.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/model/checkpoint.h"
#include "model/checkpoint_support.h"
#include "model/torch_pickle.h"
#include "support/temp_dir.h"

namespace lorahub::model {
namespace {
using namespace checkpoint_test;
using lorahub::test::TempDir;

struct Stats {
  int accepted = 0;
  int rejected = 0;
};

// Loads `path` (a variant): success or Error naming the file; anything else fails the test.
void load_variant(const std::string& path, Stats& stats, const std::string& label) {
  try {
    const StateDict sd = load_tensor_file(path);
    ++stats.accepted;
    for (const auto& [k, t] : sd) {
      // Reading every element must stay inside the loaded storage: the loader bounds-checked the view.
      const auto& storage = t.storage();
      if (t.numel() > 0) {
        int64_t last = t.storage_offset();
        for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
        EXPECT_LE((last + 1) * static_cast<int64_t>(t.element_size()), static_cast<int64_t>(storage.nbytes()))
            << label << ": " << k;
        (void)t.contiguous();
      }
    }
  } catch (const Error& e) {
    ++stats.rejected;
    if (std::string(e.what()).find(path) == std::string::npos) {
      ADD_FAILURE() << label << ": message does not name the file: " << e.what();
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": non-Error exception: " << e.what();
  }
}

// Every byte in [0, flip_end) at steps of `flip_stride`, set to each of `values` it does not already hold, then
// every prefix at steps of `cut_stride`: each variant written to `path` and loaded.
void flips_and_truncations(const std::string& original, const std::string& path, std::size_t flip_end,
                           std::size_t flip_stride, const std::string& values, std::size_t cut_stride, Stats& stats) {
  for (std::size_t pos = 0; pos < flip_end; pos += flip_stride) {
    for (char v : values) {
      if (original[pos] == v) continue;
      std::string m = original;
      m[pos] = v;
      write_bytes(path, m);
      load_variant(path, stats, "byte " + std::to_string(pos));
    }
  }
  for (std::size_t len = 0; len < original.size(); len += cut_stride) {
    write_bytes(path, original.substr(0, len));
    load_variant(path, stats, "truncated to " + std::to_string(len));
  }
}

TEST(CheckpointMutation, CorruptedBinZipsLoadOrThrowError) {
  TempDir tmp(/*in_memory=*/true);
  const std::string path = tmp.file("variant.bin");
  const std::string original = read_bytes(fixture("lora_0_bin/adapter_model.bin"));
  Stats stats;
  flips_and_truncations(original, path, original.size(), 7, std::string("\x00\xff\x80", 3), 11, stats);
  const int total = stats.accepted + stats.rejected;
  std::printf("[ mutation ] %d zip variants: %d rejected with Error, %d loaded\n", total, stats.rejected,
              stats.accepted);
  EXPECT_GT(total, 10000);
  // Most flips land in tensor bytes or key names, which load (libtorch's miniz is built without CRC
  // checks, like torch.load); what matters is that every variant either loads or throws Error.
  EXPECT_GT(stats.rejected, total / 10);
  EXPECT_GT(stats.accepted, 0);
}

// The zip's CRCs catch most byte flips before the unpickler sees them, so mutate data.pkl itself.
TEST(CheckpointMutation, CorruptedPicklesParseOrThrowError) {
  Stats stats;
  TempDir tmp(/*in_memory=*/true);
  const std::string zip_path = tmp.file("variant.bin");
  int variants = 0;
  for (const std::string rel : {"lora_0_bin/adapter_model.bin", "pytorch_bin_ordereddict/pytorch_model.bin"}) {
    const auto records = records_of(fixture(rel));
    std::string pickle, prefix;
    std::map<std::string, std::string> storages;
    for (const auto& [name, bytes] : records) {
      const auto slash = name.find('/');
      const std::string rest = name.substr(slash + 1);
      if (rest == "data.pkl") pickle = bytes;
      if (rest.rfind("data/", 0) == 0) storages[rest.substr(5)] = bytes;
    }
    ASSERT_FALSE(pickle.empty()) << rel;
    const std::string source = "mutated " + rel;
    auto check = [&](const std::string& variant, const std::string& label) {
      ++variants;
      try {
        const auto parsed = detail::parse_state_dict_pickle(variant, source);
        ++stats.accepted;
        std::set<std::string> names;
        for (const auto& t : parsed.tensors) {
          EXPECT_TRUE(names.insert(t.name).second) << label;
          ASSERT_LT(t.storage, parsed.storages.size()) << label;
          const auto& s = parsed.storages[t.storage];
          uint64_t last = static_cast<uint64_t>(t.storage_offset);
          bool empty = false;
          for (std::size_t d = 0; d < t.sizes.size(); ++d) {
            empty |= t.sizes[d] == 0;
            last += static_cast<uint64_t>(std::max<int64_t>(t.sizes[d] - 1, 0)) * static_cast<uint64_t>(t.strides[d]);
          }
          if (!empty) {
            EXPECT_LT(last, s.numel) << label << ": " << t.name;
          }
        }
        // Every 16th accepted variant also goes through the whole loader with the real storages.
        if (stats.accepted % 16 == 0) {
          write_torch_zip(zip_path, variant, storages);
          Stats full;
          load_variant(zip_path, full, label + " (full load)");
        }
      } catch (const Error& e) {
        ++stats.rejected;
        if (std::string(e.what()).find(source) == std::string::npos) {
          ADD_FAILURE() << label << ": message does not name the source: " << e.what();
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << label << ": non-Error exception: " << e.what();
      }
    };
    static const unsigned char kValues[] = {0x00, 0xff, '(', 't', 'R', 'h', 'u', '.'};
    const std::size_t stride = pickle.size() > 8000 ? 7 : 1;
    for (std::size_t pos = 0; pos < pickle.size(); pos += stride) {
      for (unsigned char v : kValues) {
        if (static_cast<unsigned char>(pickle[pos]) == v) continue;
        std::string m = pickle;
        m[pos] = static_cast<char>(v);
        check(m, rel + " byte " + std::to_string(pos) + " := " + std::to_string(v));
      }
    }
    for (std::size_t len = 0; len < pickle.size(); len += stride) {
      check(pickle.substr(0, len), rel + " truncated to " + std::to_string(len));
      std::string dropped = pickle;
      dropped.erase(len, 1);
      check(dropped, rel + " dropped byte " + std::to_string(len));
    }
  }
  std::printf("[ mutation ] %d pickle variants: %d rejected with Error, %d parsed\n", variants, stats.rejected,
              stats.accepted);
  EXPECT_GT(variants, 10000);
  EXPECT_GT(stats.rejected, variants / 4);  // flips inside key names still parse
  EXPECT_GT(stats.accepted, 0);
}

TEST(CheckpointMutation, CorruptedSafetensorsThroughTheLoader) {
  TempDir tmp(/*in_memory=*/true);
  const std::string path = tmp.file("variant.safetensors");
  const std::string original = read_bytes(fixture("lora_0/adapter_model.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, original.data(), 8);
  Stats stats;
  // The header only ('\0', a digit, a quote, a bracket: JSON that breaks or shifts), then truncations.
  flips_and_truncations(original, path, 8 + n, 3, std::string("\0" "9\"]", 4), 13, stats);
  const int total = stats.accepted + stats.rejected;
  std::printf("[ mutation ] %d safetensors variants: %d rejected with Error, %d loaded\n", total, stats.rejected,
              stats.accepted);
  EXPECT_GT(total, 5000);
  EXPECT_GT(stats.rejected, total / 2);
}

}  // namespace
}  // namespace lorahub::model
