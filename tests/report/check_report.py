#!/usr/bin/python3
"""Reads the reports that tests/report/report_test.cpp (ReportFixture.Write) rendered from one
results file, with Python's standard library only (csv, json, xml.etree), and checks that every
format parses and that they agree: the CSV and JSON carry the same numbers, every average is the
unweighted mean of its task rows, the Markdown table shows those numbers rounded, and the SVGs are
well-formed SVG 1.1 with one bar per value. Usage: check_report.py FIXTURE_DIR
Run by ctest with Debian's /usr/bin/python3."""
import csv
import json
import math
import os
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def num(text):
    return float(text) if text != "" else math.nan


def same(a, b, tol=0.0):
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def check_csv_and_json(folder):
    with open(os.path.join(folder, "report.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as f:
        doc = json.load(f)
    check(doc["format"] == "lorahub-report" and doc["version"] == 1, "JSON header")
    tasks, methods = doc["tasks"], [m["name"] for m in doc["methods"]]
    task_rows = [r for r in rows if r["row"] == "task"]
    check(len(task_rows) == len(tasks) * len(methods), f"{len(task_rows)} task rows for {len(tasks)}x{len(methods)}")
    check(len(doc["cells"]) == len(task_rows), "JSON and CSV have different cell counts")
    # CSV and JSON carry the same numbers, exactly (both print shortest round-trip forms).
    for row, cell in zip(task_rows, doc["cells"]):
        check(row["task"] == cell["task"] and row["method"] == cell["method"], f"order differs at {row['task']}")
        for col, key in (("accuracy_mean", "mean"), ("accuracy_best", "best"), ("accuracy_min", "min"),
                         ("accuracy_std", "std"), ("tokens_per_example", "tokens_per_example"),
                         ("learn_seconds", "learn_seconds")):
            j = cell[key]
            check(same(num(row[col]), math.nan if j is None else j), f"{row['task']}/{row['method']} {col}")
        accs = cell["accuracies"]
        if accs:
            check(same(sum(accs) / len(accs), cell["mean"], 1e-12), f"mean of {cell['task']}/{cell['method']}")
            check(max(accs) == cell["best"], f"best of {cell['task']}/{cell['method']}")
        check(len(accs) == int(row["runs_complete"]), "runs_complete")
    # Every average is the unweighted mean over the tasks that have a value.
    averages = {r["method"]: r for r in rows if r["row"] == "average"}
    check(set(averages) == set(methods), "average rows")
    for m in methods:
        for col in ("accuracy_mean", "accuracy_best"):
            values = [num(r[col]) for r in task_rows if r["method"] == m and r[col] != ""]
            want = sum(values) / len(values) if values else math.nan
            check(same(num(averages[m][col]), want, 1e-12), f"average {col} of {m}: {averages[m][col]} vs {want}")
            check(int(averages[m]["tasks_with_value"]) == len(values), f"tasks_with_value of {m}")
    common = doc["common_tasks"]
    for r in (r for r in rows if r["row"] == "average_common"):
        values = [num(t["accuracy_mean"]) for t in task_rows if t["method"] == r["method"] and t["task"] in common]
        check(same(num(r["accuracy_mean"]), sum(values) / len(values), 1e-12), f"common average of {r['method']}")
    # The fixture's failures are all listed.
    kinds = sorted({i["kind"] for i in doc["issues"]})
    check(kinds == ["failed", "incomplete", "missing", "unevaluated"], f"issue kinds {kinds}")
    return doc


def check_markdown(folder, doc):
    with open(os.path.join(folder, "report.md"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    table = [l for l in lines if l.startswith("| ")]
    split = lambda l: [c.strip() for c in re.split(r"(?<!\\)\|", l)[1:-1]]
    header = split(table[0])
    check(header[0] == "Task", f"header {header}")
    cells = {(c["task"], c["method"]): c for c in doc["cells"]}
    columns = []
    for m in doc["methods"]:
        columns += [(m["name"], "mean"), (m["name"], "best")] if m["name"] == "lorahub" else [(m["name"], "mean")]
    check(len(header) == 1 + len(columns), "column count")
    averages = {a["method"]: a for a in doc["averages"]}
    for i, task in enumerate(doc["tasks"]):
        row = split(table[1 + i])
        for text, (method, key) in zip(row[1:], columns):
            value = cells[(task, method)][key]
            if value is None:
                check(text == "–", f"{task}/{method}: {text!r} for no value")
            else:
                check(text.rstrip("†") == f"{100 * value:.1f}", f"{task}/{method}: {text!r} vs {100 * value}")
    avg_row = split(table[1 + len(doc["tasks"])])
    check(avg_row[0] == "**Average**", avg_row[0])
    for text, (method, key) in zip(avg_row[1:], columns):
        value = averages[method][key]
        check(text.strip("‡").strip("*") == f"{100 * value:.1f}", f"average {method}: {text!r} vs {value}")


def check_svg(path, doc=None):
    root = ET.parse(path).getroot()  # raises on any well-formedness error
    check(root.tag == SVG + "svg", f"root is {root.tag}")
    check(root.get("version") == "1.1", "version")
    vb = [float(v) for v in root.get("viewBox").split()]
    check(vb[:2] == [0, 0] and vb[2] == float(root.get("width")) and vb[3] == float(root.get("height")), "viewBox")
    # Every drawn element lies inside the view box.
    for el in root.iter():
        for a in ("x", "y", "x1", "x2", "y1", "y2"):
            if el.get(a) is not None and el.get(a)[-1] != "%":
                v = float(el.get(a))
                limit = vb[2] if a.startswith("x") else vb[3]
                check(0 <= v <= limit, f"{el.tag} {a}={v} outside the view box")
    if doc is None:
        return
    bars = [r for r in root.iter(SVG + "rect") if r.find(SVG + "title") is not None]
    values = sum(c["mean"] is not None for c in doc["cells"]) + sum(a["mean"] is not None for a in doc["averages"])
    check(len(bars) == values, f"{len(bars)} bars for {values} values")
    texts = "".join(t.text or "" for t in root.iter(SVG + "text"))
    for task in doc["tasks"]:
        check(task[:40] in texts, f"task {task!r} is not labelled")
    # Bar lengths are proportional to the values they show.
    scale = {float(r.get("width")) / float(t.text.split(": ")[1].split("%")[0])
             for r in bars for t in [r.find(SVG + "title")] if float(t.text.split(": ")[1].split("%")[0]) > 0}
    check(max(scale) - min(scale) < 0.05, f"bar scale varies: {sorted(scale)[:3]}...")


def main():
    folder = sys.argv[1]
    doc = check_csv_and_json(folder)
    check_markdown(folder, doc)
    check_svg(os.path.join(folder, "chart.svg"), doc)
    check_svg(os.path.join(folder, "empty.svg"))
    print(f"ok: {len(doc['cells'])} cells, {len(doc['issues'])} issues; csv, json, md and svg agree")


if __name__ == "__main__":
    main()
