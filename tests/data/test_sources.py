"""Downloads against a local HTTP server on 127.0.0.1 (resume, checksums, mirrors) and safe unpacking."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from formats_writer import tar_gz, zip_file

from cnnkit.data.catalog import DatasetInfo, RemoteFile
from cnnkit.data.sources import dataset_cache_dir, extract, fetch, locate, unpacked
from cnnkit.errors import DatasetError, DatasetNotFound

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Routes: /good (Range aware), /bad (wrong bytes), /missing (404), /flaky (first answer cut in half)."""

    def __init__(self) -> None:
        self.ranges: list[str | None] = []
        self.flaky_calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                route = self.path.split("/")[1]
                if route == "missing":
                    self.send_error(404)
                    return
                body = PAYLOAD if route != "bad" else PAYLOAD[::-1]
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                if route == "flaky":
                    server.flaky_calls += 1
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if route == "flaky" and server.flaky_calls == 1:
                    self.wfile.write(body[: len(body) // 2])  # then the connection drops
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, route: str) -> str:
        return f"{self.base}/{route}/payload.bin"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)  # network allowed, but only to 127.0.0.1
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def remote(*urls: str, **kw) -> RemoteFile:
    return RemoteFile("payload.bin", tuple(urls), sha256=kw.get("sha256", SHA), size=kw.get("size", len(PAYLOAD)))


def test_interrupted_transfer_is_resumed_with_a_range_request(server, tmp_path):
    path = fetch(remote(server.url("flaky")), tmp_path, log=lambda m: None)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "payload.bin.part").exists()
    assert server.ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD[:1000])
    fetch(remote(server.url("good")), tmp_path, log=lambda m: None)
    assert server.ranges == ["bytes=1000-"] and (tmp_path / "payload.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_file_and_tries_the_next_mirror(server, tmp_path):
    path = fetch(remote(server.url("bad"), server.url("good")), tmp_path, log=lambda m: None)
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(DatasetError, match=r"payload.bin is corrupt or incomplete \(sha256 .*expected " + SHA):
        fetch(remote(server.url("bad")), tmp_path / "other", log=lambda m: None)
    assert list((tmp_path / "other").iterdir()) == []  # nothing corrupt left behind


def test_wrong_size_is_caught_before_hashing(server, tmp_path):
    with pytest.raises(DatasetError, match="10,240 bytes, expected 99"):
        fetch(remote(server.url("good"), size=99), tmp_path, log=lambda m: None)
    assert not (tmp_path / "payload.bin").exists()


def test_dead_mirror_falls_back_to_the_next(server, tmp_path):
    fetch(remote(server.url("missing"), server.url("good")), tmp_path, log=lambda m: None)
    assert (tmp_path / "payload.bin").read_bytes() == PAYLOAD
    with pytest.raises(DatasetError, match="HTTP 404"):
        fetch(remote(server.url("missing")), tmp_path / "x", log=lambda m: None)


def test_locate_downloads_into_the_cache(server, capsys):
    info = DatasetInfo(name="tiny", title="Tiny", level="beginner", task="classification", shape=(1, 2, 2),
                       num_classes=2, obtain="download", files=(remote(server.url("good")),))
    found = locate(info)
    assert found["payload.bin"] == dataset_cache_dir("tiny") / "payload.bin"
    assert "downloading payload.bin from http://127.0.0.1" in capsys.readouterr().err


def test_offline_message_names_urls_checksum_and_folder(monkeypatch):
    info = DatasetInfo(name="tiny", title="Tiny", level="beginner", task="classification", shape=(1, 2, 2),
                       num_classes=2, obtain="download",
                       files=(remote("https://example.org/a/payload.bin", "https://mirror.example.org/payload.bin"),))
    with pytest.raises(DatasetNotFound) as e:
        locate(info)
    text = str(e.value)
    assert "https://example.org/a/payload.bin or https://mirror.example.org/payload.bin" in text
    assert f"sha256 {SHA}" in text and f"{dataset_cache_dir('tiny')}/" in text and "CNNKIT_OFFLINE" in text


# --------------------------------------------------------------------------- archives


def _tar_with(tmp_path, member: tarfile.TarInfo, data: bytes = b"") -> object:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        ok = tarfile.TarInfo("data/ok.txt")
        ok.size = 2
        t.addfile(ok, io.BytesIO(b"ok"))
        member.size = len(data)
        t.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("make", [
    lambda: tarfile.TarInfo("../escape.txt"),
    lambda: tarfile.TarInfo("/tmp/absolute.txt"),
    lambda: _link("data/link", "../../outside", tarfile.SYMTYPE),
    lambda: _link("data/link", "/etc/passwd", tarfile.SYMTYPE),
    lambda: _link("data/hard", "../outside", tarfile.LNKTYPE),
])
def test_unsafe_tar_members_are_refused(tmp_path, make):
    member = make()
    archive = _tar_with(tmp_path, member, b"x" if member.isfile() else b"")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(DatasetError, match="not unpacking it"):
        extract(archive, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_unsafe_zip_members_are_refused(tmp_path):
    archive = zip_file(tmp_path / "evil.zip", {"ok/a.txt": b"a", "../escape.txt": b"x"})
    (tmp_path / "out").mkdir()
    with pytest.raises(DatasetError, match=r"unsafe path '\.\./escape.txt'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    linked = tmp_path / "link.zip"
    with zipfile.ZipFile(linked, "w") as z:
        info = zipfile.ZipInfo("ok/link")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "../../outside")
    with pytest.raises(DatasetError, match="symbolic link"):
        extract(linked, tmp_path / "out")


def test_safe_archive_unpacks_once_and_damaged_one_is_reported(tmp_path):
    archive = tar_gz(tmp_path / "set.tar.gz", {"set/a.txt": b"a", "set/sub/b.txt": b"b"})
    record = RemoteFile("set.tar.gz", ("http://x/set.tar.gz",), extracts_to="set")
    root = unpacked(archive, record)
    assert (root / "sub" / "b.txt").read_bytes() == b"b" and not list(tmp_path.glob(".unpacking-*"))
    (root / "a.txt").write_bytes(b"changed")
    assert unpacked(archive, record) == root and (root / "a.txt").read_bytes() == b"changed"  # not again
    broken = tmp_path / "broken" / "set.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(archive.read_bytes()[:60])
    with pytest.raises(DatasetError, match="set.tar.gz"):
        unpacked(broken, record)
