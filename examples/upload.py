"""FilePicker uploads into a directory on the server.

Run:
    FLET_SECRET_KEY=change-me FLET_UPLOAD_DIR=uploads \\
        hypercorn examples.upload:app --bind 127.0.0.1:8000

The key signs the upload URLs (app.config["SECRET_KEY"] works too); files land
in FLET_UPLOAD_DIR, streamed, whatever their size.
"""

import flet as ft

from quart_flet import quart_app


async def main(page: ft.Page) -> None:
    page.title = "Uploads"
    progress = ft.Column()

    async def on_upload(e: ft.FilePickerUploadEvent) -> None:
        progress.controls.append(ft.Text(f"{e.file_name}: {e.progress or 0:.0%} {e.error or ''}"))
        progress.update()

    picker = ft.FilePicker(on_upload=on_upload)

    async def pick_and_upload(e: ft.Event[ft.Button]) -> None:
        files = await picker.pick_files(allow_multiple=True)
        if files:
            await picker.upload(
                [
                    ft.FilePickerUploadFile(
                        name=f.name, upload_url=page.get_upload_url(f.name, expires=600)
                    )
                    for f in files
                ]
            )

    page.add(ft.Button("Pick files and upload", on_click=pick_and_upload), progress)


app = quart_app(main, upload_dir="uploads")
