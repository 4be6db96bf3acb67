"""The one file hasher: a file's digest and a tree's, as the checkpoint fingerprint, the run
fingerprint, MLflow's data tags and DVC's md5 use them."""

from __future__ import annotations

import hashlib

from janus.hashing import file_digest, tree_digest


def test_a_file_digest_is_the_digest_of_its_bytes(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00\x01" * 300_000)
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(path.read_bytes()).hexdigest()


def test_a_tree_digest_covers_names_and_bytes_in_the_order_given(tmp_path):
    (tmp_path / "a").write_bytes(b"one")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"two")
    files = [tmp_path / "a", tmp_path / "sub" / "b"]
    expected = hashlib.sha256(b"a\0one" + b"sub/b\0two").hexdigest()
    assert tree_digest(tmp_path, files) == expected
    assert tree_digest(tmp_path, files[::-1]) != expected
    (tmp_path / "sub" / "b").rename(tmp_path / "sub" / "c")  # same bytes, another name
    assert tree_digest(tmp_path, [tmp_path / "a", tmp_path / "sub" / "c"]) != expected
