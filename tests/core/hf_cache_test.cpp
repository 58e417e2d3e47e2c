// Offline hub-cache resolution against fake caches laid out as huggingface_hub writes them.
#include "lorahub/core/hf_cache.h"

#include <string>

#include <gtest/gtest.h>

#include "support/hub_cache.h"

namespace lorahub::core {
namespace {

using test::error_text;
using test::fake_hash;
using test::FakeHubCache;
using test::ScopedEnv;
using test::TempDir;
namespace fs = std::filesystem;

const std::map<std::string, std::string> kModelFiles = {
    {"config.json", "{\"model_type\": \"t5\"}"}, {"model.safetensors", "weights v0"}, {"spiece.model", "spm"}};

TEST(ParseHubId, AcceptsRepoIdsWithOptionalRevision) {
  auto id = parse_hub_id("google/flan-t5-large");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "google/flan-t5-large");
  EXPECT_EQ(id->revision, "");
  id = parse_hub_id("t5-small");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "t5-small");
  id = parse_hub_id("lorahub/flan_t5_large-boolean_expressions@v1.0");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "lorahub/flan_t5_large-boolean_expressions");
  EXPECT_EQ(id->revision, "v1.0");
  EXPECT_EQ(to_string(*id), "lorahub/flan_t5_large-boolean_expressions@v1.0");
  id = parse_hub_id("org/name@refs/pr/1");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->revision, "refs/pr/1");
  EXPECT_TRUE(parse_hub_id("Foo-BAR_foo.bar123/x"));
  EXPECT_TRUE(parse_hub_id("_private/_x_"));
  EXPECT_TRUE(parse_hub_id("org/" + std::string(96, 'n')));
}

TEST(ParseHubId, RejectsWhatHuggingFaceHubRejects) {
  for (const std::string text :
       {"", "a/b/c", "/abs/path", "./x", "../x", "x/", "/x", "a--b/c", "a/b--c", "a/b..c", "foo.git", "org/foo.git",
        "-x", "x-", ".x", "org/.x", "org/x.", "org/n ame", "caf\xc3\xa9", "org/name@", "org/name@../x",
        "org/name@/main", "org/name@ma in", "a\\b"}) {
    EXPECT_FALSE(parse_hub_id(text)) << "'" << text << "'";
  }
  EXPECT_FALSE(parse_hub_id("org/" + std::string(97, 'n')));
}

TEST(HfHubCacheDir, FollowsHuggingFaceHubPrecedence) {
  ScopedEnv env;
  env.set("HOME", "/home/u");
  EXPECT_EQ(hf_hub_cache_dir(), "/home/u/.cache/huggingface/hub");
  env.set("XDG_CACHE_HOME", "/xdg");
  EXPECT_EQ(hf_hub_cache_dir(), "/xdg/huggingface/hub");
  env.set("HF_HOME", "/hf-home");
  EXPECT_EQ(hf_hub_cache_dir(), "/hf-home/hub");
  env.set("HUGGINGFACE_HUB_CACHE", "/legacy");
  EXPECT_EQ(hf_hub_cache_dir(), "/legacy");
  env.set("HF_HUB_CACHE", "/new");
  EXPECT_EQ(hf_hub_cache_dir(), "/new");
  // An empty value counts as unset.
  env.set("HF_HUB_CACHE", "");
  EXPECT_EQ(hf_hub_cache_dir(), "/legacy");
}

TEST(HfHubCacheDir, ExpandsHomeAndVariables) {
  ScopedEnv env;
  env.set("HOME", "/home/u");
  env.set("HF_HOME", "~/hf");
  EXPECT_EQ(hf_hub_cache_dir(), "/home/u/hf/hub");
  env.set("SCRATCH_FOR_TEST", "/scratch/me");
  env.set("HF_HUB_CACHE", "$SCRATCH_FOR_TEST/hub-${SCRATCH_FOR_TEST}-$UNSET_FOR_TEST");
  EXPECT_EQ(hf_hub_cache_dir(), "/scratch/me/hub-/scratch/me-$UNSET_FOR_TEST");
  env.unset("SCRATCH_FOR_TEST");
}

class HubCache : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.set("HOME", (tmp_.path() / "home").string());
    env_.set("HF_HUB_CACHE", cache_.root().string());
    main_ = fake_hash("main commit");
    old_ = fake_hash("old commit");
    cache_.add_snapshot("google/flan-t5-small", main_, kModelFiles);
    cache_.add_snapshot("google/flan-t5-small", old_,
                        {{"config.json", "{\"model_type\": \"t5\", \"old\": 1}"}, {"pytorch_model.bin", "pickle"}});
    cache_.set_ref("google/flan-t5-small", "main", main_);
    cache_.set_ref("google/flan-t5-small", "v1", old_);
    cache_.set_ref("google/flan-t5-small", "refs/pr/3", old_);
  }
  std::string snapshot(const std::string& commit) const {
    return (cache_.repo_dir("google/flan-t5-small") / "snapshots" / commit).string();
  }

  ScopedEnv env_;
  TempDir tmp_;
  FakeHubCache cache_{tmp_.path() / "cache"};
  std::string main_, old_;
};

TEST_F(HubCache, ResolvesMainByDefault) {
  auto r = resolve_source("google/flan-t5-small", "model.path");
  EXPECT_EQ(r.path, snapshot(main_));
  EXPECT_EQ(r.snapshot_hash, main_);
  ASSERT_TRUE(r.hub);
  EXPECT_EQ(r.hub->repo_id, "google/flan-t5-small");
  EXPECT_EQ(r.cache_dir, cache_.root().string());
  EXPECT_EQ(describe_source(r), "google/flan-t5-small@main -> " + snapshot(main_));
  EXPECT_EQ(test::read_file(fs::path(r.path) / "model.safetensors"), "weights v0");  // through the blob link
}

TEST_F(HubCache, ResolvesBranchTagNestedRefAndCommitHash) {
  EXPECT_EQ(resolve_source("google/flan-t5-small@main", "x").path, snapshot(main_));
  EXPECT_EQ(resolve_source("google/flan-t5-small@v1", "x").path, snapshot(old_));
  EXPECT_EQ(resolve_source("google/flan-t5-small@refs/pr/3", "x").path, snapshot(old_));
  // A commit hash has no ref file: it names the snapshot folder itself.
  auto r = resolve_source("google/flan-t5-small@" + old_, "x");
  EXPECT_EQ(r.path, snapshot(old_));
  EXPECT_EQ(r.snapshot_hash, old_);
  EXPECT_EQ(describe_source(r), "google/flan-t5-small@" + old_ + " -> " + snapshot(old_));
}

TEST_F(HubCache, FindsTheCacheThroughHfHome) {
  env_.unset("HF_HUB_CACHE");
  env_.set("HF_HOME", (tmp_.path() / "hf").string());
  FakeHubCache other(tmp_.path() / "hf" / "hub");
  other.add_snapshot("org/only-here", main_, kModelFiles);
  other.set_ref("org/only-here", "main", main_);
  EXPECT_EQ(resolve_source("org/only-here", "x").path, (other.repo_dir("org/only-here") / "snapshots" / main_).string());
  EXPECT_NE(error_text([] { resolve_source("google/flan-t5-small", "x"); }), "");  // not in that cache
}

TEST_F(HubCache, MissingIdNamesTheCacheAndTheDownloadCommand) {
  auto e = error_text([] { resolve_source("google/flan-t5-xxl@v2", "model.path"); });
  EXPECT_NE(e.find("model.path: "), std::string::npos) << e;
  EXPECT_NE(e.find("google/flan-t5-xxl is not in the Hugging Face cache " + cache_.root().string()), std::string::npos) << e;
  EXPECT_NE(e.find("models--google--flan-t5-xxl"), std::string::npos) << e;
  EXPECT_NE(e.find("`huggingface-cli download google/flan-t5-xxl --revision v2`"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  e = error_text([] { resolve_source("org/x", "--adapter"); });
  EXPECT_NE(e.find("`huggingface-cli download org/x`"), std::string::npos) << e;
}

TEST_F(HubCache, MissingCacheFolderIsSaid) {
  env_.set("HF_HUB_CACHE", (tmp_.path() / "nowhere").string());
  auto e = error_text([] { resolve_source("google/flan-t5-small", "model.path"); });
  EXPECT_NE(e.find("(no such folder)"), std::string::npos) << e;
}

TEST_F(HubCache, MissingRevisionListsTheRefs) {
  auto e = error_text([] { resolve_source("google/flan-t5-small@v9", "model.path"); });
  EXPECT_NE(e.find("revision 'v9' of google/flan-t5-small is not in the Hugging Face cache"), std::string::npos) << e;
  EXPECT_NE(e.find("refs: main, refs/pr/3, v1; 2 snapshots"), std::string::npos) << e;
  EXPECT_NE(e.find("`huggingface-cli download google/flan-t5-small --revision v9`"), std::string::npos) << e;
  // A commit hash that is not there is a missing revision too.
  e = error_text([] { resolve_source("google/flan-t5-small@" + fake_hash("elsewhere"), "x"); });
  EXPECT_NE(e.find("revision '" + fake_hash("elsewhere") + "'"), std::string::npos) << e;
}

TEST_F(HubCache, RefToMissingSnapshotIsADamagedCache) {
  fs::remove_all(snapshot(old_));
  auto e = error_text([] { resolve_source("google/flan-t5-small@v1", "model.path"); });
  EXPECT_NE(e.find("refs/v1"), std::string::npos) << e;
  EXPECT_NE(e.find("points at commit " + old_ + " but snapshots/" + old_ + " is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("--revision v1`"), std::string::npos) << e;
}

TEST_F(HubCache, BrokenLinkIsAnIncompleteDownload) {
  cache_.remove_blob("google/flan-t5-small", main_, "model.safetensors");
  auto e = error_text([] { resolve_source("google/flan-t5-small", "model.path"); });
  EXPECT_NE(e.find("model.path: google/flan-t5-small is incompletely downloaded"), std::string::npos) << e;
  EXPECT_NE(e.find("model.safetensors in " + snapshot(main_)), std::string::npos) << e;
  EXPECT_NE(e.find("links to the missing blob ../../blobs/" + fake_hash("weights v0")), std::string::npos) << e;
  EXPECT_NE(e.find("`huggingface-cli download google/flan-t5-small`"), std::string::npos) << e;
  // The other revision's snapshot is intact.
  EXPECT_EQ(resolve_source("google/flan-t5-small@v1", "x").path, snapshot(old_));
}

TEST_F(HubCache, AnExistingPathWinsOverAnIdShapedText) {
  const fs::path base = tmp_.path() / "work";
  fs::create_directories(base / "google" / "flan-t5-small");
  auto r = resolve_source("google/flan-t5-small", "model.path", base.string());
  EXPECT_EQ(r.path, (base / "google" / "flan-t5-small").string());
  EXPECT_FALSE(r.hub);
  EXPECT_EQ(describe_source(r), r.path);
  const std::string absolute = (base / "google" / "flan-t5-small").string();
  EXPECT_FALSE(resolve_source(absolute, "model.path").hub);
  // Without that folder the same text is the hub id.
  EXPECT_TRUE(resolve_source("google/flan-t5-small", "model.path", tmp_.path().string()).hub);
}

TEST_F(HubCache, NeitherPathNorId) {
  auto e = error_text([&] { resolve_source("no/such/folder", "model.path", tmp_.path().string()); });
  EXPECT_NE(e.find("model.path: 'no/such/folder' does not exist (relative to " + tmp_.path().string() + ")"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("is not a Hugging Face id"), std::string::npos) << e;
}

TEST_F(HubCache, ShardedSafetensorsModelFolder) {
  const std::string commit = fake_hash("sharded");
  const std::string index =
      "{\"metadata\": {}, \"weight_map\": {\"shared.weight\": \"model-00001-of-00002.safetensors\","
      " \"lm_head.weight\": \"model-00002-of-00002.safetensors\","
      " \"encoder.final_layer_norm.weight\": \"model-00001-of-00002.safetensors\"}}";
  cache_.add_snapshot("google/flan-t5-xl", commit,
                      {{"config.json", "{}"},
                       {"model.safetensors.index.json", index},
                       {"model-00001-of-00002.safetensors", "shard 1"},
                       {"model-00002-of-00002.safetensors", "shard 2"},
                       {"spiece.model", "spm xl"}});
  cache_.set_ref("google/flan-t5-xl", "main", commit);
  auto r = resolve_source("google/flan-t5-xl", "model.path");
  auto files = check_model_folder(r, "model.path");
  const fs::path dir(r.path);
  EXPECT_EQ(files.config, (dir / "config.json").string());
  EXPECT_EQ(files.index, (dir / "model.safetensors.index.json").string());
  ASSERT_EQ(files.weights.size(), 2u);
  EXPECT_EQ(files.weights[0], (dir / "model-00001-of-00002.safetensors").string());
  EXPECT_EQ(files.weights[1], (dir / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(files.tokenizer, (dir / "spiece.model").string());
  EXPECT_EQ(test::read_file(files.weights[1]), "shard 2");

  // A shard that never arrived, and a shard whose blob went away.
  fs::remove(dir / "model-00002-of-00002.safetensors");
  auto e = error_text([&] { check_model_folder(r, "model.path"); });
  EXPECT_NE(e.find("model-00002-of-00002.safetensors is missing; the download is incomplete: download it with "
                   "`huggingface-cli download google/flan-t5-xl`"),
            std::string::npos)
      << e;
  cache_.add_snapshot("google/flan-t5-xl", commit, {{"model-00002-of-00002.safetensors", "shard 2"}});
  cache_.remove_blob("google/flan-t5-xl", commit, "model-00001-of-00002.safetensors");
  e = error_text([&] { check_model_folder(r, "model.path"); });
  EXPECT_NE(e.find("model-00001-of-00002.safetensors links to the missing blob"), std::string::npos) << e;
}

TEST_F(HubCache, ModelFolderFormsAndGaps) {
  auto main = resolve_source("google/flan-t5-small", "m");
  auto files = check_model_folder(main, "m");
  ASSERT_EQ(files.weights.size(), 1u);
  EXPECT_EQ(fs::path(files.weights[0]).filename(), "model.safetensors");
  EXPECT_EQ(files.index, "");
  auto old = resolve_source("google/flan-t5-small@v1", "m");
  files = check_model_folder(old, "m");
  ASSERT_EQ(files.weights.size(), 1u);
  EXPECT_EQ(fs::path(files.weights[0]).filename(), "pytorch_model.bin");
  EXPECT_EQ(files.tokenizer, "");  // optional: the tokenizer may be configured elsewhere

  // A broken model.safetensors link is an error, not a silent fall-back to other weights.
  cache_.add_snapshot("google/flan-t5-small", old_, {{"model.safetensors", "weights v1"}});
  cache_.remove_blob("google/flan-t5-small", old_, "model.safetensors");
  auto e = error_text([&] { check_model_folder(old, "m"); });
  EXPECT_NE(e.find("m: google/flan-t5-small@v1 (" + snapshot(old_) + "): model.safetensors links to the missing blob"),
            std::string::npos)
      << e;

  TempDir plain;
  test::write_file(plain.path() / "config.json", "{}");
  e = error_text([&] { check_model_folder(ResolvedSource{plain.path().string(), std::nullopt, "", ""}, "model.path"); });
  EXPECT_NE(e.find("model.path: " + plain.path().string() + ": no model.safetensors"), std::string::npos) << e;
  EXPECT_EQ(e.find("huggingface-cli"), std::string::npos) << e;  // a plain folder gets no download hint
  fs::remove(plain.path() / "config.json");
  e = error_text([&] { check_model_folder(ResolvedSource{plain.path().string(), std::nullopt, "", ""}, "model.path"); });
  EXPECT_NE(e.find("config.json is missing"), std::string::npos) << e;
}

TEST(HubIdOfSnapshotPath, NamesResolvedFoldersAgain) {
  auto id = hub_id_of_snapshot_path("/root/.cache/huggingface/hub/models--google--flan-t5-large/snapshots/abc123/");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "google/flan-t5-large");
  EXPECT_EQ(id->revision, "abc123");
  id = hub_id_of_snapshot_path("hub/models--t5-small/snapshots/" + fake_hash("x") + "/adapter_a");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "t5-small");
  EXPECT_EQ(id->revision, fake_hash("x"));
  EXPECT_FALSE(hub_id_of_snapshot_path("/models/flan-t5-large"));
  EXPECT_FALSE(hub_id_of_snapshot_path("/c/models--google--flan-t5-large/snapshots"));
  EXPECT_FALSE(hub_id_of_snapshot_path("/c/models--a--b--c/snapshots/abc"));
  EXPECT_FALSE(hub_id_of_snapshot_path("/c/datasets--a--b/snapshots/abc"));
}

TEST(HubDownloadCommand, AddsTheRevisionOnlyWhenAsked) {
  EXPECT_EQ(hub_download_command(HubId{"google/flan-t5-large", ""}), "huggingface-cli download google/flan-t5-large");
  EXPECT_EQ(hub_download_command(HubId{"google/flan-t5-large", "v1"}),
            "huggingface-cli download google/flan-t5-large --revision v1");
  EXPECT_EQ(hub_repo_cache_dir("/c", "google/flan-t5-large"), "/c/models--google--flan-t5-large");
  EXPECT_EQ(hub_repo_cache_dir("/c", "t5-small"), "/c/models--t5-small");
}

}  // namespace
}  // namespace lorahub::core
