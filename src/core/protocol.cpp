#include "lorahub/core/protocol.h"

#include <cstring>
#include <type_traits>

#include "lorahub/core/error.h"

namespace lorahub::core {
namespace {

constexpr std::uint32_t kItemMagic = 0x4c484932;    // "LHI2"
constexpr std::uint32_t kResultMagic = 0x4c485233;  // "LHR3"

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    out_.append(s);
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    if (!v.empty()) out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <class T>
  T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string str() {
    auto n = count(1);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  template <class T>
  std::vector<T> vec() {
    auto n = count(sizeof(T));
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), in_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return v;
  }
  std::size_t count(std::size_t elem) {
    auto n = pod<std::uint64_t>();
    if (n > (in_.size() - pos_) / elem) fail("work message: length ", n, " exceeds the ", in_.size(), "-byte message");
    return static_cast<std::size_t>(n);
  }
  void finish() const {
    if (pos_ != in_.size()) fail("work message: ", in_.size() - pos_, " trailing bytes");
  }

 private:
  void need(std::size_t n) const {
    if (in_.size() - pos_ < n) fail("work message truncated at byte ", pos_, " of ", in_.size());
  }
  std::string_view in_;
  std::size_t pos_ = 0;
};

WorkKind kind_from(std::int32_t k) {
  if (k < 1 || k > 4) fail("work message: unknown work kind ", k);
  return static_cast<WorkKind>(k);
}

}  // namespace

std::string serialize(const WorkItem& item) {
  Writer w;
  w.pod(kItemMagic);
  w.pod(item.run);
  w.pod(item.seq);
  w.pod(static_cast<std::int32_t>(item.kind));
  w.pod<std::uint64_t>(item.weights.size());
  for (const auto& v : item.weights) w.vec(v);
  w.vec(item.modules);
  w.pod(item.begin);
  w.pod(item.end);
  w.pod<std::uint8_t>(item.want_composition ? 1 : 0);
  return w.take();
}

WorkItem deserialize_item(std::string_view bytes) {
  Reader r(bytes);
  if (r.pod<std::uint32_t>() != kItemMagic) fail("work message: not a work item");
  WorkItem item;
  item.run = r.pod<std::int64_t>();
  item.seq = r.pod<std::int64_t>();
  item.kind = kind_from(r.pod<std::int32_t>());
  auto n = r.count(8);
  item.weights.reserve(n);
  for (std::size_t i = 0; i < n; ++i) item.weights.push_back(r.vec<double>());
  item.modules = r.vec<std::int64_t>();
  item.begin = r.pod<std::int64_t>();
  item.end = r.pod<std::int64_t>();
  item.want_composition = r.pod<std::uint8_t>() != 0;
  r.finish();
  return item;
}

std::string serialize(const WorkResult& res) {
  Writer w;
  w.pod(kResultMagic);
  w.pod(res.run);
  w.pod(res.seq);
  w.pod(static_cast<std::int32_t>(res.kind));
  w.pod<std::uint8_t>(res.ok ? 1 : 0);
  w.str(res.error);
  w.vec(res.losses);
  w.pod<std::uint64_t>(res.gradients.size());
  for (const auto& g : res.gradients) w.vec(g);
  w.pod<std::uint64_t>(res.predictions.size());
  for (const auto& p : res.predictions) w.str(p);
  w.pod<std::uint64_t>(res.arrays.size());
  for (const auto& a : res.arrays) {
    w.str(a.name);
    w.vec(a.shape);
    w.vec(a.data);
  }
  w.vec(res.values);
  w.pod(res.seconds);
  w.pod(res.learn_seconds);
  w.pod(res.forward_seconds);
  w.pod(res.backward_seconds);
  return w.take();
}

WorkResult deserialize_result(std::string_view bytes) {
  Reader r(bytes);
  if (r.pod<std::uint32_t>() != kResultMagic) fail("work message: not a work result");
  WorkResult res;
  res.run = r.pod<std::int64_t>();
  res.seq = r.pod<std::int64_t>();
  res.kind = kind_from(r.pod<std::int32_t>());
  res.ok = r.pod<std::uint8_t>() != 0;
  res.error = r.str();
  res.losses = r.vec<double>();
  auto ng = r.count(8);
  for (std::size_t i = 0; i < ng; ++i) res.gradients.push_back(r.vec<double>());
  auto np = r.count(8);
  for (std::size_t i = 0; i < np; ++i) res.predictions.push_back(r.str());
  auto na = r.count(8);
  for (std::size_t i = 0; i < na; ++i) {
    NamedArray a;
    a.name = r.str();
    a.shape = r.vec<std::int64_t>();
    a.data = r.vec<float>();
    res.arrays.push_back(std::move(a));
  }
  res.values = r.vec<double>();
  res.seconds = r.pod<double>();
  res.learn_seconds = r.pod<double>();
  res.forward_seconds = r.pod<double>();
  res.backward_seconds = r.pod<double>();
  r.finish();
  return res;
}

}  // namespace lorahub::core
