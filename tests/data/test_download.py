"""``fetch_dataset`` and ``data=flowers`` offline: a tiny archive served by an HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from transferlab.data.download import MARKER_NAME, fetch_dataset

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
CLASSES = ("daisy", "roses")


def make_archive() -> bytes:
    """flower_photos/{daisy,roses}/*.png and LICENSE.txt, as a .tgz, with random pixels so it does not compress."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = {"flower_photos/LICENSE.txt": b"CC-BY\n"}
        for name in CLASSES:
            for i in range(4):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(png, format="PNG")
                members[f"flower_photos/{name}/{i}.png"] = png.getvalue()
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ARCHIVE = make_archive()
SHA256 = hashlib.sha256(ARCHIVE).hexdigest()


class Server:
    """Serves ARCHIVE at /flower_photos.tgz. ``mode``: ``ok`` (honours Range), ``cut`` (sends half, then closes),
    ``no_range`` (always the whole file with 200). ``requests`` records each request's Range header."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.headers.get("Range"))
                start = 0
                if server.mode == "ok" and self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(ARCHIVE) - 1}/{len(ARCHIVE)}")
                else:
                    self.send_response(200)
                body = ARCHIVE[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/flower_photos.tgz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


def fetch(server: Server, root: Path, sha256: str | None = SHA256) -> Path:
    return fetch_dataset(server.url, root, sha256=sha256, subdir="flower_photos", timeout=10)


def assert_complete(root: Path) -> None:
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == list(CLASSES)
    assert len(list(root.glob("*/*.png"))) == 8
    assert (root / MARKER_NAME).is_file()


def test_downloads_extracts_marks_and_reuses(server, tmp_path):
    root = tmp_path / "cache" / "flower_photos"
    assert fetch(server, root) == root
    assert_complete(root)
    assert not list((tmp_path / "cache").glob(".flower_photos.*/"))  # no partial file, archive or temp folder left
    assert server.requests == [None]

    (root / "daisy" / "0.png").unlink()  # reuse means no request and no re-extraction
    fetch(server, root)
    assert server.requests == [None]
    assert not (root / "daisy" / "0.png").exists()


def test_wrong_checksum_is_refused_and_nothing_is_marked_complete(server, tmp_path):
    root = tmp_path / "flower_photos"
    with pytest.raises(ValueError, match=r"data\.download\.sha256") as error:
        fetch(server, root, sha256="0" * 64)
    assert SHA256 in str(error.value)  # says what the file's checksum is
    assert not root.exists()
    assert not list(tmp_path.rglob("*.part")), "a corrupt download must not be resumed"

    fetch(server, root)  # with the right checksum it downloads afresh
    assert_complete(root)
    assert server.requests == [None, None]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    root = tmp_path / "flower_photos"
    server.mode = "cut"
    with pytest.raises(ConnectionError, match="re-run to resume"):
        fetch(server, root)
    assert not root.exists(), "an interrupted download must not leave a dataset folder"
    (part,) = tmp_path.rglob("*.part")
    have = part.stat().st_size
    assert 0 < have < len(ARCHIVE)

    server.mode = "ok"
    fetch(server, root)
    assert server.requests == [None, f"bytes={have}-"]
    assert_complete(root)  # the checksum of the resumed file matched


def test_interrupted_download_restarts_when_the_server_ignores_ranges(server, tmp_path):
    root = tmp_path / "flower_photos"
    server.mode = "cut"
    with pytest.raises(ConnectionError):
        fetch(server, root)
    server.mode = "no_range"
    fetch(server, root)
    assert server.requests[1].startswith("bytes=")  # asked to resume, got the whole file, wrote it from the start
    assert_complete(root)


def test_a_non_empty_folder_without_marker_is_refused_not_deleted(server, tmp_path):
    root = tmp_path / "flower_photos"
    fetch(server, root)
    (root / MARKER_NAME).unlink()  # e.g. a folder someone made by hand: not ours to delete
    with pytest.raises(ValueError, match=r"data\.root=.*holds no transferlab download"):
        fetch(server, root)
    for path in sorted(root.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    fetch(server, root)  # empty: fine
    assert_complete(root)


def test_unverified_download_logs_the_checksum_to_set(server, tmp_path, caplog):
    fetch(server, tmp_path / "flower_photos", sha256=None)
    assert f"data.download.sha256={SHA256}" in caplog.text


def test_data_flowers_config_downloads_through_the_datamodule(server, tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=flowers",
                f"paths.cache_dir={tmp_path}",
                "data.num_workers=0",
                "data.val_fraction=0.25",
                "data.test_fraction=0.25",
            ],
        )
    assert cfg.data.download.url.endswith("/example_images/flower_photos.tgz")
    assert len(cfg.data.download.sha256) == 64
    cfg.data.download.url = server.url
    cfg.data.download.sha256 = SHA256
    datamodule = instantiate(cfg.data, augment=OmegaConf.to_container(cfg.augment), _convert_="all")
    datamodule.setup("fit")
    assert datamodule.class_names == list(CLASSES)
    assert len(datamodule.samples) == 8  # LICENSE.txt is not an image
    assert_complete(tmp_path / "flower_photos")
