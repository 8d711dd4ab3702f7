"""retort reads `.env` as python-dotenv does: the cases core/src/config/dotenv_cases.json (which
the Rust parser's unit test reads too) checked against python-dotenv itself, so the two agree."""

from __future__ import annotations

import io
import json

import pytest

from conftest import REPO

CASES = json.loads((REPO / "core" / "src" / "config" / "dotenv_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_python_dotenv_reads_each_case_as_retort_does(case, monkeypatch):
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    for name, value in case.get("env", {}).items():
        monkeypatch.setenv(name, value)
    values = dotenv_values(stream=io.StringIO(case["text"]))
    assert {k: v for k, v in values.items() if v is not None} == case["expected"]
    skipped = [b.original.line for b in parse_stream(io.StringIO(case["text"])) if b.error]
    assert skipped == case["skipped_lines"]
