"""A run's console progress: a bar redrawn in place on a terminal, log lines elsewhere."""

import io
import logging

from src.runs import progress as p


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_bar_redrawn_in_place_and_erased_at_the_end(monkeypatch):
    clock = iter([0.0] + [0.1 * k for k in range(1, 101)])
    monkeypatch.setattr(p.time, "monotonic", lambda: next(clock))
    screen = Terminal()
    progress = p.Progress("xor-adam", epochs=100, every=10, stream=screen)
    for epoch in range(1, 101):
        progress(epoch, {"train_loss": 1 / epoch})
    progress.close()
    frames = screen.getvalue().split("\r\033[K")
    assert frames[0] == "" and frames[-1] == ""  # every frame overwrites the line; the last one erases it
    drawn = frames[1:-1]
    assert len(drawn) == 34  # every 0.25 s of 0.1 s epochs (each third epoch), plus the last
    assert drawn[-1].startswith(
        "xor-adam  [" + "█" * p.BAR_WIDTH + "]  100/100  train_loss 0.01  10.0 s, about 0.0 s left"
    )


def test_elsewhere_a_line_every_so_many_epochs(caplog):
    progress = p.Progress("xor-adam", epochs=25, every=10, stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger=p.log.name):
        for epoch in range(1, 26):
            progress(epoch, {"train_loss": 0.5})
        progress.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"xor-adam  epoch {e:>2}/25  train_loss 0.5" for e in (10, 20, 25)
    ]
