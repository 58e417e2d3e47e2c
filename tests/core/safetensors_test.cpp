// safetensors reader/writer: fixtures, round trips, every rejected input, and a mutation test.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/safetensors.h"
#include "support/temp_dir.h"

namespace lorahub::core {
namespace {
namespace fs = std::filesystem;
using lorahub::test::TempDir;

std::string fixture(const std::string& rel) { return std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference/" + rel; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return n;
}

// A safetensors file from raw header text and data bytes (no padding unless given).
std::string raw_file(const std::string& header, const std::string& data) {
  return u64le(header.size()) + header + data;
}

// Header text padded like the standard writer, so variants keep an 8-aligned data start.
std::string padded(std::string header) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

// Expects opening `path` to throw Error whose message names the path and every `needles` entry.
void expect_rejected(const std::string& path, const std::vector<std::string>& needles, const std::string& label) {
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << label << ": accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << label << ": message does not name the file: " << msg;
    for (const auto& needle : needles) {
      EXPECT_NE(msg.find(needle), std::string::npos) << label << ": message lacks '" << needle << "': " << msg;
    }
  }
}

// The bytes of every tensor, located independently from the plain JSON header.
void expect_tensors_match_file(const SafetensorsFile& file, const std::string& bytes, const std::string& label) {
  const uint64_t n = header_length(bytes);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  const char* data = bytes.data() + 8 + n;
  std::size_t total = 0;
  std::size_t seen = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    ++seen;
    ASSERT_TRUE(file.contains(name)) << label << ": " << name;
    const TensorInfo& info = file.info(name);
    const auto begin = entry["data_offsets"][0].get<uint64_t>();
    const auto end = entry["data_offsets"][1].get<uint64_t>();
    ASSERT_EQ(info.nbytes, end - begin) << label << ": " << name;
    ASSERT_EQ(std::memcmp(info.data, data + begin, info.nbytes), 0) << label << ": " << name;
    EXPECT_EQ(info.dtype, parse_dtype(entry["dtype"].get<std::string>())) << label;
    EXPECT_EQ(info.shape, entry["shape"].get<std::vector<int64_t>>()) << label;
    total += info.nbytes;
  }
  EXPECT_EQ(seen, file.tensors().size()) << label;
  EXPECT_EQ(total, bytes.size() - 8 - n) << label << ": tensors must tile the data region";
}

TEST(Safetensors, DtypeNamesRoundTrip) {
  for (DType d : {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64, DType::kI32, DType::kI16,
                  DType::kI8, DType::kU8, DType::kBool}) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d);
  }
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kI64), 8u);
  EXPECT_EQ(dtype_size(DType::kBool), 1u);
  try {
    parse_dtype("F8_E4M3", "file.safetensors: tensor 'x'");
    FAIL() << "accepted F8_E4M3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F8_E4M3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("tensor 'x'"), std::string::npos);
  }
}

TEST(Safetensors, OpensFixtureWithTheKeysOfReferenceJson) {
  const std::string path = fixture("t5v11_gated_untied/model.safetensors");
  const auto file = SafetensorsFile::open(path);
  std::ifstream ref_in(fixture("t5v11_gated_untied/reference.json"));
  const auto ref = nlohmann::json::parse(ref_in);
  auto expected = ref.at("model_file_keys").get<std::vector<std::string>>();
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(file->names(), expected);
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(file->path(), path);

  std::ifstream cfg_in(fixture("t5v11_gated_untied/config.json"));
  const auto cfg = nlohmann::json::parse(cfg_in);
  const TensorInfo& lm = file->info("lm_head.weight");
  EXPECT_EQ(lm.dtype, DType::kF32);
  EXPECT_EQ(lm.shape, (std::vector<int64_t>{cfg["vocab_size"].get<int64_t>(), cfg["d_model"].get<int64_t>()}));
  expect_tensors_match_file(*file, read_bytes(path), "model.safetensors");
  EXPECT_THROW(file->info("no.such.key"), Error);
}

TEST(Safetensors, WriterReproducesFixturesByteForByte) {
  TempDir dir;
  for (const std::string rel : {"t5v11_gated_untied/model.safetensors", "t5v11_gated_untied/lora_0/adapter_model.safetensors",
                                "t5v11_gated_untied/reference.safetensors", "t5v10_relu_tied/model.safetensors",
                                "units/units.safetensors"}) {
    const auto file = SafetensorsFile::open(fixture(rel));
    std::vector<TensorRef> refs;
    for (const auto& [name, info] : file->tensors()) refs.push_back({name, info.dtype, info.shape, info.data, info.nbytes});
    const std::string out = dir.file("copy.safetensors");
    write_safetensors(out, refs, file->metadata());
    EXPECT_EQ(read_bytes(out), read_bytes(fixture(rel))) << rel;
    EXPECT_FALSE(fs::exists(out + ".tmp"));
  }
}

// Every dtype, a 0-d scalar, empty tensors, and an odd-sized U8 tensor that leaves the next one unaligned.
struct Sample {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::vector<Sample> samples() {
  std::vector<Sample> out = {
      {"a.f64", DType::kF64, {2, 3}, {}}, {"b.f32", DType::kF32, {4}, {}},    {"c.f16", DType::kF16, {2, 2}, {}},
      {"d.bf16", DType::kBF16, {3}, {}},  {"e.i64.scalar", DType::kI64, {}, {}}, {"f.i32", DType::kI32, {2}, {}},
      {"g.i16", DType::kI16, {5}, {}},    {"h.i8", DType::kI8, {3}, {}},     {"i.u8", DType::kU8, {3}, {}},
      {"j.bool", DType::kBool, {3}, {}},  {"k.empty", DType::kF32, {0}, {}}, {"l.empty3d", DType::kF32, {3, 0, 2}, {}},
      {"m.after_odd", DType::kF32, {2}, {}}};
  int seed = 1;
  for (auto& s : out) {
    std::size_t numel = 1;
    for (auto d : s.shape) numel *= static_cast<std::size_t>(d);
    s.bytes.resize(numel * dtype_size(s.dtype));
    for (auto& c : s.bytes) c = static_cast<char>((seed++ * 37) & 0xff);
    if (s.dtype == DType::kBool) {
      for (auto& c : s.bytes) c = static_cast<char>(seed++ & 1);
    }
  }
  return out;
}

TEST(Safetensors, RoundTripsEveryDtypeAndEdgeShapes) {
  TempDir dir;
  const auto tensors = samples();
  std::vector<TensorRef> refs;
  // Reverse order in: the writer must sort by name.
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    refs.push_back({it->name, it->dtype, it->shape, it->bytes.data(), it->bytes.size()});
  }
  const std::string path = dir.file("all.safetensors");
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "unicode \xc3\xbc"}};
  write_safetensors(path, refs, meta);

  const std::string bytes = read_bytes(path);
  const uint64_t n = header_length(bytes);
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start at a multiple of 8";
  EXPECT_EQ(bytes.find_last_not_of(' ', 8 + n - 1), bytes.find_last_of('}', 8 + n - 1)) << "padding must be spaces";

  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->metadata(), meta);
  std::vector<std::string> names;
  for (const auto& s : tensors) names.push_back(s.name);
  EXPECT_EQ(file->names(), names);
  for (const auto& s : tensors) {
    const TensorInfo& info = file->info(s.name);
    EXPECT_EQ(info.dtype, s.dtype) << s.name;
    EXPECT_EQ(info.shape, s.shape) << s.name;
    ASSERT_EQ(info.nbytes, s.bytes.size()) << s.name;
    EXPECT_EQ(std::memcmp(info.data, s.bytes.data(), s.bytes.size()), 0) << s.name;
  }
  EXPECT_EQ(file->info("e.i64.scalar").shape.size(), 0u);
  expect_tensors_match_file(*file, bytes, "all dtypes");
  // The U8[3] tensor ends at an odd offset, so the F32 after it is not 4-aligned: callers must check.
  EXPECT_NE(reinterpret_cast<std::uintptr_t>(file->info("m.after_odd").data) % 4, 0u);
}

TEST(Safetensors, WritesAnEmptyFileAndOverwritesAtomically) {
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  write_bytes(path, "old contents");
  write_safetensors(path, {});
  const auto file = SafetensorsFile::open(path);
  EXPECT_TRUE(file->names().empty());
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_EQ(read_bytes(path).size() % 8, 0u);
}

TEST(Safetensors, MappingIsCopyOnWrite) {
  TempDir dir;
  const std::string path = dir.file("cow.safetensors");
  const std::vector<float> values = {1.f, 2.f, 3.f, 4.f};
  write_safetensors(path, {{"w", DType::kF32, {4}, values.data(), values.size() * 4}});
  const std::string before = read_bytes(path);
  {
    const auto file = SafetensorsFile::open(path);
    auto* w = reinterpret_cast<float*>(file->info("w").data);
    w[0] = 42.f;  // a merged LoRA delta, say
    EXPECT_EQ(w[0], 42.f);
    const auto again = SafetensorsFile::open(path);
    EXPECT_EQ(reinterpret_cast<const float*>(again->info("w").data)[0], 1.f);
  }
  EXPECT_EQ(read_bytes(path), before);
}

TEST(Safetensors, WriterRejectsBadTensors) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const float x[2] = {1.f, 2.f};
  auto expect_fail = [&](const std::vector<TensorRef>& refs, const std::string& needle, const std::string& label) {
    try {
      write_safetensors(path, refs);
      ADD_FAILURE() << label << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(path)) << label;
    EXPECT_FALSE(fs::exists(path + ".tmp")) << label;
  };
  expect_fail({{"w", DType::kF32, {2}, x, 8}, {"w", DType::kF32, {2}, x, 8}}, "'w'", "duplicate");
  expect_fail({{"w", DType::kF32, {3}, x, 8}}, "'w'", "byte count");
  expect_fail({{"w", DType::kF16, {2}, x, 8}}, "'w'", "dtype size");
  expect_fail({{"__metadata__", DType::kF32, {2}, x, 8}}, "__metadata__", "reserved");
  expect_fail({{"neg", DType::kF32, {-2}, x, 8}}, "'neg'", "negative");
  expect_fail({{"null", DType::kF32, {2}, nullptr, 8}}, "'null'", "null data");
  expect_fail({{"bad\xff", DType::kF32, {2}, x, 8}}, "UTF-8", "invalid UTF-8 name");
  EXPECT_THROW(write_safetensors(dir.file("no/such/dir/x.safetensors"), {}), Error);
}

TEST(Safetensors, JsonParserRejectsDuplicateKeysAtAnyDepth) {
  EXPECT_EQ(parse_json_unique_keys(R"({"a":{"b":1},"c":[{"b":2},{"b":3}]})", "x.json")["c"][1]["b"], 3);
  for (const std::string text : {R"({"a":1,"a":2})", R"({"a":{"b":1,"b":1}})", R"([{"k":1,"k":2}])"}) {
    try {
      parse_json_unique_keys(text, "x.json");
      ADD_FAILURE() << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("x.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("duplicate key"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_json_unique_keys("{", "x.json"), Error);
}

// Every way of making a bad file we know of; each message must name the key.
TEST(Safetensors, RejectsEveryKindOfBadFile) {
  TempDir dir;
  const auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                        const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  };
  const std::string d8(8, '\x01');
  struct Case {
    std::string label;
    std::string bytes;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"empty file", "", {"truncated"}},
      {"seven bytes", "1234567", {"truncated"}},
      {"header length beyond the file", u64le(1000) + "{}", {"header length 1000", "exceeds"}},
      {"huge header length", u64le(~uint64_t{0}) + "{}      ", {"exceeds"}},
      {"header length 0", u64le(0) + "{}", {"too small"}},
      {"not JSON", raw_file("{nope}", ""), {"invalid JSON"}},
      {"JSON array", raw_file("[1, 2]", ""), {"'{'"}},
      {"trailing garbage", raw_file("{} x", ""), {"invalid JSON"}},
      {"truncated JSON", raw_file("{\"a\":", ""), {"invalid JSON"}},
      {"invalid UTF-8", raw_file("{\"\xff\xfe\":1}", ""), {"invalid JSON"}},
      {"entry not an object", raw_file("{\"w\":5}", ""), {"'w'", "expected an object"}},
      {"unknown dtype", raw_file("{" + entry("w", "\"F8_E4M3\"", "[8]", "[0,8]") + "}", d8), {"'w'", "F8_E4M3"}},
      {"lower-case dtype", raw_file("{" + entry("w", "\"f32\"", "[2]", "[0,8]") + "}", d8), {"'w'", "'f32'"}},
      {"dtype not a string", raw_file("{" + entry("w", "32", "[2]", "[0,8]") + "}", d8), {"'w'", "dtype"}},
      {"missing dtype", raw_file("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d8), {"'w'", "dtype"}},
      {"missing shape", raw_file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d8), {"'w'", "shape"}},
      {"missing offsets", raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", d8), {"'w'", "data_offsets"}},
      {"shape not an array", raw_file("{" + entry("w", "\"F32\"", "2", "[0,8]") + "}", d8), {"'w'", "shape"}},
      {"negative dim", raw_file("{" + entry("w", "\"F32\"", "[-2]", "[0,8]") + "}", d8), {"'w'", "shape"}},
      {"fractional dim", raw_file("{" + entry("w", "\"F32\"", "[2.0]", "[0,8]") + "}", d8), {"'w'", "shape"}},
      {"string dim", raw_file("{" + entry("w", "\"F32\"", "[\"2\"]", "[0,8]") + "}", d8), {"'w'", "shape"}},
      {"dim beyond int64", raw_file("{" + entry("w", "\"F32\"", "[9223372036854775808]", "[0,8]") + "}", d8),
       {"'w'", "shape"}},
      {"shape product overflows",
       raw_file("{" + entry("w", "\"F32\"", "[4294967296,4294967296,16]", "[0,8]") + "}", d8), {"'w'", "elements"}},
      {"bytes times dtype overflows",
       raw_file("{" + entry("w", "\"F64\"", "[4611686018427387904]", "[0,8]") + "}", d8), {"'w'", "overflows"}},
      {"shape × dtype ≠ byte count", raw_file("{" + entry("w", "\"F32\"", "[3]", "[0,8]") + "}", d8),
       {"'w'", "needs 12 bytes", "hold 8"}},
      {"offsets not a pair", raw_file("{" + entry("w", "\"F32\"", "[2]", "[0,4,8]") + "}", d8), {"'w'", "data_offsets"}},
      {"negative offset", raw_file("{" + entry("w", "\"F32\"", "[2]", "[-8,0]") + "}", d8), {"'w'", "data_offsets"}},
      {"fractional offset", raw_file("{" + entry("w", "\"F32\"", "[2]", "[0,8.5]") + "}", d8), {"'w'", "data_offsets"}},
      {"begin after end", raw_file("{" + entry("w", "\"F32\"", "[2]", "[8,0]") + "}", d8), {"'w'", "begin > end"}},
      {"end beyond the data", raw_file("{" + entry("w", "\"F32\"", "[2]", "[4,12]") + "}", d8), {"'w'", "beyond"}},
      {"offsets near 2^64",
       raw_file("{" + entry("w", "\"F32\"", "[2]", "[18446744073709551608,18446744073709551615]") + "}", d8),
       {"'w'", "data_offsets"}},
      {"overlapping tensors",
       raw_file("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," + entry("b", "\"F32\"", "[2]", "[4,12]") + "}",
                std::string(12, '\0')),
       {"'a'", "'b'", "overlaps"}},
      {"same offsets twice",
       raw_file("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," + entry("b", "\"F32\"", "[2]", "[0,8]") + "}",
                std::string(16, '\0')),
       {"'a'", "'b'", "overlaps"}},
      {"gap between tensors",
       raw_file("{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "," + entry("b", "\"F32\"", "[1]", "[8,12]") + "}",
                std::string(12, '\0')),
       {"'b'", "gap"}},
      {"trailing data bytes", raw_file("{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "}", d8), {"'a'", "cover 4 of the 8"}},
      {"data but no tensors", raw_file("{}", d8), {"cover 0 of the 8"}},
      {"duplicate tensor key",
       raw_file("{" + entry("w", "\"F32\"", "[1]", "[0,4]") + "," + entry("w", "\"F32\"", "[1]", "[4,8]") + "}", d8),
       {"'w'", "duplicate"}},
      {"duplicate field in an entry",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", d8),
       {"'dtype'", "in 'w'", "duplicate"}},
      {"metadata not an object", raw_file("{\"__metadata__\":5}", ""), {"__metadata__"}},
      {"metadata value not a string", raw_file("{\"__metadata__\":{\"format\":1}}", ""), {"__metadata__", "'format'"}},
  };
  int index = 0;
  for (const auto& c : cases) {
    const std::string path = dir.file("bad" + std::to_string(index++) + ".safetensors");
    write_bytes(path, c.bytes);
    expect_rejected(path, c.needles, c.label);
  }
  // A header length past the sanity limit needs a file that long: make it sparse.
  const std::string big = dir.file("big-header.safetensors");
  write_bytes(big, u64le(200'000'000) + "{}");
  fs::resize_file(big, 200'000'008);
  expect_rejected(big, {"limit"}, "header length over the limit");
  expect_rejected(dir.file("missing.safetensors"), {"cannot open"}, "missing file");
  expect_rejected(dir.path(), {"not a regular file"}, "a directory");
}

// ------------------------------------------------------------------------------------------------
// Mutation test: thousands of corrupted variants of valid files must each load (and then be
// internally consistent) or throw Error naming the file — never crash or read out of bounds.

struct MutationStats {
  int accepted = 0;
  int rejected = 0;
};

void try_variant(const std::string& path, const std::string& bytes, MutationStats& stats, const std::string& label) {
  write_bytes(path, bytes);
  std::shared_ptr<SafetensorsFile> file;
  try {
    file = SafetensorsFile::open(path);
  } catch (const Error& e) {
    ++stats.rejected;
    if (std::string(e.what()).find(path) == std::string::npos) {
      ADD_FAILURE() << label << ": message does not name the file: " << e.what();
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": non-Error exception: " << e.what();
    return;
  }
  ++stats.accepted;
  // Accepted: the plain JSON view of the same bytes must agree and every tensor must be readable.
  try {
    expect_tensors_match_file(*file, bytes, label);
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": accepted, but the header does not parse independently: " << e.what();
  }
}

std::vector<std::string> header_variants(const std::string& bytes) {
  // Token-level edits of a valid header: offsets, dtypes, shapes, keys.
  const uint64_t n = header_length(bytes);
  const std::string data = bytes.substr(8 + n);
  const auto header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  std::vector<std::string> names;
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") names.push_back(name);
  }
  std::vector<std::string> out;
  auto emit = [&](const nlohmann::ordered_json& h) { out.push_back(raw_file(padded(h.dump()), data)); };
  const uint64_t size = data.size();
  const std::vector<nlohmann::ordered_json> numbers = {0, 1, 7, size - 1, size, size + 1, uint64_t{1} << 63,
                                                       ~uint64_t{0}, -1, 1.5, "8", nullptr};
  const std::vector<nlohmann::ordered_json> dtypes = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8",
                                                      "BOOL", "F8_E4M3", "U16", "", 4, nullptr};
  for (std::size_t t = 0; t < names.size(); ++t) {
    const std::string& name = names[t];
    for (int k = 0; k < 2; ++k) {
      for (const auto& v : numbers) {
        auto h = header;
        h[name]["data_offsets"][k] = v;
        emit(h);
      }
    }
    {
      auto h = header;
      auto& offs = h[name]["data_offsets"];
      std::swap(offs[0], offs[1]);
      emit(h);
    }
    if (t + 1 < names.size()) {
      auto h = header;
      std::swap(h[name]["data_offsets"], h[names[t + 1]]["data_offsets"]);
      emit(h);
      auto h2 = header;
      std::swap(h2[name]["shape"], h2[names[t + 1]]["shape"]);
      emit(h2);
    }
    for (const auto& d : dtypes) {
      auto h = header;
      h[name]["dtype"] = d;
      emit(h);
    }
    const auto shape = header[name]["shape"];
    for (const nlohmann::ordered_json& extra : {nlohmann::ordered_json(0), nlohmann::ordered_json(1),
                                                nlohmann::ordered_json(2)}) {
      auto h = header;
      h[name]["shape"].push_back(extra);
      emit(h);
    }
    if (!shape.empty()) {
      auto h = header;
      h[name]["shape"].erase(h[name]["shape"].size() - 1);
      emit(h);
      for (const auto& v : numbers) {
        auto h2 = header;
        h2[name]["shape"][0] = v;
        emit(h2);
      }
    }
    {
      auto h = header;
      h[name]["shape"] = nlohmann::ordered_json::array();
      emit(h);
      auto h2 = header;
      h2.erase(name);
      emit(h2);
      auto h3 = header;
      h3[name].erase("dtype");
      emit(h3);
      auto h4 = header;
      h4[name] = 0;
      emit(h4);
    }
    if (t > 0) {
      // Rename this key to the previous one in the text: a duplicate key the DOM would hide.
      std::string text = header.dump();
      const std::string from = "\"" + name + "\":";
      const auto at = text.find(from);
      if (at != std::string::npos) {
        text.replace(at, from.size(), "\"" + names[t - 1] + "\":");
        out.push_back(raw_file(padded(text), data));
      }
    }
  }
  return out;
}

void mutate_file(const std::string& bytes, const std::string& path, MutationStats& stats, std::size_t byte_stride,
                 std::size_t truncate_stride) {
  const uint64_t n = header_length(bytes);
  const std::size_t header_end = static_cast<std::size_t>(8 + n);
  static const unsigned char kValues[] = {0x00, 0xff, '"', '{', '}', '[', ']', ',', ':', '0', '9', '-', ' ', 'x'};
  int variants = 0;
  for (std::size_t pos = 0; pos < header_end; pos += (pos < 8 ? 1 : byte_stride)) {
    for (unsigned char v : kValues) {
      if (static_cast<unsigned char>(bytes[pos]) == v) continue;
      std::string m = bytes;
      m[pos] = static_cast<char>(v);
      try_variant(path, m, stats, "byte " + std::to_string(pos) + " := " + std::to_string(v));
      ++variants;
    }
  }
  for (std::size_t len = 0; len < bytes.size(); len += (len < header_end + 16 ? 1 : truncate_stride)) {
    try_variant(path, bytes.substr(0, len), stats, "truncated to " + std::to_string(len));
    ++variants;
  }
  std::vector<uint64_t> lengths = {0, 1, 2, 7, 8, n - 1, n + 1, n + 7, n + 8, bytes.size() - 8, bytes.size() - 7,
                                   bytes.size(), uint64_t{1} << 31, uint64_t{1} << 32, uint64_t{1} << 63,
                                   ~uint64_t{0}};
  for (int bit = 0; bit < 64; ++bit) lengths.push_back(n ^ (uint64_t{1} << bit));
  for (uint64_t len : lengths) {
    try_variant(path, u64le(len) + bytes.substr(8), stats, "header length := " + std::to_string(len));
    ++variants;
  }
  for (const auto& v : header_variants(bytes)) {
    try_variant(path, v, stats, "header edit " + std::to_string(variants));
    ++variants;
  }
  // Extra bytes after the data, and data removed from the middle.
  try_variant(path, bytes + "x", stats, "appended byte");
  try_variant(path, bytes.substr(0, header_end) + bytes.substr(header_end + 1), stats, "dropped data byte");
}

TEST(SafetensorsMutation, CorruptedFilesLoadOrThrowErrorNeverCrash) {
  TempDir dir(/*in_memory=*/true);
  const std::string path = dir.file("variant.safetensors");
  MutationStats stats;

  // A small file with every dtype (exhaustive byte edits) and a real adapter (sampled byte edits).
  const auto tensors = samples();
  std::vector<TensorRef> refs;
  for (const auto& s : tensors) refs.push_back({s.name, s.dtype, s.shape, s.bytes.data(), s.bytes.size()});
  const std::string small = dir.file("small.safetensors");
  write_safetensors(small, refs, {{"format", "pt"}});
  mutate_file(read_bytes(small), path, stats, 1, 7);
  mutate_file(read_bytes(fixture("t5v11_gated_untied/lora_0/adapter_model.safetensors")), path, stats, 11, 101);

  const int total = stats.accepted + stats.rejected;
  std::printf("[ mutation ] %d variants: %d rejected with Error, %d accepted and consistent\n", total,
              stats.rejected, stats.accepted);
  EXPECT_GT(total, 5000);
  EXPECT_GT(stats.rejected, total / 2);  // most corruptions must be caught
  EXPECT_GT(stats.accepted, 0);          // and harmless ones (padding, key characters) still load
}

// Loading with a dtype conversion hands the file's pages back (release_mapped_pages); the bytes must still read
// back from the file, and nothing outside a live mapping may be touched.
TEST(Safetensors, ReleasedPagesReadBackFromTheFile) {
  TempDir dir;
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  const std::string path = dir.file("big.safetensors");
  write_safetensors(path, {{"w", DType::kU8, {static_cast<int64_t>(big.size())}, big.data(), big.size()}}, {});
  const void* data = nullptr;
  {
    const auto file = SafetensorsFile::open(path);
    const TensorInfo& info = file->info("w");
    data = info.data;
    ASSERT_EQ(std::memcmp(info.data, big.data(), big.size()), 0);  // every page resident now
    const std::size_t released = release_mapped_pages(info.data, info.nbytes);
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    EXPECT_GE(released, info.nbytes - 2 * page);
    EXPECT_LE(released, info.nbytes);
    EXPECT_EQ(std::memcmp(info.data, big.data(), big.size()), 0) << "released pages must read back from the file";
    // A range that leaves the mapping, and memory that is not a mapping at all, are left alone.
    EXPECT_EQ(release_mapped_pages(info.data, file->file_size() + page), 0u);
    EXPECT_EQ(release_mapped_pages(big.data(), big.size()), 0u);
    EXPECT_EQ(big[12345], static_cast<char>((12345 * 131 + 7) & 0xFF));
  }
  EXPECT_EQ(release_mapped_pages(data, 4096), 0u) << "an unmapped file is no longer registered";
}

}  // namespace
}  // namespace lorahub::core
