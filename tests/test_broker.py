"""The embedded broker (privacy.broker): readers see whole messages only, and Celery uses it."""

from __future__ import annotations

import json
import multiprocessing
import os
from queue import Empty

import pytest
from celery import Celery
from kombu import Connection

from privacy import broker
from privacy import config
from privacy.paths import ROOT

QUEUE = "jobs"
MESSAGES = 200
BODY = "x" * 100_000  # large enough that a write is not over before a reader looks


def _options(folder) -> dict:
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


@pytest.fixture
def options(tmp_path) -> dict:
    options = _options(tmp_path)
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        os.makedirs(options[key])
    return options


def _channel(options: dict):
    connection = Connection("filesystem://", transport=broker.Transport, transport_options=options)
    return connection, connection.channel()


def _write_messages(options: dict) -> None:
    connection, channel = _channel(options)
    try:
        for number in range(MESSAGES):
            channel._put(QUEUE, {"number": number, "body": BODY})
    finally:
        connection.release()


def _writer(options: dict):
    """Another process puts the messages, as the web process does for the worker."""
    process = multiprocessing.get_context("spawn").Process(target=_write_messages, args=(options,))
    process.start()
    return process


def test_a_reader_listing_the_queue_never_sees_a_partial_message(options):
    folder = options["data_folder_in"]
    seen: set[str] = set()
    partial: list[str] = []
    writer = _writer(options)
    while True:
        writing = writer.is_alive()
        for name in os.listdir(folder):
            if name.partition(".")[2] != f"{QUEUE}.msg" or name in seen:
                continue
            with open(os.path.join(folder, name), "rb") as file:
                data = file.read()
            try:
                assert json.loads(data)["body"] == BODY
            except (ValueError, AssertionError):
                partial.append(f"{name}: {len(data)} bytes")
            seen.add(name)
        if not writing:
            break
    writer.join()
    assert writer.exitcode == 0
    assert partial == []
    assert len(seen) == MESSAGES


def test_the_worker_side_gets_every_message_whole_while_they_are_written(options):
    connection, channel = _channel(options)
    received = []
    writer = _writer(options)
    try:
        while len(received) < MESSAGES:
            try:
                payload = channel._get(QUEUE)
            except Empty:
                assert writer.is_alive() or channel._size(QUEUE), len(received)
                continue
            assert payload["body"] == BODY
            received.append(payload["number"])
    finally:
        writer.join()
        connection.release()
    assert writer.exitcode == 0
    assert sorted(received) == list(range(MESSAGES))
    assert os.listdir(options["data_folder_in"]) == []


def test_an_unreadable_message_file_is_dropped_not_fatal(options, caplog):
    connection, channel = _channel(options)
    try:
        # What an OS crash can leave: a renamed message file whose data never reached the disk.
        empty = os.path.join(options["data_folder_in"], f"1_lost.{QUEUE}.msg")
        open(empty, "wb").close()
        channel._put(QUEUE, {"number": 7})
        assert channel._get(QUEUE) == {"number": 7}
        with pytest.raises(Empty):
            channel._get(QUEUE)
    finally:
        connection.release()
    assert not os.path.exists(empty)
    assert "dropped an unreadable message of queue jobs" in caplog.text


def test_a_partial_file_of_a_running_write_is_not_a_message(options):
    connection, channel = _channel(options)
    try:
        name = f"1_writing.{QUEUE}.msg{broker.PARTIAL_SUFFIX}"
        with open(os.path.join(options["data_folder_in"], name), "wb") as file:
            file.write(b'{"number":')
        assert channel._size(QUEUE) == 0
        with pytest.raises(Empty):
            channel._get(QUEUE)
    finally:
        connection.release()


def test_celery_on_the_embedded_defaults_sends_through_this_transport(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIVACY_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("PRIVACY_BROKER_URL", raising=False)
    settings = config.load(ROOT)["CELERY"]
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        os.makedirs(settings["broker_transport_options"][key], exist_ok=True)
    celery = Celery("broker-test", set_as_current=False)
    celery.config_from_object(settings)
    body = "y" * 300_000

    celery.send_task("tests.echo", args=[42, body])

    with celery.connection_for_read() as connection:
        assert isinstance(connection.transport, broker.Transport)
        message = connection.default_channel.basic_get("celery", no_ack=True)
    assert message is not None
    assert message.headers["task"] == "tests.echo"
    args, kwargs, _embed = message.decode()
    assert args == [42, body]
    assert kwargs == {}
