"""``wats-supervisor server``: run the embedded WATS-compatible server (placeholder)."""

from wats.cli.main import app


@app.command()
def server() -> None:
    """Run the embedded WATS-compatible server in the foreground."""
    raise NotImplementedError
