"""For `textual run --dev tui/dev.py`: the console on the config lakedeck would find, with live CSS."""

from backends.config import load
from tui.app import LakedeckApp

app = LakedeckApp(load(None))

if __name__ == "__main__":
    app.run()
