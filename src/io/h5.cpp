#include "io/h5.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "lorahub/core/error.h"

namespace lorahub::io::h5 {
namespace {

herr_t collect_error(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  std::string line;
  if (err->func_name != nullptr) line = core::cat(err->func_name, "(): ");
  line += err->desc != nullptr ? err->desc : "(no description)";
  out->push_back(std::move(line));
  return 0;
}

// The outermost entry names the API call, the innermost ones say why; the middle is noise.
std::string error_summary() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, &collect_error, &lines);
  H5Eclear2(H5E_DEFAULT);
  if (lines.empty()) return "HDF5 gave no reason";
  std::vector<std::string> keep;
  keep.push_back(lines.front());
  for (std::size_t i = lines.size() >= 3 ? lines.size() - 2 : 1; i < lines.size(); ++i) {
    if (lines[i] != keep.back()) keep.push_back(lines[i]);
  }
  std::string out;
  for (const auto& line : keep) out += (out.empty() ? "" : " <- ") + line;
  return out;
}

hsize_t element_count(const std::vector<hsize_t>& dims, const std::string& where) {
  hsize_t n = 1;
  for (hsize_t d : dims) {
    if (d != 0 && n > std::numeric_limits<hsize_t>::max() / d) {
      core::fail("HDF5 extents overflow for ", where);
    }
    n *= d;
  }
  return n;
}

std::string dims_text(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += core::cat(i ? ", " : "", dims[i]);
  return s + "]";
}

template <class T>
struct Traits;
template <>
struct Traits<double> {
  static hid_t mem() { return H5T_NATIVE_DOUBLE; }
  static hid_t file() { return H5T_IEEE_F64LE; }
  static constexpr H5T_class_t kClass = H5T_FLOAT;
  static constexpr const char* kName = "float64";
};
template <>
struct Traits<float> {
  static hid_t mem() { return H5T_NATIVE_FLOAT; }
  static hid_t file() { return H5T_IEEE_F32LE; }
  static constexpr H5T_class_t kClass = H5T_FLOAT;
  static constexpr const char* kName = "float32";
};
template <>
struct Traits<std::int64_t> {
  static hid_t mem() { return H5T_NATIVE_INT64; }
  static hid_t file() { return H5T_STD_I64LE; }
  static constexpr H5T_class_t kClass = H5T_INTEGER;
  static constexpr const char* kName = "int64";
};
template <>
struct Traits<std::uint8_t> {
  static hid_t mem() { return H5T_NATIVE_UINT8; }
  static hid_t file() { return H5T_STD_U8LE; }
  static constexpr H5T_class_t kClass = H5T_INTEGER;
  static constexpr const char* kName = "uint8";
};

const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "vlen";
    case H5T_ARRAY: return "array";
    default: return "other";
  }
}

std::string attr_where(const Object& obj, const std::string& name) {
  return core::cat("attribute '", name, "' of ", obj.where());
}

// Objects without timestamps make two runs of the same job give identical files.
PropertyList no_times(hid_t cls) {
  PropertyList p(cls);
  check(H5Pset_obj_track_times(p.id(), 0), "H5Pset_obj_track_times");
  return p;
}

Attribute open_attr(const Object& obj, const std::string& name) {
  silence_errors();
  htri_t exists = check(H5Aexists(obj.id(), name.c_str()), "H5Aexists on " + attr_where(obj, name));
  if (exists == 0) core::fail("missing ", attr_where(obj, name));
  return Attribute(check(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT), "opening " + attr_where(obj, name)));
}

void write_attr_raw(const Object& obj, const std::string& name, hid_t file_type, hid_t mem_type,
                    const Dataspace& space, const void* buf, hsize_t count) {
  silence_errors();
  if (has_attr(obj, name)) delete_attr(obj, name);
  PropertyList acpl(H5P_ATTRIBUTE_CREATE);
  check(H5Pset_char_encoding(acpl.id(), H5T_CSET_UTF8), "H5Pset_char_encoding");
  Attribute attr(check(H5Acreate2(obj.id(), name.c_str(), file_type, space.id(), acpl.id(), H5P_DEFAULT),
                       "creating " + attr_where(obj, name)));
  if (count > 0) check(H5Awrite(attr.id(), mem_type, buf), "writing " + attr_where(obj, name));
  attr.close("closing " + attr_where(obj, name));
}

std::vector<const char*> c_strings(const std::vector<std::string>& values, const std::string& where) {
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].find('\0') != std::string::npos) {
      core::fail("string ", i, " of ", where, " contains a NUL byte, which HDF5 strings cannot hold");
    }
    ptrs.push_back(values[i].c_str());
  }
  return ptrs;
}

// Reads `count` strings from an attribute or dataset of string type `file_type`.
template <class ReadFn>
std::vector<std::string> read_string_values(const Datatype& file_type, const Dataspace& space,
                                            hsize_t count, const std::string& where, ReadFn&& read) {
  if (file_type.type_class() != H5T_STRING) {
    core::fail(where, " holds ", class_name(file_type.type_class()), " values, expected strings");
  }
  std::vector<std::string> out;
  out.reserve(count);
  if (count == 0) return out;
  if (file_type.is_variable_string()) {
    Datatype mem = Datatype::utf8_string();
    H5T_cset_t cset = H5Tget_cset(file_type.id());
    check(cset, "H5Tget_cset for " + where);
    check(H5Tset_cset(mem.id(), cset), "H5Tset_cset");
    std::vector<char*> ptrs(count, nullptr);
    check(read(mem.id(), static_cast<void*>(ptrs.data())), "reading " + where);
    for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
    check(H5Dvlen_reclaim(mem.id(), space.id(), H5P_DEFAULT, ptrs.data()), "H5Dvlen_reclaim for " + where);
  } else {
    std::size_t size = H5Tget_size(file_type.id());
    if (size == 0) fail("H5Tget_size for " + where);
    Datatype mem(check(H5Tcopy(file_type.id()), "H5Tcopy"));
    std::vector<char> buf(static_cast<std::size_t>(count) * size);
    check(read(mem.id(), static_cast<void*>(buf.data())), "reading " + where);
    for (hsize_t i = 0; i < count; ++i) {
      const char* p = buf.data() + i * size;
      std::size_t len = 0;
      while (len < size && p[len] != '\0') ++len;
      out.emplace_back(p, len);
    }
  }
  return out;
}

template <class T>
std::vector<T> read_attr_numbers(const Object& obj, const std::string& name) {
  Attribute attr = open_attr(obj, name);
  std::string where = attr_where(obj, name);
  Datatype type(check(H5Aget_type(attr.id()), "H5Aget_type for " + where));
  if (type.type_class() != Traits<T>::kClass) {
    core::fail(where, " holds ", class_name(type.type_class()), " values, expected ", Traits<T>::kName);
  }
  Dataspace space(check(H5Aget_space(attr.id()), "H5Aget_space for " + where));
  hsize_t n = element_count(space.dims(), where);
  std::vector<T> out(static_cast<std::size_t>(n));
  if (n > 0) check(H5Aread(attr.id(), Traits<T>::mem(), out.data()), "reading " + where);
  return out;
}

template <class T>
T read_attr_scalar(const Object& obj, const std::string& name) {
  std::vector<T> v = read_attr_numbers<T>(obj, name);
  if (v.size() != 1) core::fail(attr_where(obj, name), " has ", v.size(), " values, expected 1");
  return v[0];
}

}  // namespace

void silence_errors() {
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

void fail(const std::string& what) { throw core::Error(what + ": " + error_summary()); }

// ---- handles --------------------------------------------------------------------------------------

Handle::~Handle() {
  if (valid() && closer_ != nullptr && closer_(id_) < 0) H5Eclear2(H5E_DEFAULT);
}

Handle::Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) {
  other.id_ = H5I_INVALID_HID;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (valid() && closer_ != nullptr && closer_(id_) < 0) H5Eclear2(H5E_DEFAULT);
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::close(const std::string& what) {
  if (!valid()) return;
  hid_t id = id_;
  id_ = H5I_INVALID_HID;
  if (closer_ != nullptr) check(closer_(id), what);
}

PropertyList::PropertyList(hid_t cls) : Handle(H5Pcreate(cls), &H5Pclose) {
  silence_errors();
  if (!valid()) fail("H5Pcreate");
}

Dataspace Dataspace::scalar() {
  return Dataspace(check(H5Screate(H5S_SCALAR), "H5Screate(scalar)"));
}

Dataspace Dataspace::simple(const std::vector<hsize_t>& dims) {
  if (dims.empty()) return scalar();
  return Dataspace(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                         "H5Screate_simple " + dims_text(dims)));
}

std::vector<hsize_t> Dataspace::dims() const {
  H5S_class_t cls = H5Sget_simple_extent_type(id());
  if (cls == H5S_NO_CLASS) fail("H5Sget_simple_extent_type");
  if (cls == H5S_NULL) return {0};
  if (cls == H5S_SCALAR) return {};
  int rank = check(H5Sget_simple_extent_ndims(id()), "H5Sget_simple_extent_ndims");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) check(H5Sget_simple_extent_dims(id(), dims.data(), nullptr), "H5Sget_simple_extent_dims");
  return dims;
}

Datatype Datatype::copy_of(hid_t predefined) {
  return Datatype(check(H5Tcopy(predefined), "H5Tcopy"));
}

Datatype Datatype::utf8_string() {
  Datatype t = copy_of(H5T_C_S1);
  check(H5Tset_size(t.id(), H5T_VARIABLE), "H5Tset_size(H5T_VARIABLE)");
  check(H5Tset_cset(t.id(), H5T_CSET_UTF8), "H5Tset_cset(UTF-8)");
  return t;
}

H5T_class_t Datatype::type_class() const {
  H5T_class_t c = H5Tget_class(id());
  if (c == H5T_NO_CLASS) fail("H5Tget_class");
  return c;
}

bool Datatype::is_variable_string() const {
  return check(H5Tis_variable_str(id()), "H5Tis_variable_str") > 0;
}

std::string Object::where() const { return core::cat("'", path_, "' in ", file_); }

std::string Object::child_path(const std::string& name) const {
  return path_ == "/" ? "/" + name : path_ + "/" + name;
}

PropertyList utf8_link_plist() {
  PropertyList lcpl(H5P_LINK_CREATE);
  check(H5Pset_char_encoding(lcpl.id(), H5T_CSET_UTF8), "H5Pset_char_encoding");
  return lcpl;
}

Group Group::create_group(const std::string& name) const {
  silence_errors();
  PropertyList lcpl = utf8_link_plist();
  PropertyList gcpl = no_times(H5P_GROUP_CREATE);
  std::string path = child_path(name);
  hid_t id = H5Gcreate2(this->id(), name.c_str(), lcpl.id(), gcpl.id(), H5P_DEFAULT);
  if (id < 0) fail(core::cat("creating group '", path, "' in ", file()));
  return Group(id, file(), path);
}

Group Group::open_group(const std::string& name) const {
  silence_errors();
  std::string path = child_path(name);
  if (!has_group(name)) core::fail("missing group '", path, "' in ", file());
  hid_t id = H5Gopen2(this->id(), name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(core::cat("opening group '", path, "' in ", file()));
  return Group(id, file(), path);
}

Group Group::require_group(const std::string& name) const {
  return has(name) ? open_group(name) : create_group(name);
}

Dataset Group::open_dataset(const std::string& name) const {
  silence_errors();
  std::string path = child_path(name);
  if (!has(name)) core::fail("missing dataset '", path, "' in ", file());
  hid_t id = H5Dopen2(this->id(), name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(core::cat("opening dataset '", path, "' in ", file()));
  return Dataset(id, file(), path);
}

bool Group::has(const std::string& name) const {
  silence_errors();
  return check(H5Lexists(id(), name.c_str(), H5P_DEFAULT),
               core::cat("H5Lexists '", child_path(name), "' in ", file())) > 0;
}

bool Group::has_group(const std::string& name) const {
  if (!has(name)) return false;
  H5O_info_t info;
  check(H5Oget_info_by_name2(id(), name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT),
        core::cat("H5Oget_info_by_name '", child_path(name), "' in ", file()));
  return info.type == H5O_TYPE_GROUP;
}

void Group::remove(const std::string& name) const {
  silence_errors();
  check(H5Ldelete(id(), name.c_str(), H5P_DEFAULT),
        core::cat("deleting '", child_path(name), "' in ", file()));
}

std::vector<std::string> Group::children() const {
  silence_errors();
  std::vector<std::string> names;
  hsize_t idx = 0;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names), "listing " + where());
  return names;
}

Dataspace Dataset::space() const {
  return Dataspace(check(H5Dget_space(id()), "H5Dget_space for " + where()));
}

Datatype Dataset::type() const {
  return Datatype(check(H5Dget_type(id()), "H5Dget_type for " + where()));
}

std::vector<hsize_t> Dataset::dims() const { return space().dims(); }

File File::create(const std::string& path, hid_t fapl, bool truncate) {
  silence_errors();
  hid_t id = H5Fcreate(path.c_str(), truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL, H5P_DEFAULT, fapl);
  if (id < 0) fail("creating HDF5 file " + path);
  return File(id, path);
}

File File::open(const std::string& path, unsigned flags, hid_t fapl) {
  silence_errors();
  hid_t id = H5Fopen(path.c_str(), flags, fapl);
  if (id < 0) fail(core::cat("opening HDF5 file ", path, (flags & H5F_ACC_RDWR) ? " for writing" : ""));
  return File(id, path);
}

Group File::root() const {
  silence_errors();
  return Group(check(H5Gopen2(id(), "/", H5P_DEFAULT), "opening '/' in " + path_), path_, "/");
}

void File::flush() const {
  silence_errors();
  check(H5Fflush(id(), H5F_SCOPE_GLOBAL), "flushing " + path_);
}

void File::close() {
  silence_errors();
  Handle::close("closing " + path_);
}

// ---- attributes -----------------------------------------------------------------------------------

bool has_attr(const Object& obj, const std::string& name) {
  silence_errors();
  return check(H5Aexists(obj.id(), name.c_str()), "H5Aexists on " + attr_where(obj, name)) > 0;
}

void delete_attr(const Object& obj, const std::string& name) {
  silence_errors();
  check(H5Adelete(obj.id(), name.c_str()), "deleting " + attr_where(obj, name));
}

std::vector<std::string> attr_names(const Object& obj) {
  silence_errors();
  std::vector<std::string> names;
  hsize_t idx = 0;
  auto cb = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(H5Aiterate2(obj.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names),
        "listing attributes of " + obj.where());
  return names;
}

H5T_class_t attr_class(const Object& obj, const std::string& name) {
  Attribute attr = open_attr(obj, name);
  Datatype type(check(H5Aget_type(attr.id()), "H5Aget_type for " + attr_where(obj, name)));
  return type.type_class();
}

void write_attr(const Object& obj, const std::string& name, const std::string& value) {
  if (value.find('\0') != std::string::npos) {
    core::fail(attr_where(obj, name), " contains a NUL byte, which HDF5 strings cannot hold");
  }
  const char* ptr = value.c_str();
  Datatype type = Datatype::utf8_string();
  write_attr_raw(obj, name, type.id(), type.id(), Dataspace::scalar(), &ptr, 1);
}

void write_attr(const Object& obj, const std::string& name, const char* value) {
  write_attr(obj, name, std::string(value));
}

void write_attr(const Object& obj, const std::string& name, std::int64_t value) {
  write_attr_raw(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, Dataspace::scalar(), &value, 1);
}

void write_attr(const Object& obj, const std::string& name, double value) {
  write_attr_raw(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, Dataspace::scalar(), &value, 1);
}

void write_attr(const Object& obj, const std::string& name, const std::vector<std::int64_t>& value) {
  write_attr_raw(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, Dataspace::simple({value.size()}),
                 value.data(), value.size());
}

void write_attr(const Object& obj, const std::string& name, const std::vector<double>& value) {
  write_attr_raw(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, Dataspace::simple({value.size()}),
                 value.data(), value.size());
}

void write_attr(const Object& obj, const std::string& name, const std::vector<std::string>& value) {
  std::vector<const char*> ptrs = c_strings(value, attr_where(obj, name));
  Datatype type = Datatype::utf8_string();
  write_attr_raw(obj, name, type.id(), type.id(), Dataspace::simple({value.size()}), ptrs.data(),
                 value.size());
}

std::vector<std::string> read_attr_strings(const Object& obj, const std::string& name) {
  Attribute attr = open_attr(obj, name);
  std::string where = attr_where(obj, name);
  Datatype type(check(H5Aget_type(attr.id()), "H5Aget_type for " + where));
  Dataspace space(check(H5Aget_space(attr.id()), "H5Aget_space for " + where));
  hsize_t n = element_count(space.dims(), where);
  return read_string_values(type, space, n, where, [&](hid_t mem, void* buf) {
    return H5Aread(attr.id(), mem, buf);
  });
}

std::string read_attr_string(const Object& obj, const std::string& name) {
  std::vector<std::string> v = read_attr_strings(obj, name);
  if (v.size() != 1) core::fail(attr_where(obj, name), " has ", v.size(), " strings, expected 1");
  return v[0];
}

std::int64_t read_attr_int64(const Object& obj, const std::string& name) {
  return read_attr_scalar<std::int64_t>(obj, name);
}

double read_attr_double(const Object& obj, const std::string& name) {
  return read_attr_scalar<double>(obj, name);
}

std::vector<std::int64_t> read_attr_int64s(const Object& obj, const std::string& name) {
  return read_attr_numbers<std::int64_t>(obj, name);
}

std::vector<double> read_attr_doubles(const Object& obj, const std::string& name) {
  return read_attr_numbers<double>(obj, name);
}

// ---- datasets -------------------------------------------------------------------------------------

std::vector<hsize_t> chunk_dims(const std::vector<hsize_t>& dims, std::size_t element_size) {
  constexpr hsize_t kTargetBytes = 1 << 20;
  std::vector<hsize_t> chunk = dims;
  for (hsize_t& c : chunk) c = std::max<hsize_t>(c, 1);
  auto bytes = [&] {
    hsize_t b = element_size;
    for (hsize_t c : chunk) b *= c;
    return b;
  };
  // Halve the leading dimensions first so a chunk holds whole trailing rows where it can.
  for (std::size_t d = 0; d < chunk.size() && bytes() > kTargetBytes; ++d) {
    while (chunk[d] > 1 && bytes() > kTargetBytes) chunk[d] = (chunk[d] + 1) / 2;
  }
  return chunk;
}

template <class T>
Dataset write_dataset(const Group& group, const std::string& name, const std::vector<T>& data,
                      const std::vector<hsize_t>& dims) {
  silence_errors();
  std::string path = group.child_path(name);
  std::string where = core::cat("dataset '", path, "' in ", group.file());
  hsize_t n = element_count(dims, where);
  if (n != data.size()) {
    core::fail("writing ", where, ": shape ", dims_text(dims), " needs ", n, " values, got ", data.size());
  }
  Dataspace space = Dataspace::simple(dims);
  PropertyList dcpl = no_times(H5P_DATASET_CREATE);
  if (!dims.empty() && n > 0 && n * sizeof(T) >= kCompressBytes) {
    std::vector<hsize_t> chunk = chunk_dims(dims, sizeof(T));
    check(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk for " + where);
    if (check(H5Zfilter_avail(H5Z_FILTER_DEFLATE), "H5Zfilter_avail(deflate)") > 0) {
      check(H5Pset_shuffle(dcpl.id()), "H5Pset_shuffle for " + where);
      check(H5Pset_deflate(dcpl.id(), 4), "H5Pset_deflate for " + where);
    }
  }
  PropertyList lcpl = utf8_link_plist();
  hid_t id = H5Dcreate2(group.id(), name.c_str(), Traits<T>::file(), space.id(), lcpl.id(), dcpl.id(),
                        H5P_DEFAULT);
  if (id < 0) fail("creating " + where);
  Dataset ds(id, group.file(), path);
  if (n > 0) {
    check(H5Dwrite(ds.id(), Traits<T>::mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), "writing " + where);
  }
  return ds;
}

template Dataset write_dataset<double>(const Group&, const std::string&, const std::vector<double>&,
                                       const std::vector<hsize_t>&);
template Dataset write_dataset<float>(const Group&, const std::string&, const std::vector<float>&,
                                      const std::vector<hsize_t>&);
template Dataset write_dataset<std::int64_t>(const Group&, const std::string&,
                                             const std::vector<std::int64_t>&, const std::vector<hsize_t>&);
template Dataset write_dataset<std::uint8_t>(const Group&, const std::string&,
                                             const std::vector<std::uint8_t>&, const std::vector<hsize_t>&);

Dataset write_scalar(const Group& group, const std::string& name, double value) {
  return write_dataset(group, name, std::vector<double>{value}, {});
}

Dataset write_strings(const Group& group, const std::string& name, const std::vector<std::string>& values) {
  silence_errors();
  std::string path = group.child_path(name);
  std::string where = core::cat("dataset '", path, "' in ", group.file());
  std::vector<const char*> ptrs = c_strings(values, where);
  Datatype type = Datatype::utf8_string();
  Dataspace space = Dataspace::simple({values.size()});
  PropertyList dcpl = no_times(H5P_DATASET_CREATE);
  PropertyList lcpl = utf8_link_plist();
  hid_t id = H5Dcreate2(group.id(), name.c_str(), type.id(), space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT);
  if (id < 0) fail("creating " + where);
  Dataset ds(id, group.file(), path);
  if (!values.empty()) {
    check(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "writing " + where);
  }
  return ds;
}

template <class T>
std::vector<T> read_dataset(const Group& group, const std::string& name, std::vector<hsize_t>* dims) {
  Dataset ds = group.open_dataset(name);
  Datatype type = ds.type();
  if (type.type_class() != Traits<T>::kClass) {
    core::fail("dataset ", ds.where(), " holds ", class_name(type.type_class()), " values, expected ",
               Traits<T>::kName);
  }
  std::vector<hsize_t> extents = ds.dims();
  hsize_t n = element_count(extents, ds.where());
  std::vector<T> out(static_cast<std::size_t>(n));
  if (n > 0) {
    check(H5Dread(ds.id(), Traits<T>::mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          "reading dataset " + ds.where());
  }
  if (dims != nullptr) *dims = std::move(extents);
  return out;
}

template std::vector<double> read_dataset<double>(const Group&, const std::string&, std::vector<hsize_t>*);
template std::vector<float> read_dataset<float>(const Group&, const std::string&, std::vector<hsize_t>*);
template std::vector<std::int64_t> read_dataset<std::int64_t>(const Group&, const std::string&,
                                                              std::vector<hsize_t>*);
template std::vector<std::uint8_t> read_dataset<std::uint8_t>(const Group&, const std::string&,
                                                              std::vector<hsize_t>*);

double read_scalar(const Group& group, const std::string& name) {
  std::vector<double> v = read_dataset<double>(group, name);
  if (v.size() != 1) {
    core::fail("dataset '", group.child_path(name), "' in ", group.file(), " has ", v.size(),
               " values, expected a scalar");
  }
  return v[0];
}

std::vector<std::string> read_strings(const Group& group, const std::string& name) {
  Dataset ds = group.open_dataset(name);
  std::string where = "dataset " + ds.where();
  Dataspace space = ds.space();
  std::vector<hsize_t> extents = space.dims();
  if (extents.size() > 1) core::fail(where, " has rank ", extents.size(), ", expected a 1-D list of strings");
  hsize_t n = element_count(extents, where);
  return read_string_values(ds.type(), space, n, where, [&](hid_t mem, void* buf) {
    return H5Dread(ds.id(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

}  // namespace lorahub::io::h5
