"""The query model: parsing, validation, matching semantics, reference functions."""

from __future__ import annotations

import pickle
import re
import threading
import time

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from wmstats.schema import WorkflowBundle
from wmstats.query import (
    Filter,
    LimitError,
    Page,
    Query,
    QueryError,
    QueryTimeoutError,
    apply_query,
    compile_filter,
    compile_glob,
    distinct_values,
    field_spec,
    field_specs,
    filter_records,
    glob_to_regex,
    parse_query,
    parse_time,
    summarize,
    time_budget,
)
from wmstats.query import PatternError, budget, compile_regex
from wmstats.query.match import required_literal
from wmstats.query.model import INT_MAX, INT_MIN
from wmstats.schema import Workflow, WorkflowSite


def test_parse_the_documented_example() -> None:
    query = parse_query({"RequestStatus": ["running-open", "running-closed"],
                         "RequestName": "*HIG*", "RequestPriority": ">=100000",
                         "sort": "-RequestPriority,RequestDate", "idx": "20", "limit": "10",
                         "fields": "RequestName,RequestStatus"})
    assert query == Query(
        filters=(Filter("RequestStatus", "eq", ("running-open", "running-closed")),
                 Filter("RequestName", "glob", ("*HIG*",)),
                 Filter("RequestPriority", "ge", (100000,))),
        sort=(("RequestPriority", "desc"), ("RequestDate", "asc")),
        idx=20, limit=10, fields=("RequestName", "RequestStatus"))


@pytest.mark.parametrize(("params", "expected"), [
    ({"Sites": "T1_US_FNAL,T2_CH_CERN"}, [Filter("Sites", "eq", ("T1_US_FNAL", "T2_CH_CERN"))]),
    ({"Sites.eq": "a,b"}, [Filter("Sites", "eq", ("a,b",))]),
    ({"Sites": ["T1_*", "T2_CH_CERN"]}, [Filter("Sites", "glob", ("T1_*", "T2_CH_CERN"))]),
    ({"RequestName.re": ["^a{1,3}", "b$"]}, [Filter("RequestName", "re", ("^a{1,3}", "b$"))]),
    ({"RequestPriority": "5..10"}, [Filter("RequestPriority", "ge", (5,)),
                                    Filter("RequestPriority", "le", (10,))]),
    ({"RequestPriority": "..10"}, [Filter("RequestPriority", "le", (10,))]),
    ({"RequestPriority": "-3..", "Success": "<7"}, [Filter("RequestPriority", "ge", (-3,)),
                                                    Filter("Success", "lt", (7,))]),
    ({"RequestPriority": "1,2,2"}, [Filter("RequestPriority", "eq", (1, 2))]),
    ({"RequestPriority.gt": ["1", "5"]}, [Filter("RequestPriority", "gt", (1,)),
                                          Filter("RequestPriority", "gt", (5,))]),
    ({"RequestDate": "2024-01-01"}, [Filter("RequestDate", "eq", (1704067200,))]),
    ({"RequestDate": ">=2024-01-01T01:00:00+01:00"}, [Filter("RequestDate", "ge",
                                                             (1704067200,))]),
    ({"HasRequest": "false", "ParentageResolved": "YES"},
     [Filter("HasRequest", "eq", (False,)), Filter("ParentageResolved", "eq", (True,))]),
    ({"Group": ""}, [Filter("Group", "eq", ("",))]),
    ({"RequestStatus": []}, []),
])
def test_parse_filters(params: dict[str, str | list[str]], expected: list[Filter]) -> None:
    assert list(parse_query(params).filters) == expected


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"Planet": "x"}, "Planet", "unknown parameter"),
    ({"RequestName.like": "x"}, "RequestName.like", "unknown operator"),
    ({"RequestName.re": "(unclosed"}, "RequestName", "bad regular expression"),
    ({"RequestStatus.gt": "5"}, "RequestStatus", "needs a numeric field"),
    ({"RequestStatus": ">5"}, None, None),  # a plain string, not a comparison
    ({"RequestPriority.re": "1"}, "RequestPriority", "needs a string field"),
    ({"RequestPriority.glob": "1*"}, "RequestPriority", "needs a string field"),
    ({"RequestPriority": "high"}, "RequestPriority", "expected an integer"),
    ({"RequestPriority": "1.5"}, "RequestPriority", "expected an integer"),
    ({"RequestPriority": "1,>=x"}, "RequestPriority", "expected an integer"),
    ({"RequestPriority": " 1"}, "RequestPriority", "expected an integer"),
    ({"RequestDate": "2023-02-29"}, "RequestDate", "ISO 8601"),
    ({"HasRequest": " true"}, "HasRequest", "true or false"),
    ({"sort": "RequestName,,Campaign"}, "", "empty field name"),
    ({"fields": " RequestName"}, " RequestName", "not a field name"),
    ({"sort": "--RequestName"}, "--RequestName", "not a field name"),
    ({"RequestPriority": ".."}, "RequestPriority", "at least one bound"),
    ({"RequestDate": "yesterday"}, "RequestDate", "ISO 8601"),
    ({"HasRequest": "perhaps"}, "HasRequest", "true or false"),
    ({"ParentageResolved.gt": "1"}, "ParentageResolved", "needs a numeric field"),
    ({"Transitions": "new"}, "Transitions", "unknown parameter"),  # its own record type now
    ({"idx": "-1"}, "idx", "from 0"),
    ({"idx": "ten"}, "idx", "from 0"),
    ({"idx": "99999999999999999999"}, "idx", "from 0"),
    ({"idx": ["1", "2"]}, "idx", "more than once"),
    ({"limit": "1001"}, "limit", "at most 1000"),
    ({"sort": "-Planet"}, "Planet", "unknown field"),
    ({"sort": "Transitions"}, "Transitions", "unknown field"),
    ({"fields": "RequestName,Nope"}, "Nope", "unknown field"),
    ({"Sites": "x", "allowed": ""}, None, None),
])
def test_parse_errors_name_the_field(params: dict[str, str | list[str]], field: str | None,
                                     words: str | None) -> None:
    params = {k: v for k, v in params.items() if k != "allowed"}
    if field is None:
        parse_query(params, max_limit=1000)
        return
    with pytest.raises(QueryError) as info:
        parse_query(params, max_limit=1000)
    assert info.value.field == field
    assert words is not None and words in info.value.message
    assert str(info.value).startswith(f"{field}: ")
    # The parameter at fault is named too: the one key of ``params``.
    assert info.value.parameter == next(iter(params))


@pytest.mark.parametrize(("params", "parameter", "field"), [
    ({"RequestDate": "2024-01-01", "RequestDate.ge": "yesterday"}, "RequestDate.ge",
     "RequestDate"),
    ({"RequestDate.ge": "yesterday", "RequestDate": "2024-01-01"}, "RequestDate.ge",
     "RequestDate"),
    ({"RequestDate.le": "2024-01-01", "RequestDate": "soon"}, "RequestDate", "RequestDate"),
    ({"RequestName": "x", "sort": "RequestName,-Nope"}, "sort", "Nope"),
    ({"sort": "RequestName", "fields": "RequestName,Nope"}, "fields", "Nope"),
    ({"Sites": "x", "Sites.re": "["}, "Sites.re", "Sites"),
    ({"idx": "1", "limit": ["1", "2"]}, "limit", "limit"),
])
def test_parse_errors_name_the_parameter(params: dict[str, str | list[str]], parameter: str,
                                         field: str) -> None:
    """Several parameters on one field: the error names the one that is wrong."""
    with pytest.raises(QueryError) as info:
        parse_query(params)
    assert (info.value.parameter, info.value.field) == (parameter, field)


def test_limits_are_applied_by_the_parser() -> None:
    with pytest.raises(LimitError) as info:
        parse_query({"limit": "51", "RequestStatus": "new"}, max_limit=50)
    assert isinstance(info.value, QueryError)
    assert (info.value.limit, info.value.maximum) == (51, 50)
    assert (info.value.parameter, info.value.field) == ("limit", "limit")
    assert info.value.message == "must be at most 50, got 51"
    with pytest.raises(LimitError) as info:
        parse_query({}, default_limit=None, max_limit=50)
    assert (info.value.limit, info.value.maximum) == (None, 50)
    assert parse_query({"limit": "50"}, max_limit=50).limit == 50
    assert parse_query({}, default_limit=20, max_limit=50).limit == 20
    again = pickle.loads(pickle.dumps(LimitError(51, 50)))
    assert (type(again), again.limit, again.maximum, str(again)) == (
        LimitError, 51, 50, "limit: must be at most 50, got 51")


def test_whitelist_and_limits() -> None:
    with pytest.raises(QueryError, match="not allowed") as info:
        parse_query({"PrepID": "x"}, allowed=["RequestStatus"])
    assert info.value.field == "PrepID"
    assert parse_query({"RequestStatus": "x"}, allowed=["RequestStatus"]).filters
    assert parse_query({}).limit == 100
    assert parse_query({}, default_limit=None).limit is None
    with pytest.raises(QueryError, match="limit"):
        parse_query({}, default_limit=None, max_limit=50)
    assert parse_query({"limit": "0"}, max_limit=5).limit == 0


def test_query_error_is_a_value_error_and_pickles() -> None:
    error = QueryError("RequestName", "bad regular expression")
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert (again.field, again.message, str(again)) == (error.field, error.message, str(error))
    named = QueryError("RequestDate", "bad date", "RequestDate.ge")
    again = pickle.loads(pickle.dumps(named))
    assert (again.field, again.parameter) == ("RequestDate", "RequestDate.ge")
    assert named.at("other") is named and named.parameter == "RequestDate.ge"


@pytest.mark.parametrize(("args", "field"), [
    (("Nope", "eq", ("x",)), "Nope"),
    (("RequestName", "eq", (5,)), "RequestName"),
    (("RequestPriority", "eq", ("5",)), "RequestPriority"),
    (("RequestPriority", "eq", (True,)), "RequestPriority"),
    (("HasRequest", "eq", (1,)), "HasRequest"),
    (("RequestPriority", "ge", (1, 2)), "RequestPriority"),
    (("RequestPriority", "ge", ()), "RequestPriority"),
    (("RequestName", "between", ("a",)), "RequestName"),
    (("RequestName", "eq", ["a"]), "RequestName"),
    (("Sites", "re", ("[",)), "Sites"),
])
def test_filter_validation(args: tuple[str, str, tuple[object, ...]], field: str) -> None:
    with pytest.raises(QueryError) as info:
        Filter(*args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_query_validation() -> None:
    for kwargs, field in (({"idx": -1}, "idx"), ({"limit": -5}, "limit"),
                          ({"sort": (("RequestName", "up"),)}, "RequestName"),
                          ({"sort": ("RequestName",)}, "sort"),
                          ({"fields": ("Nope",)}, "Nope"),
                          ({"filters": ("RequestName",)}, "filters")):
        with pytest.raises(QueryError) as info:
            Query(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def test_sort_spec_appends_tie_break_once() -> None:
    assert Query().sort_spec() == (("RequestName", "asc"),)
    assert Query(sort=(("RequestPriority", "desc"),)).sort_spec() == (
        ("RequestPriority", "desc"), ("RequestName", "desc"))
    assert Query(sort=(("Group", "desc"), ("RequestPriority", "asc"))).sort_spec() == (
        ("Group", "desc"), ("RequestPriority", "asc"), ("RequestName", "asc"))
    assert Query(sort=(("RequestName", "desc"), ("RequestPriority", "asc"))).sort_spec() == (
        ("RequestName", "desc"), ("RequestPriority", "asc"))
    assert Query(sort=(("Group", "asc"), ("Group", "desc"))).sort_spec() == (
        ("Group", "asc"), ("RequestName", "asc"))


def _wf(name: str, **kw: object) -> Workflow:
    return Workflow(RequestName=name, **kw)  # type: ignore[arg-type]


def test_list_fields_match_when_any_element_matches() -> None:
    records = [_wf("a", Sites=("T1_US_FNAL", "T2_CH_CERN")), _wf("b", Sites=("T2_US_MIT",)),
               _wf("c")]
    got = lambda q: [r.RequestName for r in filter_records(records, parse_query(q).filters)]  # noqa: E731
    assert got({"Sites": "T2_CH_CERN"}) == ["a"]
    assert got({"Sites": "T2_*"}) == ["a", "b"]
    assert got({"Sites.re": "MIT$|FNAL$"}) == ["a", "b"]
    assert got({"Sites": "T2_US_MIT", "RequestName": "a"}) == []
    assert got({}) == ["a", "b", "c"]


def test_glob_is_anchored_and_literal() -> None:
    match = compile_filter(Filter("RequestName", "glob", ("a.c*",)))
    assert match(_wf("a.cdef")) and not match(_wf("abcdef")) and not match(_wf("xa.c"))
    assert compile_filter(Filter("RequestName", "glob", ("[x]?",)))(_wf("[x]1"))
    assert not compile_filter(Filter("RequestName", "glob", ("?",)))(_wf("ab"))
    assert compile_filter(Filter("RequestName", "glob", ("?",)))(_wf("ü"))
    assert compile_filter(Filter("RequestName", "re", ("b",)))(_wf("abc"))  # unanchored


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?.[\\\n", max_size=6), st.text(alphabet="ab.[\\\n", max_size=8))
def test_fast_glob_equals_regex_translation(pattern: str, value: str) -> None:
    expected = re.match(glob_to_regex(pattern), value) is not None
    assert compile_glob(pattern)(value) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab*?", min_size=1, max_size=12), st.text(alphabet="abc", max_size=14))
def test_star_heavy_globs_equal_regex_translation(pattern: str, value: str) -> None:
    """Globs of many stars and question marks (matched by leftmost placement of
    the pieces between stars, not by a regex) mean what their regex means."""
    expected = re.match(glob_to_regex(pattern), value) is not None
    assert compile_glob(pattern)(value) == expected


def test_pathological_patterns_give_plain_answers() -> None:
    """The issue's patterns: a regex that makes Python's re backtrack for minutes,
    and the UI search that made a glob regex do the same; both match normally."""
    names = ["wf_" + "x" * 40, "a" * 30 + "#", "ab#", "abcd#e", "w" * 60 + "#tail"]
    regex = compile_filter(Filter("RequestName", "re", ("^(?:.|.){1,18}#",)))
    assert [regex(_wf(n)) for n in names] == [False, False, True, True, False]
    glob = compile_filter(Filter("RequestName", "glob", ("*?*?*?*?*#*",)))
    assert [glob(_wf(n)) for n in names] == [False, True, False, True, True]


@pytest.mark.parametrize("pattern", [
    r"(a)\1",            # backreference
    r"wf(?=_)",          # look-ahead
    r"(?<!x)wf",         # look-behind
    r"(?>atomic)",       # atomic group
    r"a{1001}",          # repetition above RE2's 1000
    r"(?:.{1,1000}){1,1000}",
])
def test_regex_outside_re2_is_refused(pattern: str) -> None:
    """The regular expressions are RE2's (linear time): what RE2 does not
    support is refused with its reason, the same on every backend."""
    with pytest.raises(QueryError) as info:
        parse_query({"RequestName.re": pattern})
    assert info.value.parameter == "RequestName.re"
    assert "bad regular expression" in info.value.message
    assert "RE2" in info.value.message


_REGEX_TOKENS = st.sampled_from([
    "a", "b", "c", "ab", "\\.", "\\-", ".", "^", "$", "*", "+", "?", "*?", "{2}", "{1,3}",
    "{0,2}", "|", "(", ")", "(?:", "(?P<g>", "[a-c]", "[^b]", "[]a]", "\\d", "\\w", "\\b",
    "\\A", "\\z", "(?i)", "(?i:", "(?s)", "\\Q", "\\E", "\\x61", "\\141", "\\pL",
    "[[:alpha:]]", "{", "}", "ü", "工"])


@settings(max_examples=1500, deadline=None)
@given(st.lists(_REGEX_TOKENS, min_size=1, max_size=8).map("".join),
       st.lists(st.text(alphabet="abcABC.-ü工x\n", max_size=10), min_size=1, max_size=12))
def test_required_literal_is_never_wrong(pattern: str, values: list[str]) -> None:
    """The literal put in front of RE2 is in every value the pattern matches."""
    try:
        search = compile_regex(pattern)
    except PatternError:
        return
    literal = required_literal(pattern)
    for value in values:
        text = value.encode("utf-8")
        if re2.compile(pattern).search(text) is not None:
            assert search(value)
            assert literal is None or literal in value, (pattern, literal, value)
        else:
            assert not search(value)


@pytest.mark.parametrize(("pattern", "literal"), [
    ("^(?:.|.){1,18}#", "#"), ("HIG", "HIG"), ("^user_[a-z]+_wf00[0-3]", "user_"),
    ("x\\.y", "x.y"), ("ab+c", "a"), ("abc{2}d", "ab"), ("(?P<n>x)yz", "yz"),
    ("a|b", None), ("(?i)abc", None), ("\\Qab\\E", None), ("[[:digit:]]x", None),
    ("\\x41bc", None), ("a{,3}", None), (".*", None),
])
def test_required_literal_examples(pattern: str, literal: str | None) -> None:
    assert required_literal(pattern) == literal


def test_regex_is_unanchored_unicode_and_flags() -> None:
    def matches(pattern: str, value: str) -> bool:
        return compile_filter(Filter("RequestName", "re", (pattern,)))(_wf(value))

    assert matches("b", "abc") and not matches("^b", "abc")
    assert matches("(?i)WF_ü", "xwf_Ü") and matches(r"\pL{3}$", "工作流")
    assert matches("^.$", "🚀") and not matches("a.b", "a\nb") and matches("(?s)a.b", "a\nb")
    assert matches(r"x\z", "ax") and matches("[[:digit:]]", "a1")
    # A lone surrogate (valid JSON, not valid UTF-8) is matched, not an error.
    assert matches("a", "\ud800a") and not matches("b", "\ud800a")


def test_time_budget_stops_pattern_filters() -> None:
    """Past the deadline, glob and regex predicates raise instead of going on, on
    the first value and then every CHECK_EVERY values; outside a budget, never."""
    records = [_wf(f"wf{i:04d}") for i in range(3 * budget.CHECK_EVERY)]
    for flt in (Filter("RequestName", "re", ("9$",)), Filter("RequestName", "glob", ("*9",)),
                Filter("RequestName", "glob", ("*?*?*9",))):
        with time_budget(0.001):
            time.sleep(0.005)
            with pytest.raises(QueryTimeoutError) as info:
                list(filter_records(records, [flt]))
        assert info.value.field == "query" and "0.001 s" in info.value.message
        assert isinstance(info.value, QueryError)
        assert len(list(filter_records(records, [flt]))) == 3 * budget.CHECK_EVERY // 10
    # Within the budget, or with none, the answer is the full one.
    with time_budget(60):
        assert len(list(filter_records(records, [Filter("RequestName", "re", ("9$",))]))) \
            == 3 * budget.CHECK_EVERY // 10
    with time_budget(None), time_budget(0):
        assert budget.deadline() is None and not budget.expired()


def test_unbudgeted_work_is_neither_cut_nor_counted() -> None:
    """An index rebuilt for every later request is not this request's work."""
    with time_budget(0.2):
        with budget.unbudgeted():
            assert budget.deadline() is None
            time.sleep(0.3)  # longer than the whole budget
            budget.check()
        assert not budget.expired()  # the budget resumed where it stood
        budget.check()
        time.sleep(0.3)
        assert budget.expired()
        with pytest.raises(QueryTimeoutError):
            budget.check()
    assert budget.deadline() is None


def test_time_budget_checks_along_the_way() -> None:
    """A predicate made before the deadline passes stops once it has passed."""
    calls = 0

    def slow(value: str) -> bool:
        nonlocal calls
        calls += 1
        time.sleep(0.0005)
        return False

    with time_budget(0.05):
        predicate = budget.metered(slow)
        with pytest.raises(QueryTimeoutError):
            for i in range(100_000):
                predicate(str(i))
    assert calls < 10 * budget.CHECK_EVERY


def test_time_budget_nests_and_stays_in_its_thread() -> None:
    seen: list[float | None] = []
    with time_budget(10):
        outer = budget.deadline()
        with time_budget(100):  # a later deadline does not extend the earlier one
            assert budget.deadline() == outer
        with time_budget(1):
            assert budget.deadline() is not None and outer is not None
            assert budget.deadline() < outer  # type: ignore[operator]
        worker = threading.Thread(target=lambda: seen.append(budget.deadline()))
        worker.start()
        worker.join()
    assert seen == [None] and budget.deadline() is None
    error = QueryTimeoutError(1.5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is QueryTimeoutError and copy.seconds == 1.5


@pytest.mark.parametrize("params", [
    {"RequestPriority": "99999999999999999999"},
    {"RequestPriority": "-9223372036854775809"},
    {"RequestPriority": ">=9223372036854775808"},
    {"RequestPriority.lt": "99999999999999999999"},
    {"RequestDate": "99999999999999999999"},
    {"TotalInputEvents": "1..99999999999999999999"},
])
def test_integers_beyond_64_bits_are_refused(params: dict[str, str]) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(params)
    assert "out of range" in info.value.message and info.value.parameter == next(iter(params))


def test_64_bit_edges_are_accepted() -> None:
    query = parse_query({"RequestPriority.le": str(INT_MAX), "RequestDate.ge": str(INT_MIN)})
    assert [f.values for f in query.filters] == [(INT_MAX,), (INT_MIN,)]
    with pytest.raises(QueryError):
        Filter("RequestPriority", "eq", (INT_MAX + 1,))


def test_page_next_idx() -> None:
    assert Page((), 0).next_idx is None
    records = tuple(_wf(str(i)) for i in range(3))
    assert Page(records, 10, idx=0, limit=3).next_idx == 3
    assert Page(records, 6, idx=3, limit=3).next_idx is None
    assert Page((), 10, idx=0, limit=0).next_idx is None
    assert Page((), 10, idx=20, limit=5).next_idx is None


def test_apply_query_pages_and_masks() -> None:
    records = [_wf(f"w{i}", RequestPriority=i % 2, StatusTime=i,
                   Campaigns=(f"C{i}", "Run3")) for i in range(5)]
    page = apply_query(records, parse_query({"sort": "-RequestPriority", "idx": "1",
                                             "limit": "2",
                                             "fields": "RequestName,StatusTime,Campaigns"}))
    assert [r.RequestName for r in page.records] == ["w1", "w4"]
    assert page.total == 5 and page.next_idx == 3
    assert page.dicts() == [
        {"RequestName": "w1", "StatusTime": 1, "Campaigns": ["C1", "Run3"]},
        {"RequestName": "w4", "StatusTime": 4, "Campaigns": ["C4", "Run3"]}]


def test_distinct_values_counts_each_workflow_once() -> None:
    records = [_wf("a", Campaigns=("X", "Y", "X")), _wf("b", Campaigns=("X",)), _wf("c")]
    assert distinct_values(records, "Campaigns") == [("X", 2), ("Y", 1)]
    assert distinct_values(records, "HasRequest") == [(True, 3)]
    assert distinct_values(records, "Campaigns", parse_query({"RequestName": "b"})) == [("X", 1)]
    with pytest.raises(QueryError):
        distinct_values(records, "Transitions")


def test_summarize_semantics() -> None:
    def ws(name: str, site: str, agent: str, success: int) -> WorkflowSite:
        return WorkflowSite(RequestName=name, Site=site, Agent=agent, Success=success)

    bundles = [
        WorkflowBundle(workflow=_wf("a", RequestStatus="running-open", Success=10,
                                    Sites=("S1", "S2"), Agents=("A1", "A2"), Campaigns=("C",)),
                       sites=(ws("a", "S1", "A1", 3), ws("a", "S1", "A2", 4),
                              ws("a", "S2", "A1", 3))),
        WorkflowBundle(workflow=_wf("b", RequestStatus="completed", Success=1,
                                    Sites=("S1",), Agents=("A2",), Campaigns=("C", "D")),
                       sites=(ws("b", "S1", "A2", 1),)),
    ]
    site = {s.Value: s for s in summarize(bundles, "site")}
    assert (site["S1"].Success, site["S1"].Workflows, site["S2"].Success) == (8, 2, 3)
    assert [(c.RequestStatus, c.Workflows) for c in site["S1"].WorkflowsByStatus] == [
        ("completed", 1), ("running-open", 1)]
    agent = {s.Value: s for s in summarize(bundles, "agent")}
    assert (agent["A1"].Success, agent["A2"].Success, agent["A2"].Workflows) == (6, 5, 2)
    campaign = {s.Value: s for s in summarize(bundles, "campaign")}
    assert (campaign["C"].Success, campaign["D"].Success, campaign["C"].Workflows) == (11, 1, 2)
    running = summarize(bundles, "status", parse_query({"RequestStatus": "running-open"}))
    assert [(s.Value, s.Success) for s in running] == [("running-open", 10)]
    with pytest.raises(QueryError, match="by"):
        summarize(bundles, "planet")


def test_parse_time() -> None:
    assert parse_time("1700000000") == 1700000000
    assert parse_time("2024-01-01T00:00:00Z") == 1704067200
    assert parse_time("2024-02-29T23:59:59.999+01:00") == 1709247599
    assert parse_time("2000-02-29") == 951782400
    # The exact grammar of wmstats.query.grammar.TIME (what /openapi.json publishes):
    # no surrounding space, real days only, fractions of 3 or 6 digits.
    for text in (" 2024-01-01 ", "2024-13-01", "1900-02-29", "2023-04-31", "2024-01-01T24:00",
                 "2024-01-01T10:00:00.1", "2024-01-01 10:00", "2024-W01-1", "+"):
        with pytest.raises(QueryError):
            parse_time(text)


def test_numbers_mix_exact_values_and_ranges() -> None:
    """Exact values are alternatives, comparisons and ranges narrow them (they
    used to be refused together; the OpenAPI grammar allows them per item)."""
    records = [_wf(f"w{i}", RequestPriority=i) for i in range(10)]

    def got(value: str | list[str]) -> list[int]:
        query = parse_query({"RequestPriority": value}, default_limit=None)
        return [r.RequestPriority for r in apply_query(records, query).records]

    assert got("1,5,>=3") == [5]
    assert got(["2,7", "..6"]) == [2]
    assert got("3..5,5..8") == [5]
    assert got(">7") == [8, 9]


def test_field_spec() -> None:
    assert field_spec("RequestDate").time and field_spec("RequestDate").numeric
    assert field_spec("Sites").many and field_spec("Sites").kind == "str"
    assert {spec.kind for spec in field_specs().values()} == {"str", "int", "bool"}
    with pytest.raises(QueryError, match="unknown field"):
        field_spec("Transitions")  # the status history is its own record type
    assert not field_spec("HasRequest").numeric
