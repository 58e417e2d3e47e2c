#!/usr/bin/python3
"""Reads a results file written by the C++ ResultStore with h5py, an HDF5 reader independent of
ours, and checks groups, attributes, dtypes, shapes and values against the JSON sidecar the writer
test produced (tests/io/h5py_fixture_test.cpp). Usage: read_results.py RESULTS.h5 EXPECTED.json
Run by ctest with Debian's /usr/bin/python3 (python3-h5py)."""
import json
import math
import sys

import h5py
import numpy as np

RUN_MEMBERS = {"module_names", "best_weights", "best_loss", "accuracy", "history", "train", "test", "composed"}


def fail(message):
    raise AssertionError(message)


def check(condition, message):
    if not condition:
        fail(message)


def num(value):
    return float(value)  # the sidecar spells NaN and infinities as "nan", "inf", "-inf"


def same(a, b):
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def same_array(actual, expected, where):
    actual = np.asarray(actual, dtype=np.float64).ravel()
    expected = np.asarray([num(v) for v in expected], dtype=np.float64)
    check(actual.shape == expected.shape, f"{where}: {actual.shape[0]} values, expected {expected.shape[0]}")
    equal = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    check(bool(equal.all()), f"{where}: values differ at {np.flatnonzero(~equal)[:5]}")


def text(attrs, key):
    """A string attribute: fixed-length UTF-8, which h5py hands back as bytes."""
    value = attrs[key]
    info = h5py.check_string_dtype(attrs.get_id(key).dtype)
    check(info is not None and info.encoding == "utf-8" and info.length is not None,
          f"attribute {key}: dtype {attrs.get_id(key).dtype} is not fixed-length UTF-8")
    check(isinstance(value, bytes), f"attribute {key}: {type(value)}, expected bytes")
    return value.decode("utf-8")


def strings(ds, expected):
    info = h5py.check_string_dtype(ds.dtype)
    check(info is not None and info.encoding == "utf-8" and info.length is not None,
          f"{ds.name}: dtype {ds.dtype} is not fixed-length UTF-8")
    check(ds.ndim == 1 and ds.shape == (len(expected),), f"{ds.name}: shape {ds.shape}, expected ({len(expected)},)")
    values = [str(v) for v in ds.asstr()[()]] if len(expected) else []
    check(values == expected, f"{ds.name}: {values[:3]}... != {expected[:3]}...")


def numeric(ds, dtype, shape, expected):
    check(ds.dtype == np.dtype(dtype), f"{ds.name}: dtype {ds.dtype}, expected {dtype}")
    check(ds.shape == tuple(shape), f"{ds.name}: shape {ds.shape}, expected {tuple(shape)}")
    if ds.size:
        same_array(ds[()], expected, ds.name)


def check_run(g, e):
    name = g.name
    check(text(g.attrs, "task") == e["task"], f"{name}: task {g.attrs['task']!r}")
    check(text(g.attrs, "method") == e["method"], f"{name}: method {g.attrs['method']!r}")
    check(g.attrs["seed"].dtype == np.int64 and int(g.attrs["seed"]) == e["seed"], f"{name}: seed")
    check(text(g.attrs, "status") == e["status"], f"{name}: status {g.attrs['status']!r}")
    if e["failure_reason"]:
        check(text(g.attrs, "failure_reason") == e["failure_reason"], f"{name}: failure_reason")
    for key, value in e["text_attrs"].items():
        check(text(g.attrs, key) == value, f"{name}: text attribute {key}")
    for key, value in e["number_attrs"].items():
        check(g.attrs[key].dtype == np.float64 and same(g.attrs[key], num(value)), f"{name}: number attribute {key}")
    expected_attrs = {"task", "method", "seed", "status", "accuracy", "adapter_config"}
    expected_attrs |= set(e["text_attrs"]) | set(e["number_attrs"])
    if e["failure_reason"]:
        expected_attrs.add("failure_reason")
    check(set(g.attrs) == expected_attrs, f"{name}: attributes {sorted(set(g.attrs) ^ expected_attrs)} unexpected/missing")
    check(json.loads(text(g.attrs, "adapter_config")) == e["adapter_config"], f"{name}: adapter_config")

    members = RUN_MEMBERS | ({"selection"} if e["selection_modules"] else set())
    check(set(g.keys()) == members, f"{name}: members {sorted(g.keys())}")
    check(g["accuracy"].shape == () and same(g["accuracy"][()], num(e["accuracy"])), f"{name}: accuracy dataset")
    check(same(g.attrs["accuracy"], num(e["accuracy"])), f"{name}: accuracy attribute")
    check(g["best_loss"].shape == () and g["best_loss"].dtype == np.float64 and same(g["best_loss"][()], num(e["best_loss"])),
          f"{name}: best_loss")

    n = len(e["module_names"])
    strings(g["module_names"], e["module_names"])
    numeric(g["best_weights"], "<f8", (len(e["best_weights"]),), e["best_weights"])
    evals = len(e["history_weights"])
    flat = [v for row in e["history_weights"] for v in row]
    numeric(g["history/weights"], "<f8", (evals, e["history_width"]), flat)
    numeric(g["history/loss"], "<f8", (len(e["history_loss"]),), e["history_loss"])
    if e["history_gradient"]:
        flat = [v for row in e["history_gradient"] for v in row]
        numeric(g["history/gradient"], "<f8", (evals, e["history_width"]), flat)
        norms = [float(np.linalg.norm(np.array([num(v) for v in row]))) for row in e["history_gradient"]]
        check(np.allclose(g["history/grad_norm"][()], norms, rtol=1e-15, atol=0), f"{name}: history/grad_norm")
    else:
        check("gradient" not in g["history"] and "grad_norm" not in g["history"], f"{name}: gradient without a gradient run")
    if e["selection_modules"]:
        strings(g["selection/modules"], e["selection_modules"])
        numeric(g["selection/losses"], "<f8", (len(e["selection_losses"]),), e["selection_losses"])
    strings(g["train/inputs"], e["train_inputs"])
    strings(g["train/targets"], e["train_targets"])
    strings(g["test/inputs"], e["test_inputs"])
    strings(g["test/targets"], e["test_targets"])
    strings(g["test/predictions"], e["predictions"])
    numeric(g["test/correct"], "u1", (len(e["correct"]),), e["correct"])
    numeric(g["test/input_tokens"], "<i8", (len(e["input_tokens"]),), e["input_tokens"])

    composed = g["composed"]
    names = [m["name"] for m in e["composed"]]
    check(sorted(composed.keys()) == sorted(names), f"{name}: composed keys {sorted(composed.keys())}")
    for index, m in enumerate(e["composed"]):
        ds = composed[m["name"]]
        numeric(ds, "<f4", m["shape"], m["data"])
        check(list(ds.attrs["shape"]) == m["shape"] and ds.attrs["shape"].dtype == np.int64, f"{ds.name}: shape attribute")
        check(int(ds.attrs["index"]) == index, f"{ds.name}: index attribute")
    return n


def run_groups(runs):
    found = []

    def visit(path, obj):
        if isinstance(obj, h5py.Group) and path.rsplit("/", 1)[-1].startswith("seed_"):
            found.append(obj.name)

    runs.visititems(visit)
    return sorted(found)


def main(path, expected_path):
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    with h5py.File(path, "r") as f:
        check(text(f.attrs, "format") == "lorahub-hpc results", f"format {f.attrs['format']!r}")
        check(f.attrs["format_version"].dtype == np.int64 and int(f.attrs["format_version"]) == 2, "format_version")
        check(text(f.attrs, "software_version") == expected["software_version"], "software_version")
        check(text(f.attrs, "job_config") == expected["job_config"], "job_config")
        json.loads(text(f.attrs, "job_config"))
        check(list(f.keys()) == ["runs"], f"root members {list(f.keys())}")
        groups = run_groups(f["runs"])
        wanted = sorted(run["group"] for run in expected["runs"])
        check(groups == wanted, f"run groups {groups}, expected {wanted}")
        for run in expected["runs"]:
            check_run(f[run["group"]], run)
        # The composed factors load straight into numpy for a PEFT export.
        lora = f[expected["runs"][0]["group"]]["composed"]
        first = next(iter(lora.values()))[()]
        check(isinstance(first, np.ndarray) and first.dtype == np.float32, "composed dataset as numpy")
    print(f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}): {len(groups)} runs in {path} match")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        main(sys.argv[1], sys.argv[2])
    except (AssertionError, KeyError, OSError) as error:
        print(f"FAIL: {error!r}", file=sys.stderr)
        sys.exit(1)
