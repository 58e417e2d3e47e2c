#include "lorahub/worker/engine.h"

#include "lorahub/core/error.h"
#include "lorahub/job/library.h"

namespace lorahub::worker {
using core::fail;

model::RuntimeOptions runtime_options(const job::JobConfig& config, torch::Device device) {
  model::RuntimeOptions rt;
  rt.device = device;
  rt.dtype = config.model.dtype == job::DType::kBF16 ? model::ComputeDType::kBF16 : model::ComputeDType::kF32;
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
    e.library = lora::LoraLibrary::load(job::library_module_folders(config.library.path), config.library.path, e.model.get());
    e.stack = e.library->stack().to(device, torch::kFloat32);
  }
  return e;
}

}  // namespace lorahub::worker
