#pragma once
// Internal RAII layer over the HDF5 C API (1.10). The only header of the project that includes
// hdf5.h; it stays in src/ so no public header exposes HDF5 types.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lorahub::io::h5 {

/// Turns off HDF5's automatic error printing for the calling thread (HDF5 keeps one error stack
/// per thread in thread-safe builds); errors then surface only as core::Error.
void silence_errors();

/// Throws core::Error "<what>: <HDF5's own reasons>" and clears the HDF5 error stack.
[[noreturn]] void fail(const std::string& what);

/// Returns rc, or throws via fail(what) when rc < 0 (herr_t, htri_t and hid_t alike).
template <class T>
T check(T rc, const std::string& what) {
  if (rc < 0) fail(what);
  return rc;
}

/// Product of extents; throws core::Error naming `where` when it overflows.
hsize_t element_count(const std::vector<hsize_t>& dims, const std::string& where);
/// "[2, 3]", for messages.
std::string dims_text(const std::vector<hsize_t>& dims);

/// One HDF5 identifier with the function that closes it; move-only, closed in the destructor
/// (errors there are swallowed: use close() where a failure must be seen).
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle();
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now; throws core::Error (via fail) when HDF5 reports a failure.
  void close(const std::string& what);

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// A property list (H5Pclose).
class PropertyList : public Handle {
 public:
  PropertyList() = default;
  /// cls: H5P_FILE_ACCESS, H5P_DATASET_CREATE, H5P_LINK_CREATE, ...
  explicit PropertyList(hid_t cls);
};

/// A dataspace (H5Sclose).
class Dataspace : public Handle {
 public:
  Dataspace() = default;
  explicit Dataspace(hid_t id) : Handle(id, &H5Sclose) {}
  /// A scalar (rank 0) dataspace.
  static Dataspace scalar();
  /// A simple dataspace with these extents (any may be 0); rank 0 gives a scalar.
  static Dataspace simple(const std::vector<hsize_t>& dims);
  /// The extents (empty for scalar; throws for null dataspaces).
  std::vector<hsize_t> dims() const;
};

/// A datatype owned by us (H5Tclose); predefined types are copied so every Datatype can be closed.
class Datatype : public Handle {
 public:
  Datatype() = default;
  explicit Datatype(hid_t id) : Handle(id, &H5Tclose) {}
  /// A copy of a predefined type (H5T_NATIVE_DOUBLE, H5T_IEEE_F32LE, ...).
  static Datatype copy_of(hid_t predefined);
  /// Variable-length, NUL-terminated UTF-8 string (what h5py writes for `str`; read from old files only).
  static Datatype utf8_string();
  /// Fixed-length UTF-8 string of `size` > 0 bytes, NUL-padded (what results files store).
  static Datatype utf8_fixed(std::size_t size);
  H5T_class_t type_class() const;
  bool is_variable_string() const;
};

/// An attribute (H5Aclose).
class Attribute : public Handle {
 public:
  Attribute() = default;
  explicit Attribute(hid_t id) : Handle(id, &H5Aclose) {}
};

/// A group or dataset, with the file name and object path that every error message names.
class Object : public Handle {
 public:
  Object() = default;
  Object(hid_t id, Closer closer, std::string file, std::string path)
      : Handle(id, closer), file_(std::move(file)), path_(std::move(path)) {}
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  /// "'<path>' in <file>", for messages.
  std::string where() const;
  /// Path of a child: "/a" + "b" -> "/a/b".
  std::string child_path(const std::string& name) const;

 private:
  std::string file_;
  std::string path_;
};

class Dataset;

/// A group (H5Gclose). Names are single link names (no '/').
class Group : public Object {
 public:
  Group() = default;
  Group(hid_t id, std::string file, std::string path)
      : Object(id, &H5Gclose, std::move(file), std::move(path)) {}
  /// Creates a child group; throws if the name exists.
  Group create_group(const std::string& name) const;
  /// Opens a child group; throws naming the path if it is missing or not a group.
  Group open_group(const std::string& name) const;
  /// Opens the child group, creating it when absent.
  Group require_group(const std::string& name) const;
  Dataset open_dataset(const std::string& name) const;
  /// Whether a link of this name exists.
  bool has(const std::string& name) const;
  /// Whether the child exists and is a group.
  bool has_group(const std::string& name) const;
  /// Unlinks a child (its space is not reclaimed: HDF5 1.10 keeps no free-space map by default).
  void remove(const std::string& name) const;
  /// Link names in ascending name order.
  std::vector<std::string> children() const;
};

/// A dataset (H5Dclose).
class Dataset : public Object {
 public:
  Dataset() = default;
  Dataset(hid_t id, std::string file, std::string path)
      : Object(id, &H5Dclose, std::move(file), std::move(path)) {}
  Dataspace space() const;
  Datatype type() const;
  /// Extents; empty for a scalar dataset.
  std::vector<hsize_t> dims() const;
};

/// An open file (H5Fclose).
class File : public Handle {
 public:
  File() = default;
  File(hid_t id, std::string path) : Handle(id, &H5Fclose), path_(std::move(path)) {}
  /// H5Fcreate with H5F_ACC_EXCL (or H5F_ACC_TRUNC when truncate) and this access list.
  static File create(const std::string& path, hid_t fapl, bool truncate = false);
  /// H5Fopen; flags H5F_ACC_RDONLY or H5F_ACC_RDWR.
  static File open(const std::string& path, unsigned flags, hid_t fapl);
  Group root() const;
  const std::string& path() const { return path_; }
  /// H5Fflush(H5F_SCOPE_GLOBAL).
  void flush() const;
  /// Closes now, reporting failures (everything still open in it is closed too: the access list
  /// uses H5F_CLOSE_STRONG).
  void close();

 private:
  std::string path_;
};

/// A creation list of class `cls` (H5P_FILE_CREATE, H5P_GROUP_CREATE, H5P_DATASET_CREATE) for results
/// files: no object timestamps (the same runs in the same order give the same bytes), and attributes
/// and links kept in the checksummed object header however many there are.
PropertyList creation_plist(hid_t cls);

/// Link creation list that marks names as UTF-8 and creates missing intermediate groups off.
PropertyList utf8_link_plist();

// ---- attributes (on a group or dataset) ----------------------------------------------------------

bool has_attr(const Object& obj, const std::string& name);
void delete_attr(const Object& obj, const std::string& name);
/// Attribute names in ascending name order.
std::vector<std::string> attr_names(const Object& obj);
/// The type class of an attribute (H5T_STRING, H5T_FLOAT, H5T_INTEGER, ...).
H5T_class_t attr_class(const Object& obj, const std::string& name);

/// Writes (replacing any existing attribute of that name). Strings are fixed-length UTF-8 (NUL-padded
/// to the longest value); HDF5 moves attributes over 64 KiB out of the object header by itself.
void write_attr(const Object& obj, const std::string& name, const std::string& value);
void write_attr(const Object& obj, const std::string& name, const char* value);
void write_attr(const Object& obj, const std::string& name, std::int64_t value);
void write_attr(const Object& obj, const std::string& name, double value);
void write_attr(const Object& obj, const std::string& name, const std::vector<std::int64_t>& value);
void write_attr(const Object& obj, const std::string& name, const std::vector<double>& value);
void write_attr(const Object& obj, const std::string& name, const std::vector<std::string>& value);

/// Readers: throw naming object and attribute when it is missing or of another kind. Scalars
/// accept a scalar or one-element attribute; strings accept fixed or variable length.
std::string read_attr_string(const Object& obj, const std::string& name);
std::int64_t read_attr_int64(const Object& obj, const std::string& name);
double read_attr_double(const Object& obj, const std::string& name);
std::vector<std::int64_t> read_attr_int64s(const Object& obj, const std::string& name);
std::vector<double> read_attr_doubles(const Object& obj, const std::string& name);
std::vector<std::string> read_attr_strings(const Object& obj, const std::string& name);

// ---- datasets -------------------------------------------------------------------------------------

/// Datasets of at least this many bytes are chunked, compressed (shuffle + deflate for numbers, deflate
/// for strings) and Fletcher-32 checksummed; smaller ones are compact (stored in the object header).
inline constexpr std::size_t kCompressBytes = 64 * 1024;

/// Writes a numeric dataset of shape dims (rank 0 = scalar) from row-major data; data.size() must
/// equal the product of dims. T: double, float, std::int64_t, std::uint8_t.
template <class T>
Dataset write_dataset(const Group& group, const std::string& name, const std::vector<T>& data,
                      const std::vector<hsize_t>& dims);
/// 1-D convenience overload: dims = {data.size()}.
template <class T>
Dataset write_dataset(const Group& group, const std::string& name, const std::vector<T>& data) {
  return write_dataset(group, name, data, {static_cast<hsize_t>(data.size())});
}
/// A scalar double dataset.
Dataset write_scalar(const Group& group, const std::string& name, double value);
/// A 1-D fixed-length UTF-8 string dataset, as long as its longest string (strings must not contain NUL).
Dataset write_strings(const Group& group, const std::string& name,
                      const std::vector<std::string>& values);

/// Reads a numeric dataset of any shape into row-major T; dims (if given) receives its extents.
/// Throws naming file and path when it is missing or not numeric of T's class (float or integer).
template <class T>
std::vector<T> read_dataset(const Group& group, const std::string& name,
                            std::vector<hsize_t>* dims = nullptr);
/// Reads a scalar (or one-element) double dataset.
double read_scalar(const Group& group, const std::string& name);
/// Reads a 1-D string dataset (variable or fixed length).
std::vector<std::string> read_strings(const Group& group, const std::string& name);

/// Chunk extents for a dataset of these dims and element size: whole trailing rows, about 1 MiB.
std::vector<hsize_t> chunk_dims(const std::vector<hsize_t>& dims, std::size_t element_size);

}  // namespace lorahub::io::h5
