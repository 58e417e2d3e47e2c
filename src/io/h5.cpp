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

}  // namespace

void silence_errors() {
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

void fail(const std::string& what) { throw core::Error(what + ": " + error_summary()); }

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

PropertyList creation_plist(hid_t cls) {
  PropertyList p(cls);
  // Objects without timestamps make two runs of the same job give identical files.
  check(H5Pset_obj_track_times(p.id(), 0), "H5Pset_obj_track_times");
  // Attributes and links stay in the object header, whose chunks carry checksums, rather than moving to
  // "dense" storage (a fractal heap and a B-tree) past 8 of them: HDF5 1.10 double-frees when reading a
  // damaged dense group fails (H5G__dense_iterate's error path releases a half-built link table).
  constexpr unsigned kCompactMax = 65535;  // the largest count the header's link and attribute info hold
  check(H5Pset_attr_phase_change(p.id(), kCompactMax, kCompactMax), "H5Pset_attr_phase_change");
  if (cls != H5P_DATASET_CREATE) {
    check(H5Pset_link_phase_change(p.id(), kCompactMax, kCompactMax), "H5Pset_link_phase_change");
  }
  return p;
}

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

Datatype Datatype::utf8_fixed(std::size_t size) {
  Datatype t = copy_of(H5T_C_S1);
  check(H5Tset_size(t.id(), size), "H5Tset_size");
  check(H5Tset_strpad(t.id(), H5T_STR_NULLPAD), "H5Tset_strpad(NULLPAD)");
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
  PropertyList gcpl = creation_plist(H5P_GROUP_CREATE);
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
  // The root group's object header would otherwise carry the creation time (1.10 format headers do).
  PropertyList fcpl = creation_plist(H5P_FILE_CREATE);
  hid_t id = H5Fcreate(path.c_str(), truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL, fcpl.id(), fapl);
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

}  // namespace lorahub::io::h5
