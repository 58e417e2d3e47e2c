// Tensor files through libtorch: every format of the fixture loads bit-identically, writers round-trip,
// sharded checkpoints are validated, and bad .bin / safetensors files throw Error (mutations: checkpoint_mutation_test.cpp).
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

TEST(Checkpoint, EveryFormatOfTheFixtureIsBitIdentical) {
  const StateDict st = load_tensor_file(fixture("model.safetensors"));
  const StateDict bin = load_tensor_file(fixture("pytorch_bin/pytorch_model.bin"));
  const StateDict od = load_tensor_file(fixture("pytorch_bin_ordereddict/pytorch_model.bin"));

  std::ifstream ref_in(fixture("reference.json"));
  const auto keys = nlohmann::json::parse(ref_in).at("model_file_keys").get<std::vector<std::string>>();
  ASSERT_EQ(st.size(), keys.size());
  for (const auto& k : keys) EXPECT_TRUE(st.count(k)) << k;

  // The .bin files carry the two tied aliases of shared.weight on top of the safetensors keys.
  ASSERT_EQ(bin.size(), st.size() + 2);
  for (const auto& [k, t] : st) {
    ASSERT_TRUE(bin.count(k)) << k;
    EXPECT_TRUE(bit_equal(t, bin.at(k))) << "pytorch_bin: " << k;
  }
  for (const char* alias : {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}) {
    ASSERT_TRUE(bin.count(alias)) << alias;
    EXPECT_TRUE(bit_equal(bin.at(alias), st.at("shared.weight"))) << alias;
    EXPECT_TRUE(bin.at(alias).is_alias_of(bin.at("shared.weight"))) << alias << " must share shared.weight's storage";
  }
  expect_same_state_dict(bin, od, "OrderedDict vs dict .bin");
  EXPECT_TRUE(od.at("decoder.embed_tokens.weight").is_alias_of(od.at("shared.weight")));

  // The same files found through their folders.
  expect_same_state_dict(load_checkpoint(fixture("pytorch_bin")), bin, "load_checkpoint(pytorch_bin/)");
  expect_same_state_dict(load_checkpoint(fixture("")), st, "load_checkpoint(model dir)");
}

TEST(Checkpoint, BinAgreesWithLibtorchsOwnPickleLoader) {
  // torch::pickle_load reads the plain-dict files (not the OrderedDict one): an independent oracle.
  const std::string bytes = read_bytes(fixture("pytorch_bin/pytorch_model.bin"));
  const auto ivalue = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  const StateDict ours = load_tensor_file(fixture("pytorch_bin/pytorch_model.bin"));
  const auto dict = ivalue.toGenericDict();
  ASSERT_EQ(dict.size(), ours.size());
  for (const auto& item : dict) {
    const std::string key = item.key().toStringRef();
    ASSERT_TRUE(ours.count(key)) << key;
    EXPECT_TRUE(bit_equal(item.value().toTensor(), ours.at(key))) << key;
  }
}

TEST(Checkpoint, AdapterBinEqualsAdapterSafetensors) {
  const StateDict bin = load_adapter_weights(fixture("lora_0_bin"));
  const StateDict st = load_adapter_weights(fixture("lora_0"));
  EXPECT_EQ(st.size(), 32u);
  expect_same_state_dict(bin, st, "lora_0_bin vs lora_0");
  expect_same_state_dict(load_adapter_weights(fixture("lora_0_bin/adapter_model.bin")), st, "adapter file path");
  expect_error([] { load_adapter_weights(fixture("pytorch_bin")); }, {"pytorch_bin", "adapter_model"}, "no adapter");
}

TEST(Checkpoint, SafetensorsTensorsAreZeroCopyViewsOfACopyOnWriteMapping) {
  const std::string path = fixture("model.safetensors");
  const auto file = core::SafetensorsFile::open(path);
  const std::string before = read_bytes(path);
  StateDict st = load_tensor_file(path);
  // Tensors lie back to back in the order of their offsets: one mapping, not separate allocations.
  std::vector<std::pair<const std::byte*, std::string>> order;
  for (const auto& [name, info] : file->tensors()) order.emplace_back(info.data, name);
  std::sort(order.begin(), order.end());
  for (std::size_t i = 1; i < order.size(); ++i) {
    const auto& prev = st.at(order[i - 1].second);
    const auto* expected = static_cast<const char*>(prev.data_ptr()) + prev.nbytes();
    EXPECT_EQ(static_cast<const char*>(st.at(order[i].second).data_ptr()), expected) << order[i].second;
  }
  // Writes land in private pages: neither the file nor a fresh load sees them.
  auto shared = st.at("shared.weight");
  const float original = shared[0][0].item<float>();
  shared.add_(1.0f);
  EXPECT_EQ(shared[0][0].item<float>(), original + 1.0f);
  EXPECT_EQ(load_tensor_file(path).at("shared.weight")[0][0].item<float>(), original);
  EXPECT_EQ(read_bytes(path), before);
  // A tensor keeps its mapping alive after the dict is gone.
  st.clear();
  EXPECT_EQ(shared[0][0].item<float>(), original + 1.0f);
}

TEST(Checkpoint, UnalignedSafetensorsTensorsAreCopied) {
  TempDir dir;
  const std::string path = dir.file("odd.safetensors");
  const uint8_t bytes[3] = {1, 2, 3};
  const float values[2] = {1.5f, -2.25f};
  core::write_safetensors(path, {{"a", core::DType::kU8, {3}, bytes, 3}, {"b", core::DType::kF32, {2}, values, 8}});
  const StateDict sd = load_tensor_file(path);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(sd.at("b").data_ptr()) % 4, 0u);
  EXPECT_EQ(sd.at("b")[0].item<float>(), 1.5f);
  EXPECT_EQ(sd.at("b")[1].item<float>(), -2.25f);
  EXPECT_EQ(sd.at("a")[2].item<uint8_t>(), 3);
}

StateDict every_dtype() {
  torch::manual_seed(7);
  StateDict sd;
  sd["f64"] = torch::randn({2, 3}, torch::kFloat64);
  sd["f32"] = torch::randn({4, 5});
  sd["f16"] = torch::randn({3, 2}).to(torch::kFloat16);
  sd["bf16"] = torch::randn({5}).to(torch::kBFloat16);
  sd["i64"] = torch::arange(-3, 9, torch::kInt64).reshape({3, 4});
  sd["i32"] = torch::arange(-5, 5, torch::kInt32);
  sd["i16"] = torch::arange(-4, 4, torch::kInt16);
  sd["i8"] = torch::arange(-3, 4, torch::kInt8);
  sd["u8"] = torch::arange(0, 250, 25, torch::kUInt8);
  sd["bool"] = torch::tensor({true, false, true});
  sd["scalar"] = torch::tensor(42, torch::kInt64);  // 0-d
  sd["empty"] = torch::empty({0});
  sd["empty3d"] = torch::empty({2, 0, 3}, torch::kFloat16);
  sd["transposed"] = torch::randn({3, 4}).t();  // non-contiguous
  sd["nan"] = torch::tensor({std::nanf(""), -0.0f, INFINITY});
  return sd;
}

TEST(Checkpoint, SaveSafetensorsRoundTripsEveryDtype) {
  TempDir dir;
  const StateDict sd = every_dtype();
  const std::string path = dir.file("all.safetensors");
  save_safetensors(path, sd, {{"format", "pt"}});
  const StateDict back = load_tensor_file(path);
  expect_same_state_dict(sd, back, "safetensors round trip");
  EXPECT_EQ(back.at("scalar").dim(), 0);
  EXPECT_EQ(core::SafetensorsFile::open(path)->metadata().at("format"), "pt");

  const std::string text = describe_state_dict(back);
  EXPECT_NE(text.find("bf16 BF16 [5]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("scalar I64 []\n"), std::string::npos) << text;
  EXPECT_NE(text.find("transposed F32 [4, 3]\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(sd.size()));

  StateDict bad = {{"c", torch::zeros({2}, torch::kComplexFloat)}};
  expect_error([&] { save_safetensors(dir.file("c.safetensors"), bad); }, {"c.safetensors", "'c'"}, "complex");
}

// torch::pickle_save writes torch.save-compatible zips: a second, independent .bin writer.
void pickle_save_file(const std::string& path, const StateDict& sd) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [k, v] : sd) dict.insert(k, v);
  const auto bytes = torch::pickle_save(dict);
  write_bytes(path, std::string(bytes.begin(), bytes.end()));
}

TEST(Checkpoint, LibtorchWrittenBinWithEveryDtypeAndSharedStorage) {
  TempDir dir;
  StateDict sd = every_dtype();
  sd.erase("transposed");  // keep views below explicit
  auto base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  sd["base"] = base;
  sd["rows"] = base.narrow(0, 1, 2);      // storage offset 6
  sd["cols"] = base.narrow(1, 2, 3);      // strided view
  sd["column_t"] = base.t();              // transposed view
  const std::string path = dir.file("every.bin");
  pickle_save_file(path, sd);
  const StateDict back = load_tensor_file(path);
  expect_same_state_dict(sd, back, "pickle_save round trip");
  EXPECT_TRUE(back.at("rows").is_alias_of(back.at("base")));
  EXPECT_TRUE(back.at("cols").is_alias_of(back.at("base")));
  EXPECT_EQ(back.at("rows").storage_offset(), 6);
  EXPECT_EQ(back.at("cols").strides(), base.narrow(1, 2, 3).strides());
}

// ------------------------------------------------------------------------------------------------
// Sharded checkpoints.

std::vector<StateDict> split(const StateDict& sd, std::size_t parts) {
  std::vector<StateDict> out(parts);
  std::size_t i = 0;
  for (const auto& [k, v] : sd) out[i++ % parts][k] = v;
  return out;
}

void write_index(const std::string& path, const nlohmann::json& weight_map) {
  write_bytes(path, nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(2));
}

TEST(Checkpoint, ShardedSafetensorsAndBinCheckpoints) {
  TempDir tmp;
  const StateDict st = load_tensor_file(fixture("model.safetensors"));
  const auto parts = split(st, 3);

  const std::string st_dir = tmp.dir("st");
  nlohmann::json map;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string name = "model-0000" + std::to_string(i + 1) + "-of-00003.safetensors";
    save_safetensors(st_dir + "/" + name, parts[i], {{"format", "pt"}});
    for (const auto& [k, v] : parts[i]) map[k] = name;
  }
  write_index(st_dir + "/model.safetensors.index.json", map);
  expect_same_state_dict(load_checkpoint(st_dir), st, "safetensors shards");
  expect_same_state_dict(load_checkpoint(st_dir + "/model.safetensors.index.json"), st, "index path");

  const std::string bin_dir = tmp.dir("bin");
  nlohmann::json bin_map;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string name = "pytorch_model-0000" + std::to_string(i + 1) + "-of-00003.bin";
    pickle_save_file(bin_dir + "/" + name, parts[i]);
    for (const auto& [k, v] : parts[i]) bin_map[k] = name;
  }
  write_index(bin_dir + "/pytorch_model.bin.index.json", bin_map);
  expect_same_state_dict(load_checkpoint(bin_dir), st, ".bin shards");

  // An index may also point at the fixture's single .bin for the keys it holds.
  const std::string one_dir = tmp.dir("one");
  fs::copy_file(fixture("pytorch_bin/pytorch_model.bin"), one_dir + "/pytorch_model-00001-of-00001.bin");
  nlohmann::json one_map;
  for (const auto& [k, v] : load_tensor_file(fixture("pytorch_bin/pytorch_model.bin"))) {
    one_map[k] = "pytorch_model-00001-of-00001.bin";
  }
  write_index(one_dir + "/pytorch_model.bin.index.json", one_map);
  const StateDict one = load_checkpoint(one_dir);
  EXPECT_EQ(one.size(), st.size() + 2);
  for (const auto& [k, v] : st) EXPECT_TRUE(bit_equal(v, one.at(k))) << k;
}

TEST(Checkpoint, FolderPrefersSafetensorsThenIndexThenBin) {
  TempDir tmp;
  const std::string dir = tmp.dir("both");
  save_safetensors(dir + "/model.safetensors", {{"from", torch::tensor({1.0f})}});
  pickle_save_file(dir + "/pytorch_model.bin", {{"from", torch::tensor({2.0f})}});
  EXPECT_EQ(load_checkpoint(dir).at("from").item<float>(), 1.0f);
  save_safetensors(dir + "/shard.safetensors", {{"from", torch::tensor({3.0f})}});
  write_index(dir + "/model.safetensors.index.json", {{"from", "shard.safetensors"}});
  EXPECT_EQ(load_checkpoint(dir).at("from").item<float>(), 1.0f);
  fs::remove(dir + "/model.safetensors");
  EXPECT_EQ(load_checkpoint(dir).at("from").item<float>(), 3.0f);
  fs::remove(dir + "/model.safetensors.index.json");
  EXPECT_EQ(load_checkpoint(dir).at("from").item<float>(), 2.0f);
  fs::remove(dir + "/pytorch_model.bin");
  expect_error([&] { load_checkpoint(dir); }, {dir, "model.safetensors"}, "empty folder");
  expect_error([&] { load_checkpoint(dir + "/nope"); }, {"nope"}, "missing path");
}

TEST(Checkpoint, ShardIndexMustMatchItsShards) {
  TempDir tmp;
  const std::string dir = tmp.dir("idx");
  save_safetensors(dir + "/a.safetensors", {{"x", torch::ones({2})}, {"y", torch::ones({3})}});
  save_safetensors(dir + "/b.safetensors", {{"z", torch::ones({4})}, {"x", torch::ones({2})}});
  const std::string index = dir + "/model.safetensors.index.json";
  struct Case {
    std::string label;
    std::string text;
    std::vector<std::string> needles;
  };
  const nlohmann::json good_a = {{"x", "a.safetensors"}, {"y", "a.safetensors"}};
  const std::vector<Case> cases = {
      {"missing shard", nlohmann::json{{"weight_map", {{"x", "c.safetensors"}}}}.dump(), {"c.safetensors", "'x'"}},
      {"key in two shards",
       nlohmann::json{{"weight_map", {{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}}}.dump(),
       {"b.safetensors", "'x'", "a.safetensors"}},
      {"shard key missing from the map", nlohmann::json{{"weight_map", {{"x", "a.safetensors"}}}}.dump(),
       {"a.safetensors", "'y'", "not listed"}},
      {"key not in its shard",
       nlohmann::json{{"weight_map", {{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"w", "a.safetensors"}}}}.dump(),
       {index, "'w'", "does not hold"}},
      {"no weight_map", R"({"metadata": {}})", {index, "weight_map"}},
      {"empty weight_map", R"({"weight_map": {}})", {index, "empty"}},
      {"weight_map value not a string", R"({"weight_map": {"x": 3}})", {index, "'x'"}},
      {"shard outside the folder", R"({"weight_map": {"x": "../a.safetensors"}})", {index, "'x'", "../a.safetensors"}},
      {"duplicate key in the index", R"({"weight_map": {"x": "a.safetensors", "x": "a.safetensors"}})",
       {index, "duplicate key 'x'"}},
      {"index not JSON", R"({"weight_map": )", {index, "invalid JSON"}},
  };
  for (const auto& c : cases) {
    write_bytes(index, c.text);
    expect_error([&] { load_checkpoint(dir); }, c.needles, c.label);
  }
  write_bytes(index, nlohmann::json{{"weight_map", good_a}}.dump());
  EXPECT_EQ(load_checkpoint(dir).size(), 2u);
}

// ------------------------------------------------------------------------------------------------
// Hand-made .bin files that exercise each rejection of the restricted unpickler.

std::string good_pickle(const std::string& key = "w", int64_t numel = 4, int64_t offset = 0,
                        std::vector<int64_t> sizes = {2, 2}, std::vector<int64_t> strides = {2, 1}) {
  PickleWriter p;
  p.proto().op('}').op('(').str(key).tensor("0", "FloatStorage", numel, offset, sizes, strides).op('u').op('.');
  return p.bytes();
}

TEST(Checkpoint, HandMadeBinLoads) {
  TempDir tmp;
  const std::string path = tmp.file("ok.bin");
  write_torch_zip(path, good_pickle(), {{"0", float_bytes({1, 2, 3, 4})}});
  const StateDict sd = load_tensor_file(path);
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_TRUE(bit_equal(sd.at("w"), torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2})));
}

TEST(Checkpoint, RejectsBadBinFilesNamingFileAndKey) {
  TempDir tmp;
  const std::string storage = float_bytes({1, 2, 3, 4});
  struct Case {
    std::string label;
    std::string pickle;
    std::map<std::string, std::string> records;
    std::vector<std::string> needles;
  };
  auto pickle_of = [](const std::function<void(PickleWriter&)>& body) {
    PickleWriter p;
    p.proto();
    body(p);
    return p.op('.').bytes();
  };
  const std::vector<Case> cases = {
      {"code execution via os.system",
       pickle_of([](PickleWriter& p) { p.global("os", "system").str("echo pwned").op('\x85').op('R'); }),
       {},
       {"os.system", "not allowed"}},
      {"builtins.eval inside a tensor",
       pickle_of([](PickleWriter& p) { p.op('}').op('(').str("w").global("builtins", "eval").op('u'); }),
       {},
       {"builtins.eval"}},
      {"result is a list", pickle_of([](PickleWriter& p) { p.op(']'); }), {}, {"holds a list"}},
      {"value is not a tensor", pickle_of([](PickleWriter& p) { p.op('}').str("epoch").integer(3).op('s'); }), {},
       {"'epoch'", "expected a tensor"}},
      {"duplicate key",
       pickle_of([](PickleWriter& p) {
         p.op('}').op('(').str("w").tensor("0", "FloatStorage", 4, 0, {4}, {1});
         p.str("w").tensor("0", "FloatStorage", 4, 0, {4}, {1}).op('u');
       }),
       {{"0", storage}},
       {"duplicate key 'w'"}},
      {"view past the storage end", good_pickle("w", 4, 1, {2, 2}, {2, 1}), {{"0", storage}}, {"'w'", "outside storage"}},
      {"huge stride", good_pickle("w", 4, 0, {2, 2}, {int64_t{1} << 62, 1}), {{"0", storage}}, {"'w'"}},
      {"negative size", good_pickle("w", 4, 0, {-2, 2}, {2, 1}), {{"0", storage}}, {"'w'", "negative"}},
      {"sizes and strides differ", good_pickle("w", 4, 0, {4}, {1, 1}), {{"0", storage}}, {"'w'", "strides"}},
      {"storage record missing", good_pickle(), {}, {"storage '0'", "data/0"}},
      {"storage record too short", good_pickle(), {{"0", storage.substr(0, 12)}}, {"data/0", "12 bytes"}},
      {"unknown storage type",
       pickle_of([](PickleWriter& p) {
         p.op('}').op('(').str("w").tensor("0", "ComplexFloatStorage", 4, 0, {4}, {1}).op('u');
       }),
       {{"0", storage}},
       {"torch.ComplexFloatStorage"}},
      {"truncated pickle", good_pickle().substr(0, 40), {{"0", storage}}, {"truncated"}},
      {"no STOP", good_pickle().substr(0, good_pickle().size() - 1), {{"0", storage}}, {"truncated"}},
      {"unknown opcode", pickle_of([](PickleWriter& p) { p.op('}').op('\xff'); }), {}, {"opcode 0xff"}},
      {"memo read before write", pickle_of([](PickleWriter& p) { p.op('h').op('\x07'); }), {}, {"memo entry 7"}},
      {"stack underflow", pickle_of([](PickleWriter& p) { p.op('s'); }), {}, {"underflow"}},
      {"pop across a mark", pickle_of([](PickleWriter& p) { p.op('}').op('(').op('0'); }), {}, {"underflow"}},
  };
  int index = 0;
  for (const auto& c : cases) {
    const std::string path = tmp.file("bad" + std::to_string(index++) + ".bin");
    write_torch_zip(path, c.pickle, c.records);
    auto needles = c.needles;
    needles.push_back(path);
    expect_error([&] { load_tensor_file(path); }, needles, c.label);
  }

  // Not a torch.save zip at all.
  const std::string legacy = tmp.file("legacy.bin");
  write_bytes(legacy, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14) + "....");
  expect_error([&] { load_tensor_file(legacy); }, {legacy, "legacy"}, "legacy format");
  const std::string empty = tmp.file("empty.bin");
  write_bytes(empty, "");
  expect_error([&] { load_tensor_file(empty); }, {empty, "truncated"}, "empty file");
  const std::string zip_no_pkl = tmp.file("nopkl.bin");
  {
    caffe2::serialize::PyTorchStreamWriter writer(zip_no_pkl);
    writer.writeRecord("data/0", storage.data(), storage.size());
    writer.writeEndOfFile();
  }
  expect_error([&] { load_tensor_file(zip_no_pkl); }, {zip_no_pkl, "data.pkl"}, "zip without data.pkl");
  expect_error([&] { load_tensor_file(tmp.file("missing.bin")); }, {"missing.bin", "cannot open"}, "missing file");
}

// ------------------------------------------------------------------------------------------------
// Mutation tests.

}  // namespace
}  // namespace lorahub::model
