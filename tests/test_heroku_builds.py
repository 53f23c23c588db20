"""The Heroku API's builds against a real meta, over HTTP: a source PUT to meta's own upload URL
and built by gun's builds, its output streamed without a token; file:// and http(s) source URLs
only where meta's settings allow them; checksums, the size cap, roles and malformed fields."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import module_meta
from tests.meta import MetaServer, free_port
from tests.up import HELLO

CAP = 200_000  # GUN_SLUG_MAX_BYTES of the meta with the settings on
HEROKU = {"Accept": "application/vnd.heroku+json; version=3"}


def hello_tarball(top: str = "") -> bytes:
    """examples/hello as Heroku's clients pack it: at the top (`tar czf - -C hello .`), or in
    one top directory (GitHub's archives)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(HELLO, arcname=top or ".")
    return buf.getvalue()


class Files(http.server.BaseHTTPRequestHandler):
    served: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        body = self.served.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """A file server on 127.0.0.1 (what GUN_HEROKU_SOURCE_HOSTS lists): its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="module", params=["sqlite"])
def meta(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    files: str,
    allowed: Path,
) -> Iterator[MetaServer]:
    yield from module_meta(
        request,
        tmp_path_factory,
        GUN_HEROKU_SOURCE_DIR=str(allowed),
        GUN_HEROKU_SOURCE_HOSTS=files.removeprefix("http://"),
        GUN_SLUG_MAX_BYTES=str(CAP),
    )


@pytest.fixture(scope="module", params=["sqlite"])
def plain_meta(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetaServer]:
    """A meta with the settings as they are by default: no file:// nor http(s) sources."""
    yield from module_meta(request, tmp_path_factory)


def api(meta: MetaServer, token: str | None = None) -> httpx.Client:
    client = meta.http(token)
    client.headers.update(HEROKU)
    return client


def new_app(meta: MetaServer, name: str) -> None:
    assert api(meta).post("/apps", json={"name": name}).status_code == 201


def build(meta: MetaServer, app: str, url: str, **blob: str) -> httpx.Response:
    return api(meta).post(f"/apps/{app}/builds", json={"source_blob": {"url": url, **blob}})


def finished(meta: MetaServer, app: str, build_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got: dict[str, Any] = api(meta).get(f"/apps/{app}/builds/{build_id}").json()
        if got["status"] != "pending":
            return got
        time.sleep(0.2)
    raise AssertionError(f"build {build_id} did not end")


def refusal(r: httpx.Response) -> tuple[int, str, str]:
    return r.status_code, r.json()["id"], r.json()["message"]


def test_a_source_put_to_meta_is_built_released_and_its_output_streamed(
    meta: MetaServer,
) -> None:
    new_app(meta, "hello")
    made = api(meta).post("/apps/hello/sources")
    assert made.status_code == 201
    blob = made.json()["source_blob"]
    tarball = hello_tarball()
    # the client PUTs the tarball without Authorization, as to S3
    assert httpx.put(blob["put_url"], content=tarball).status_code == 200
    assert httpx.get(blob["get_url"]).content == tarball
    assert httpx.get(blob["put_url"]).status_code == 404  # the put URL does not read

    checksum = f"SHA256:{hashlib.sha256(tarball).hexdigest()}"
    r = build(meta, "hello", blob["get_url"], checksum=checksum, version="v1.0")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["status"] == "pending"
    assert b["source_blob"] == {
        "checksum": checksum,
        "url": blob["get_url"],
        "version": "v1.0",
        "version_description": "v1.0",
    }
    assert set(b) >= {"id", "app", "buildpacks", "created_at", "updated_at", "release"}
    assert set(b) >= {"slug", "stack", "user", "output_stream_url"}
    with httpx.stream("GET", b["output_stream_url"], timeout=60) as out:  # no token
        assert out.status_code == 200
        streamed = "".join(out.iter_text())
    assert "-----> Building hello" in streamed
    assert "Procfile declares types -> web, worker" in streamed

    done = finished(meta, "hello", b["id"])
    assert done["status"] == "succeeded"
    releases = meta.http().get("/v1/apps/hello/releases").json()
    newest = max(releases, key=lambda r: r["version"])
    assert newest["description"].startswith("Deploy ")
    assert (
        done["release"]["id"]
        == api(meta).get(f"/apps/hello/releases/{newest['version']}").json()["id"]
    )
    assert [x["id"] for x in api(meta).get("/apps/hello/builds").json()] == [b["id"]]

    # the stream's token opens that build's output only
    wrong = b["output_stream_url"][:-4] + "0000"
    assert httpx.get(wrong).status_code == 404


def test_file_urls_only_under_the_allowed_directory(
    meta: MetaServer, plain_meta: MetaServer, allowed: Path, tmp_path: Path
) -> None:
    (allowed / "hello.tgz").write_bytes(hello_tarball("hello-main"))
    (tmp_path / "elsewhere.tgz").write_bytes(hello_tarball())
    (allowed / "link.tgz").symlink_to(tmp_path / "elsewhere.tgz")
    new_app(meta, "files")
    new_app(plain_meta, "files")

    assert refusal(build(plain_meta, "files", f"file://{allowed}/hello.tgz")) == (
        422,
        "invalid_params",
        "source_blob.url: file:// URLs are off on this meta (GUN_HEROKU_SOURCE_DIR is not set)",
    )
    for outside in (tmp_path / "elsewhere.tgz", allowed / "link.tgz", allowed / "../x.tgz"):
        status, _, message = refusal(build(meta, "files", f"file://{outside}"))
        assert status == 422
        assert message.startswith("source_blob.url: ") and "GUN_HEROKU_SOURCE_DIR" in message

    r = build(meta, "files", f"file://{allowed}/hello.tgz")
    assert r.status_code == 201, r.text
    assert finished(meta, "files", r.json()["id"])["status"] == "succeeded"


def test_http_urls_only_from_listed_hosts(
    meta: MetaServer, plain_meta: MetaServer, files: str
) -> None:
    Files.served["/hello.tar.gz"] = hello_tarball()
    new_app(meta, "fetched")
    new_app(plain_meta, "fetched")

    assert refusal(build(plain_meta, "fetched", f"{files}/hello.tar.gz")) == (
        422,
        "invalid_params",
        "source_blob.url: http(s) URLs are off on this meta (GUN_HEROKU_SOURCE_HOSTS is empty)",
    )
    port = files.rpartition(":")[2]
    assert refusal(build(meta, "fetched", f"http://localhost:{port}/hello.tar.gz"))[2] == (
        f"source_blob.url: host localhost:{port} is not in GUN_HEROKU_SOURCE_HOSTS"
    )
    assert refusal(build(meta, "fetched", f"{files}/nothing.tar.gz"))[2] == (
        f"source_blob.url: 127.0.0.1:{port} answered 404, not 200"
    )
    assert refusal(build(meta, "fetched", "ftp://example.com/x.tgz"))[2] == (
        "source_blob.url: give an http(s):// URL, or file:/// where meta allows it"
    )

    r = build(meta, "fetched", f"{files}/hello.tar.gz")
    assert r.status_code == 201, r.text
    assert finished(meta, "fetched", r.json()["id"])["status"] == "succeeded"


def test_checksum_size_and_tarball_are_checked_before_the_build(
    meta: MetaServer, files: str
) -> None:
    tarball = hello_tarball()
    Files.served["/hello2.tar.gz"] = tarball
    Files.served["/big.tar.gz"] = b"x" * (CAP + 1)
    Files.served["/text.tar.gz"] = b"not a tarball\n"
    new_app(meta, "checked")
    wrong = "SHA256:" + "0" * 64
    assert refusal(build(meta, "checked", f"{files}/hello2.tar.gz", checksum=wrong)) == (
        422,
        "invalid_params",
        f"source_blob.checksum: the source has SHA256:{hashlib.sha256(tarball).hexdigest()}, "
        f"not SHA256:{'0' * 64}",
    )
    assert refusal(build(meta, "checked", f"{files}/hello2.tar.gz", checksum="md5:abc"))[2] == (
        "source_blob.checksum: give it as SHA256: and 64 hex digits"
    )
    assert refusal(build(meta, "checked", f"{files}/big.tar.gz"))[2] == (
        f"source_blob.url: the source is over the limit of {CAP} bytes set by GUN_SLUG_MAX_BYTES"
    )
    assert refusal(build(meta, "checked", f"{files}/text.tar.gz"))[2] == (
        "source_blob.url: what it names is not a tarball (tar or tar.gz)"
    )
    # an upload over the cap is refused at the PUT too
    blob = api(meta).post("/sources").json()["source_blob"]
    assert httpx.put(blob["put_url"], content=b"x" * (CAP + 1)).status_code == 413
    assert api(meta).get("/apps/checked/builds").json() == []  # nothing was queued


def test_a_viewer_cannot_build_nor_make_sources(meta: MetaServer) -> None:
    new_app(meta, "watched")
    viewer = meta.gun("tokens.create", "peeker", "role=viewer").out.strip()
    r = api(meta, viewer).post(
        "/apps/watched/builds", json={"source_blob": {"url": "http://example.com/x.tgz"}}
    )
    assert refusal(r) == (
        403,
        "forbidden",
        "token 'peeker' has role viewer; this needs role developer",
    )
    assert api(meta, viewer).post("/apps/watched/sources").status_code == 403
    assert api(meta, viewer).post("/sources").status_code == 403
    assert api(meta, viewer).get("/apps/watched/builds").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "body field 'source_blob' is required"),
        ({"source_blob": {}}, "body field 'source_blob.url' is required"),
        ({"source_blob": {"url": 3}}, "body field 'source_blob.url' is invalid: "),
        ({"source_blob": {"url": "x", "checksum": 5}}, "body field 'source_blob.checksum' is "),
        (
            {"source_blob": {"url": "http://x/"}, "buildpacks": [{"url": "https://x/bp.tgz"}]},
            "buildpacks[0].url: gun builds with the buildpack it detects",
        ),
        ({"source_blob": {"url": "x", "checksum": "sha1:ab"}}, "source_blob.checksum: give it "),
    ],
)
def test_malformed_fields_are_named(meta: MetaServer, body: dict[str, Any], message: str) -> None:
    if api(meta).get("/apps/shapes").status_code == 404:
        new_app(meta, "shapes")
    status, id_, said = refusal(api(meta).post("/apps/shapes/builds", json=body))
    assert (status, id_) == (422, "invalid_params")
    assert said.startswith(message)
    assert said.count(". ") == 0  # one sentence
