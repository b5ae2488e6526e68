"""The store conformance suite: every backend's tests subclass :class:`StoreSuite`.

A backend's test module needs only a ``store`` fixture that yields a fresh,
empty store and cleans up afterwards::

    import pytest
    from wmstats.testing.store_suite import StoreSuite
    from wmstats_sqlite import SqliteStore

    class TestSqliteStore(StoreSuite):
        @pytest.fixture
        def store(self, tmp_path):
            store = SqliteStore(path=tmp_path / "wmstats.db")
            yield store
            store.close()

Every answer is compared with the pure reference implementation in
:mod:`wmstats.query` (:func:`~wmstats.query.apply_query`,
:func:`~wmstats.query.distinct_values`, :func:`~wmstats.query.summarize`), for
every aggregate of :data:`wmstats.aggregates.AGGREGATES` and, to show that a
backend reads that table rather than knowing its entries, for aggregates added to
it during a test (:func:`extend_aggregates`).
Set ``concurrent_readers = False`` on a subclass whose store is not meant to
be shared between threads (the contract says it must be).
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

import attrs
import pytest

from wmstats import aggregates
from wmstats import query as query_model
from wmstats.aggregates import AGGREGATES, BY_KEY, Aggregate
from wmstats.query import (
    Filter,
    Page,
    Query,
    QueryError,
    QueryTimeoutError,
    apply_query,
    distinct_values,
    field_specs,
    make_projector,
    parse_query,
    summarize,
    time_budget,
)
from wmstats.query.model import INT_MAX, INT_MIN
from wmstats.schema import (
    BUNDLE_PARTS,
    Agent,
    RequestTransition,
    Workflow,
    WorkflowBundle,
    WorkflowJobs,
)
from wmstats.serialize import json_bytes, json_loads
from wmstats.store import Checkpoint, SourceEntry, Store, StoreListener
from wmstats.testing.data import (
    SPECIAL_NAMES,
    sample_agents,
    sample_bundles,
    sample_jobs,
)

__all__ = ["StoreSuite", "FILTER_CASES", "EXTRA_AGGREGATES", "extend_aggregates", "names"]

#: Flat-parameter queries covering every filter kind (parsed with parse_query).
FILTER_CASES: tuple[Mapping[str, str | Sequence[str]], ...] = (
    {},
    {"RequestStatus": "running-open"},
    {"RequestStatus": ["running-open", "running-closed"]},
    {"RequestStatus": "running-open,completed,störung"},
    {"RequestStatus": "no-such-status"},
    {"RequestStatus": "assigned", "RequestType": "StepChain"},
    {"RequestStatus.eq": "running-open"},
    {"Campaigns": "RunIII2024Summer24"},
    {"Campaigns": "HIN_Ⅱ,Run3Winter24"},
    {"Campaigns": ""},
    {"Campaign": ""},
    {"Sites": "T1_US_FNAL", "Agents": "vocms0250.cern.ch"},
    {"Sites": "T2_ÜBER_Site"},
    {"Teams": "relval", "RequestStatus": ["completed", "aborted"]},
    {"RequestName": "wf_percent_100%_done"},
    {"RequestName": "工作流_测试"},
    {"RequestName": "wf_🚀_rocket,wf_O'Brien_quote"},
    {"RequestName": "*user_pdmvserv*"},
    {"RequestName": "wf_*"},
    {"RequestName": "*quote"},
    {"RequestName": "wf_?ercent*"},
    {"RequestName": "*100%*"},
    {"RequestName": "*_*"},
    {"RequestName.glob": "*[bracket]*"},
    {"RequestName.glob": "*\\*"},
    {"RequestName.glob": ["wf_ü*", "*🚀*"]},
    {"RequestName.eq": "wf star*and?question"},
    {"RequestName.re": "^user_[a-z]+_wf00[0-3]"},
    {"RequestName.re": "(?i)WF_U"},
    {"RequestName.re": ["quote$", "^工作"]},
    {"RequestName.re": r"\d{4}_\d"},
    # Patterns that made a backtracking engine spend minutes on one value (issue 15):
    # linear on every backend, and the same answers.
    {"RequestName.re": "^(?:.|.){1,18}#"},
    {"RequestName.re": "^(?:.|.){1,18}_"},
    {"RequestName": "*?*?*?*?*#*"},
    {"RequestName": "*?*?*?*?*_*"},
    {"RequestName.glob": "?*_*?*?_*?"},
    {"Requestor": "Jörg"},
    {"Requestor.re": "ö"},
    {"OutputDatasets.glob": "/Prim1*"},
    {"OutputDatasets.re": "-v1/AOD$"},
    {"CMSSWVersions.glob": "*patch*"},
    {"PrepID.glob": "PREP-0000?"},
    # Text searches (the UI's text filters): ``*text*`` anywhere, and patterns
    # whose runs only narrow the candidates.
    {"PrepID": "*EP-0001*"},
    {"PrepID.glob": "PR*-0*2?"},
    {"InputDataset": "*Run2024*"},
    {"OutputDatasets": "*Proc-v0*"},
    {"OutputDatasets.glob": "*Prim1*AOD"},
    {"OutputDatasets.glob": "*Proc-v0*Proc-v1*"},  # no one element has both
    {"OutputDatasets.glob": ["*rim2*", "*RAW*"]},
    {"RequestDate": "2023-11-20..2023-11-25T12:00:00Z", "sort": "-RequestDate"},
    {"RequestDate": "2023-11-20..", "sort": "RequestDate", "PrepID": "*EP-000*"},
    {"RequestPriority": "110000"},
    {"RequestPriority": "0,300000"},
    {"RequestPriority": ">=110000"},
    {"RequestPriority": ">110000"},
    {"RequestPriority": "<80000"},
    {"RequestPriority": "<=80000"},
    {"RequestPriority": "80000..110000"},
    {"RequestPriority.gt": "0", "RequestPriority.lt": "300000"},
    {"RequestPriority": "-5..-1"},
    {"RequestDate": ">=1700500000"},
    {"RequestDate": "2023-11-20..2023-11-25T12:00:00Z"},
    {"StatusTime.le": "1700864000"},
    {"AgentUpdate": "0"},
    {"TotalEstimatedJobs": ">50000", "RequestStatus": "running-open"},
    {"Success": ">1000000"},
    {"ParentageResolved": "false"},
    {"HasRequest": "true", "ParentageResolved": "true"},
    {"ChainLength": "0"},
)

_SORTABLE = tuple(field_specs())


#: Aggregates that :func:`extend_aggregates` adds to the table: a scalar field, a
#: tuple field, and WorkflowSite sums over another Workflow field than ``Sites``.
EXTRA_AGGREGATES: Final[tuple[Aggregate, ...]] = (
    Aggregate("group", "Group", None, "group", "group", "Group", "physics group"),
    Aggregate("output", "OutputDatasets", None, "output", "dataset", "Output",
              "output dataset"),
    Aggregate("whitelist", "SiteWhitelist", "Site", "whitelist", "site", "Whitelisted site",
              "whitelisted site"),
)


def extend_aggregates(monkeypatch: pytest.MonkeyPatch,
                      extra: Sequence[Aggregate] = EXTRA_AGGREGATES) -> tuple[Aggregate, ...]:
    """Add aggregates to :data:`wmstats.aggregates.AGGREGATES` until the test ends.

    Every loaded ``wmstats`` module (and plugin) that holds the table --
    ``AGGREGATES``, ``BY_KEY``, ``BY_SEGMENT`` or the query model's
    ``AGGREGATE_KEYS`` -- gets the extended one.  A backend that derives something
    from the table when it is imported keeps the old answer, and fails the tests
    that use this: it must read the table when a store is made or used.

    :returns: the extended table.
    """
    table = (*AGGREGATES, *extra)
    by_key = {a.key: a for a in table}
    originals: list[object] = [aggregates.AGGREGATES, aggregates.BY_KEY, aggregates.BY_SEGMENT]
    replacements: list[object] = [table, types.MappingProxyType(by_key),
                                  types.MappingProxyType({a.segment: a for a in table})]
    keys = getattr(query_model, "AGGREGATE_KEYS", None)
    if keys is not None:
        originals.append(keys)
        replacements.append({a.key: a.field for a in table})
    for name, module in list(sys.modules.items()):
        if module is None or not (name.startswith(("wmstats.", "wmstats_"))
                                  or name == "wmstats"):
            continue
        for attr, value in list(vars(module).items()):
            for old, new in zip(originals, replacements):
                if value is old:
                    monkeypatch.setattr(module, attr, new)
    return table


def names(records: Sequence[Workflow] | Page) -> list[str]:
    """The ``RequestName`` of each record."""
    items = records.records if isinstance(records, Page) else records
    return [r.RequestName for r in items]


class StoreSuite:
    """Conformance tests for :class:`wmstats.store.Store` implementations."""

    #: Run the reader-threads-during-writes test.
    concurrent_readers: ClassVar[bool] = True

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh, empty store (subclasses must override)."""
        raise NotImplementedError("subclass StoreSuite and define a `store` fixture")
        yield  # pragma: no cover

    @pytest.fixture
    def bundles(self) -> list[WorkflowBundle]:
        return sample_bundles()

    @pytest.fixture
    def agents(self) -> list[Agent]:
        return sample_agents()

    @pytest.fixture
    def loaded(self, store: Store, bundles: list[WorkflowBundle],
               agents: list[Agent]) -> Store:
        """The store holding :func:`sample_bundles` and :func:`sample_agents`."""
        store.replace(bundles, agents)
        return store

    @pytest.fixture
    def workflows(self, bundles: list[WorkflowBundle]) -> list[Workflow]:
        return [b.workflow for b in bundles]

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def check_page(store: Store, workflows: list[Workflow], query: Query) -> Page:
        """Run ``query`` and compare the page with the reference implementation."""
        page = store.query(query)
        expected = apply_query(workflows, query)
        assert names(page) == names(expected), query
        assert page.records == expected.records, query
        assert page.total == expected.total, query
        assert (page.idx, page.limit, page.fields) == (query.idx, query.limit, query.fields)
        assert page.snapshot == store.snapshot_id
        # The text a server writes: the same records, masked, in the same order.
        project = make_projector(query.fields)
        encoded = store.query_encoded(query)
        assert list(encoded.lines) == [json_bytes(project(r)) for r in expected.records], query
        assert encoded.total == expected.total, query
        assert list(store.stream_encoded(query, batch_size=3)) == list(encoded.lines), query
        return page

    # ------------------------------------------------------------------ empty store

    def test_empty_store(self, store: Store) -> None:
        assert isinstance(store.snapshot_id, str)
        page = store.query(Query(limit=10))
        assert page.records == () and page.total == 0 and page.next_idx is None
        assert store.get("anything") is None
        assert store.get_many(["a", "b"]) == {}
        assert store.distinct("RequestStatus") == []
        for agg in AGGREGATES:
            assert store.aggregate(agg.key) == []
        assert store.get_agents() == []
        assert store.count() == 0
        assert list(store.stream()) == []

    # ------------------------------------------------------------------ writes, get

    def test_replace_then_get_every_bundle(self, loaded: Store,
                                           bundles: list[WorkflowBundle]) -> None:
        for bundle in bundles:
            assert loaded.get(bundle.workflow.RequestName) == bundle
        assert loaded.count() == len(bundles)
        # Every part of the bundle is stored, none is empty in the sample.
        for part, _cls in BUNDLE_PARTS.items():
            assert any(getattr(b, part) for b in bundles), part

    def test_every_part_round_trips(self, store: Store) -> None:
        # A bundle with many records in each part (BUNDLE_PARTS), odd values
        # included, comes back equal; so does one with every part empty.
        rich = sample_bundles(1, seed=5, prefix="rich_")[0]
        name = rich.workflow.RequestName
        history = tuple(RequestTransition(RequestName=name, Index=i, Status=f"stätus {i}",
                                          UpdateTime=2**40 + i, DN="" if i % 2 else "/CN=Ünï")
                        for i in range(40))
        rich = attrs.evolve(rich, transitions=history)
        bare = WorkflowBundle(workflow=Workflow(RequestName="bare_" + name))
        store.replace([rich, bare])
        assert store.get(name) == rich
        assert store.get(bare.workflow.RequestName) == bare
        moved = attrs.evolve(rich, transitions=history[:3])
        store.apply(upserts=[moved])
        assert store.get(name) == moved

    def test_get_many(self, loaded: Store, bundles: list[WorkflowBundle]) -> None:
        wanted = [b.workflow.RequestName for b in bundles[:5]] + ["no-such-workflow"]
        found = loaded.get_many(wanted)
        assert set(found) == set(wanted[:5])
        for bundle in bundles[:5]:
            assert found[bundle.workflow.RequestName] == bundle
        assert loaded.get("no-such-workflow") is None
        assert loaded.get_many([]) == {}

    def test_get_parts(self, loaded: Store, bundles: list[WorkflowBundle]) -> None:
        # The parts asked for come back whole; the others are whole or empty.
        wanted = [b.workflow.RequestName for b in bundles[:8]] + ["no-such-workflow"]
        expected = {b.workflow.RequestName: b for b in bundles[:8]}
        for parts in ({"chain"}, {"parentage", "agent_requests"}, set(BUNDLE_PARTS), set()):
            found = loaded.get_parts(wanted, parts)
            assert set(found) == set(expected), parts
            for name, bundle in found.items():
                full = expected[name]
                assert bundle.workflow == full.workflow
                for part in BUNDLE_PARTS:
                    got = getattr(bundle, part)
                    if part in parts:
                        assert got == getattr(full, part), (name, part)
                    else:
                        assert got in ((), getattr(full, part)), (name, part)
        with pytest.raises(ValueError, match="not bundle parts"):
            loaded.get_parts(wanted, {"chain", "bogus"})

    def test_unicode_and_special_names(self, loaded: Store) -> None:
        for name in SPECIAL_NAMES:
            bundle = loaded.get(name)
            assert bundle is not None and bundle.workflow.RequestName == name
            page = loaded.query(Query().where("RequestName", "eq", name))
            assert names(page) == [name]

    def test_snapshot_id_changes_with_every_write(self, store: Store,
                                                  bundles: list[WorkflowBundle]) -> None:
        seen = [store.snapshot_id]
        seen.append(store.replace(bundles[:10]))
        seen.append(store.apply(upserts=bundles[10:12]))
        seen.append(store.upsert(bundles[12]))
        seen.append(store.delete(bundles[0].workflow.RequestName))
        seen.append(store.apply())
        seen.append(store.replace([]))
        assert len(set(seen)) == len(seen)
        assert store.snapshot_id == seen[-1]

    def test_replace_replaces_everything(self, loaded: Store) -> None:
        fresh = sample_bundles(20, seed=99, prefix="second_")
        loaded.replace(fresh, [Agent(AgentURL="only.agent")])
        assert loaded.count() == 20
        assert sorted(names(loaded.query())) == sorted(b.workflow.RequestName for b in fresh)
        assert loaded.get(SPECIAL_NAMES[0]) is None
        assert [a.AgentURL for a in loaded.get_agents()] == ["only.agent"]
        assert loaded.distinct("Agents") == distinct_values(
            [b.workflow for b in fresh], "Agents")

    def test_replace_keeps_the_later_of_two_bundles_with_one_name(
            self, store: Store, bundles: list[WorkflowBundle]) -> None:
        first = bundles[0]
        second = attrs.evolve(first, workflow=attrs.evolve(first.workflow,
                                                           RequestStatus="completed"))
        store.replace([first, bundles[1], second])
        assert store.count() == 2
        assert store.get(first.workflow.RequestName) == second

    def test_failed_replace_keeps_previous_snapshot(self, loaded: Store,
                                                    bundles: list[WorkflowBundle],
                                                    workflows: list[Workflow]) -> None:
        before = loaded.snapshot_id

        def failing() -> Iterator[WorkflowBundle]:
            yield from sample_bundles(30, seed=3, prefix="broken_")
            raise RuntimeError("source failed half way")

        with pytest.raises(RuntimeError, match="half way"):
            loaded.replace(failing(), sample_agents(prefix="broken_"))
        assert loaded.snapshot_id == before
        self.check_page(loaded, workflows, Query())
        for bundle in bundles:
            assert loaded.get(bundle.workflow.RequestName) == bundle
        assert loaded.get("broken_" + SPECIAL_NAMES[0]) is None
        assert loaded.get_agents() == sorted(sample_agents(), key=lambda a: a.AgentURL)
        assert loaded.aggregate("site") == summarize(bundles, "site")

    def test_failed_replace_in_agents_keeps_previous_snapshot(
            self, loaded: Store, workflows: list[Workflow]) -> None:
        before = loaded.snapshot_id

        def failing() -> Iterator[Agent]:
            yield Agent(AgentURL="new.agent")
            raise ValueError("agent source failed")

        with pytest.raises(ValueError, match="agent source"):
            loaded.replace(sample_bundles(5, seed=4, prefix="x_"), failing())
        assert loaded.snapshot_id == before
        self.check_page(loaded, workflows, Query())
        assert loaded.get_agent("new.agent") is None

    def test_failed_apply_changes_nothing(self, loaded: Store,
                                          workflows: list[Workflow]) -> None:
        before = loaded.snapshot_id

        def failing() -> Iterator[WorkflowBundle]:
            yield sample_bundles(1, seed=5, prefix="partial_")[0]
            raise RuntimeError("changes feed broke")

        with pytest.raises(RuntimeError):
            loaded.apply(upserts=failing(), deletes=[workflows[0].RequestName])
        assert loaded.snapshot_id == before
        self.check_page(loaded, workflows, Query())

    # ------------------------------------------------------------------ source checkpoints

    def test_writes_from_a_source(self, store: Store, bundles: list[WorkflowBundle],
                                  agents: list[Agent]) -> None:
        # The data of replace_from_source / apply_from_source is written as by
        # replace / apply, on every backend; a store that persists keeps the
        # checkpoint and the entries with it, the others keep neither.
        keeps = store.keeps_checkpoints
        first = Checkpoint("src", {"a": "1", "b": "7-x"})
        entries = [SourceEntry(f"k{i}", f"wf{i % 3}", bytes([i]) * i) for i in range(12)]
        sid = store.replace_from_source(first, bundles[:10], agents, iter(entries))
        assert sid == store.snapshot_id and store.count() == 10
        assert store.get(bundles[3].workflow.RequestName) == bundles[3]
        assert store.get_agents() == sorted(agents, key=lambda a: a.AgentURL)
        assert store.checkpoint() == (first if keeps else None)

        def found(**kw: Any) -> list[SourceEntry]:
            return sorted(store.source_entries(**kw), key=lambda e: e.key)

        assert found(groups=["wf1"]) == (sorted((e for e in entries if e.group == "wf1"),
                                                key=lambda e: e.key) if keeps else [])
        assert found(keys=["k2", "k5", "nope"], groups=["wf2"]) == (
            sorted({e.key: e for e in entries if e.key in ("k2", "k5") or e.group == "wf2"}
                   .values(), key=lambda e: e.key) if keeps else [])
        second = Checkpoint("src", {"a": "2", "b": "7-x"})
        changed = SourceEntry("k1", "wf9", b"new")
        sid = store.apply_from_source(second, upserts=bundles[10:12],
                                      deletes=[bundles[0].workflow.RequestName],
                                      entries=[changed, SourceEntry("k99", "wf9")],
                                      deleted_entries=["k0", "k4", "unknown"])
        assert sid == store.snapshot_id and store.count() == 11
        assert store.get(bundles[0].workflow.RequestName) is None
        assert store.get(bundles[11].workflow.RequestName) == bundles[11]
        if keeps:
            assert store.checkpoint() == second
            assert found(groups=["wf9"]) == [changed, SourceEntry("k99", "wf9")]
            assert found(keys=["k0", "k4"]) == [] and len(found(keys=["k3"])) == 1
        else:
            assert store.checkpoint() is None and found(groups=["wf9"]) == []

    def test_other_writes_drop_the_checkpoint(self, store: Store,
                                              bundles: list[WorkflowBundle]) -> None:
        # A write that is not the source's makes its checkpoint and entries stale.
        writes: list[Callable[[], str]] = [lambda: store.apply(upserts=bundles[2:3]),
                                           lambda: store.replace(bundles[:3]), store.apply]
        for write in writes:
            store.replace_from_source(Checkpoint("src", {"a": "1"}), bundles[:5], (),
                                      [SourceEntry("k", "wf", b"x")])
            write()
            assert store.checkpoint() is None
            assert store.source_entries(keys=["k"], groups=["wf"]) == []

    def test_failed_writes_keep_the_checkpoint(self, store: Store,
                                               bundles: list[WorkflowBundle]) -> None:
        kept = Checkpoint("src", {"a": "1"})
        entry = SourceEntry("k", "wf", b"x")
        store.replace_from_source(kept, bundles[:5], (), [entry])
        before = store.snapshot_id

        def failing() -> Iterator[SourceEntry]:
            yield SourceEntry("k2", "wf", b"y")
            raise RuntimeError("entries failed")

        if not store.keeps_checkpoints:
            # Entries are never read: the writes succeed and keep nothing.
            store.replace_from_source(Checkpoint("src", {"a": "9"}), bundles[5:9], (),
                                      failing())
            store.apply_from_source(Checkpoint("src", {"a": "9"}), bundles[9:10],
                                    entries=failing())
            assert store.count() == 5 and store.checkpoint() is None
            return
        with pytest.raises(RuntimeError, match="entries failed"):
            store.replace_from_source(Checkpoint("src", {"a": "9"}), bundles[5:9], (),
                                      failing())
        with pytest.raises(RuntimeError, match="entries failed"):
            store.apply_from_source(Checkpoint("src", {"a": "9"}), bundles[5:9],
                                    entries=failing())
        # The entries are part of the write: its failure leaves everything as it was.
        assert store.snapshot_id == before and store.count() == 5
        assert store.checkpoint() == kept
        assert store.source_entries(groups=["wf"]) == [entry]

    def test_apply_upserts_and_deletes(self, loaded: Store,
                                       bundles: list[WorkflowBundle]) -> None:
        changed = attrs.evolve(bundles[3], workflow=attrs.evolve(
            bundles[3].workflow, RequestStatus="completed", RequestPriority=7),
            sites=())
        added = sample_bundles(3, seed=11, prefix="added_")
        gone = [bundles[0].workflow.RequestName, bundles[1].workflow.RequestName,
                "never-existed"]
        loaded.apply(upserts=[changed, *added], deletes=gone)
        expected = {b.workflow.RequestName: b for b in bundles}
        expected[changed.workflow.RequestName] = changed
        for bundle in added:
            expected[bundle.workflow.RequestName] = bundle
        for name in gone:
            expected.pop(name, None)
        assert loaded.count() == len(expected)
        for name, bundle in expected.items():
            assert loaded.get(name) == bundle
        assert loaded.get(gone[0]) is None
        workflows = [b.workflow for b in expected.values()]
        self.check_page(loaded, workflows, Query(sort=(("RequestPriority", "asc"),)))
        self.check_page(loaded, workflows,
                        parse_query({"RequestStatus": "completed", "sort": "-RequestDate"}))
        assert loaded.aggregate("site") == summarize(expected.values(), "site")
        assert loaded.aggregate("status") == summarize(expected.values(), "status")
        assert loaded.distinct("RequestStatus") == distinct_values(workflows, "RequestStatus")

    def test_apply_upsert_then_delete_same_name(self, loaded: Store,
                                                bundles: list[WorkflowBundle]) -> None:
        name = bundles[5].workflow.RequestName
        loaded.apply(upserts=[bundles[5]], deletes=[name])
        assert loaded.get(name) is None
        assert loaded.count() == len(bundles) - 1

    def test_single_item_helpers(self, store: Store, bundles: list[WorkflowBundle]) -> None:
        store.upsert(bundles[0])
        assert store.get(bundles[0].workflow.RequestName) == bundles[0]
        store.upsert(bundles[1])
        store.delete(bundles[0].workflow.RequestName)
        store.delete("unknown")
        assert names(store.query()) == [bundles[1].workflow.RequestName]

    # ------------------------------------------------------------------ agents

    def test_agents(self, loaded: Store, agents: list[Agent]) -> None:
        by_url = sorted(agents, key=lambda a: a.AgentURL)
        assert loaded.get_agents() == by_url
        assert loaded.get_agents([agents[1].AgentURL, "nope"]) == [agents[1]]
        assert loaded.get_agent(agents[0].AgentURL) == agents[0]
        assert loaded.get_agent("nope") is None
        updated = attrs.evolve(agents[0], Status="down", DrainMode=True)
        loaded.apply(agents=[updated, Agent(AgentURL="zz.new.agent")],
                     deleted_agents=[agents[2].AgentURL])
        urls = [a.AgentURL for a in loaded.get_agents()]
        assert urls == sorted({agents[0].AgentURL, agents[1].AgentURL, "zz.new.agent"})
        assert loaded.get_agent(agents[0].AgentURL) == updated

    # ------------------------------------------------------------------ queries

    @pytest.mark.parametrize("params", FILTER_CASES, ids=lambda p: repr(dict(p)))
    def test_filters_match_reference(self, loaded: Store, workflows: list[Workflow],
                                     params: Mapping[str, str | Sequence[str]]) -> None:
        query = parse_query(params, default_limit=None)
        self.check_page(loaded, workflows, query)
        self.check_page(loaded, workflows, attrs.evolve(
            query, sort=(("RequestPriority", "desc"),), idx=1, limit=7))
        assert loaded.count(query) == apply_query(workflows, query).total

    def test_filters_are_meaningful(self, loaded: Store, workflows: list[Workflow]) -> None:
        # Guard against a reference and a store that both match nothing.
        totals = [apply_query(workflows, parse_query(p, default_limit=None)).total
                  for p in FILTER_CASES]
        assert sum(0 < t < len(workflows) for t in totals) > len(FILTER_CASES) * 2 // 3

    def test_programmatic_filters(self, loaded: Store, workflows: list[Workflow]) -> None:
        cases = [
            Query(filters=(Filter("RequestStatus", "eq", ("running-open", "completed")),
                           Filter("RequestPriority", "ge", (80_000,)))),
            Query().where("Sites", "glob", "T2_*").where("Agents", "eq", "vocms0251.cern.ch"),
            Query().where("ParentageResolved", "eq", False),
            Query().where("RequestName", "re", "^wf").where("RequestName", "glob", "*e*"),
            Query().where("RequestDate", "lt", 1_700_000_000 + 3 * 86_400)
                   .where("RequestDate", "gt", 1_700_000_000),
            Query().where("CMSSWVersion", "eq", "CMSSW_14_0_7", "CMSSW_13_3_0"),
        ]
        for query in cases:
            self.check_page(loaded, workflows, query)

    def test_sort_by_every_field(self, loaded: Store, workflows: list[Workflow]) -> None:
        for name in _SORTABLE:
            for direction in ("asc", "desc"):
                self.check_page(loaded, workflows, Query(sort=((name, direction),)))

    def test_multi_key_sort_with_filters(self, loaded: Store,
                                         workflows: list[Workflow]) -> None:
        for sort in ("RequestStatus,-RequestPriority", "-Campaigns,RequestDate",
                     "-ParentageResolved,-RequestName", "Teams,-Sites,Group",
                     "-RequestPriority,RequestName"):
            for filters in ({}, {"RequestPriority": ">0"}, {"RequestName": "*_*"}):
                query = parse_query({**filters, "sort": sort}, default_limit=None)
                self.check_page(loaded, workflows, query)

    def test_sort_ties_break_on_request_name(self, store: Store) -> None:
        from wmstats.testing.data import simple_bundle
        store.replace([simple_bundle(f"tie_{i:02d}", RequestPriority=i % 3) for i in range(30)])
        page = store.query(Query(sort=(("RequestPriority", "desc"),)))
        pairs = [(r.RequestPriority, r.RequestName) for r in page.records]
        assert pairs == sorted(pairs, reverse=True)
        ascending = store.query(Query(sort=(("RequestPriority", "asc"),)))
        assert ascending.records == page.records[::-1]
        mixed = store.query(Query(sort=(("RequestPriority", "desc"), ("Group", "asc"))))
        pairs = [(r.RequestPriority, r.RequestName) for r in mixed.records]
        assert pairs == sorted(pairs, key=lambda p: (-p[0], p[1]))

    def test_paging_concatenates_to_the_whole(self, loaded: Store,
                                              workflows: list[Workflow]) -> None:
        for sort in ((), (("RequestPriority", "desc"),), (("Campaigns", "asc"),)):
            whole = apply_query(workflows, Query(sort=sort))
            for size in (1, 7, 10):
                collected: list[Workflow] = []
                idx: int | None = 0
                while idx is not None:
                    page = loaded.query(Query(sort=sort, idx=idx, limit=size))
                    assert page.total == len(workflows)
                    assert len(page.records) <= size
                    collected.extend(page.records)
                    idx = page.next_idx
                assert names(collected) == names(whole.records)

    def test_paging_edge_cases(self, loaded: Store, workflows: list[Workflow]) -> None:
        n = len(workflows)
        for query in (Query(idx=n), Query(idx=n + 100, limit=10), Query(idx=n - 1, limit=10),
                      Query(limit=0), Query(idx=5, limit=0), Query(idx=n - 3),
                      Query(limit=n + 50), Query(idx=0, limit=1),
                      parse_query({"RequestStatus": "running-open"}, default_limit=0),
                      parse_query({"RequestStatus": "running-open", "idx": "1000"})):
            page = self.check_page(loaded, workflows, query)
            if query.limit == 0 or query.idx >= page.total:
                assert page.records == ()
                assert page.next_idx is None
        assert loaded.query(Query(idx=n + 5, limit=10)).total == n
        assert loaded.query(Query(limit=0)).total == n

    def test_field_mask(self, loaded: Store, workflows: list[Workflow]) -> None:
        query = parse_query({"fields": "RequestName,Campaigns,StatusTime,RequestPriority",
                             "sort": "RequestName", "limit": "5"})
        page = self.check_page(loaded, workflows, query)
        dicts = page.dicts()
        assert [list(d) for d in dicts] == [["RequestName", "Campaigns", "StatusTime",
                                             "RequestPriority"]] * 5
        first = page.records[0]
        assert dicts[0]["Campaigns"] == list(first.Campaigns)
        assert dicts[0]["StatusTime"] == first.StatusTime

    def test_stream(self, loaded: Store, workflows: list[Workflow]) -> None:
        query = Query(sort=(("RequestDate", "desc"),))
        expected = apply_query(workflows, query).records
        assert names(list(loaded.stream(query, batch_size=7))) == names(expected)
        window = attrs.evolve(query, idx=3, limit=11)
        assert list(loaded.stream(window, batch_size=4)) == list(expected[3:14])
        filtered = parse_query({"RequestStatus": "running-open,completed"}, default_limit=None)
        assert list(loaded.stream(filtered)) == list(apply_query(workflows, filtered).records)

    def test_time_budget_stops_pattern_queries(self, loaded: Store,
                                               workflows: list[Workflow]) -> None:
        """Once the request's time budget (:func:`wmstats.query.time_budget`) is
        spent, a query with glob or regex filters raises QueryTimeoutError instead
        of going on (pages, counts, distinct values, aggregates); then the store
        answers the same queries normally."""
        cases = ({"RequestName.re": "^(?:.|.){1,18}_"}, {"RequestName": "*?*?*?*?*_*"},
                 {"Campaigns.glob": "*?*2*"}, {"OutputDatasets.re": "AOD$"})
        for params in cases:
            query = parse_query(params, default_limit=None)
            calls: list[Callable[[], object]] = [
                lambda: loaded.query(query), lambda: loaded.count(query),
                lambda: list(loaded.stream(query)),
                lambda: loaded.distinct("RequestStatus", query),
                lambda: loaded.aggregate("status", query)]
            for call in calls:
                with time_budget(0.001):
                    time.sleep(0.005)
                    with pytest.raises(QueryTimeoutError):
                        call()
        for params in cases:
            query = parse_query(params, default_limit=None)
            self.check_page(loaded, workflows, query)
            assert loaded.distinct("RequestStatus", query) == distinct_values(
                workflows, "RequestStatus", query)

    def test_integers_beyond_64_bits(self, loaded: Store, workflows: list[Workflow]) -> None:
        """Integers beyond 64 bits are refused before any backend sees them; the
        64-bit edges are values like any other, on every backend."""
        for text in ("99999999999999999999", "-99999999999999999999", str(INT_MAX + 1)):
            for params in ({"RequestPriority": text}, {"RequestPriority.ge": text},
                           {"Success.lt": text}, {"RequestDate": f"..{text}"}):
                with pytest.raises(QueryError) as info:
                    loaded.query(parse_query(params))
                assert "out of range" in info.value.message
        for params in ({"RequestPriority.le": str(INT_MAX)},
                       {"RequestPriority.ge": str(INT_MIN)},
                       {"RequestPriority": f"{INT_MIN},{INT_MAX}"},
                       {"Success.gt": str(INT_MAX)}, {"RequestDate.lt": str(INT_MIN)},
                       {"TotalInputEvents": f"{INT_MIN}..{INT_MAX}"}):
            query = parse_query(params, default_limit=None)
            self.check_page(loaded, workflows, query)
            assert loaded.count(query) == apply_query(workflows, query).total

    def test_bad_queries_raise_query_error(self, loaded: Store) -> None:
        with pytest.raises(QueryError) as info:
            loaded.distinct("NoSuchField")
        assert info.value.field == "NoSuchField"
        with pytest.raises(QueryError) as info:
            loaded.distinct("Transitions")  # the status history is its own record type
        assert info.value.field == "Transitions"
        with pytest.raises(QueryError) as info:
            loaded.aggregate("planet")
        assert "planet" in str(info.value)

    # ------------------------------------------------------------------ distinct

    def test_distinct_every_field(self, loaded: Store, workflows: list[Workflow]) -> None:
        for name in _SORTABLE:
            assert loaded.distinct(name) == distinct_values(workflows, name), name

    def test_distinct_with_filters(self, loaded: Store, workflows: list[Workflow]) -> None:
        for params in ({"RequestStatus": "running-open,assigned"}, {"RequestPriority": ">0"},
                       {"RequestName": "*_*"}, {"RequestStatus": "nothing"}):
            query = parse_query(params)
            for name in ("Sites", "Campaigns", "RequestStatus", "RequestPriority",
                         "HasRequest", "RequestName", "PrepID"):
                assert loaded.distinct(name, query) == distinct_values(workflows, name, query)

    # ------------------------------------------------------------------ aggregates

    def test_aggregates(self, loaded: Store, bundles: list[WorkflowBundle]) -> None:
        for agg in AGGREGATES:
            expected = summarize(bundles, agg.key)
            assert expected, agg
            assert loaded.aggregate(agg.key) == expected, agg

    def test_aggregates_with_filters(self, loaded: Store,
                                     bundles: list[WorkflowBundle]) -> None:
        for params in ({"RequestStatus": "running-open,running-closed"},
                       {"Sites": "T1_US_FNAL"}, {"RequestPriority": ">=110000"},
                       {"RequestName": "nothing-matches"}, {"RequestName.glob": "*"},
                       {"RequestType": "StepChain,TaskChain"}, {"Teams": "relval"}):
            query = parse_query(params)
            for agg in AGGREGATES:
                assert loaded.aggregate(agg.key, query) == summarize(bundles, agg.key, query), (
                    agg.key, params)

    def test_aggregates_follow_writes(self, loaded: Store,
                                      bundles: list[WorkflowBundle]) -> None:
        # Stores may cache aggregates per snapshot (or carry them across writes):
        # ask before and after each write.
        current = {b.workflow.RequestName: b for b in bundles}
        writes: list[tuple[list[WorkflowBundle], list[str]]] = [
            ([attrs.evolve(bundles[2], workflow=attrs.evolve(
                bundles[2].workflow, RequestStatus="störung", Sites=bundles[2].workflow.Sites[:1],
                Campaigns=("NewCampaign",), Success=12345)),
              *sample_bundles(4, seed=21, prefix="later_")],
             [bundles[0].workflow.RequestName, bundles[1].workflow.RequestName]),
            ([], [b.workflow.RequestName for b in bundles[3:30]]),
            (sample_bundles(2, seed=22, prefix="later_"), ["later_" + SPECIAL_NAMES[0]]),
        ]
        for agg in AGGREGATES:
            assert loaded.aggregate(agg.key) == summarize(current.values(), agg.key)
        for upserts, deletes in writes:
            loaded.apply(upserts=upserts, deletes=deletes)
            for bundle in upserts:
                current[bundle.workflow.RequestName] = bundle
            for name in deletes:
                current.pop(name, None)
            for agg in AGGREGATES:
                assert loaded.aggregate(agg.key) == summarize(current.values(), agg.key), agg
            assert loaded.distinct("Campaigns") == distinct_values(
                [b.workflow for b in current.values()], "Campaigns")
        loaded.replace(bundles[:5])
        assert loaded.aggregate("status") == summarize(bundles[:5], "status")

    def test_summary_of_one_value(self, loaded: Store, bundles: list[WorkflowBundle]) -> None:
        for agg in AGGREGATES:
            for item in summarize(bundles, agg.key):
                assert loaded.summary(agg.key, item.Value) == item
        empty = loaded.summary("site", "T0_NO_Where")
        assert empty.Workflows == 0 and empty.Success == 0 and empty.Value == "T0_NO_Where"
        query = parse_query({"RequestStatus": "running-open"})
        expected = {s.Value: s for s in summarize(bundles, "campaign", query)}
        for value, item in expected.items():
            assert loaded.summary("campaign", value, query) == item

    def test_aggregate_sums_are_exact(self, loaded: Store,
                                      bundles: list[WorkflowBundle]) -> None:
        # Independent of summarize(): per-site totals equal the WorkflowSite sums.
        by_site: dict[str, int] = {}
        for bundle in bundles:
            for ws in bundle.sites:
                by_site[ws.Site] = by_site.get(ws.Site, 0) + ws.Success + ws.CooloffJob
        got = {s.Value: s.Success + s.CooloffJob for s in loaded.aggregate("site")}
        assert got == {k: v for k, v in by_site.items() if k in got}
        assert set(by_site) <= set(got)
        total = sum(b.workflow.Success for b in bundles)
        assert sum(s.Success for s in loaded.aggregate("status")) == total
        assert total > 2**40

    def test_scalar_and_tuple_aggregates(self, store: Store,
                                         bundles: list[WorkflowBundle]) -> None:
        # Independent of summarize(): status and type (scalar fields) count a
        # workflow once under its value, "" included; team (a tuple field) once
        # under each distinct team, and a workflow without a team nowhere.
        assert {"status": "RequestStatus", "type": "RequestType", "team": "Teams"} == {
            by: BY_KEY[by].field for by in ("status", "type", "team")}
        edits: list[dict[str, Any]] = [
            {"RequestType": "", "RequestStatus": "", "Teams": ("relval",)},
            {"RequestType": "", "Teams": ()},
            {"Teams": ("hlt", "relval", "hlt")},
            {"RequestType": "ReReco", "Teams": ("Téam № 1",)},
            {"RequestStatus": "running-open", "Teams": ("relval",)},
        ]
        chosen = [attrs.evolve(b, workflow=attrs.evolve(b.workflow, **edit))
                  for b, edit in zip(bundles, edits)]
        store.replace(chosen)
        workflows = [b.workflow for b in chosen]
        values_of: dict[str, Callable[[Workflow], list[str]]] = {
            "status": lambda wf: [wf.RequestStatus],
            "type": lambda wf: [wf.RequestType],
            "team": lambda wf: sorted(set(wf.Teams)),
        }
        for by, values in values_of.items():
            expected: dict[str, tuple[int, dict[str, int], int]] = {}
            for wf in workflows:
                for value in values(wf):
                    count, statuses, success = expected.get(value, (0, {}, 0))
                    statuses = {**statuses,
                                wf.RequestStatus: statuses.get(wf.RequestStatus, 0) + 1}
                    expected[value] = (count + 1, statuses, success + wf.Success)
            got = {s.Value: (s.Workflows, {c.RequestStatus: c.Workflows
                                           for c in s.WorkflowsByStatus}, s.Success)
                   for s in store.aggregate(by)}
            assert got == expected, by
            assert [s.Value for s in store.aggregate(by)] == sorted(expected), by
            for value, (count, _statuses, _success) in expected.items():
                assert store.summary(by, value).Workflows == count, (by, value)
        assert "" in {s.Value for s in store.aggregate("type")}
        assert "" in {s.Value for s in store.aggregate("status")}
        assert "" not in {s.Value for s in store.aggregate("team")}
        query = parse_query({"RequestType": ""})
        assert {s.Value: s.Workflows for s in store.aggregate("team", query)} == {"relval": 1}
        assert store.aggregate("type", query) == summarize(chosen, "type", query)

    @pytest.fixture
    def extended_aggregates(self, monkeypatch: pytest.MonkeyPatch) -> tuple[Aggregate, ...]:
        """The aggregate table with :data:`EXTRA_AGGREGATES` (request it before
        ``store``, so that the store is made with it)."""
        return extend_aggregates(monkeypatch)

    def test_added_aggregates_need_no_backend_change(
            self, extended_aggregates: tuple[Aggregate, ...], store: Store,
            bundles: list[WorkflowBundle]) -> None:
        # Aggregates added to the table (a scalar field, a tuple field, WorkflowSite
        # sums over SiteWhitelist) are answered like the built-in ones.
        added = extended_aggregates[-len(EXTRA_AGGREGATES):]
        assert [a.key for a in added] == [a.key for a in EXTRA_AGGREGATES]
        store.replace(bundles)
        query = parse_query({"RequestStatus": "running-open,completed,assigned"})
        for agg in added:
            expected = summarize(bundles, agg.key)
            assert expected and any(s.Success for s in expected), agg.key
            assert store.aggregate(agg.key) == expected, agg.key
            assert store.aggregate(agg.key, query) == summarize(bundles, agg.key, query), agg.key
            for item in expected[:5]:
                assert store.summary(agg.key, item.Value) == item, (agg.key, item.Value)
        # The whitelist sums differ from the site ones: a different membership.
        assert summarize(bundles, "whitelist") != [
            attrs.evolve(s, By="whitelist") for s in summarize(bundles, "site")]
        current = {b.workflow.RequestName: b for b in bundles}
        changed = attrs.evolve(bundles[4], workflow=attrs.evolve(
            bundles[4].workflow, Group="NEW", SiteWhitelist=bundles[4].workflow.Sites))
        store.apply(upserts=[changed], deletes=[bundles[5].workflow.RequestName])
        current[changed.workflow.RequestName] = changed
        del current[bundles[5].workflow.RequestName]
        for agg in added:
            assert store.aggregate(agg.key) == summarize(current.values(), agg.key), agg.key
        assert store.count(parse_query({"Group": "NEW"})) == 1

    # ------------------------------------------------------------------ job records

    @pytest.fixture
    def jobs(self) -> list[WorkflowJobs]:
        """Job records of the special names (groups with more jobs than samples)."""
        return sample_jobs(SPECIAL_NAMES)

    def test_jobs_empty(self, store: Store) -> None:
        assert isinstance(store.jobs_snapshot_id, str)
        assert store.get_jobs(["a", "b"]) == {}
        assert store.jobs("a") is None
        assert store.get_jobs([]) == {}

    def test_jobs_round_trip(self, store: Store, jobs: list[WorkflowJobs]) -> None:
        assert any(len(j.samples) >= 3 for j in jobs)
        assert any(s.Document and len(s.Details) > 1000 for j in jobs for s in j.samples)
        store.replace_jobs(jobs)
        for item in jobs:
            assert store.jobs(item.RequestName) == item  # records and their order
        names_ = [j.RequestName for j in jobs]
        found = store.get_jobs([*names_, "no-such-workflow"])
        assert list(found) == names_ and list(found.values()) == jobs

    def test_jobs_are_apart_from_the_snapshot(self, loaded: Store,
                                              jobs: list[WorkflowJobs]) -> None:
        before = loaded.snapshot_id
        count = loaded.count()
        loaded.replace_jobs(jobs)
        loaded.apply_jobs([jobs[0]], [jobs[1].RequestName])
        assert loaded.snapshot_id == before and loaded.count() == count
        loaded.replace(sample_bundles(5, seed=3, prefix="other_"))
        assert loaded.jobs(jobs[0].RequestName) == jobs[0]  # a replace keeps the jobs
        other = "no-workflow-of-this-name"
        orphan = WorkflowJobs(other, tuple(attrs.evolve(g, RequestName=other)
                                           for g in jobs[0].groups),
                              tuple(attrs.evolve(s, RequestName=other) for s in jobs[0].samples))
        loaded.apply_jobs([orphan])
        assert loaded.jobs("no-workflow-of-this-name") == orphan

    def test_jobs_snapshot_id_changes_with_every_job_write(
            self, store: Store, jobs: list[WorkflowJobs]) -> None:
        seen = [store.jobs_snapshot_id]
        seen.append(store.replace_jobs(jobs[:4]))
        seen.append(store.apply_jobs(jobs[4:6]))
        seen.append(store.apply_jobs(deletes=[jobs[0].RequestName]))
        seen.append(store.apply_jobs())
        seen.append(store.replace_jobs([]))
        assert len(set(seen)) == len(seen)
        assert store.jobs_snapshot_id == seen[-1]

    def test_apply_jobs_upserts_and_deletes(self, store: Store,
                                            jobs: list[WorkflowJobs]) -> None:
        store.replace_jobs(jobs[:5])
        first, second = jobs[0], jobs[1]
        fewer = WorkflowJobs(first.RequestName, first.groups[:1], first.samples[:1])
        sid = store.apply_jobs([fewer, jobs[6]], [second.RequestName, "unknown"])
        assert store.jobs_snapshot_id == sid
        assert store.jobs(first.RequestName) == fewer
        assert store.jobs(second.RequestName) is None
        assert store.jobs(jobs[6].RequestName) == jobs[6]
        assert store.jobs(jobs[2].RequestName) == jobs[2]
        # No records: the workflow's job records go.
        store.apply_jobs([WorkflowJobs(jobs[2].RequestName)])
        assert store.jobs(jobs[2].RequestName) is None
        # An upsert then a delete of one name in one write: deleted.
        store.apply_jobs([jobs[3]], [jobs[3].RequestName])
        assert store.jobs(jobs[3].RequestName) is None

    def test_replace_jobs_replaces_all(self, store: Store, jobs: list[WorkflowJobs]) -> None:
        store.replace_jobs(jobs[:5])
        store.replace_jobs([jobs[5], WorkflowJobs("empty")])
        assert set(store.get_jobs(j.RequestName for j in jobs)) == {jobs[5].RequestName}
        assert store.jobs("empty") is None

    def test_failed_replace_jobs_keeps_the_previous(self, store: Store,
                                                    jobs: list[WorkflowJobs]) -> None:
        store.replace_jobs(jobs[:3])
        sid = store.jobs_snapshot_id

        def broken() -> Iterator[WorkflowJobs]:
            yield jobs[4]
            raise RuntimeError("source died")

        with pytest.raises(RuntimeError, match="source died"):
            store.replace_jobs(broken())
        assert store.jobs_snapshot_id == sid
        assert set(store.get_jobs(j.RequestName for j in jobs)) == {
            j.RequestName for j in jobs[:3]}

    # ------------------------------------------------------------------ listeners

    def test_listeners_hear_every_successful_write(self, store: Store,
                                                   bundles: list[WorkflowBundle],
                                                   jobs: list[WorkflowJobs]) -> None:
        heard: list[tuple[Any, ...]] = []

        class Recorder(StoreListener):
            def replacing(self, store: Store) -> Callable[[WorkflowBundle], None]:
                heard.append(("replacing",))
                return lambda bundle: heard.append(("bundle", bundle.workflow.RequestName))

            def replaced(self, store: Store, snapshot_id: str,
                         agents: Sequence[Agent]) -> None:
                heard.append(("replaced", snapshot_id, len(agents)))

            def replace_failed(self, store: Store) -> None:
                heard.append(("failed",))

            def applied(self, store: Store, snapshot_id: str,
                        upserts: Sequence[WorkflowBundle], deletes: Sequence[str],
                        agents: Sequence[Agent], deleted_agents: Sequence[str]) -> None:
                heard.append(("applied", snapshot_id, [b.workflow.RequestName for b in upserts],
                              list(deletes), len(agents), list(deleted_agents)))

            def jobs_written(self, store: Store, jobs_snapshot_id: str,
                             upserts: Sequence[WorkflowJobs] | None,
                             deletes: Sequence[str]) -> None:
                heard.append(("jobs", jobs_snapshot_id, None if upserts is None else
                              [j.RequestName for j in upserts], list(deletes)))

        recorder = Recorder()
        store.add_listener(recorder)
        store.add_listener(recorder)  # once only
        sid = store.replace(iter(bundles[:3]), sample_agents())
        names3 = [b.workflow.RequestName for b in bundles[:3]]
        assert heard == [("replacing",), *(("bundle", n) for n in names3),
                         ("replaced", sid, len(sample_agents()))]
        heard.clear()
        sid = store.apply(iter(bundles[3:4]), ["x"], deleted_agents=["a"])
        assert heard == [("applied", sid, [bundles[3].workflow.RequestName], ["x"], 0, ["a"])]
        heard.clear()

        def broken() -> Iterator[WorkflowBundle]:
            yield bundles[5]
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.replace(broken())
        assert heard[0] == ("replacing",) and heard[-1] == ("failed",)
        heard.clear()
        jsid = store.replace_jobs(jobs[:2])
        jsid2 = store.apply_jobs(iter(jobs[2:3]), ["gone"])
        assert heard == [("jobs", jsid, None, []),
                         ("jobs", jsid2, [jobs[2].RequestName], ["gone"])]
        store.remove_listener(recorder)
        heard.clear()
        store.apply()
        assert heard == []

    def test_listeners_hear_source_writes_once(self, store: Store,
                                               bundles: list[WorkflowBundle],
                                               agents: list[Agent]) -> None:
        # A source writes through replace_from_source / apply_from_source (which a
        # store that persists overrides with its own transaction): listeners hear
        # each such write once, as a replace or an apply, whether or not the
        # backend's implementation calls replace / apply.
        heard: list[tuple[Any, ...]] = []

        class Recorder(StoreListener):
            def replacing(self, store: Store) -> Callable[[WorkflowBundle], None]:
                heard.append(("replacing",))
                return lambda bundle: heard.append(("bundle", bundle.workflow.RequestName))

            def replaced(self, store: Store, snapshot_id: str,
                         agents: Sequence[Agent]) -> None:
                heard.append(("replaced", snapshot_id, len(agents)))

            def replace_failed(self, store: Store) -> None:
                heard.append(("failed",))

            def applied(self, store: Store, snapshot_id: str,
                        upserts: Sequence[WorkflowBundle], deletes: Sequence[str],
                        agents: Sequence[Agent], deleted_agents: Sequence[str]) -> None:
                heard.append(("applied", snapshot_id, [b.workflow.RequestName for b in upserts],
                              list(deletes), len(agents), list(deleted_agents)))

        store.add_listener(Recorder())
        first = Checkpoint("src", {"a": "1"})
        entries = [SourceEntry("k1", "wf1", b"x"), SourceEntry("k2", "wf2", b"y")]
        sid = store.replace_from_source(first, iter(bundles[:3]), iter(agents), iter(entries))
        names3 = [b.workflow.RequestName for b in bundles[:3]]
        assert heard == [("replacing",), *(("bundle", n) for n in names3),
                         ("replaced", sid, len(agents))]
        # the write itself is whole: data, agents, and (where kept) checkpoint and entries
        assert store.count() == 3 and store.get_agents() == sorted(agents,
                                                                   key=lambda a: a.AgentURL)
        assert store.checkpoint() == (first if store.keeps_checkpoints else None)
        assert len(store.source_entries(groups=["wf1", "wf2"])) == (
            2 if store.keeps_checkpoints else 0)
        heard.clear()
        second = Checkpoint("src", {"a": "2"})
        sid = store.apply_from_source(second, iter(bundles[3:4]), [names3[0]],
                                      agents=iter(agents[:1]), deleted_agents=["gone"],
                                      entries=iter([SourceEntry("k3", "wf3", b"z")]),
                                      deleted_entries=["k1"])
        assert heard == [("applied", sid, [bundles[3].workflow.RequestName], [names3[0]], 1,
                          ["gone"])]
        assert store.count() == 3 and store.get(names3[0]) is None
        if store.keeps_checkpoints:
            assert store.checkpoint() == second
            assert sorted(e.key for e in store.source_entries(
                groups=["wf1", "wf2", "wf3"])) == ["k2", "k3"]
        heard.clear()

        def broken() -> Iterator[WorkflowBundle]:
            yield bundles[5]
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            store.replace_from_source(Checkpoint("src", {"a": "9"}), broken())
        assert heard == [("replacing",), ("bundle", bundles[5].workflow.RequestName),
                         ("failed",)]
        assert store.snapshot_id == sid

    # ------------------------------------------------------------------ concurrency

    def test_readers_during_writes(self, store: Store) -> None:
        if not self.concurrent_readers:
            pytest.skip("store is not shared between threads")
        generations = [sample_bundles(25 + 5 * g, seed=g, prefix=f"gen{g}_") for g in range(4)]
        sizes = {f"gen{g}_": len(b) for g, b in enumerate(generations)}
        store.replace(generations[0])
        errors: list[BaseException] = []
        stop = threading.Event()
        reads = [0]

        def reader() -> None:
            try:
                while not stop.is_set():
                    page = store.query(Query(sort=(("RequestPriority", "desc"),)))
                    prefixes = {name[:5] for name in names(page)}
                    assert len(prefixes) == 1, prefixes
                    assert page.total == len(page.records) == sizes[prefixes.pop()]
                    status = store.aggregate("status")
                    assert sum(s.Workflows for s in status) in sizes.values()
                    reads[0] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            for _round in range(3):
                for bundles in generations:
                    store.replace(bundles)
                    time.sleep(0.01)
                store.apply(upserts=generations[-1][:3])
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert not errors, errors[0]
        assert reads[0] > 0

    def test_readers_during_updates_see_one_snapshot(self, store: Store) -> None:
        """Updates of workflows that exist (the live feed's usual write) while readers
        read: each page, as records and as JSON text, comes from one snapshot."""
        if not self.concurrent_readers:
            pytest.skip("store is not shared between threads")
        base = sample_bundles(30, seed=3)
        errors: list[BaseException] = []
        stop = threading.Event()
        reads = [0]

        def generation(g: int) -> list[WorkflowBundle]:
            return [attrs.evolve(b, workflow=attrs.evolve(b.workflow, RequestPriority=g,
                                                          Success=g))
                    for b in base]

        store.replace(generation(0))

        def reader() -> None:
            try:
                while not stop.is_set():
                    page = store.query(Query(limit=None))
                    assert page.total == len(base)
                    assert len({(r.RequestPriority, r.Success) for r in page.records}) == 1
                    encoded = store.query_encoded(Query(sort=(("RequestPriority", "desc"),)))
                    values = {(doc["RequestPriority"], doc["Success"])
                              for doc in map(json_loads, encoded.lines)}
                    assert len(values) == 1 and encoded.total == len(base), values
                    reads[0] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            for g in range(1, 9):
                store.apply(upserts=generation(g))
                time.sleep(0.01)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert not errors, errors[0]
        assert reads[0] > 0
        assert {r.RequestPriority for r in store.query(Query(limit=None)).records} == {8}
