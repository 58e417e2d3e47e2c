// Writes the toy world (tokenizer, random T5, random LoRA library, tasks) and a job file into a folder,
// for the end-to-end tests of `lorahub run` (serial vs MPI, kill and resume, failing runs).
#include <fstream>
#include <iostream>

#include "../worker/toy_world.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_toy_world DIR\n";
    return 2;
  }
  auto w = toy::make_world_at(argv[1], 5);
  // A second task, and a third whose test file is malformed: its runs must fail while the rest complete.
  toy::write_task(w.root / "train_b.jsonl", 20, 3);
  toy::write_task(w.root / "test_b.jsonl", 9, 4);
  std::ofstream(w.root / "test_bad.jsonl") << "{\"input\": \"fine\", \"target\": \"ok\"}\n{\"input\": \"no target\"}\n";
  std::ofstream job(w.root / "job.toml");
  job << "# toy job: 3 tasks x (lorahub x 2 seeds with cobyla, cmaes via override) + zero-shot + uniform\n"
         "[model]\npath = \"model\"\n\n"
         "[library]\npath = \"library\"\nmodules = 3\n\n"
         "[[data.task]]\nname = \"last_a\"\ntrain = \"train.jsonl\"\ntest = \"test.jsonl\"\n\n"
         "[[data.task]]\nname = \"last_b\"\ntrain = \"train_b.jsonl\"\ntest = \"test_b.jsonl\"\n"
         "description = \"Name the final word.\"\n\n"
         "[[data.task]]\nname = \"broken\"\ntrain = \"train.jsonl\"\ntest = \"test_bad.jsonl\"\n\n"
         "[run]\nmethods = [\"lorahub\", \"zero-shot\", \"uniform\"]\nseeds = [1, 2]\n\n"
         "[lorahub]\nbudget = 10\n\n"
         "[eval]\nmax_new_tokens = 5\nbatch_size = 4\n\n"
         "[schedule]\neval_shard = 5\ncandidates_per_request = 3\n\n"
         "[output]\npath = \"results.h5\"\n";
  std::cout << w.root.string() << "\n";
  return 0;
}
