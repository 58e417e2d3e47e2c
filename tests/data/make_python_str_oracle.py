#!/usr/bin/env python3
"""Writes python-str-oracle.json: CPython's own answers for the two str methods the LoraHub
metric relies on, so test_data can check lorahub::data's re-implementation against them.

- "whitespace": every code point c (all of U+0000..U+10FFFF) for which chr(c).isspace(), i.e. the
  characters str.strip() with no argument removes.
- "lower": every code point c below U+0180 whose chr(c).lower() differs from chr(c), mapped to the
  list of code points of chr(c).lower().

Run: python3 tests/data/make_python_str_oracle.py > tests/data/python-str-oracle.json
"""
import json
import sys
import unicodedata

whitespace = [c for c in range(0x110000) if chr(c).isspace()]
lower = {str(c): [ord(x) for x in chr(c).lower()]
         for c in range(0x180) if chr(c).lower() != chr(c)}
json.dump({"python": sys.version.split()[0], "unicode": unicodedata.unidata_version,
           "whitespace": whitespace, "lower": lower}, sys.stdout, indent=None)
sys.stdout.write("\n")
