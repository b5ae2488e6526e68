"""The pytest plugin is registered by the installed package and gives mock data."""

from __future__ import annotations

import pytest


def test_fixtures_are_available_without_import(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from wmstats.convert import convert_documents

        def test_documents_convert_to_bundles(mock_documents, mock_bundles, mock_agents):
            result = convert_documents(mock_documents)
            assert not result.problems
            assert list(result.bundles) == mock_bundles
            assert list(result.agents) == mock_agents
            assert len(mock_bundles) == 50

        def test_workflows(mock_workflows):
            assert len({w.RequestName for w in mock_workflows}) == 50
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_seed_and_size_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def wmstats_workflows():
            return 7

        @pytest.fixture
        def wmstats_seed():
            return 99
        """
    )
    pytester.makepyfile(
        """
        from wmstats.mock import MockGenerator

        def test_override(mock_bundles):
            assert len(mock_bundles) == 7
            assert mock_bundles == list(MockGenerator(seed=99).bundles(7))
            assert mock_bundles != list(MockGenerator(seed=0).bundles(7))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
