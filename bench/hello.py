"""The baseline: a bare Textual hello-world, measured the same way as lakedeck."""

from textual.app import App, ComposeResult
from textual.widgets import Static


class Hello(App):
    def compose(self) -> ComposeResult:
        yield Static("hello-world-ready")


if __name__ == "__main__":
    Hello().run()
