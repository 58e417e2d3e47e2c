#!/usr/bin/python3
"""Runs `lorahub report` on the results file of ReportFixture.Write and checks the command's
wiring: each format on standard output is what the library rendered for the same file, --out and
--plot write files, and a file that is not a results file (or a bad option) fails with one clear
line and a non-zero status. Usage: check_cli.py LORAHUB FIXTURE_DIR"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(*args):
    return subprocess.run([LORAHUB, *args], capture_output=True, timeout=120)


def read(path):
    with open(path, "rb") as f:
        return f.read()


LORAHUB, FIXTURE = sys.argv[1], sys.argv[2]
results = os.path.join(FIXTURE, "results.h5")

for args, expected in ((["report", results], "report.md"),
                       (["report", results, "--format", "md"], "report.md"),
                       (["report", results, "--format", "csv"], "report.csv"),
                       (["report", results, "--format", "json"], "report.json")):
    p = run(*args)
    check(p.returncode == 0, f"{args}: status {p.returncode}: {p.stderr.decode()}")
    check(p.stdout == read(os.path.join(FIXTURE, expected)), f"{args}: output differs from {expected}")

with tempfile.TemporaryDirectory() as tmp:
    out, plot = os.path.join(tmp, "table.csv"), os.path.join(tmp, "chart.svg")
    p = run("report", results, "--format", "csv", "--out", out, "--plot", plot)
    check(p.returncode == 0, f"--out/--plot: status {p.returncode}: {p.stderr.decode()}")
    check(p.stdout == b"", "--out still printed the table")
    check(read(out) == read(os.path.join(FIXTURE, "report.csv")), "--out differs from report.csv")
    check(read(plot) == read(os.path.join(FIXTURE, "chart.svg")), "--plot differs from chart.svg")
    ET.parse(plot)
    check(sorted(os.listdir(tmp)) == ["chart.svg", "table.csv"], f"left behind: {os.listdir(tmp)}")

not_results = os.path.join(FIXTURE, "not_results.txt")
p = run("report", not_results)
err = p.stderr.decode()
check(p.returncode == 1, f"non-results file: status {p.returncode}")
check(err == f"lorahub: error: {not_results} is not an HDF5 file, so not a lorahub-hpc results file\n", f"message: {err!r}")
check(p.stdout == b"", "printed a report for a non-results file")

p = run("report", os.path.join(FIXTURE, "absent.h5"))
check(p.returncode == 1 and "does not exist" in p.stderr.decode(), f"absent file: {p.stderr.decode()!r}")

p = run("report", results, "--format", "xml")
check(p.returncode != 0 and b"xml" in p.stderr, f"--format xml: status {p.returncode}")

print("ok: lorahub report formats, --out, --plot and errors")
