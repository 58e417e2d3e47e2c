// core/protocol.h messages: exact round trips and clean errors on damaged bytes (distributed moves them).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "lorahub/core/error.h"
#include "lorahub/core/protocol.h"

namespace lorahub::core {
namespace {

WorkItem sample_item() {
  WorkItem item;
  item.run = 134;
  item.seq = (std::int64_t{1} << 40) + 3;
  item.kind = WorkKind::kEvaluate;
  item.weights = {{-1.5, 0.0, 1.5, 1e-300, -0.0}, {}, {std::numeric_limits<double>::quiet_NaN()}};
  item.modules = {4, 0, 17};
  item.begin = 17;
  item.end = 42;
  item.want_composition = true;
  return item;
}

WorkResult sample_result() {
  WorkResult r;
  r.run = 7;
  r.seq = 99;
  r.kind = WorkKind::kFineTune;
  r.ok = false;
  r.error = std::string("task \"x\" failed\n\0with a NUL", 27);
  r.losses = {0.25, std::numeric_limits<double>::infinity(), -3};
  r.gradients = {{0.5, -0.0, 1e-310}, {}, {std::numeric_limits<double>::quiet_NaN()}};
  r.forward_seconds = 0.125;
  r.backward_seconds = 0.25;
  r.predictions = {"True", "", "(A)", "naïve — ünïcode"};
  NamedArray a{"base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight", {3, 2}, {1, 2, 3, 4, 5, 6}};
  NamedArray empty{"", {0}, {}};
  r.arrays = {a, empty};
  r.values = {1.0, 2.5};
  r.seconds = 12.75;
  r.learn_seconds = 7.5;
  return r;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

TEST(WorkMessages, ItemRoundTripIsExact) {
  auto item = sample_item();
  auto back = deserialize_item(serialize(item));
  EXPECT_EQ(back.run, item.run);
  EXPECT_EQ(back.seq, item.seq);
  EXPECT_EQ(back.kind, item.kind);
  ASSERT_EQ(back.weights.size(), item.weights.size());
  for (std::size_t i = 0; i < item.weights.size(); ++i) EXPECT_TRUE(same_bits(back.weights[i], item.weights[i])) << i;
  EXPECT_TRUE(std::signbit(back.weights[0][4]));
  EXPECT_EQ(back.modules, item.modules);
  EXPECT_EQ(back.begin, 17);
  EXPECT_EQ(back.end, 42);
  EXPECT_TRUE(back.want_composition);
}

TEST(WorkMessages, DefaultItemRoundTrips) {
  WorkItem item;
  auto back = deserialize_item(serialize(item));
  EXPECT_EQ(back.run, -1);
  EXPECT_EQ(back.kind, WorkKind::kFitness);
  EXPECT_TRUE(back.weights.empty());
  EXPECT_FALSE(back.want_composition);
}

TEST(WorkMessages, ResultRoundTripIsExact) {
  auto r = sample_result();
  auto back = deserialize_result(serialize(r));
  EXPECT_EQ(back.run, r.run);
  EXPECT_EQ(back.seq, r.seq);
  EXPECT_EQ(back.kind, r.kind);
  EXPECT_EQ(back.ok, r.ok);
  EXPECT_EQ(back.error, r.error);
  EXPECT_EQ(back.error.size(), 27u);
  EXPECT_TRUE(same_bits(back.losses, r.losses));
  ASSERT_EQ(back.gradients.size(), r.gradients.size());
  for (std::size_t i = 0; i < r.gradients.size(); ++i) EXPECT_TRUE(same_bits(back.gradients[i], r.gradients[i])) << i;
  EXPECT_EQ(back.forward_seconds, 0.125);
  EXPECT_EQ(back.backward_seconds, 0.25);
  EXPECT_EQ(back.predictions, r.predictions);
  ASSERT_EQ(back.arrays.size(), 2u);
  EXPECT_EQ(back.arrays[0].name, r.arrays[0].name);
  EXPECT_EQ(back.arrays[0].shape, r.arrays[0].shape);
  EXPECT_EQ(back.arrays[0].data, r.arrays[0].data);
  EXPECT_EQ(back.arrays[1].shape, std::vector<std::int64_t>{0});
  EXPECT_EQ(back.values, r.values);
  EXPECT_EQ(back.seconds, r.seconds);
  EXPECT_EQ(back.learn_seconds, r.learn_seconds);
}

TEST(WorkMessages, EveryTruncationThrows) {
  auto item = serialize(sample_item());
  for (std::size_t n = 0; n < item.size(); ++n) {
    EXPECT_THROW(deserialize_item(std::string_view(item).substr(0, n)), Error) << "item prefix " << n;
  }
  auto res = serialize(sample_result());
  for (std::size_t n = 0; n < res.size(); ++n) {
    EXPECT_THROW(deserialize_result(std::string_view(res).substr(0, n)), Error) << "result prefix " << n;
  }
}

TEST(WorkMessages, TrailingBytesThrow) {
  auto item = serialize(sample_item()) + "x";
  EXPECT_THROW(deserialize_item(item), Error);
  auto res = serialize(sample_result()) + std::string(8, '\0');
  EXPECT_THROW(deserialize_result(res), Error);
}

TEST(WorkMessages, WrongMessageTypeIsNamed) {
  try {
    deserialize_result(serialize(sample_item()));
    FAIL() << "an item decoded as a result";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a work result"), std::string::npos) << e.what();
  }
  EXPECT_THROW(deserialize_item(serialize(sample_result())), Error);
}

TEST(WorkMessages, UnknownKindThrows) {
  auto bytes = serialize(sample_item());
  // magic (4) + run (8) + seq (8), then the kind.
  std::int32_t bad = 9;
  std::memcpy(bytes.data() + 20, &bad, sizeof bad);
  try {
    deserialize_item(bytes);
    FAIL() << "kind 9 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kind 9"), std::string::npos) << e.what();
  }
}

TEST(WorkMessages, HugeLengthFieldThrowsWithoutAllocating) {
  auto bytes = serialize(sample_item());
  // The weights count follows the kind; claim 2^62 candidates.
  std::uint64_t huge = std::uint64_t{1} << 62;
  std::memcpy(bytes.data() + 24, &huge, sizeof huge);
  EXPECT_THROW(deserialize_item(bytes), Error);

  auto res = serialize(sample_result());
  // magic 4 + run 8 + seq 8 + kind 4 + ok 1, then the error string's length.
  std::memcpy(res.data() + 25, &huge, sizeof huge);
  EXPECT_THROW(deserialize_result(res), Error);
}

TEST(WorkMessages, EmptyAndGarbageThrow) {
  EXPECT_THROW(deserialize_item(""), Error);
  EXPECT_THROW(deserialize_result(""), Error);
  EXPECT_THROW(deserialize_result(std::string(64, '\xff')), Error);
}

}  // namespace
}  // namespace lorahub::core
