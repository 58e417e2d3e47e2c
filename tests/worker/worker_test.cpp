// LoraHub learning on one process: objective, batching, padding, the worker and run driver, the stored result.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/distributed/run.h"
#include "lorahub/job/config.h"
#include "lorahub/job/library.h"
#include "lorahub/job/plan.h"
#include "lorahub/model/batch.h"
#include "lorahub/search/job_driver.h"
#include "lorahub/worker/answers.h"
#include "lorahub/worker/fitness.h"
#include "lorahub/worker/worker.h"
#include "lorahub/io/result_store.h"
#include "lorahub/lora/library.h"
#include "support/hub_cache.h"
#include "toy_world.h"

namespace fs = std::filesystem;
namespace job = lorahub::job;
namespace worker = lorahub::worker;

namespace {

class HubToy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = new toy::World(toy::make_world("hub")); }
  static void TearDownTestSuite() {
    fs::remove_all(world_->root);
    delete world_;
  }
  job::JobConfig config(const std::string& out_name) {
    job::JobConfig c;
    c.model.path = world_->model_dir.string();
    c.library.path = world_->library_dir.string();
    c.data.tasks = {job::TaskSource{"last_word", "", world_->train.string(), world_->test.string(), ""}};
    c.library.modules = 3;
    c.run.seeds = {1};
    c.lorahub.optimizer.budget = 12;
    c.eval.max_new_tokens = 6;
    c.output.path = (world_->root / out_name).string();
    c.source = "test";
    return c;
  }
  static toy::World* world_;
};
toy::World* HubToy::world_ = nullptr;

std::vector<lorahub::data::Example> examples(const fs::path& p) { return lorahub::data::load_examples(p.string()); }

TEST_F(HubToy, ObjectiveBatchedEqualsSeparateAndZeroIsBase) {
  auto c = config("unused.h5");
  auto engine = worker::Engine::load(c, torch::kCPU);
  auto train = examples(world_->train);
  train.resize(5);
  worker::FitnessEvaluator fit(*engine.model, *engine.stack, {2, 0, 3}, train, *engine.tokenizer, 0.05, 0);
  std::vector<std::vector<double>> cands = {{0.0, 0.0, 0.0}, {0.7, -0.3, 1.1}, {-1.5, 1.5, 0.2}, {0.1, 0.9, -0.4}};
  auto batched = fit.evaluate(cands);
  for (std::size_t i = 0; i < cands.size(); ++i) {
    auto one = fit.evaluate({cands[i]});
    EXPECT_NEAR(batched[i], one[0], 1e-5 * std::abs(one[0])) << "candidate " << i;
  }
  // w = 0: the base model's HF mean loss over the batch, divided by the number of examples.
  c10::InferenceMode g;
  std::vector<std::vector<std::int64_t>> in, lab;
  for (const auto& e : train) {
    in.push_back(engine.tokenizer->encode(e.input));
    lab.push_back(engine.tokenizer->encode(e.target));
  }
  torch::Tensor mask;
  auto ids = lorahub::model::pad_sequences(in, 0, &mask);
  auto labels = lorahub::model::pad_sequences(lab, -100);
  auto out = engine.model->forward(ids, mask, lorahub::model::shift_right(labels, 0, 0));
  double base = lorahub::model::seq2seq_loss(out.logits, labels).loss.item<double>() / 5.0;
  EXPECT_NEAR(batched[0], base, 1e-6);
  // The l1 term: 0.05 · mean|w|.
  EXPECT_NEAR(batched[1] - fit.last_cross_entropy()[1], 0.05 * (0.7 + 0.3 + 1.1) / 3, 1e-12);
  // Batches of 2 sum per-batch means (the reference's quirk), which differs from one batch.
  worker::FitnessEvaluator fit2(*engine.model, *engine.stack, {2, 0, 3}, train, *engine.tokenizer, 0.05, 2);
  EXPECT_GT(std::abs(fit2.evaluate({cands[1]})[0] - batched[1]), 1e-4);
}

TEST_F(HubToy, TokenIdConstructorMatchesTokenizerConstructor) {
  auto c = config("unused.h5");
  auto engine = worker::Engine::load(c, torch::kCPU);
  auto train = examples(world_->train);
  train.resize(5);
  std::vector<std::vector<std::int64_t>> in, tgt;
  for (const auto& e : train) {
    in.push_back(engine.tokenizer->encode(e.input));
    tgt.push_back(engine.tokenizer->encode(e.target));
  }
  std::vector<std::vector<double>> cands = {{0.0, 0.0, 0.0}, {0.7, -0.3, 1.1}, {-1.5, 1.5, 0.2}};
  for (std::int64_t batch : {0, 2}) {
    worker::FitnessEvaluator by_text(*engine.model, *engine.stack, {2, 0, 3}, train, *engine.tokenizer, 0.05, batch);
    worker::FitnessEvaluator by_ids(*engine.model, *engine.stack, {2, 0, 3}, in, tgt, 0.05, batch);
    EXPECT_EQ(by_ids.num_examples(), 5u);
    auto a = by_text.evaluate(cands);
    auto b = by_ids.evaluate(cands);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "batch " << batch << " candidate " << i;
  }
  auto bad = in;
  bad[1].push_back(engine.model->config().vocab_size);
  EXPECT_THROW(worker::FitnessEvaluator(*engine.model, *engine.stack, {0}, bad, tgt, 0.05, 0), lorahub::core::Error);
  auto short_targets = tgt;
  short_targets.pop_back();
  EXPECT_THROW(worker::FitnessEvaluator(*engine.model, *engine.stack, {0}, in, short_targets, 0.05, 0),
               lorahub::core::Error);
  auto empty = tgt;
  empty[0].clear();
  EXPECT_THROW(worker::FitnessEvaluator(*engine.model, *engine.stack, {0}, in, empty, 0.05, 0), lorahub::core::Error);
}

TEST_F(HubToy, PaddingNeverChangesResults) {
  auto c = config("unused.h5");
  auto engine = worker::Engine::load(c, torch::kCPU);
  lorahub::lora::ScopedAdapters scope(*engine.model);
  lorahub::lora::apply_unmerged(*engine.model, *engine.stack, {{0.5, -0.5, 1.0, 0.2}}, 0);
  c10::InferenceMode g;
  auto tok = *engine.tokenizer;
  std::vector<std::int64_t> src = tok.encode("Which word is last? cat dog fox");
  std::vector<std::int64_t> tgt = tok.encode("fox");
  auto run = [&](std::size_t extra_src, std::size_t extra_tgt) {
    auto s = src;
    s.resize(src.size() + extra_src, 0);
    std::vector<std::int64_t> m(src.size(), 1);
    m.resize(s.size(), 0);
    auto t = tgt;
    t.resize(tgt.size() + extra_tgt, -100);
    auto ids = torch::tensor(s).unsqueeze(0);
    auto mask = torch::tensor(m).unsqueeze(0);
    auto labels = torch::tensor(t).unsqueeze(0);
    auto out = engine.model->forward(ids, mask, lorahub::model::shift_right(labels, 0, 0));
    return lorahub::model::seq2seq_loss(out.logits, labels);
  };
  auto plain = run(0, 0);
  auto padded = run(9, 4);
  EXPECT_NEAR(plain.loss.item<double>(), padded.loss.item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(plain.token_loss, padded.token_loss.narrow(1, 0, plain.token_loss.size(1)), 1e-6, 1e-6));
  // Greedy answers do not depend on the batch's padding either.
  auto alone = worker::generate_answers(*engine.model, tok, {"Which word is last? cat dog fox"}, 6, 1);
  auto with_long = worker::generate_answers(
      *engine.model, tok, {"Which word is last? cat dog fox", "Which word is last? a b c d e f g h i j k l m n o p"}, 6, 2);
  EXPECT_EQ(alone[0], with_long[0]);
}

TEST_F(HubToy, LearnWritesCompleteRunAndExportLoads) {
  auto c = config("learn.h5");
  auto names = job::library_module_names(c.library.path);
  ASSERT_EQ(names, world_->module_names);
  auto runs = job::expand_job(c, names);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].train.size(), 5u);
  EXPECT_EQ(runs[0].modules.size(), 3u);
  auto engine = worker::Engine::load(c, torch::kCPU);
  worker::Worker handler(engine, runs, c);
  lorahub::io::ResultStore store(c.output.path, lorahub::io::ResultStore::Mode::kCreate);
  std::vector<lorahub::io::RunRecord> written;
  lorahub::search::JobDriver driver(runs, c, [&](const lorahub::io::RunRecord& r) {
    store.write_run(r);
    written.push_back(r);
  });
  lorahub::distributed::run_serial(driver, [&](const lorahub::core::WorkItem& i) { return handler.handle(i); });
  ASSERT_EQ(written.size(), 1u);
  auto r = store.read_run("last_word", "lorahub", 1);
  ASSERT_EQ(r.status, "complete") << r.failure_reason;
  EXPECT_EQ(r.history_loss.size(), 12u);
  EXPECT_EQ(r.history_weights.size(), 12u);
  EXPECT_DOUBLE_EQ(r.best_loss, *std::min_element(r.history_loss.begin(), r.history_loss.end()));
  EXPECT_EQ(r.predictions.size(), 12u);
  std::size_t right = 0;
  for (auto x : r.correct) right += x;
  EXPECT_DOUBLE_EQ(r.accuracy, static_cast<double>(right) / 12.0);
  EXPECT_EQ(r.composed.size(), 2u * (2u * 2u + 2u * 4u));  // A and B for q, v of 2 encoder and 2x2 decoder attentions
  EXPECT_EQ(r.adapter_config.at("r"), "4");
  // Every asked point is inside the bounds, and the first is the reference's x = 0.
  for (double x : r.history_weights[0]) EXPECT_EQ(x, 0.0);
  // The stored best loss is what the objective gives at the stored best weights.
  std::vector<std::size_t> idx;
  for (const auto& n : r.module_names) idx.push_back(engine.library->index_of(n));
  worker::FitnessEvaluator fit(*engine.model, *engine.stack, idx, runs[0].train, *engine.tokenizer, c.lorahub.l1, 0);
  EXPECT_NEAR(fit.evaluate({r.best_weights})[0], r.best_loss, 1e-6);
}

// One run through the solver's own driver and worker, serially.
lorahub::io::RunRecord run_one(const job::JobConfig& c) {
  auto runs = job::expand_job(c, job::library_module_names(c.library.path));
  auto engine = worker::Engine::load(c, torch::kCPU);
  worker::Worker handler(engine, runs, c);
  std::vector<lorahub::io::RunRecord> written;
  lorahub::search::JobDriver driver(runs, c, [&](const lorahub::io::RunRecord& r) { written.push_back(r); });
  lorahub::distributed::run_serial(driver, [&](const lorahub::core::WorkItem& i) { return handler.handle(i); });
  return written.at(0);
}

TEST_F(HubToy, GradientRunsRecordTheirGradientsAndCost) {
  for (const std::string name : {"adam", "lbfgsb"}) {
    SCOPED_TRACE(name);
    auto c = config("unused.h5");
    c.lorahub.optimizer.name = name;
    c.lorahub.optimizer.budget = 6;

    auto r = run_one(c);
    ASSERT_EQ(r.status, "complete") << r.failure_reason;
    ASSERT_EQ(r.history_loss.size(), r.history_gradient.size());
    EXPECT_LE(r.history_loss.size(), 6u);
    EXPECT_GE(r.history_loss.size(), 2u);
    for (const auto& g : r.history_gradient) EXPECT_EQ(g.size(), 3u);
    EXPECT_EQ(r.number_attrs.at("gradient_evaluations"), static_cast<double>(r.history_loss.size()));
    // Each evaluation is a forward and a backward: more than one forward-equivalent, well below ten.
    const double fe = r.number_attrs.at("forward_equivalents");
    EXPECT_GT(fe, static_cast<double>(r.history_loss.size()));
    EXPECT_LT(fe, 10.0 * static_cast<double>(r.history_loss.size()));
    EXPECT_DOUBLE_EQ(r.best_loss, *std::min_element(r.history_loss.begin(), r.history_loss.end()));
    EXPECT_EQ(r.text_attrs.at("optimizer"), name);
    // The first point is the uniform composition (w = 0 is a stationary point of the bilinear composition);
    // the search moved from it.
    for (double x : r.history_weights[0]) EXPECT_EQ(x, 1.0 / 3.0);
    EXPECT_NE(r.history_weights[1], r.history_weights[0]);
    // With an l1 weight far above the cross-entropy's gradient, zero is optimal: the proximal step and the
    // u - v split reach exactly zero.
    c.lorahub.l1 = 1000.0;
    c.lorahub.optimizer.budget = 20;
    auto sparse = run_one(c);
    ASSERT_EQ(sparse.status, "complete") << sparse.failure_reason;
    for (double x : sparse.best_weights) EXPECT_EQ(x, 0.0);
  }
}

// library.select = "loss": every module is scored alone, the 2 best of the 4 are searched and evaluated.
TEST_F(HubToy, LossSelectionKeepsTheBestModules) {
  auto c = config("unused.h5");
  c.library.select = job::ModuleSelect::kLoss;
  c.library.modules = 2;
  auto r = run_one(c);
  ASSERT_EQ(r.status, "complete") << r.failure_reason;
  ASSERT_EQ(r.selection_modules, world_->module_names);
  ASSERT_EQ(r.selection_losses.size(), 4u);
  // The scores are the objective with each module alone at weight 1.
  auto engine = worker::Engine::load(c, torch::kCPU);
  auto runs = job::expand_job(c, world_->module_names);
  worker::FitnessEvaluator fit(*engine.model, *engine.stack, {0, 1, 2, 3}, runs[0].train, *engine.tokenizer, c.lorahub.l1, 0);
  std::vector<std::size_t> order = {0, 1, 2, 3};
  for (std::size_t i = 0; i < 4; ++i) {
    std::vector<double> one_hot(4, 0.0);
    one_hot[i] = 1.0;
    EXPECT_NEAR(r.selection_losses[i], fit.evaluate({one_hot})[0], 1e-6) << i;
  }
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return r.selection_losses[a] < r.selection_losses[b]; });
  EXPECT_EQ(r.module_names, (std::vector<std::string>{world_->module_names[order[0]], world_->module_names[order[1]]}));
  for (const auto& w : r.history_weights) EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(r.best_weights.size(), 2u);
  EXPECT_EQ(r.number_attrs.at("selection_evaluations"), 4.0);
}

// The same run with the model and the modules named by hub id, read from a hub cache (blobs linked from snapshots,
// as huggingface_hub lays it out), gives the same result as with their folders.
TEST_F(HubToy, HubIdsFromTheCacheGiveTheSameRunAsFolders) {
  namespace ct = lorahub::core::test;
  ct::TempDir tmp;
  ct::ScopedEnv env;
  ct::FakeHubCache cache(tmp.path() / "hub");
  env.set("HF_HUB_CACHE", cache.root().string());
  auto files_of = [](const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      std::ifstream in(e.path(), std::ios::binary);
      files[e.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
    }
    return files;
  };
  cache.add_snapshot("toy/model", ct::fake_hash("model"), files_of(world_->model_dir));
  cache.set_ref("toy/model", "main", ct::fake_hash("model"));
  std::ofstream list(tmp.path() / "modules.txt");
  for (const auto& name : world_->module_names) {
    cache.add_snapshot("toy/" + name, ct::fake_hash(name), files_of(world_->library_dir / name));
    cache.set_ref("toy/" + name, "main", ct::fake_hash(name));
    list << "toy/" << name << "\n";
  }
  list.close();
  auto learn = [&](job::JobConfig c) {
    c.resolve_sources();
    return run_one(c);
  };
  auto by_path = learn(config("unused.h5"));
  auto c = config("unused.h5");
  c.set("model.path", "toy/model", "test");
  c.set("library.path", (tmp.path() / "modules.txt").string(), "test");
  EXPECT_EQ(c.model.path, "toy/model") << "an id that is no path stays an id until resolved";
  auto by_id = learn(c);
  ASSERT_EQ(by_id.status, "complete") << by_id.failure_reason;
  EXPECT_EQ(by_id.module_names, by_path.module_names);
  EXPECT_EQ(by_id.history_loss, by_path.history_loss);
  EXPECT_EQ(by_id.predictions, by_path.predictions);
  // A missing id says where it looked and how to get it.
  auto missing = config("unused.h5");
  missing.set("model.path", "toy/absent@v2", "job.toml");
  auto e = ct::error_text([&] { missing.resolve_sources(); });
  EXPECT_NE(e.find("toy/absent"), std::string::npos) << e;
  EXPECT_NE(e.find(cache.root().string()), std::string::npos) << e;
  EXPECT_NE(e.find("huggingface-cli download toy/absent --revision v2"), std::string::npos) << e;
}

}  // namespace
