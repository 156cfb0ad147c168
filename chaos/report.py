"""What one scenario injected and what it counted, printed the same way for each."""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.count import Tally


@dataclass
class Report:
    scenario: str
    injected: list[str] = field(default_factory=list)
    tally: Tally | None = None
    seconds: float = 0.0
    error: str | None = None  # the scenario itself broke: counts as a failure

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.tally is not None
            and not self.tally.lost
            and not self.tally.duplicated
        )

    def text(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        lines = [f"== {self.scenario}: {verdict} ({self.seconds:.0f} s)"]
        lines += [f"  injected: {line}" for line in self.injected]
        if self.tally is not None:
            lines += [f"  counted: {line}" for line in self.tally.lines()]
        if self.error is not None:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)
