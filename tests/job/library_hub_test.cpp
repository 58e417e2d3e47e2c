// Library listings that mix folders, list files and hub ids resolved through a fake hub cache.
#include "lorahub/job/library.h"

#include <string>

#include <gtest/gtest.h>

#include "support/hub_cache.h"

namespace lorahub::job {
namespace {


using core::test::error_text;
using core::test::fake_hash;
using core::test::FakeHubCache;
using core::test::ScopedEnv;
using core::test::TempDir;
using core::test::write_file;
namespace fs = std::filesystem;

std::map<std::string, std::string> adapter_files(const std::string& tag) {
  return {{"adapter_config.json", "{\"r\": 2, \"lora_alpha\": 4, \"tag\": \"" + tag + "\"}"},
          {"adapter_model.safetensors", "weights of " + tag}};
}

void make_adapter(const fs::path& dir, const std::string& tag) {
  for (const auto& [name, bytes] : adapter_files(tag)) write_file(dir / name, bytes);
}

class Library : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.set("HOME", (tmp_.path() / "home").string());
    env_.set("HF_HUB_CACHE", cache_.root().string());
    for (const std::string name : {"beta", "gamma"}) {
      cache_.add_snapshot("lorahub/" + name, fake_hash(name), adapter_files(name));
      cache_.set_ref("lorahub/" + name, "main", fake_hash(name));
    }
    cache_.add_snapshot("lorahub/gamma", fake_hash("gamma v1"), adapter_files("gamma v1"));
    cache_.set_ref("lorahub/gamma", "v1", fake_hash("gamma v1"));
  }
  fs::path snapshot(const std::string& repo, const std::string& commit) const {
    return cache_.repo_dir(repo) / "snapshots" / commit;
  }
  fs::path list(const std::string& text) const {
    write_file(tmp_.path() / "lib" / "modules.txt", text);
    return tmp_.path() / "lib" / "modules.txt";
  }

  ScopedEnv env_;
  TempDir tmp_;
  FakeHubCache cache_{tmp_.path() / "cache"};
};

TEST_F(Library, ListFileMixesPathsAndHubIds) {
  make_adapter(tmp_.path() / "lib" / "local" / "alpha", "alpha");
  make_adapter(tmp_.path() / "elsewhere" / "delta", "delta");
  auto file = list("# modules in sampling order\nlocal/alpha\nlorahub/beta   # from the cache\n\n" +
                   (tmp_.path() / "elsewhere" / "delta").string() + "/\nlorahub/gamma@v1\n");
  auto entries = library_modules(file.string());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "alpha");
  EXPECT_EQ(entries[0].folder, (tmp_.path() / "lib" / "local" / "alpha").string());
  EXPECT_EQ(entries[0].id, "");
  EXPECT_EQ(entries[0].origin, file.string() + ":2");
  EXPECT_EQ(entries[1].name, "beta");
  EXPECT_EQ(entries[1].folder, snapshot("lorahub/beta", fake_hash("beta")).string());
  EXPECT_EQ(entries[1].id, "lorahub/beta");
  EXPECT_EQ(entries[1].origin, file.string() + ":3");
  EXPECT_EQ(entries[2].name, "delta");  // a trailing slash does not empty the name
  EXPECT_EQ(entries[3].name, "gamma");
  EXPECT_EQ(entries[3].folder, snapshot("lorahub/gamma", fake_hash("gamma v1")).string());
  EXPECT_EQ(entries[3].id, "lorahub/gamma@v1");
  // The original interface gives the same folders in the same order.
  auto folders = library_module_folders(file.string());
  ASSERT_EQ(folders.size(), entries.size());
  for (std::size_t i = 0; i < folders.size(); ++i) EXPECT_EQ(folders[i], entries[i].folder);
}

TEST_F(Library, LocalDirDownloadAndCacheGiveTheSameNames) {
  // `huggingface-cli download lorahub/beta --local-dir <dir>/beta` next to the cache's copy of gamma.
  make_adapter(tmp_.path() / "downloads" / "beta", "beta");
  make_adapter(tmp_.path() / "downloads" / "gamma", "gamma");
  auto from_dirs = library_modules((tmp_.path() / "downloads").string());
  auto from_cache = library_modules(list("lorahub/beta\nlorahub/gamma\n").string());
  ASSERT_EQ(from_dirs.size(), 2u);
  ASSERT_EQ(from_cache.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(from_dirs[i].name, from_cache[i].name);
  EXPECT_EQ(from_cache[0].name, "beta");
}

TEST_F(Library, SourceItselfMayBeAHubId) {
  auto entries = library_modules("lorahub/gamma@v1");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "gamma");
  EXPECT_EQ(entries[0].folder, snapshot("lorahub/gamma", fake_hash("gamma v1")).string());
  EXPECT_EQ(entries[0].id, "lorahub/gamma@v1");
  EXPECT_EQ(library_module_folders("lorahub/beta"), std::vector<std::string>{snapshot("lorahub/beta", fake_hash("beta")).string()});

  // A repository that holds a library: its adapter subfolders, by subfolder name.
  std::map<std::string, std::string> lib;
  for (const auto& [name, bytes] : adapter_files("one")) lib["one/" + name] = bytes;
  for (const auto& [name, bytes] : adapter_files("two")) lib["two/" + name] = bytes;
  lib["README.md"] = "a library";
  cache_.add_snapshot("lorahub/library", fake_hash("library"), lib);
  cache_.set_ref("lorahub/library", "main", fake_hash("library"));
  entries = library_modules("lorahub/library");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "one");
  EXPECT_EQ(entries[1].name, "two");
  EXPECT_EQ(entries[1].folder, (snapshot("lorahub/library", fake_hash("library")) / "two").string());
}

TEST_F(Library, DuplicateModuleNamesNameBothLines) {
  make_adapter(tmp_.path() / "lib" / "mine" / "beta", "my beta");
  auto file = list("mine/beta\nlorahub/gamma\nlorahub/beta\n");
  auto e = error_text([&] { library_modules(file.string()); });
  EXPECT_NE(e.find("module name 'beta' is given twice, by " + file.string() + ":1 ('" +
                   (tmp_.path() / "lib" / "mine" / "beta").string() + "') and " + file.string() +
                   ":3 ('lorahub/beta')"),
            std::string::npos)
      << e;
}

TEST_F(Library, ListLineNotInTheCacheSaysHowToDownload) {
  auto file = list("lorahub/beta\nlorahub/missing@v2\n");
  auto e = error_text([&] { library_modules(file.string()); });
  EXPECT_NE(e.find(file.string() + ":2: 'lorahub/missing@v2' is not an existing path (relative to " +
                   (tmp_.path() / "lib").string() + ")"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("`huggingface-cli download lorahub/missing --revision v2`"), std::string::npos) << e;
  // A line that is not id-shaped keeps the original message.
  file = list("no/such/adapter\n");
  e = error_text([&] { library_modules(file.string()); });
  EXPECT_NE(e.find(file.string() + ":1: 'no/such/adapter' is not an adapter folder"), std::string::npos) << e;
}

TEST_F(Library, AnExistingPathInAListWinsOverTheCache) {
  make_adapter(tmp_.path() / "lib" / "lorahub" / "beta", "local beta");
  auto entries = library_modules(list("lorahub/beta\n").string());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].folder, (tmp_.path() / "lib" / "lorahub" / "beta").string());
  EXPECT_EQ(entries[0].id, "");
  EXPECT_EQ(entries[0].name, "beta");
}

TEST_F(Library, HubSnapshotThatIsNoAdapter) {
  cache_.add_snapshot("google/flan-t5-small", fake_hash("model"), {{"config.json", "{}"}});
  cache_.set_ref("google/flan-t5-small", "main", fake_hash("model"));
  auto e = error_text([&] { library_modules(list("google/flan-t5-small\n").string()); });
  EXPECT_NE(e.find(":1: google/flan-t5-small@main -> "), std::string::npos) << e;
  EXPECT_NE(e.find("has no adapter_config.json"), std::string::npos) << e;
  e = error_text([&] { library_modules("google/flan-t5-small"); });
  EXPECT_NE(e.find("no adapter_config.json in the snapshot"), std::string::npos) << e;
}

TEST_F(Library, MissingSourceThatIsNoId) {
  auto e = error_text([&] { library_modules((tmp_.path() / "none" / "x").string()); });
  EXPECT_NE(e.find("LoRA library not found"), std::string::npos) << e;
  e = error_text([&] { library_modules("lorahub/absent"); });
  EXPECT_NE(e.find("LoRA library: 'lorahub/absent' is not an existing path"), std::string::npos) << e;
  EXPECT_NE(e.find("`huggingface-cli download lorahub/absent`"), std::string::npos) << e;
}

}  // namespace
}  // namespace lorahub::job
