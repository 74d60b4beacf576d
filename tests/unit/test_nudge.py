"""Nudges to the dispatcher: a datagram ends its wait; nothing a sender or a stranger does breaks either side."""

from __future__ import annotations

import os
import threading

import pytest

from deployments.dispatcher import Dispatcher
from sopflow import settings
from sopflow.services.nudge import ANSWERED, CLAIMED, NudgeInbox, nudge_dispatcher, send_nudge


@pytest.fixture
def inbox():
    box = NudgeInbox()
    yield box
    box.close()


def test_a_wait_returns_every_kind_that_came_and_reads_them_all(inbox):
    for _ in range(200):
        send_nudge(inbox.port, CLAIMED)
    send_nudge(inbox.port, ANSWERED)
    assert inbox.wait(5) == {CLAIMED, ANSWERED}
    assert inbox.wait(0) == set()  # all 201 were read by the one wait


def test_nudging_finds_the_port_up_wrote_in_the_home(sopflow_home, inbox):
    nudge_dispatcher(ANSWERED)  # no `sopflow up` on this home yet: nothing happens, nothing fails
    sopflow_home.mkdir(parents=True)
    settings.dispatcher_port_file().write_text(str(inbox.port))
    nudge_dispatcher(ANSWERED)
    assert inbox.wait(5) == {ANSWERED}


@pytest.mark.parametrize("content", ["", "not a port", "99999999999", "-1", "\x00\xff"])
def test_a_garbled_port_file_is_ignored(sopflow_home, content):
    sopflow_home.mkdir(parents=True)
    settings.dispatcher_port_file().write_text(content)
    nudge_dispatcher(CLAIMED)


def test_an_answer_nudge_wakes_the_runner_though_the_dispatcher_polls_hourly(sopflow_home):
    woken = threading.Event()
    dispatcher = Dispatcher(set(), poll_seconds=3600, wake_runner=woken.set)
    dispatcher.start()
    try:
        send_nudge(dispatcher.port, ANSWERED)
        assert woken.wait(30), "the runner was not woken"
    finally:
        dispatcher.stop()
    assert not dispatcher.is_alive()  # stop ends an hour's wait at once

