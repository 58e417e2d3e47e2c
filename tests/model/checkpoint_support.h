#pragma once
// What the checkpoint tests share: fixture paths, byte I/O, a minimal pickle writer and torch zip builder,
// state-dict comparison and error expectations.
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>
#include <stdlib.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/model/checkpoint.h"
#include "model/torch_pickle.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace lorahub::model::checkpoint_test {
namespace fs = std::filesystem;
using core::Error;
using lorahub::test::expect_error;

inline std::string fixture(const std::string& rel) {
  return std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference/t5v11_gated_untied/" + rel;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Same dtype, same shape, same bytes (NaN-safe, unlike torch::equal).
inline ::testing::AssertionResult bit_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    return ::testing::AssertionFailure() << "dtype " << a.scalar_type() << " vs " << b.scalar_type();
  }
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  const auto ca = a.contiguous();
  const auto cb = b.contiguous();
  if (ca.nbytes() > 0 && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}

inline void expect_same_state_dict(const StateDict& a, const StateDict& b, const std::string& label) {
  std::vector<std::string> ka, kb;
  for (const auto& [k, v] : a) ka.push_back(k);
  for (const auto& [k, v] : b) kb.push_back(k);
  ASSERT_EQ(ka, kb) << label;
  for (const auto& [k, v] : a) EXPECT_TRUE(bit_equal(v, b.at(k))) << label << ": " << k;
}

// ------------------------------------------------------------------------------------------------
// A pickle emitter for hand-made torch.save payloads (protocol 2, the opcodes torch.save uses).
class PickleWriter {
 public:
  PickleWriter& raw(const std::string& bytes) {
    out_ += bytes;
    return *this;
  }
  PickleWriter& op(char c) {
    out_ += c;
    return *this;
  }
  PickleWriter& proto() { return raw("\x80\x02"); }
  PickleWriter& str(const std::string& s) {
    out_ += 'X';
    const auto n = static_cast<uint32_t>(s.size());
    out_.append(reinterpret_cast<const char*>(&n), 4);
    out_ += s;
    return *this;
  }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      out_ += static_cast<char>(v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';
      const auto x = static_cast<int32_t>(v);
      out_.append(reinterpret_cast<const char*>(&x), 4);
    } else {
      out_ += '\x8a';
      out_ += '\x08';
      out_.append(reinterpret_cast<const char*>(&v), 8);
    }
    return *this;
  }
  PickleWriter& global(const std::string& module, const std::string& name) {
    out_ += 'c';
    out_ += module + "\n" + name + "\n";
    return *this;
  }
  PickleWriter& tuple(const std::vector<int64_t>& values) {
    op('(');
    for (auto v : values) integer(v);
    return op('t');
  }
  // _rebuild_tensor_v2(storage, offset, sizes, strides, False, OrderedDict())
  PickleWriter& tensor(const std::string& key, const std::string& storage_type, int64_t numel, int64_t offset,
                       const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).op('t').op('Q');
    integer(offset).tuple(sizes).tuple(strides).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R');
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Writes a torch.save-style zip: data.pkl plus data/<key> records (version is added by the writer).
inline void write_torch_zip(const std::string& path, const std::string& pickle,
                     const std::map<std::string, std::string>& storages) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [key, bytes] : storages) writer.writeRecord("data/" + key, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

inline std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

inline std::map<std::string, std::string> records_of(const std::string& zip_path) {
  caffe2::serialize::PyTorchStreamReader reader(zip_path);
  std::map<std::string, std::string> out;
  for (const auto& name : reader.getAllRecords()) {
    auto [data, size] = reader.getRecord(name);
    out[name] = std::string(static_cast<const char*>(data.get()), size);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
}  // namespace lorahub::model::checkpoint_test
