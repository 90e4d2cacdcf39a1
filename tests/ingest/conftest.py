"""Fixtures of the ingest tests: hand-written landing folders under tmp_path."""

from __future__ import annotations

import pytest
from ingest_helpers import make_hand_settings, write_clean_days


@pytest.fixture()
def hand_settings(tmp_path):
    """An empty landing folder and warehouse under tmp_path."""
    return make_hand_settings(tmp_path)


@pytest.fixture()
def hand_landing(hand_settings):
    """Two clean days of every daily source and one month of audits."""
    write_clean_days(hand_settings.landing_dir)
    return hand_settings
