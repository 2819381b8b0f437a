"""The lab emulator server's database connections: reused, never across a replaced database."""

from __future__ import annotations

import sqlite3

from xenfab.lab import emulator


def _db(path) -> None:
    with sqlite3.connect(path / "state.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (x)")


def _given_back(path) -> tuple[emulator.Connections, sqlite3.Connection]:
    """A pool over a fresh database, and the connection it has taken and been given back."""
    _db(path)
    pool = emulator.Connections(str(path))
    db = pool.take()
    pool.give(db)
    return pool, db


def test_a_connection_given_back_is_taken_again(tmp_path):
    pool, first = _given_back(tmp_path)
    assert pool.take() is first


def test_one_left_in_a_transaction_is_closed_not_reused(tmp_path):
    _db(tmp_path)
    pool = emulator.Connections(str(tmp_path))
    db = pool.take()
    db.execute("BEGIN IMMEDIATE")
    pool.give(db)
    again = pool.take()
    assert again is not db
    again.execute("BEGIN IMMEDIATE")  # the write lock was given up with the closed one
    again.execute("ROLLBACK")


def test_a_replaced_database_file_gets_new_connections(tmp_path):
    pool, old = _given_back(tmp_path)
    # Replaced by another file (the old one is still open, so the new one's inode differs).
    other = tmp_path / "other"
    other.mkdir()
    _db(other)
    (other / "state.db").replace(tmp_path / "state.db")
    new = pool.take()
    assert new is not old
    assert new.execute("SELECT count(*) FROM t").fetchone()[0] == 0
