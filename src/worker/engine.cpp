#include "lorahub/worker/engine.h"

#include "lorahub/core/error.h"
#include "lorahub/job/library.h"

namespace lorahub::worker {
using core::fail;

model::RuntimeOptions runtime_options(const job::JobConfig& config, torch::Device device) {
  model::RuntimeOptions rt;
  rt.device = device;
  rt.dtype = config.model.dtype == job::DType::kBF16 ? model::ComputeDType::kBF16 : model::ComputeDType::kF32;
  rt.check_finite = config.model.check_finite;
  return rt;
}

Engine Engine::load(const job::JobConfig& config, torch::Device device) {
  Engine e;
  e.model = model::load_t5(config.model.path, runtime_options(config, device));
  e.tokenizer = text::T5Tokenizer::load(config.tokenizer_path());
  if (e.tokenizer->vocab_size() > e.model->config().vocab_size) {
    fail(config.tokenizer_path(), ": tokenizer has ", e.tokenizer->vocab_size(), " ids but the model's vocab_size is ",
         e.model->config().vocab_size);
  }
  if (job::job_needs_library(config)) {
    std::vector<std::string> folders, names;
    for (const auto& m : job::library_modules(config.library.path)) {
      folders.push_back(m.folder);
      names.push_back(m.name);
    }
    e.library = lora::LoraLibrary::load(folders, config.library.path, e.model.get(), names);
    e.stack = e.library->stack().to(device, torch::kFloat32);
  }
  return e;
}

}  // namespace lorahub::worker
