#!/usr/bin/python3
"""Runs the Python blocks of docs/results-schema.md against a results file written by the C++ ResultStore,
so the documentation's examples cannot rot. Each ```python block runs in a scratch folder where results.h5
is the fixture; the block that defines load_runs() must also return one row per run with the values the
writer recorded (the JSON sidecar of tests/io/h5py_fixture_test.cpp), and, without pandas, print them.
Usage: check_results_doc.py DOC.md RESULTS.h5 EXPECTED.json (run by ctest with Debian's /usr/bin/python3)."""
import contextlib
import io
import json
import math
import os
import re
import sys
import tempfile

BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def same(a, b):
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def run_block(code, results, index):
    """Executes one block with results.h5 in the working folder; returns its globals and its output."""
    namespace = {"__name__": f"results_doc_block_{index}"}
    out = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.symlink(os.path.abspath(results), os.path.join(scratch, "results.h5"))
        os.chdir(scratch)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"results-schema.md block {index}", "exec"), namespace)
        finally:
            os.chdir(cwd)
    return namespace, out.getvalue()


def check_rows(rows, expected):
    check(isinstance(rows, list) and all(isinstance(r, dict) for r in rows), "load_runs must return a list of dicts")
    got = {(r["task"], r["method"], r["seed"]): r for r in rows}
    check(len(got) == len(rows), f"load_runs returned duplicate runs: {sorted(got)}")
    want = {(e["task"], e["method"], e["seed"]): e for e in expected["runs"]}
    check(set(got) == set(want), f"runs {sorted(got)}, expected {sorted(want)}")
    for key, e in want.items():
        r = got[key]
        check(r["status"] == e["status"], f"{key}: status {r['status']!r}")
        check(same(r["accuracy"], e["accuracy"]), f"{key}: accuracy {r['accuracy']} != {e['accuracy']}")
        check(same(r["best_loss"], e["best_loss"]), f"{key}: best_loss {r['best_loss']} != {e['best_loss']}")
        check(r["modules"] == len(e["module_names"]), f"{key}: modules {r['modules']}")
        check(r["evaluations"] == len(e["history_loss"]), f"{key}: evaluations {r['evaluations']}")
        check(r["test_examples"] == len(e["correct"]), f"{key}: test_examples {r['test_examples']}")
        check(r["optimizer"] == e["text_attrs"].get("optimizer", ""), f"{key}: optimizer {r['optimizer']!r}")
        check(same(r["learn_seconds"], e["number_attrs"].get("learn_seconds", "nan")), f"{key}: learn_seconds")
        check(r["failure_reason"] == e["failure_reason"], f"{key}: failure_reason {r['failure_reason']!r}")


def check_printed_table(output, rows):
    lines = output.rstrip("\n").split("\n")
    check(lines[0] == "task\tmethod\tseed\tstatus\taccuracy\tbest_loss", f"header {lines[0]!r}")
    check(len(lines) == len(rows) + 1, f"{len(lines) - 1} printed rows for {len(rows)} runs")
    for line, row in zip(lines[1:], rows):
        cells = line.split("\t")
        check(cells[:4] == [row["task"], row["method"], str(row["seed"]), row["status"]], f"printed row {line!r}")
        check(same(cells[4], row["accuracy"]) and same(cells[5], row["best_loss"]), f"printed numbers {line!r}")


def main(doc, results, expected_path):
    with open(doc, encoding="utf-8") as f:
        blocks = BLOCK.findall(f.read())
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    check(blocks, f"{doc}: no ```python block")
    tables = 0
    for index, code in enumerate(blocks, 1):
        namespace, output = run_block(code, results, index)
        if "load_runs" not in namespace:
            continue
        tables += 1
        rows = namespace["load_runs"](results)
        check_rows(rows, expected)
        try:
            import pandas  # noqa: F401
        except ImportError:
            check_printed_table(output, rows)
        else:
            check(output.strip(), f"block {index} printed nothing")
    check(tables == 1, f"{doc}: {tables} blocks define load_runs, expected 1")
    print(f"{len(blocks)} Python blocks of {doc} ran against {results}; load_runs gave {len(expected['runs'])} runs")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    try:
        main(*sys.argv[1:])
    except Exception as error:  # any failure of a documented block is a failed test
        print(f"FAIL: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
