"""The webhook spool keeps acknowledged bodies in order until they are replayed."""

from __future__ import annotations

from pathlib import Path

from clinicflow.spool import Spool


def test_bodies_come_back_in_order_and_leave_when_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "inbox.spool")
    assert spool.peek() == [] and len(spool) == 0
    bodies = [b'{"event":"message","n":1}', "ol\u00e1 \U0001f600".encode(), b"\x00\n\xff"]
    for body in bodies:
        spool.append(body)
    assert spool.peek() == bodies and len(spool) == 3
    spool.drop(2)
    assert spool.peek() == bodies[2:]
    spool.drop(1)
    assert not (tmp_path / "inbox.spool").exists()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "inbox.spool")
    spool.append(b"first")
    with (tmp_path / "inbox.spool").open("ab") as handle:
        handle.write(b"c2Vjb25")  # a crash in the middle of a line
    assert spool.peek() == [b"first"]


def test_a_spool_reopened_after_a_crash_drops_the_torn_line_and_appends_cleanly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.spool"
    Spool(path).append(b"first")
    with path.open("ab") as handle:
        handle.write(b"c2Vjb25")  # the process died in the middle of this line
    spool = Spool(path)  # the next start
    spool.append(b"second")
    assert spool.peek() == [b"first", b"second"] and len(spool) == 2
    spool.drop(1)
    assert spool.peek() == [b"second"]
