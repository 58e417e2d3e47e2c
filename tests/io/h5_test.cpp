#include "io/h5.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/journal_driver.h"
#include "io/run_fixtures.h"
#include "lorahub/core/error.h"
#include "support/errors.h"

namespace lorahub::io::h5 {
namespace {
using lorahub::test::error_text;

using test::TempDir;

File create_file(const std::string& path) {
  PropertyList fapl = detail::make_fapl({});
  return File::create(path, fapl.id());
}

File open_file(const std::string& path, unsigned flags = H5F_ACC_RDONLY) {
  PropertyList fapl = detail::make_fapl({});
  return File::open(path, flags, fapl.id());
}

TEST(H5, AttributesRoundTrip) {
  TempDir dir;
  std::string path = dir.file("a.h5");
  {
    File file = create_file(path);
    Group g = file.root().create_group("g");
    write_attr(g, "s", std::string("grüße ✓"));
    write_attr(g, "empty_s", std::string());
    write_attr(g, "i", std::int64_t{-42});
    write_attr(g, "d", std::nan(""));
    write_attr(g, "iv", std::vector<std::int64_t>{1, -2, 3});
    write_attr(g, "dv", std::vector<double>{0.5, -INFINITY});
    write_attr(g, "sv", std::vector<std::string>{"a", "", "日本"});
    write_attr(g, "empty_iv", std::vector<std::int64_t>{});
    write_attr(g, "empty_sv", std::vector<std::string>{});
    write_attr(g, "i", std::int64_t{7});  // replaces
    file.close();
  }
  File file = open_file(path);
  Group g = file.root().open_group("g");
  EXPECT_EQ(read_attr_string(g, "s"), "grüße ✓");
  EXPECT_EQ(read_attr_string(g, "empty_s"), "");
  EXPECT_EQ(read_attr_int64(g, "i"), 7);
  EXPECT_TRUE(std::isnan(read_attr_double(g, "d")));
  EXPECT_EQ(read_attr_int64s(g, "iv"), (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(read_attr_doubles(g, "dv"), (std::vector<double>{0.5, -INFINITY}));
  EXPECT_EQ(read_attr_strings(g, "sv"), (std::vector<std::string>{"a", "", "日本"}));
  EXPECT_TRUE(read_attr_int64s(g, "empty_iv").empty());
  EXPECT_TRUE(read_attr_strings(g, "empty_sv").empty());
  EXPECT_EQ(attr_class(g, "s"), H5T_STRING);
  EXPECT_EQ(attr_class(g, "d"), H5T_FLOAT);
  EXPECT_EQ(attr_names(g).size(), 9u);
  EXPECT_FALSE(has_attr(g, "nope"));

  std::string missing = error_text([&] { read_attr_string(g, "nope"); });
  EXPECT_NE(missing.find("'nope'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("'/g'"), std::string::npos) << missing;
  EXPECT_NE(missing.find(path), std::string::npos) << missing;
  std::string kind = error_text([&] { read_attr_int64(g, "s"); });
  EXPECT_NE(kind.find("string"), std::string::npos) << kind;
  EXPECT_NE(error_text([&] { read_attr_double(g, "iv"); }).find("expected float64"), std::string::npos);
}

TEST(H5, DatasetsRoundTrip) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  std::vector<double> d2 = {1, 2, 3, 4, 5, 6};
  std::vector<float> f1 = {1.5f, -0.0f, NAN};
  std::vector<std::int64_t> i1 = {INT64_MIN, 0, INT64_MAX};
  std::vector<std::uint8_t> u1 = {0, 1, 255};
  std::vector<std::string> s1 = {"α", "", "line\nbreak", std::string(5000, 'x')};
  {
    File file = create_file(path);
    Group root = file.root();
    write_dataset(root, "d2", d2, {2, 3});
    write_dataset(root, "f1", f1);
    write_dataset(root, "i1", i1);
    write_dataset(root, "u1", u1);
    write_strings(root, "s1", s1);
    write_dataset(root, "empty_d", std::vector<double>{});
    write_dataset(root, "empty_2d", std::vector<double>{}, {0, 7});
    write_strings(root, "empty_s", {});
    write_scalar(root, "scalar", -3.25);
    file.close();
  }
  File file = open_file(path);
  Group root = file.root();
  std::vector<hsize_t> dims;
  EXPECT_EQ(read_dataset<double>(root, "d2", &dims), d2);
  EXPECT_EQ(dims, (std::vector<hsize_t>{2, 3}));
  std::vector<float> f = read_dataset<float>(root, "f1");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_TRUE(std::signbit(f[1]));
  EXPECT_TRUE(std::isnan(f[2]));
  EXPECT_EQ(read_dataset<std::int64_t>(root, "i1"), i1);
  EXPECT_EQ(read_dataset<std::uint8_t>(root, "u1"), u1);
  EXPECT_EQ(read_strings(root, "s1"), s1);
  EXPECT_TRUE(read_dataset<double>(root, "empty_d", &dims).empty());
  EXPECT_EQ(dims, (std::vector<hsize_t>{0}));
  EXPECT_TRUE(read_dataset<double>(root, "empty_2d", &dims).empty());
  EXPECT_EQ(dims, (std::vector<hsize_t>{0, 7}));
  EXPECT_TRUE(read_strings(root, "empty_s").empty());
  EXPECT_EQ(read_scalar(root, "scalar"), -3.25);
  EXPECT_TRUE(read_dataset<double>(root, "scalar", &dims).size() == 1 && dims.empty());

  std::string wrong = error_text([&] { read_dataset<double>(root, "s1"); });
  EXPECT_NE(wrong.find("'/s1'"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("expected float64"), std::string::npos) << wrong;
  std::string missing = error_text([&] { read_dataset<float>(root, "nope"); });
  EXPECT_NE(missing.find("missing dataset '/nope'"), std::string::npos) << missing;
  EXPECT_NE(missing.find(path), std::string::npos) << missing;
  EXPECT_NE(error_text([&] { read_scalar(root, "d2"); }).find("expected a scalar"), std::string::npos);
}

// Every byte read back is checked: small datasets live in their (checksummed) object header, big ones in
// Fletcher-32-checksummed chunks, and strings are fixed-length (no unchecksummed global heap).
TEST(H5, BigDatasetsAreChunkedCompressedAndChecksummedSmallOnesCompact) {
  TempDir dir;
  std::string path = dir.file("c.h5");
  std::vector<float> big(64 * 1024);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 97) * 0.25f;
  std::vector<float> small(16, 1.0f);
  std::vector<std::string> long_texts(100, std::string(1000, 'q'));
  long_texts[3] = "short";
  {
    File file = create_file(path);
    write_dataset(file.root(), "big", big, {256, 256});
    write_dataset(file.root(), "small", small);
    write_strings(file.root(), "texts", long_texts);
    write_strings(file.root(), "few", {"a", "bc"});
    file.close();
  }
  File file = open_file(path);
  auto filters_of = [&](const std::string& name) {
    Dataset ds = file.root().open_dataset(name);
    hid_t id = H5Dget_create_plist(ds.id());
    std::vector<H5Z_filter_t> out;
    for (int i = 0; i < H5Pget_nfilters(id); ++i) {
      unsigned flags = 0;
      std::size_t n = 0;
      out.push_back(H5Pget_filter2(id, static_cast<unsigned>(i), &flags, &n, nullptr, 0, nullptr, nullptr));
    }
    H5Pclose(id);
    return out;
  };
  auto layout_of = [&](const std::string& name) {
    Dataset ds = file.root().open_dataset(name);
    hid_t id = H5Dget_create_plist(ds.id());
    H5D_layout_t layout = H5Pget_layout(id);
    H5Pclose(id);
    return layout;
  };
  EXPECT_EQ(layout_of("big"), H5D_CHUNKED);
  EXPECT_EQ(filters_of("big"), (std::vector<H5Z_filter_t>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32}));
  EXPECT_EQ(layout_of("texts"), H5D_CHUNKED);
  EXPECT_EQ(filters_of("texts"), (std::vector<H5Z_filter_t>{H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32}));
  EXPECT_EQ(layout_of("small"), H5D_COMPACT);
  EXPECT_EQ(layout_of("few"), H5D_COMPACT);
  Dataset ds = file.root().open_dataset("big");
  EXPECT_LT(H5Dget_storage_size(ds.id()), big.size() * sizeof(float) / 2);
  EXPECT_EQ(read_dataset<float>(file.root(), "big"), big);
  EXPECT_EQ(read_strings(file.root(), "texts"), long_texts);
  Datatype type = file.root().open_dataset("texts").type();
  EXPECT_FALSE(type.is_variable_string());
  EXPECT_EQ(H5Tget_size(type.id()), 1000u);  // as long as the longest string
  H5F_info2_t info;
  ASSERT_GE(H5Fget_info2(file.id(), &info), 0);
  EXPECT_EQ(info.super.version, 3u);  // the 1.10 format: checksummed superblock and metadata
}

TEST(H5, ChunkDimsKeepWholeRowsNearOneMiB) {
  EXPECT_EQ(chunk_dims({16, 1024}, 4), (std::vector<hsize_t>{16, 1024}));
  EXPECT_EQ(chunk_dims({4096, 1024}, 4), (std::vector<hsize_t>{256, 1024}));
  EXPECT_EQ(chunk_dims({10000000}, 8), (std::vector<hsize_t>{78125}));
  std::vector<hsize_t> c = chunk_dims({1, 1 << 22}, 8);
  EXPECT_EQ(c[0], 1u);
  EXPECT_LE(c[1] * 8, 1u << 20);
}

TEST(H5, GroupsAndErrors) {
  TempDir dir;
  std::string path = dir.file("g.h5");
  {
    File file = create_file(path);
    Group root = file.root();
    Group a = root.create_group("a");
    a.create_group("x");
    a.require_group("x");
    a.create_group("ÿ");
    write_dataset(a, "data", std::vector<double>{1});
    EXPECT_TRUE(a.has("data"));
    EXPECT_FALSE(a.has_group("data"));
    EXPECT_TRUE(a.has_group("x"));
    EXPECT_EQ(a.children(), (std::vector<std::string>{"data", "x", "ÿ"}));
    a.remove("x");
    EXPECT_FALSE(a.has("x"));
    std::string dup = error_text([&] { a.create_group("data"); });
    EXPECT_NE(dup.find("creating group '/a/data'"), std::string::npos) << dup;
    std::string not_group = error_text([&] { a.open_group("data"); });
    EXPECT_NE(not_group.find("missing group '/a/data'"), std::string::npos) << not_group;
    file.close();
  }
  std::string missing = dir.file("missing.h5");
  std::string open_error = error_text([&] { open_file(missing); });
  EXPECT_NE(open_error.find(missing), std::string::npos) << open_error;
  EXPECT_NE(open_error.find("No such file"), std::string::npos) << open_error;  // HDF5's own reason
  std::string nul = error_text([&] {
    File file = open_file(path, H5F_ACC_RDWR);
    write_strings(file.root(), "bad", {std::string("a\0b", 3)});
  });
  EXPECT_NE(nul.find("NUL"), std::string::npos) << nul;
}

}  // namespace
}  // namespace lorahub::io::h5
