#include "torch_pickle.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "lorahub/core/error.h"

namespace lorahub::model::detail {
namespace {

// More dimensions than any real tensor has; bounds the work a hostile pickle can request.
constexpr std::size_t kMaxDims = 64;

enum class Kind : uint8_t { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

// The only globals a checkpoint may name. Nothing is looked up or called by name: each is rebuilt here.
enum class Global : uint8_t {
  kOrderedDict,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kRebuildFromTypeV2,
  kRestoreTypeTag,  // torch::pickle_save (C++) tags containers with their TorchScript type
  kTensorType,
  kParameterType,
  kStorageType,
};

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kStr: return "str";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "tensor";
  }
  return "?";
}

// Containers live in arenas and refer to each other by index, so cycles and deep nesting built by a
// hostile pickle cost neither recursion nor leaks.
struct Value {
  Kind kind = Kind::kNone;
  int64_t i = 0;     // kBool, kInt; the Global for kGlobal
  double f = 0;      // kFloat
  uint32_t ref = 0;  // arena index (kStr, kTuple, kList, kDict, kStorage, kTensor); DType of a storage type
};

struct DictObject {
  std::vector<std::pair<Value, Value>> entries;
  std::unordered_set<std::string> str_keys;
};

struct TensorObject {
  uint32_t storage = 0;
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

std::string printable(std::string_view s) {
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

class Unpickler {
 public:
  Unpickler(std::string_view data, const std::string& source) : data_(data), source_(source) {}

  PickledStateDict run() {
    const Value result = interpret();
    return extract(result);
  }

 private:
  template <class... Args>
  [[noreturn]] void error(Args&&... args) const {
    core::fail(source_, ": data.pkl byte ", op_pos_, ": ", std::forward<Args>(args)...);
  }

  // --- input ----------------------------------------------------------------------------------
  std::string_view take(uint64_t n) {
    if (n > data_.size() - pos_) error("truncated pickle (needs ", n, " more bytes, ", data_.size() - pos_, " left)");
    const auto out = data_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return out;
  }
  uint64_t le(std::size_t n) {
    const auto bytes = take(n);
    uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
    return v;
  }
  std::string_view line() {
    const auto nl = data_.find('\n', pos_);
    if (nl == std::string_view::npos) error("truncated pickle (GLOBAL argument without newline)");
    const auto out = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return out;
  }

  // --- stack ----------------------------------------------------------------------------------
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value v) { stack_.push_back(v); }
  Value pop() {
    if (stack_.size() <= floor()) error("pickle stack underflow");
    const Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= floor()) error("pickle stack underflow");
    return stack_.back();
  }
  std::vector<Value> pop_to_mark() {
    if (marks_.empty()) error("pickle uses a MARK that was never set");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  // --- arena ----------------------------------------------------------------------------------
  template <class T>
  static uint32_t add(std::vector<T>& arena, T item) {
    arena.push_back(std::move(item));
    return static_cast<uint32_t>(arena.size() - 1);
  }
  Value make(Kind kind, uint32_t ref) {
    Value v;
    v.kind = kind;
    v.ref = ref;
    return v;
  }
  Value make_str(std::string_view s) { return make(Kind::kStr, add(strs_, std::string(s))); }
  Value make_seq(Kind kind, std::vector<Value> items) { return make(kind, add(seqs_, std::move(items))); }
  Value make_dict() { return make(Kind::kDict, add(dicts_, DictObject{})); }
  static Value make_int(int64_t i) {
    Value v;
    v.kind = Kind::kInt;
    v.i = i;
    return v;
  }

  void expect(const Value& v, Kind kind, const char* what) const {
    if (v.kind != kind) error(what, " is ", kind_name(v.kind), ", expected ", kind_name(kind));
  }
  const std::string& str(const Value& v, const char* what) const {
    expect(v, Kind::kStr, what);
    return strs_[v.ref];
  }
  std::vector<int64_t> ints(const Value& v, const char* what) const {
    if (v.kind != Kind::kTuple && v.kind != Kind::kList) {
      error(what, " is ", kind_name(v.kind), ", expected a tuple of ints");
    }
    if (seqs_[v.ref].size() > kMaxDims) error(what, " has ", seqs_[v.ref].size(), " dimensions");
    std::vector<int64_t> out;
    for (const Value& item : seqs_[v.ref]) {
      expect(item, Kind::kInt, what);
      out.push_back(item.i);
    }
    return out;
  }

  void set_item(const Value& target, const Value& key, const Value& value) {
    expect(target, Kind::kDict, "SETITEM target");
    DictObject& dict = dicts_[target.ref];
    if (key.kind == Kind::kStr && !dict.str_keys.insert(strs_[key.ref]).second) {
      error("duplicate key ", printable(strs_[key.ref]), " in a dict");
    }
    dict.entries.emplace_back(key, value);
  }

  Value resolve_global(std::string_view module, std::string_view name) {
    static const std::pair<const char*, core::DType> kStorages[] = {
        {"DoubleStorage", core::DType::kF64}, {"FloatStorage", core::DType::kF32},
        {"HalfStorage", core::DType::kF16},   {"BFloat16Storage", core::DType::kBF16},
        {"LongStorage", core::DType::kI64},   {"IntStorage", core::DType::kI32},
        {"ShortStorage", core::DType::kI16},  {"CharStorage", core::DType::kI8},
        {"ByteStorage", core::DType::kU8},    {"BoolStorage", core::DType::kBool}};
    static const struct {
      const char* module;
      const char* name;
      Global global;
    } kGlobals[] = {
        {"collections", "OrderedDict", Global::kOrderedDict},
        {"torch._utils", "_rebuild_tensor_v2", Global::kRebuildTensorV2},
        {"torch._utils", "_rebuild_parameter", Global::kRebuildParameter},
        {"torch._utils", "_rebuild_parameter_with_state", Global::kRebuildParameterWithState},
        {"torch._tensor", "_rebuild_from_type_v2", Global::kRebuildFromTypeV2},
        {"torch.jit._pickle", "restore_type_tag", Global::kRestoreTypeTag},
        {"torch", "Tensor", Global::kTensorType},
        {"torch._tensor", "Tensor", Global::kTensorType},
        {"torch.nn.parameter", "Parameter", Global::kParameterType},
    };
    Value v;
    v.kind = Kind::kGlobal;
    if (module == "torch") {
      for (const auto& [storage_name, dtype] : kStorages) {
        if (name == storage_name) {
          v.i = static_cast<int64_t>(Global::kStorageType);
          v.ref = static_cast<uint32_t>(dtype);
          return v;
        }
      }
    }
    for (const auto& g : kGlobals) {
      if (module == g.module && name == g.name) {
        v.i = static_cast<int64_t>(g.global);
        return v;
      }
    }
    error("the pickle refers to global ", printable(std::string(module) + "." + std::string(name)),
          ", which is not allowed in a checkpoint (only dicts of tensors are loaded; nothing is executed)");
  }

  Value persistent_load(const Value& pid) {
    if (pid.kind != Kind::kTuple || seqs_[pid.ref].size() != 5) {
      error("persistent id is not a 5-tuple ('storage', type, key, location, numel)");
    }
    const std::vector<Value> a = seqs_[pid.ref];
    if (str(a[0], "persistent id tag") != "storage") error("persistent id tag is not 'storage'");
    if (a[1].kind != Kind::kGlobal || static_cast<Global>(a[1].i) != Global::kStorageType) {
      error("persistent id does not name a torch storage type");
    }
    const auto dtype = static_cast<core::DType>(a[1].ref);
    const std::string& key = str(a[2], "storage key");
    if (key.empty() || key.size() > 256 || key.find('/') != std::string::npos ||
        key.find('\0') != std::string::npos) {
      error("invalid storage key ", printable(key));
    }
    const std::string& location = str(a[3], "storage location");
    expect(a[4], Kind::kInt, "storage size");
    if (a[4].i < 0) error("storage ", printable(key), " has negative size ", a[4].i);
    const auto numel = static_cast<uint64_t>(a[4].i);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, core::dtype_size(dtype), &nbytes)) {
      error("storage ", printable(key), " size overflows");
    }
    const auto [it, inserted] = storage_by_key_.emplace(key, static_cast<uint32_t>(storages_.size()));
    if (inserted) {
      storages_.push_back({key, dtype, numel, location});
    } else {
      const PickledStorage& seen = storages_[it->second];
      if (seen.dtype != dtype || seen.numel != numel) {
        error("storage ", printable(key), " is used as ", core::dtype_name(seen.dtype), "[", seen.numel, "] and as ",
              core::dtype_name(dtype), "[", numel, "]");
      }
    }
    return make(Kind::kStorage, it->second);
  }

  Value call(const Value& callable, const Value& args, int depth) {
    expect(callable, Kind::kGlobal, "REDUCE callable");
    expect(args, Kind::kTuple, "REDUCE arguments");
    const auto global = static_cast<Global>(callable.i);
    const std::size_t argc = seqs_[args.ref].size();
    if (argc > 7) error("a checkpoint global called with ", argc, " arguments");
    const std::vector<Value> a = seqs_[args.ref];  // a copy: the arenas may grow below
    auto arity = [&](std::size_t lo, std::size_t hi, const char* fn) {
      if (argc < lo || argc > hi) error(fn, " called with ", argc, " arguments");
    };
    switch (global) {
      case Global::kOrderedDict:
        arity(0, 0, "collections.OrderedDict");
        return make_dict();
      case Global::kRebuildTensorV2: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        arity(6, 7, "torch._utils._rebuild_tensor_v2");
        expect(a[0], Kind::kStorage, "_rebuild_tensor_v2 storage");
        expect(a[1], Kind::kInt, "_rebuild_tensor_v2 storage_offset");
        TensorObject t;
        t.storage = a[0].ref;
        t.storage_offset = a[1].i;
        t.sizes = ints(a[2], "_rebuild_tensor_v2 size");
        t.strides = ints(a[3], "_rebuild_tensor_v2 stride");
        expect(a[4], Kind::kBool, "_rebuild_tensor_v2 requires_grad");
        return make(Kind::kTensor, add(tensors_, std::move(t)));
      }
      case Global::kRebuildParameter:
        arity(3, 3, "torch._utils._rebuild_parameter");
        expect(a[0], Kind::kTensor, "_rebuild_parameter data");
        return a[0];
      case Global::kRebuildParameterWithState:
        arity(4, 4, "torch._utils._rebuild_parameter_with_state");
        expect(a[0], Kind::kTensor, "_rebuild_parameter_with_state data");
        return a[0];
      case Global::kRebuildFromTypeV2: {
        // (func, new_type, args, state): only plain tensors and parameters are accepted as new_type.
        arity(4, 4, "torch._tensor._rebuild_from_type_v2");
        if (depth >= 4) error("_rebuild_from_type_v2 nested too deeply");
        expect(a[1], Kind::kGlobal, "_rebuild_from_type_v2 type");
        const auto type = static_cast<Global>(a[1].i);
        if (type != Global::kTensorType && type != Global::kParameterType) {
          error("_rebuild_from_type_v2 to a type other than torch.Tensor / Parameter");
        }
        const Value out = call(a[0], a[2], depth + 1);
        expect(out, Kind::kTensor, "_rebuild_from_type_v2 result");
        return out;
      }
      case Global::kRestoreTypeTag:
        arity(2, 2, "torch.jit._pickle.restore_type_tag");
        return a[0];
      case Global::kTensorType:
      case Global::kParameterType:
      case Global::kStorageType:
        break;
    }
    error("a type global cannot be called in a checkpoint");
  }

  Value memo_get(uint64_t index) const {
    const auto it = memo_.find(index);
    if (it == memo_.end()) error("memo entry ", index, " read before it was written");
    return it->second;
  }

  Value interpret() {
    while (true) {
      op_pos_ = pos_;
      const auto op = static_cast<uint8_t>(take(1)[0]);
      switch (op) {
        case 0x80: {  // PROTO
          const auto proto = le(1);
          if (proto > 5) error("unsupported pickle protocol ", proto);
          break;
        }
        case 0x95:  // FRAME (protocol 4): the frame length is only a buffering hint
          le(8);
          break;
        case '}': push(make_dict()); break;                   // EMPTY_DICT
        case ']': push(make_seq(Kind::kList, {})); break;     // EMPTY_LIST
        case ')': push(make_seq(Kind::kTuple, {})); break;    // EMPTY_TUPLE
        case '(': marks_.push_back(stack_.size()); break;     // MARK
        case 't': push(make_seq(Kind::kTuple, pop_to_mark())); break;  // TUPLE
        case 'l': push(make_seq(Kind::kList, pop_to_mark())); break;   // LIST
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          std::vector<Value> items(op - 0x84);
          for (std::size_t k = items.size(); k-- > 0;) items[k] = pop();
          push(make_seq(Kind::kTuple, std::move(items)));
          break;
        }
        case 'd': {  // DICT
          const auto items = pop_to_mark();
          if (items.size() % 2 != 0) error("DICT with an odd number of items");
          const Value dict = make_dict();
          for (std::size_t k = 0; k < items.size(); k += 2) set_item(dict, items[k], items[k + 1]);
          push(dict);
          break;
        }
        case 'X': push(make_str(take(le(4)))); break;     // BINUNICODE
        case 0x8c: push(make_str(take(le(1)))); break;    // SHORT_BINUNICODE
        case 0x8d: push(make_str(take(le(8)))); break;    // BINUNICODE8
        case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))))); break;  // BININT
        case 'K': push(make_int(static_cast<int64_t>(le(1)))); break;  // BININT1
        case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;  // BININT2
        case 0x8a: {  // LONG1: little-endian two's complement of n bytes
          const auto n = static_cast<std::size_t>(le(1));
          if (n > 8) error("integer of ", n, " bytes does not fit in 64 bits");
          uint64_t v = n == 0 ? 0 : le(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~uint64_t{0} << (8 * n);
          push(make_int(static_cast<int64_t>(v)));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          const auto bytes = take(8);
          uint64_t bits = 0;
          for (std::size_t k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(bytes[k]);
          Value v;
          v.kind = Kind::kFloat;
          std::memcpy(&v.f, &bits, 8);
          push(v);
          break;
        }
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          Value v;
          v.kind = Kind::kBool;
          v.i = op == 0x88;
          push(v);
          break;
        }
        case 'N': push(Value{}); break;  // NONE
        case 'c': {                       // GLOBAL
          const auto module = line();
          const auto name = line();
          push(resolve_global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Value name = pop();
          const Value module = pop();
          push(resolve_global(str(module, "STACK_GLOBAL module"), str(name, "STACK_GLOBAL name")));
          break;
        }
        case 'Q': {  // BINPERSID
          const Value pid = pop();
          push(persistent_load(pid));
          break;
        }
        case 'R': {  // REDUCE
          const Value args = pop();
          const Value callable = pop();
          push(call(callable, args, 0));
          break;
        }
        case 'b': {  // BUILD: an OrderedDict's _metadata or a parameter's state; neither matters here
          pop();
          const Value& target = top();
          if (target.kind != Kind::kDict && target.kind != Kind::kTensor) {
            error("BUILD on a ", kind_name(target.kind));
          }
          break;
        }
        case 's': {  // SETITEM
          const Value value = pop();
          const Value key = pop();
          set_item(top(), key, value);
          break;
        }
        case 'u': {  // SETITEMS
          const auto items = pop_to_mark();
          if (items.size() % 2 != 0) error("SETITEMS with an odd number of items");
          const Value target = top();
          for (std::size_t k = 0; k < items.size(); k += 2) set_item(target, items[k], items[k + 1]);
          break;
        }
        case 'a': {  // APPEND
          const Value value = pop();
          const Value target = top();
          expect(target, Kind::kList, "APPEND target");
          seqs_[target.ref].push_back(value);
          break;
        }
        case 'e': {  // APPENDS
          const auto items = pop_to_mark();
          const Value target = top();
          expect(target, Kind::kList, "APPENDS target");
          auto& list = seqs_[target.ref];
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 'q': memo_[le(1)] = top(); break;            // BINPUT
        case 'r': memo_[le(4)] = top(); break;            // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;    // MEMOIZE
        case 'h': push(memo_get(le(1))); break;           // BINGET
        case 'j': push(memo_get(le(4))); break;           // LONG_BINGET
        case '0': pop(); break;                            // POP
        case '1': pop_to_mark(); break;                    // POP_MARK
        case '2': push(top()); break;                      // DUP
        case '.': return pop();                            // STOP
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          error("unsupported pickle opcode ", buf, " (not one torch.save emits for a dict of tensors)");
        }
      }
    }
  }

  void check_view(const std::string& key, const TensorObject& t) const {
    const PickledStorage& s = storages_[t.storage];
    const std::string where = source_ + ": tensor " + printable(key);
    if (t.sizes.size() != t.strides.size()) {
      core::fail(where, ": ", t.sizes.size(), " sizes but ", t.strides.size(), " strides");
    }
    if (t.storage_offset < 0) core::fail(where, ": negative storage offset ", t.storage_offset);
    uint64_t numel = 1;
    uint64_t last = static_cast<uint64_t>(t.storage_offset);
    bool overflow = false;
    for (std::size_t d = 0; d < t.sizes.size(); ++d) {
      if (t.sizes[d] < 0 || t.strides[d] < 0) {
        core::fail(where, ": negative size or stride in dimension ", d);
      }
      overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(t.sizes[d]), &numel);
      if (t.sizes[d] > 0) {
        uint64_t step = 0;
        overflow |= __builtin_mul_overflow(static_cast<uint64_t>(t.sizes[d] - 1), static_cast<uint64_t>(t.strides[d]),
                                           &step);
        overflow |= __builtin_add_overflow(last, step, &last);
      }
    }
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      core::fail(where, ": size/stride arithmetic overflows");
    }
    if (numel == 0 ? static_cast<uint64_t>(t.storage_offset) > s.numel : last >= s.numel) {
      core::fail(where, ": view (offset ", t.storage_offset, ", last element ", last, ") lies outside storage ",
                 printable(s.key), " of ", s.numel, " elements");
    }
  }

  PickledStateDict extract(const Value& result) {
    if (result.kind != Kind::kDict) {
      core::fail(source_, ": data.pkl holds a ", kind_name(result.kind), ", expected a dict of tensors");
    }
    PickledStateDict out;
    std::unordered_map<uint32_t, std::size_t> remap;
    for (const auto& [key, value] : dicts_[result.ref].entries) {
      if (key.kind != Kind::kStr) {
        core::fail(source_, ": state dict has a key of type ", kind_name(key.kind), ", expected str");
      }
      const std::string& name = strs_[key.ref];
      if (value.kind != Kind::kTensor) {
        core::fail(source_, ": key ", printable(name), " holds a ", kind_name(value.kind), ", expected a tensor");
      }
      const TensorObject& t = tensors_[value.ref];
      check_view(name, t);
      const auto [it, inserted] = remap.emplace(t.storage, out.storages.size());
      if (inserted) out.storages.push_back(storages_[t.storage]);
      out.tensors.push_back({name, it->second, t.storage_offset, t.sizes, t.strides});
    }
    return out;
  }

  std::string_view data_;
  const std::string& source_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<std::string> strs_;
  std::vector<std::vector<Value>> seqs_;
  std::vector<DictObject> dicts_;
  std::vector<TensorObject> tensors_;
  std::vector<PickledStorage> storages_;
  std::unordered_map<std::string, uint32_t> storage_by_key_;
};

}  // namespace

PickledStateDict parse_state_dict_pickle(std::string_view pickle, const std::string& source) {
  return Unpickler(pickle, source).run();
}

}  // namespace lorahub::model::detail
