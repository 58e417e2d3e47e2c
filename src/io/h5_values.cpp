// Attributes and datasets: typed writers and readers over the handles of h5.h.
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "io/h5.h"
#include "lorahub/core/error.h"

namespace lorahub::io::h5 {
namespace {

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

// Strings are written fixed-length (UTF-8, NUL-padded to the longest one), never variable-length:
// HDF5 keeps variable-length data in global heap collections, the one kind of metadata that carries no
// checksum, and a damaged collection makes HDF5 1.10 read out of bounds or loop forever (seen fuzzing
// results files). Fixed-length strings live in the object header or in checksummed chunks.
struct PackedStrings {
  Datatype type;
  std::vector<char> bytes;  // values.size() * size, NUL-padded
};

PackedStrings pack_strings(const std::vector<std::string>& values, const std::string& where) {
  std::size_t size = 1;  // HDF5 has no zero-length string type
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].find('\0') != std::string::npos) {
      core::fail("string ", i, " of ", where, " contains a NUL byte, which HDF5 strings cannot hold");
    }
    size = std::max(size, values[i].size());
  }
  PackedStrings out{Datatype::utf8_fixed(size), std::vector<char>(values.size() * size, '\0')};
  for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(out.bytes.data() + i * size, values[i].data(), values[i].size());
  return out;
}

// Where a dataset's bytes go: under kCompressBytes into its object header (compact layout, covered by
// the header's checksum), above it into chunks that are compressed and carry a Fletcher-32 checksum.
// So no byte of a results file is read without a check.
PropertyList dataset_plist(const std::vector<hsize_t>& dims, std::size_t element_size, bool shuffle,
                           const std::string& where) {
  PropertyList dcpl = creation_plist(H5P_DATASET_CREATE);
  const hsize_t bytes = element_count(dims, where) * element_size;
  if (dims.empty() || bytes < kCompressBytes) {
    check(H5Pset_layout(dcpl.id(), H5D_COMPACT), "H5Pset_layout(compact) for " + where);
    return dcpl;
  }
  std::vector<hsize_t> chunk = chunk_dims(dims, element_size);
  check(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk for " + where);
  if (check(H5Zfilter_avail(H5Z_FILTER_DEFLATE), "H5Zfilter_avail(deflate)") > 0) {
    if (shuffle) check(H5Pset_shuffle(dcpl.id()), "H5Pset_shuffle for " + where);
    check(H5Pset_deflate(dcpl.id(), 4), "H5Pset_deflate for " + where);
  }
  // Last in the pipeline, so the checksum covers the bytes as stored and is checked before inflating.
  check(H5Pset_fletcher32(dcpl.id()), "H5Pset_fletcher32 for " + where);
  return dcpl;
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
  PackedStrings packed = pack_strings({value}, attr_where(obj, name));
  write_attr_raw(obj, name, packed.type.id(), packed.type.id(), Dataspace::scalar(), packed.bytes.data(), 1);
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
  PackedStrings packed = pack_strings(value, attr_where(obj, name));
  write_attr_raw(obj, name, packed.type.id(), packed.type.id(), Dataspace::simple({value.size()}),
                 packed.bytes.data(), value.size());
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
  PropertyList dcpl = dataset_plist(dims, sizeof(T), /*shuffle=*/true, where);
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
  PackedStrings packed = pack_strings(values, where);
  const std::vector<hsize_t> dims = {values.size()};
  Dataspace space = Dataspace::simple(dims);
  // Byte shuffling would interleave the strings' bytes: plain deflate suits text (and its padding).
  PropertyList dcpl = dataset_plist(dims, H5Tget_size(packed.type.id()), /*shuffle=*/false, where);
  PropertyList lcpl = utf8_link_plist();
  hid_t id = H5Dcreate2(group.id(), name.c_str(), packed.type.id(), space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT);
  if (id < 0) fail("creating " + where);
  Dataset ds(id, group.file(), path);
  if (!values.empty()) {
    check(H5Dwrite(ds.id(), packed.type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.bytes.data()), "writing " + where);
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
