"""Checks `lorahub report --format json` of the BBH end-to-end job: every one of the 27 tasks is present,
every accuracy is a fraction in [0, 1], and each method's average is the mean of its per-task values."""
import json
import sys
import xml.etree.ElementTree as ET

report = json.load(open(sys.argv[1]))
expected_tasks = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
assert len(expected_tasks) == 27, expected_tasks
assert sorted(report["tasks"]) == sorted(expected_tasks), report["tasks"]
methods = [m["name"] if isinstance(m, dict) else m for m in report["methods"]]
for m in ["zero-shot", "icl", "lorahub", "uniform", "lora-single", "lora-ft"]:
    assert m in methods, (m, methods)
values = {}
for cell in report["cells"]:
    for key in ("mean", "best", "min"):
        v = cell.get(key)
        if v is not None:
            assert 0.0 <= v <= 1.0, (cell["task"], cell["method"], key, v)
    for v in cell.get("accuracies", []):
        assert v is None or 0.0 <= v <= 1.0, (cell["task"], cell["method"], v)
    if cell.get("mean") is not None:
        values.setdefault(cell["method"], []).append(cell["mean"])
for avg in report["averages"]:
    m = avg["method"]
    rows = values.get(m, [])
    assert avg["tasks_with_value"] == len(rows), (m, avg["tasks_with_value"], len(rows))
    assert len(rows) == 27, (m, len(rows), "every task should have a value")
    assert abs(avg["mean"] - sum(rows) / len(rows)) < 1e-9, (m, avg["mean"], sum(rows) / len(rows))
issues = [i for i in (report.get("issues") or []) if i.get("kind") != "unevaluated"]
assert not issues, issues[:5]
if len(sys.argv) > 3:
    ET.parse(sys.argv[3])  # the chart is well-formed SVG
print("bbh report ok: 27 tasks, %d methods, averages consistent" % len(methods))
