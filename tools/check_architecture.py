#!/usr/bin/env python3
"""The dependency rules of docs/architecture.md, checked on the sources (ctest: architecture.rules).

  check_architecture.py SOURCE_DIR

Fails (exit 1, one line per violation) when
  - a module's sources or public headers include another module it may not use, or a third-party library it
    may not use (torch, HDF5, MPI, ...): src/<module>/ and include/lorahub/<module>/ are that module's;
  - hdf5.h appears outside src/io, or mpi.h / nccl.h outside src/distributed (never in a public header);
  - a source file (src, include, bench, tests, tools; fixtures excepted) is over 600 lines.
"""
import pathlib
import re
import sys

# Module -> the modules it may include, in dependency order (docs/architecture.md has the picture).
MODULES = {
    "core": [],
    "opt": ["core"],
    "text": ["core"],
    "model": ["core"],
    "lora": ["core", "model"],
    "data": ["core"],
    "io": ["core"],
    "job": ["core", "opt", "data"],
    "search": ["core", "opt", "data", "io", "job", "text"],
    "distributed": ["core"],
    "runner": ["core", "distributed", "io", "job", "search", "text"],
    "train": ["core", "data", "job", "lora", "model", "text"],
    "worker": ["core", "data", "job", "lora", "model", "runner", "text", "train"],
    "report": ["core", "io", "job"],
    "demo": ["core", "data", "lora", "model", "text", "train"],
    "app": None,  # the command line: everything
}

# Third-party headers by family, and the modules that may include them.
THIRD_PARTY = {
    "torch": (re.compile(r"^(torch|ATen|c10)/"), {"model", "lora", "train", "worker", "demo", "app"}),
    "HDF5": (re.compile(r"^(hdf5|H5[A-Za-z]*)\.h$"), {"io"}),
    "MPI": (re.compile(r"^mpi\.h$"), {"distributed"}),
    "NCCL / CUDA": (re.compile(r"^(nccl|cuda_runtime|cuda_runtime_api)\.h$"), {"distributed"}),
    "NLopt": (re.compile(r"^nlopt"), {"opt"}),
    "LBFGS++": (re.compile(r"^LBFGS"), {"opt"}),
    "RE2": (re.compile(r"^re2/"), {"lora"}),
    "toml++": (re.compile(r"^toml\+\+/"), {"job"}),
    "CLI11": (re.compile(r"^CLI/"), {"app"}),
}
# Libraries whose headers may only appear in a module's own .cpp files and src/ headers, never in its public API.
PRIVATE_ONLY = {"HDF5", "MPI", "NCCL / CUDA", "NLopt", "LBFGS++", "RE2", "toml++"}

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
MAX_LINES = 600
SOURCE_SUFFIXES = {".cpp", ".h", ".py", ".sh", ".cmake"}


def module_of(path, root):
    rel = path.relative_to(root).parts
    if rel[0] == "src" and len(rel) > 2:
        return rel[1], False
    if rel[:2] == ("include", "lorahub") and len(rel) > 3:
        return rel[2], True
    return None, False


def main(root):
    root = pathlib.Path(root).resolve()
    problems = []
    for path in sorted(list((root / "src").rglob("*")) + list((root / "include").rglob("*"))):
        if path.suffix not in {".cpp", ".h"}:
            continue
        module, public = module_of(path, root)
        if module is None:
            continue
        rel = path.relative_to(root)
        if module not in MODULES:
            problems.append(f"{rel}: module '{module}' is not in the rules (tools/check_architecture.py)")
            continue
        allowed = MODULES[module]
        for header in INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace")):
            own = re.match(r"^lorahub/([a-z_]+)/", header)
            if own:
                used = own.group(1)
                if used != module and allowed is not None and used not in allowed:
                    problems.append(f"{rel}: includes {header}, but {module} may not depend on {used}")
                continue
            for family, (pattern, users) in THIRD_PARTY.items():
                if not pattern.search(header):
                    continue
                if module != "app" and module not in users:
                    problems.append(f"{rel}: includes {header} ({family}), which {module} may not use")
                elif public and family in PRIVATE_ONLY:
                    problems.append(f"{rel}: a public header includes {header} ({family}): keep it in src/{module}")
    for top in ("src", "include", "bench", "tests", "tools", "scripts"):
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root)
            if not path.is_file() or path.suffix not in SOURCE_SUFFIXES or "fixtures" in rel.parts:
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").count("\n")
            if lines > MAX_LINES:
                problems.append(f"{rel}: {lines} lines, more than {MAX_LINES}: split it along its seams")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} architecture rule(s) broken (docs/architecture.md)")
        return 1
    print("architecture rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
