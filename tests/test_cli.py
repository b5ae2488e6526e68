"""The ``wmstats`` command line, run as the installed console script."""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from wmstats import cli
from wmstats.bench import BENCHMARKS
from wmstats.cli import main
from wmstats.commands import COMMANDS, Command
from wmstats.inputs import InputError, Progress, read_documents
from wmstats.schema import COUNTER_FIELDS, COUNTER_SOURCES

DATA = Path(__file__).parent / "data" / "wmcore"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["wmstats", *args], input=stdin, capture_output=True, timeout=120,
                          check=False)


def ndjson(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def dynamic_job_total(docs: list[dict[str, Any]]) -> int:
    """Sum of every job counter in the agent_request ``status`` dicts."""
    def leaves(value: Any) -> int:
        if isinstance(value, dict):
            return sum(leaves(v) for v in value.values())
        return int(value)
    return sum(leaves(d.get("status", {})) for d in docs if d.get("type") == "agent_request")


def test_mock_dynamic_pipes_into_convert_with_matching_totals() -> None:
    mock = run("mock", "--workflows", "300", "--dynamic", "--seed", "7")
    assert mock.returncode == 0, mock.stderr
    docs = ndjson(mock.stdout)
    assert {d.get("type") for d in docs} >= {"agent_request", "agent_info"}
    conv = run("convert", stdin=mock.stdout)
    assert conv.returncode == 0, conv.stderr.decode()[-2000:]
    workflows = ndjson(conv.stdout)
    assert len(workflows) == 300
    static_total = sum(w[f] for w in workflows for f in COUNTER_FIELDS)
    assert static_total == dynamic_job_total(docs) > 0
    for path in ("submitted.running", "success", "failure.exception"):
        field = next(k for k, v in COUNTER_SOURCES.items() if v == path)
        head, _, tail = path.partition(".")
        dyn = sum((d.get("status", {}).get(head, {}) or {}).get(tail, 0) if tail
                  else d.get("status", {}).get(head, 0)
                  for d in docs if d.get("type") == "agent_request")
        assert sum(w[field] for w in workflows) == dyn
    assert b"300 workflows" in conv.stderr and b"0 problems" in conv.stderr


def test_mock_static_equals_converted_dynamic_for_every_record_type() -> None:
    static = run("mock", "-n", "60", "--seed", "3", "--records", "all")
    dynamic = run("mock", "-n", "60", "--seed", "3", "--dynamic")
    assert static.returncode == dynamic.returncode == 0
    converted = run("convert", "--records", "all", stdin=dynamic.stdout)
    assert converted.returncode == 0, converted.stderr
    left, right = ndjson(static.stdout), ndjson(converted.stdout)
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(left, key=key) == sorted(right, key=key)
    assert {r["RecordType"] for r in left} == {
        "Workflow", "WorkflowSite", "WorkflowTask", "TaskSite", "DatasetStats",
        "ChainParentage", "RequestTransition", "ChainArgs", "AgentRequest", "Agent",
        "JobGroup", "JobSample"}


def test_mock_json_format_and_output_file(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    result = run("mock", "-n", "25", "--format", "json", "-o", str(out))
    assert result.returncode == 0 and result.stdout == b""
    records = json.loads(out.read_text())
    assert isinstance(records, list) and len(records) == 25
    assert all("RequestName" in r and "RecordType" not in r for r in records)


def test_mock_is_deterministic_per_seed() -> None:
    a, b, c = (run("mock", "-n", "20", "--seed", s).stdout for s in ("1", "1", "2"))
    assert a == b != c


@pytest.mark.parametrize("form", ["array", "keyed", "ndjson", "single", "stdin"])
def test_convert_reads_every_input_form(form: str, tmp_path: Path) -> None:
    keyed = json.loads((DATA / "reqmgr_requests_20.json").read_text())
    docs = list(keyed.values())
    args: list[str] = []
    stdin = None
    path = tmp_path / "in.json"
    if form == "array":
        path.write_text(json.dumps(docs))
    elif form == "keyed":
        path = DATA / "reqmgr_requests_20.json"
    elif form == "ndjson":
        path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    elif form == "single":
        docs = docs[:1]
        path.write_text(json.dumps(docs[0], indent=2))
    if form == "stdin":
        stdin = json.dumps(docs).encode()
        args = ["-"]
    else:
        args = [str(path)]
    result = run("convert", *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    names = [r["RequestName"] for r in ndjson(result.stdout)]
    assert names == [d["RequestName"] for d in docs]


def test_convert_several_files_merge_agents_into_requests(tmp_path: Path) -> None:
    entry = json.loads((DATA / "requestcache_entry_with_AgentJobInfo.json").read_text())
    agent_doc = entry.pop("AgentJobInfo")["vocms008.cern.ch:9999"]
    (tmp_path / "req.json").write_text(json.dumps(entry))
    (tmp_path / "agent.json").write_text(json.dumps(agent_doc))
    result = run("convert", str(tmp_path / "agent.json"), str(tmp_path / "req.json"),
                 "--records", "workflow,site")
    assert result.returncode == 0, result.stderr
    records = ndjson(result.stdout)
    workflows = [r for r in records if r["RecordType"] == "Workflow"]
    assert len(workflows) == 1
    assert workflows[0]["HasRequest"] is True
    assert workflows[0]["SubmittedRunning"] == 66
    assert sorted(r["Site"] for r in records if r["RecordType"] == "WorkflowSite") == [
        "T1_US_FNAL", "T2_CH_CERN", "T2_CH_CERN_HLT"]


def test_convert_reports_problems_and_exits_1() -> None:
    lines = [
        {"type": "agent_request", "_id": "doc-1", "workflow": "wf", "agent_url": "a1",
         "status": {"success": "3", "mystery": 2}},
        {"type": "agent_request", "_id": "doc-2", "workflow": "wf", "agent_url": "a2",
         "status": {"success": 4}},
    ]
    stdin = ("\n".join(json.dumps(d) for d in lines) + "\nthis is not json\n").encode()
    result = run("convert", stdin=stdin)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "doc-1: status.success" in err and "'3'" in err
    assert "doc-1: status.mystery" in err and "OtherJobs" in err
    assert "<stdin>:3" in err
    (workflow,) = ndjson(result.stdout)
    assert workflow["Success"] == 7 and workflow["OtherJobs"] == 2
    assert workflow["Agents"] == ["a1", "a2"]


@pytest.mark.parametrize("text", [b"this is not json", b"{\"a\": ", b"\xff\xfe\x00"])
def test_convert_exits_2_for_unusable_input(text: bytes) -> None:
    result = run("convert", stdin=text)
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"wmstats convert:" in result.stderr and b"Traceback" not in result.stderr


def test_convert_missing_file_exits_2(tmp_path: Path) -> None:
    result = run("convert", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert b"cannot read" in result.stderr and b"Traceback" not in result.stderr


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["mock", "--records", "workflow,nonsense"])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mock", "--workflows", "-5"])


def test_read_documents_ndjson_streams_and_rejects_bad_lines() -> None:
    stream = io.StringIO('{"a": 1}\n\n{"b": 2}\n[1]\n')
    assert list(read_documents(stream)) == [{"a": 1}, {"b": 2}, [1]]
    with pytest.raises(InputError, match=":2"):
        list(read_documents(io.StringIO('{"a": 1}\n{oops\n')))
    assert list(read_documents(io.StringIO(""))) == []


def test_schema_command_prints_valid_json_schema() -> None:
    result = run("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["Workflow"]["properties"]["SubmittedRunning"]["x-source"] == (
        "agent_request.status.submitted.running")


def test_schema_check_detects_drift(tmp_path: Path) -> None:
    stale = tmp_path / "schema.md"
    stale.write_text("# old\n")
    assert run("schema", "--markdown", "--check", str(stale)).returncode == 1
    assert run("schema", "--markdown", "-o", str(stale)).returncode == 0
    assert run("schema", "--markdown", "--check", str(stale)).returncode == 0


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "wmstats", "--version"],
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith(b"wmstats ")


def test_input_reading_has_one_home() -> None:
    # wmstats.cli re-exports them for the callers that found them there
    assert (cli.InputError, cli.Progress, cli.read_documents) == (InputError, Progress,
                                                                   read_documents)


def test_progress_writes_only_to_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, tty = io.StringIO(), Terminal()
    for stream in (quiet, tty):
        progress = Progress("workflows", 3, stream)
        progress.step(3)
        progress.done()
        assert progress.count == 3
    assert quiet.getvalue() == ""
    assert tty.getvalue().startswith("\rworkflows: 3/3 (") and tty.getvalue().endswith("/s)\n")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_bench_names_come_from_the_benchmark_table() -> None:
    bench = _subcommands()["bench"]
    choices = next(a.choices for a in bench._actions if a.dest == "benchmark")
    assert sorted(choices or ()) == sorted(BENCHMARKS)
    assert {"report", "couchdb-source", "ui"} <= set(BENCHMARKS)


def test_plugin_commands_come_from_entry_points() -> None:
    assert COMMANDS.available()["couch-seed"] == "wmstats_couchdb.seed:SeedCommand"
    seed = _subcommands()["couch-seed"]
    assert "--workflows" in seed.format_help()
    assert seed.description is not None and "_bulk_docs" in seed.description
    # cli.py reaches plugins only through the registry
    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert "wmstats.commands" in imported
    assert not {name for name in imported if name.startswith("wmstats_")}


class _Hello(Command):
    help = "say hello"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="world")

    def run(self, args: argparse.Namespace) -> int:
        print(f"hello {args.name}")
        return 3


def test_a_plugin_adds_a_command(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    eps = {"hello": importlib.metadata.EntryPoint("hello", f"{__name__}:_Hello",
                                                  COMMANDS.group),
           # a plugin may not replace a built-in command
           "mock": importlib.metadata.EntryPoint("mock", f"{__name__}:_Hello", COMMANDS.group)}
    monkeypatch.setattr(COMMANDS, "_entry_points", lambda: eps)
    assert main(["hello", "--name", "you"]) == 3
    assert capsys.readouterr().out == "hello you\n"
    assert main(["mock", "-n", "1"]) == 0
    assert capsys.readouterr().out.startswith("{")


def test_missing_plugin_command_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(COMMANDS, "_entry_points", lambda: {})
    assert main(["couch-seed", "--workflows", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wmstats couch-seed: ")
    assert "install wmstats_couchdb" in err and "Traceback" not in err
    assert "(not available: needs the wmstats_couchdb plugin)" in " ".join(
        cli.build_parser().format_help().split())
