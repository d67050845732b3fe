"""Issue 4, uploads: signed URLs from page.get_upload_url, a streamed and
atomic PUT, one test per way an upload is refused."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flet as ft
import httpx
import pytest
from conftest import INVOKE_METHOD, FletTestClient, encode, find_controls
from itsdangerous import TimestampSigner
from quart import Quart
from quart.testing.app import LifespanError
from quart_schema import QuartSchema

from quart_flet import flet_blueprint
from quart_flet.http.uploadbody import HIGH_WATER
from quart_flet.http.uploads import upload_serializer

SECRET = "upload-test-secret"
MiB = 1024 * 1024


def picker_main(page: ft.Page) -> None:
    """The FilePicker flow: a click asks for a signed URL and starts the upload."""
    picker = ft.FilePicker()

    async def start(e: ft.Event[ft.Button]) -> None:
        url = page.get_upload_url("docs/report.txt", 60)
        await picker.upload([ft.FilePickerUploadFile(upload_url=url, name="report.txt")])

    page.add(ft.Button("upload", on_click=start))


def make_app(upload_dir: Path | None, prefix: str = "", **opts: Any) -> Quart:
    app = Quart(__name__)
    app.config["SECRET_KEY"] = SECRET
    if upload_dir is not None:
        opts["upload_dir"] = upload_dir
    app.register_blueprint(flet_blueprint(picker_main, **opts), url_prefix=prefix or None)
    return app


def signed_url(
    file_name: str,
    expires: int = 60,
    keys: list[str] | None = None,
    base: str = "/",
    **kwargs: Any,
) -> str:
    """A URL made exactly as the server makes them (for names no Flet app would ask for)."""
    token = upload_serializer(keys or [SECRET], "flet", **kwargs).dumps([file_name, expires])
    return f"{base}upload?" + urlencode({"f": file_name, "e": expires, "s": token})


async def url_from_file_picker(client: FletTestClient) -> str:
    """Click 'upload' and answer the FilePicker's INVOKE_METHOD; return its URL."""
    await client.register()
    patch = await client.receive_until(lambda m: m[0] == 2 and find_controls(m[1], _c="Button"))
    button = find_controls(patch, _c="Button", content="upload")[0]["_i"]
    await client.click(int(button))
    call = await client.receive_until(lambda m: m[0] == INVOKE_METHOD and m[1]["name"] == "upload")
    body = call[1]
    await client.ws.send(
        encode(
            INVOKE_METHOD,
            {"control_id": body["control_id"], "call_id": body["call_id"], "result": None},
        )
    )
    files = body["args"]["files"]
    assert files[0]["method"] == "PUT"
    return str(files[0]["upload_url"])


def leftovers(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


async def test_file_picker_upload_lands_in_upload_dir(tmp_path: Path) -> None:
    app = make_app(tmp_path / "uploads", prefix="/flet-app")
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            url = await url_from_file_picker(FletTestClient(ws))
        assert url.startswith("/flet-app/upload?")
        response = await test.put(url, data=b"hello uploads")
        assert response.status_code == 200, await response.get_data()
        assert await response.get_json() == {"name": "docs/report.txt", "size": 13}
    assert (tmp_path / "uploads" / "docs" / "report.txt").read_bytes() == b"hello uploads"
    assert leftovers(tmp_path / "uploads") == [tmp_path / "uploads" / "docs" / "report.txt"]


def sync_main(page: ft.Page) -> None:
    """A sync handler (run on the thread pool) shows its upload URL."""
    shown = ft.Text("")

    def show(e: ft.Event[ft.Button]) -> None:
        shown.value = page.get_upload_url("sync.txt", 60)

    page.add(shown, ft.Button("url", on_click=show))


async def test_sync_handler_gets_a_working_upload_url(tmp_path: Path) -> None:
    app = Quart(__name__)
    app.config["SECRET_KEY"] = SECRET
    app.register_blueprint(flet_blueprint(sync_main, upload_dir=tmp_path))
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/ws") as ws:
            client = FletTestClient(ws)
            await client.register()
            patch = await client.receive_until(
                lambda m: m[0] == 2 and find_controls(m[1], _c="Button")
            )
            await client.click(int(find_controls(patch, _c="Button", content="url")[0]["_i"]))
            shown = await client.receive_until(lambda m: m[0] == 2 and "/upload?" in str(m[1]))
        url = next(v for v in _strings(shown) if v.startswith("/upload?"))
        assert (await test.put(url, data=b"from a thread")).status_code == 200
    assert (tmp_path / "sync.txt").read_bytes() == b"from a thread"


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, (list, tuple)):
        return [s for value in node for s in _strings(value)]
    return []


async def test_upload_url_includes_the_asgi_root_path(tmp_path: Path) -> None:
    app = make_app(tmp_path, prefix="/flet-app")
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/proxy/flet-app/ws", root_path="/proxy") as ws:
            url = await url_from_file_picker(FletTestClient(ws))
        assert url.startswith("/proxy/flet-app/upload?")
        # the signature covers name and lifetime, not the path: a proxy that
        # strips /proxy before the app still gets a valid URL
        response = await test.put(url.removeprefix("/proxy"), data=b"x")
        assert response.status_code == 200


async def test_upload_replaces_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"old")
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("a.txt"), data=b"new")
    assert response.status_code == 200
    assert (tmp_path / "a.txt").read_bytes() == b"new"


async def test_missing_query_is_400(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put("/upload?f=a.txt", data=b"x")
    assert response.status_code == 400
    message = (await response.get_json())["error"]
    assert "malformed upload URL" in message
    # one line naming what is missing, not pydantic's multi-line report
    assert message.endswith("e: Field required; s: Field required"), message
    assert "\n" not in message and "pydantic" not in message
    assert leftovers(tmp_path) == []


async def test_malformed_expiry_is_400(tmp_path: Path) -> None:
    url = signed_url("a.txt").replace("e=60", "e=soon")
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(url, data=b"x")
    assert response.status_code == 400
    body = await response.get_json()
    assert body["status"] == 400
    assert "e: Input should be a valid integer" in body["error"]


async def test_bad_signature_is_403(tmp_path: Path) -> None:
    url = signed_url("a.txt")
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(tampered, data=b"x")
    assert response.status_code == 403
    assert "signature" in (await response.get_json())["error"]
    assert leftovers(tmp_path) == []


async def test_signature_for_another_file_is_403(tmp_path: Path) -> None:
    url = signed_url("a.txt").replace("f=a.txt", "f=b.txt")
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(url, data=b"x")
    assert response.status_code == 403
    assert leftovers(tmp_path) == []


async def test_longer_lifetime_than_signed_is_403(tmp_path: Path) -> None:
    url = signed_url("a.txt", expires=60).replace("e=60", "e=999999")
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(url, data=b"x")
    assert response.status_code == 403


async def test_signature_of_another_key_is_403(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(
            signed_url("a.txt", keys=["someone else's key"]), data=b"x"
        )
    assert response.status_code == 403


class SignedTwoMinutesAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 120


async def test_expired_url_is_410(tmp_path: Path) -> None:
    url = signed_url("a.txt", expires=60, signer=SignedTwoMinutesAgo)
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(url, data=b"x")
    assert response.status_code == 410
    assert "expired" in (await response.get_json())["error"]
    assert leftovers(tmp_path) == []


async def test_too_large_by_content_length_is_413(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_upload_size=10)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("big.bin"), data=b"x" * 11)
    assert response.status_code == 413
    assert "10 bytes" in (await response.get_json())["error"]
    assert leftovers(tmp_path) == []


async def test_too_large_while_streaming_is_413_and_removes_the_temp_file(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_upload_size=HIGH_WATER)
    async with app.test_app() as test_app:
        # no Content-Length: the limit is only found while streaming
        async with test_app.test_client().request(signed_url("big.bin"), method="PUT") as conn:
            for _ in range(4):
                await conn.send(b"x" * (HIGH_WATER // 2))
            await conn.send_complete()
            await conn.receive()
        assert conn.status_code == 413
    assert leftovers(tmp_path) == []


async def test_client_gone_mid_upload_leaves_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        async with test_app.test_client().request(signed_url("half.bin"), method="PUT") as conn:
            await conn.send(b"x" * 1000)
            await conn.disconnect()
    # a client gone while the pool thread still opens the temporary file:
    # the thread removes it once opened (bounded polling for that thread)
    deadline = time.monotonic() + 5
    while leftovers(tmp_path) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "docs/../../escape.txt", "/tmp/escape.txt", "nul\x00.txt", "dir/", ""],
    ids=["dotdot", "nested-dotdot", "absolute", "nul", "directory", "empty"],
)
async def test_path_leaving_upload_dir_is_400(tmp_path: Path, name: str) -> None:
    upload_dir = tmp_path / "uploads"
    app = make_app(upload_dir)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url(name), data=b"x")
    assert response.status_code == 400
    assert "error" in await response.get_json()
    assert leftovers(tmp_path) == []


async def test_symlink_escape_is_400(tmp_path: Path) -> None:
    upload_dir, outside = tmp_path / "uploads", tmp_path / "outside"
    upload_dir.mkdir()
    outside.mkdir()
    (upload_dir / "link").symlink_to(outside, target_is_directory=True)
    app = make_app(upload_dir)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("link/escape.txt"), data=b"x")
    assert response.status_code == 400
    assert list(outside.iterdir()) == []


async def test_symlinked_file_escape_is_400(tmp_path: Path) -> None:
    upload_dir, outside = tmp_path / "uploads", tmp_path / "outside.txt"
    upload_dir.mkdir()
    outside.write_bytes(b"keep")
    (upload_dir / "file.txt").symlink_to(outside)
    app = make_app(upload_dir)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("file.txt"), data=b"x")
    assert response.status_code == 400
    assert outside.read_bytes() == b"keep"


async def test_rotated_key_still_verifies_through_fallbacks(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    app.config["SECRET_KEY"] = "new key"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET]
    async with app.test_app() as test_app:
        test = test_app.test_client()
        old = await test.put(signed_url("old.txt", keys=[SECRET]), data=b"old")
        new = await test.put(signed_url("new.txt", keys=["new key"]), data=b"new")
    assert (old.status_code, new.status_code) == (200, 200)


async def test_retired_key_is_403(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    app.config["SECRET_KEY"] = "new key"
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("a.txt"), data=b"x")
    assert response.status_code == 403


async def test_secret_key_option_wins_over_app_secret_key(tmp_path: Path) -> None:
    app = make_app(tmp_path, secret_key="option key")
    async with app.test_app() as test_app:
        test = test_app.test_client()
        by_option = await test.put(signed_url("a.txt", keys=["option key"]), data=b"x")
        by_app = await test.put(signed_url("a.txt"), data=b"x")
    assert (by_option.status_code, by_app.status_code) == (200, 403)


async def test_max_content_length_does_not_cut_a_large_upload(tmp_path: Path) -> None:
    data = os.urandom(21 * MiB)
    app = make_app(tmp_path)
    app.config["MAX_CONTENT_LENGTH"] = 1 * MiB
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("big.bin"), data=data)
    assert response.status_code == 200, await response.get_data()
    assert (
        hashlib.sha256((tmp_path / "big.bin").read_bytes()).digest()
        == hashlib.sha256(data).digest()
    )


async def test_a_hook_reading_the_whole_body_does_not_stall_the_upload(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    seen: list[int] = []

    @app.before_request
    async def read_everything() -> None:
        from quart import request

        seen.append(len(await request.get_data()))

    data = os.urandom(3 * HIGH_WATER)
    async with app.test_app() as test_app:
        response = await asyncio.wait_for(
            test_app.test_client().put(signed_url("whole.bin"), data=data), 10
        )
    assert response.status_code == 200
    assert seen == [len(data)]
    assert (tmp_path / "whole.bin").read_bytes() == data


async def test_other_routes_keep_max_content_length(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    app.config["MAX_CONTENT_LENGTH"] = 1024

    @app.put("/echo")
    async def echo() -> bytes:
        from quart import request

        return await request.get_data()

    async with app.test_app() as test_app:
        response = await test_app.test_client().put("/echo", data=b"x" * 2048)
    assert response.status_code == 413


async def test_uploads_off_is_json_404(tmp_path: Path) -> None:
    app = make_app(None)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("a.txt"), data=b"x")
    assert response.status_code == 404
    assert "upload_dir" in (await response.get_json())["error"]


async def test_upload_dir_without_any_secret_key_fails_at_startup(tmp_path: Path) -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(picker_main, upload_dir=tmp_path))
    with pytest.raises(LifespanError) as error:  # Quart's wrapper of our OptionError
        async with app.test_app():
            pass
    message = str(error.value)
    assert "SECRET_KEY" in message and "secret_key=" in message and "FLET_SECRET_KEY" in message


async def test_upload_dir_is_created_at_startup(tmp_path: Path) -> None:
    app = make_app(tmp_path / "new" / "uploads")
    async with app.test_app():
        assert (tmp_path / "new" / "uploads").is_dir()


async def test_routes_appear_in_the_openapi_document_with_quart_schema(tmp_path: Path) -> None:
    app = make_app(tmp_path, prefix="/flet-app")
    QuartSchema(app)
    async with app.test_app() as test_app:
        document = await (await test_app.test_client().get("/openapi.json")).get_json()
    upload = document["paths"]["/flet-app/upload"]["put"]
    assert {p["name"] for p in upload["parameters"]} == {"f", "e", "s"}
    assert {"200", "400", "403", "410", "413"} <= set(upload["responses"])
    callback = document["paths"]["/flet-app/oauth_callback"]["get"]
    assert {p["name"] for p in callback["parameters"]} >= {"state", "code", "error"}
    # the web client's pages are not API: only the two routes above appear
    assert set(document["paths"]) == {"/flet-app/upload", "/flet-app/oauth_callback"}


@pytest.mark.server
def test_large_upload_through_hypercorn_ignores_max_content_length(
    tmp_path: Path, hypercorn: Any
) -> None:
    """24 MiB, more than Quart's 16 MiB default, streamed by a real client."""
    upload_dir = tmp_path / "uploads"
    env = {"FLET_UPLOAD_DIR": str(upload_dir), "FLET_SECRET_KEY": SECRET}
    server = hypercorn("examples.upload:app", env=env)
    chunk, count = os.urandom(MiB), 24
    url = server.url + signed_url("big.bin")
    response = httpx.put(
        url,
        content=(chunk for _ in range(count)),
        headers={"content-length": str(count * MiB)},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert (upload_dir / "big.bin").stat().st_size == count * MiB
    assert (upload_dir / "big.bin").read_bytes()[:MiB] == chunk


def everything(directory: Path) -> list[Path]:
    """Files and directories: a refused upload must not leave an empty directory."""
    return sorted(directory.rglob("*"))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("文" * 100 + ".txt", "too long"),  # 304 bytes in UTF-8
        ("x" * 256, "too long"),
        ("newdirlong/" + "x" * 256, "too long"),
        (("d" * 200 + "/") * 25 + "f", "too long"),  # every part fits, the path does not
        ("d/" * 3000 + "f", "nests more than"),
        ("/".join(["d"] * 2000), "nests more than"),
        ("a.txt/b.txt", "a.txt is a file"),
        ("a.txt/sub/b.txt", "a.txt is a file"),
    ],
    ids=[
        "utf8-name-304-bytes",
        "name-256",
        "new-dir-then-name-256",
        "path-over-path-max",
        "3000-dirs",
        "2000-dirs",
        "file-as-directory",
        "file-as-grandparent",
    ],
)
async def test_name_the_file_system_cannot_store_is_400(
    tmp_path: Path, name: str, why: str
) -> None:
    (tmp_path / "a.txt").write_bytes(b"keep")
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url(name), data=b"x")
    assert response.status_code == 400
    body = await response.get_json()
    assert why in body["error"] and body["status"] == 400
    assert everything(tmp_path) == [tmp_path / "a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == b"keep"


@pytest.mark.parametrize("name", ["x" * 255, "newdir/" + "x" * 255], ids=["top", "in-new-dir"])
async def test_name_of_255_bytes_is_stored(tmp_path: Path, name: str) -> None:
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url(name), data=b"x")
    assert response.status_code == 200, await response.get_data()
    assert (tmp_path / name).read_bytes() == b"x"


async def test_refused_upload_to_a_new_directory_leaves_no_directory(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_upload_size=HIGH_WATER)
    async with app.test_app() as test_app:
        url = signed_url("newdir413/file")
        async with test_app.test_client().request(url, method="PUT") as conn:
            for _ in range(4):
                await conn.send(b"x" * (HIGH_WATER // 2))
            await conn.send_complete()
            await conn.receive()
        assert conn.status_code == 413
    assert everything(tmp_path) == []


async def test_client_gone_mid_upload_to_a_new_directory_leaves_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        url = signed_url("newdir/half.bin")
        async with test_app.test_client().request(url, method="PUT") as conn:
            await conn.send(b"x" * 1000)
            await conn.disconnect()
    assert everything(tmp_path) == []


async def test_a_failed_upload_keeps_the_directory_of_a_concurrent_one(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_upload_size=HIGH_WATER)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.request(signed_url("shared/big.bin"), method="PUT") as big:
            await big.send(b"x" * (HIGH_WATER // 2))
            response = await test.put(signed_url("shared/small.bin"), data=b"small")
            assert response.status_code == 200
            for _ in range(3):
                await big.send(b"x" * (HIGH_WATER // 2))
            await big.send_complete()
            await big.receive()
        assert big.status_code == 413
    assert everything(tmp_path) == [tmp_path / "shared", tmp_path / "shared" / "small.bin"]


async def test_a_file_stored_meanwhile_where_a_directory_is_needed_is_400(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.request(signed_url("late/sub/file.bin"), method="PUT") as conn:
            await conn.send(b"x" * 1000)
            response = await test.put(signed_url("late"), data=b"first")
            assert response.status_code == 200
            await conn.send_complete()
            body = await conn.receive()
        assert conn.status_code == 400
        assert b"late is a file" in body
    assert everything(tmp_path) == [tmp_path / "late"]
    assert (tmp_path / "late").read_bytes() == b"first"


def test_place_removes_only_the_directories_it_created(tmp_path: Path) -> None:
    from quart_flet.http.uploads import _place

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "kept.txt").write_bytes(b"")
    with pytest.raises(FileNotFoundError):  # the temporary file is gone: the rename fails
        _place(tmp_path / ".gone.part", tmp_path / "old" / "new" / "deeper" / "f", tmp_path)
    assert everything(tmp_path) == [tmp_path / "old", tmp_path / "old" / "kept.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=["022", "077", "002"])
async def test_stored_file_has_the_mode_of_a_plain_open(tmp_path: Path, umask: int) -> None:
    app = make_app(tmp_path)
    old = os.umask(umask)
    try:
        async with app.test_app() as test_app:
            response = await test_app.test_client().put(signed_url("dir/m.txt"), data=b"x")
    finally:
        os.umask(old)
    assert response.status_code == 200
    assert (tmp_path / "dir" / "m.txt").stat().st_mode & 0o777 == 0o666 & ~umask


async def test_the_probes_stay_out_of_openapi_too(tmp_path: Path) -> None:
    from quart_flet import QuartFlet

    app = Quart(__name__)
    app.config["SECRET_KEY"] = SECRET
    QuartFlet(app, health_path="/healthz", ready_path="/readyz")
    app.register_blueprint(flet_blueprint(picker_main, upload_dir=tmp_path))
    QuartSchema(app)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/readyz")).status_code == 200
        document = await (await client.get("/openapi.json")).get_json()
    assert set(document["paths"]) == {"/upload", "/oauth_callback"}
