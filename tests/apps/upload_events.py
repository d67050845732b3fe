"""examples/upload.py's FilePicker flow for the upload-limit browser tests:
every ``on_upload`` event is printed to the server's log as the handler gets
it and shown on the page, and a "ping" button shows the session still
answers after an upload was refused.

Run: FLET_SECRET_KEY=k FLET_UPLOAD_DIR=uploads FLET_MAX_UPLOAD_SIZE=1048576 \\
    hypercorn tests.apps.upload_events:app
"""

from __future__ import annotations

import flet as ft

from quart_flet import quart_app


async def main(page: ft.Page) -> None:
    events = ft.Column()
    pings = ft.Text("pings: 0")

    async def on_upload(e: ft.FilePickerUploadEvent) -> None:
        print(f"on_upload {e.file_name!r} progress={e.progress!r} error={e.error!r}", flush=True)
        events.controls.append(ft.Text(f"{e.file_name}: {e.progress} {e.error or ''}"))
        events.update()

    picker = ft.FilePicker(on_upload=on_upload)

    async def pick_and_upload(e: ft.Event[ft.Button]) -> None:
        files = await picker.pick_files()
        if files:
            await picker.upload(
                [
                    ft.FilePickerUploadFile(
                        name=f.name, upload_url=page.get_upload_url(f.name, 600)
                    )
                    for f in files
                ]
            )

    def ping(e: ft.Event[ft.Button]) -> None:
        pings.value = f"pings: {int(pings.value.split()[-1]) + 1}"

    page.add(
        ft.Button("Pick files and upload", on_click=pick_and_upload),
        ft.Button("ping", on_click=ping),
        pings,
        events,
    )


app = quart_app(main, upload_dir="uploads")
